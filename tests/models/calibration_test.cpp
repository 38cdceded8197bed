// Calibration: curve fits, the held-out error over the committed kernel measurements (GPU-free),
// the shipped h200-measured profile, and pricing ops from it.
#include <doctest/doctest.h>

#include <cmath>
#include <set>
#include <string>

#include "models/bench_results.h"
#include "models/calibrated_cost_model.h"
#include "models/calibration_fit.h"
#include "models/config.h"
#include "models/cost_model_spec.h"
#include "models/curve_fit.h"
#include "models/errors.h"
#include "models/curve_explain.h"
#include "models/latency_bandwidth_fit.h"
#include "models/layer_ops.h"
#include "models/loglog_spline.h"
#include "models/moe_model.h"

using namespace epsim;

namespace {
// The committed epsim-bench files the shipped h200-measured profile was fitted from (its provenance
// names them). Later result files in kernels/results (another machine kind, re-runs of the
// benchmark) are not part of that fit, so adding one does not move the figures pinned below.
std::vector<BenchFile> committed_results() {
  const CalibrationProfile ship = CalibrationProfile::load(resolve_calibration("h200-measured"));
  std::vector<BenchFile> files;
  for (const auto& s : ship.sources) files.push_back(read_bench_file(std::string(EPSIM_SOURCE_DIR) + "/" + s.file));
  REQUIRE(!files.empty());
  return files;
}

const FamilyError& family_error(const CalibrationProfile& p, const std::string& name) {
  for (const auto& e : p.errors)
    if (e.family == name) return e;
  FAIL("no family " << name);
  throw std::logic_error("unreachable");
}

CalibratedCostModel shipped() {
  return CalibratedCostModel(CalibrationProfile::load(resolve_calibration("h200-measured")), "h200-measured", GpuSpec::preset("h200"));
}
}  // namespace

TEST_CASE("LogCurve: exact on data linear in log2 x, flat outside, smoothing pulls an outlier") {
  const LogCurve c = LogCurve::fit({1, 2, 4, 8}, {0, 1, 2, 3}, 0.0);
  CHECK(c.at(2) == doctest::Approx(1));
  CHECK(c.at(std::sqrt(8.0)) == doctest::Approx(1.5));  // halfway between 2 and 4 in log2
  CHECK(c.at(0.5) == doctest::Approx(0));
  CHECK(c.at(64) == doctest::Approx(3));
  const LogCurve rough = LogCurve::fit({1, 2, 4, 8, 16}, {0, 0, 1, 0, 0}, 0.0);
  const LogCurve smooth = LogCurve::fit({1, 2, 4, 8, 16}, {0, 0, 1, 0, 0}, 1.0);
  CHECK(rough.at(4) == doctest::Approx(1));
  CHECK(smooth.at(4) < 0.7);
  // Repeated x: the fit is their mean.
  CHECK(LogCurve::fit({4, 4, 8}, {1, 3, 5}, 0.0).at(4) == doctest::Approx(2));
  CHECK_THROWS_AS(LogCurve::fit({0, 1}, {1, 1}, 0.0), std::invalid_argument);
}

TEST_CASE("LogLogSpline: exact on power laws, chords as latency + size / rate, ends") {
  // t = 2 us x (x / 1024)^0.5: ln t is linear in log2 x, which the natural spline reproduces.
  std::vector<double> xs, ts;
  for (double x = 1024; x <= 1024.0 * 1024 * 1024; x *= 4) {
    xs.push_back(x);
    ts.push_back(2e-6 * std::sqrt(x / 1024));
  }
  const LogLogSpline p = LogLogSpline::fit(xs, ts);
  CHECK(p.seconds(2048) == doctest::Approx(2e-6 * std::sqrt(2.0)).epsilon(1e-12));
  CHECK(p.seconds(3e6) == doctest::Approx(2e-6 * std::sqrt(3e6 / 1024)).epsilon(1e-12));
  CHECK(p.seconds(1) == doctest::Approx(2e-6));  // below: the smallest size's time
  // A latency + bandwidth line: every segment's chord is that line, and above the largest size it continues.
  std::vector<double> ys;
  for (double x : xs) ys.push_back(5e-6 + x / 400e9);
  const LogLogSpline l = LogLogSpline::fit(xs, ys);
  for (const auto& s : l.segments()) {
    CHECK(s.latency == doctest::Approx(5e-6).epsilon(1e-9));
    CHECK(s.rate == doctest::Approx(400e9).epsilon(1e-9));
  }
  CHECK(l.seconds(4 * xs.back()) == doctest::Approx(5e-6 + 4 * xs.back() / 400e9).epsilon(1e-12));
  CHECK(l.segment_at(3000).x0 == 1024);
  CHECK(l.segment_at(3000).x1 == 4096);
  // Repeats at one x: the mean of their ln t.
  CHECK(LogLogSpline::fit({8, 8, 16}, {1, 4, 8}).seconds(8) == doctest::Approx(2.0));
  CHECK_THROWS_AS(LogLogSpline::fit({0, 1}, {1, 1}), std::invalid_argument);
  CHECK_THROWS_AS(LogLogSpline::fit({1, 2}, {1, 0}), std::invalid_argument);
}

TEST_CASE("LatencyBandwidthFit recovers latency and bandwidth") {
  std::vector<double> bytes;
  std::vector<Time> ts;
  for (double b = 4096; b < 2e9; b *= 4) {
    bytes.push_back(b);
    ts.push_back(Time::us(5.0) + Time::seconds(b / 400e9));
  }
  const auto f = LatencyBandwidthFit::fit(bytes, ts);
  CHECK(f.latency.to_us() == doctest::Approx(5.0).epsilon(1e-3));
  CHECK(f.bandwidth.to_gb_per_s() == doctest::Approx(400.0).epsilon(1e-3));
}

TEST_CASE("held-out error over the committed measurements: median <= 5% and max <= 15% but for six named families") {
  const CalibrationResult r = calibrate(committed_results(), HoldoutPolicy{}, "test");
  CHECK(r.profile.errors.size() == 31);
  // Since the issue-14 refit (the 2026-12-06 file's op families) six families miss the per-family
  // target, as on the H100 (README, "Validation on the H200"): the GEMM grid's new shapes (gemm_bf16
  // 17.9 %, gemm_fp8_block 25.2 %), and small memory-bound kernels with one held-out point.
  const std::set<std::string> missed = {"gemm_bf16", "gemm_fp8_block", "rmsnorm_bwd", "mla_rope", "residual_add", "unpermute_bwd"};
  for (const auto& e : r.profile.errors) {
    INFO(e.family << ": median " << e.median_pct << " %, max " << e.max_pct << " % over " << e.heldout << " points");
    CHECK(e.heldout >= 1);
    CHECK((e.median_pct <= 5.0 && e.max_pct <= 15.0) == !missed.count(e.family));
  }
  // Pinned: the table `epsim calibrate` prints for the committed files (README). The figures do not
  // depend on the build: -O0, -O3 and -O3 -march=native -ffp-contract=fast agree to 1e-9 %.
  struct Pin {
    const char* family;
    int points, heldout;
    double median, max;
  };
  const Pin pins[] = {
      {"gemm_bf16", 141, 29, 3.866, 17.879},  {"grouped_gemm_bf16", 45, 9, 2.580, 12.120},
      {"expert_mlp_bf16", 36, 8, 2.266, 11.070},  {"expert_mlp_fp8", 36, 8, 4.400, 10.928},
      {"dense_mlp_bf16", 8, 2, 1.657, 1.804},  {"gate_topk", 7, 1, 3.590, 3.590},
      {"attention_prefill", 5, 1, 0.470, 0.470},  {"attention_decode", 10, 2, 2.176, 4.003},
      {"permute", 8, 2, 3.207, 6.285},  {"unpermute_combine", 8, 2, 3.264, 5.997},
      {"hbm_copy", 6, 1, 0.125, 0.125},  {"p2p_copy", 10, 2, 1.847, 3.038},
      {"nccl_alltoall", 10, 2, 4.046, 7.839},  {"peer_dispatch", 10, 2, 3.069, 6.006},
      {"gemm_bf16_dgrad", 56, 8, 2.186, 9.843},  {"gemm_bf16_wgrad", 56, 8, 3.618, 6.585},
      {"gemm_fp8_block", 88, 18, 4.658, 25.242},  {"rmsnorm", 18, 3, 2.428, 5.771},
      {"rmsnorm_bwd", 18, 3, 22.761, 32.825},  {"rope", 18, 3, 3.028, 3.440},
      {"mla_rope", 6, 1, 36.355, 36.355},  {"swiglu", 12, 2, 3.210, 3.998},
      {"swiglu_bwd", 12, 2, 4.134, 5.083},  {"quant_act", 23, 4, 3.130, 5.542},
      {"residual_add", 6, 1, 8.738, 8.738},  {"unpermute_bwd", 6, 1, 28.851, 28.851},
      {"router_topk", 6, 1, 4.821, 4.821},  {"router_topk_bwd", 6, 1, 2.712, 2.712},
      {"attention_fwd", 18, 3, 3.422, 5.700},  {"attention_bwd", 18, 3, 3.221, 4.896},
      {"attention_decode_gqa", 25, 5, 0.153, 3.093},
  };
  for (const Pin& p : pins) {
    INFO(p.family);
    const FamilyError& e = family_error(r.profile, p.family);
    CHECK(e.points == p.points);
    CHECK(e.heldout == p.heldout);
    CHECK(e.median_pct == doctest::Approx(p.median).epsilon(1e-3));
    CHECK(e.max_pct == doctest::Approx(p.max).epsilon(1e-3));
  }
  // NCCL's held-out 16 MiB point sits in its protocol switch (algbw 137 GB/s at 4 MiB, 451 at
  // 64 MiB): the log-log spline follows the neighbours' curvature, a straight chord would not.
  for (const auto& h : r.heldout)
    if (h.family == "nccl_alltoall" && h.shape == "bytes=16777216 gpus=2") {
      CHECK(h.measured.to_us() == doctest::Approx(60.976));
      CHECK(h.predicted.to_us() == doctest::Approx(56.196).epsilon(1e-4));
    }
  // Families priced by bytes alone are log-log splines, the others efficiency curves.
  for (const auto& c : r.profile.curves) {
    const bool bytes_only = c.peak.per_second() == 0;
    CHECK(c.shape == (bytes_only ? CurveShape::LogLog : CurveShape::Efficiency));
  }
  // Fitted network terms (P2P copy engine, one way): ~5 us and ~394 GB/s.
  REQUIRE(r.profile.link("p2p_copy") != nullptr);
  CHECK(r.profile.link("p2p_copy")->latency.to_us() == doctest::Approx(5.31).epsilon(0.02));
  CHECK(r.profile.link("p2p_copy")->bandwidth.to_gb_per_s() == doctest::Approx(394.2).epsilon(0.01));
  REQUIRE(r.profile.link("nccl_alltoall") != nullptr);
  CHECK(r.profile.link("nccl_alltoall")->latency.to_us() == doctest::Approx(20.3).epsilon(0.02));
}

TEST_CASE("a log-log curve's segments: NCCL all-to-all between 4 and 64 MiB, and explain_curve") {
  const CalibrationProfile ship = CalibrationProfile::load(resolve_calibration("h200-measured"));
  REQUIRE(ship.family("nccl_alltoall").size() == 1);
  const CalibratedCurve& c = *ship.family("nccl_alltoall").front();
  CHECK(c.shape == CurveShape::LogLog);
  // Measured sizes come back exactly; 16 MiB is priced inside the 4..64 MiB segment.
  CHECK(c.time(0, 0, 4194304).to_us() == doctest::Approx(30.496));
  CHECK(c.time(0, 0, 67108864).to_us() == doctest::Approx(148.784));
  // The profile is fitted on every point: 16 MiB is a knot, the end of one segment and the start of the next.
  CHECK(c.loglog.segment_at(16777216).x1 == 16777216);
  CHECK(c.loglog.segment_at(2e7).x0 == 16777216);
  CHECK(c.loglog.segment_at(2e7).x1 == 67108864);
  CHECK(c.time(0, 0, 16777216).to_us() == doctest::Approx(60.976));
  CHECK(c.time(0, 0, 8388608) > c.time(0, 0, 4194304));
  CHECK(c.time(0, 0, 8388608) < c.time(0, 0, 16777216));
  // Above 1 GiB the last segment continues: 256 MiB..1 GiB chord, ~702 GB/s incremental.
  const auto last = c.loglog.segments().back();
  CHECK(last.rate * 1e-9 == doctest::Approx(702.3).epsilon(1e-3));
  const std::string text = explain_curve(c, 16777216);
  CHECK(text.find("shape loglog") != std::string::npos);
  CHECK(text.find("16 MiB .. 64 MiB") != std::string::npos);
  CHECK(text.find("<- x") != std::string::npos);
  const std::string gemm = explain_curve(*ship.family("gemm_bf16").front(), 1000);
  CHECK(gemm.find("shape efficiency") != std::string::npos);
}

TEST_CASE("explicit held-out shapes and a bad spec") {
  HoldoutPolicy p;
  p.shapes = {"gemm_bf16:m=1024,n=4096,k=7168"};
  const CalibrationResult r = calibrate(committed_results(), p, "test");
  REQUIRE(r.heldout.size() == 1);
  // Measured on the 2026-11-29 and 2026-12-06 machines (76.496 and 77.008 us): their mean.
  CHECK(r.heldout[0].measured.to_us() == doctest::Approx(76.752));
  CHECK(r.heldout[0].error_pct < 5.0);
  p.shapes = {"gemm_bf16"};
  CHECK_THROWS_AS(calibrate(committed_results(), p, "test"), InputError);
}

TEST_CASE("the shipped h200-measured profile is what epsim calibrate builds from the committed results") {
  const CalibrationProfile fresh = calibrate(committed_results(), HoldoutPolicy{}, "x").profile;
  const CalibrationProfile ship = CalibrationProfile::load(resolve_calibration("h200-measured"));
  REQUIRE(ship.curves.size() == fresh.curves.size());
  for (std::size_t i = 0; i < ship.curves.size(); ++i) {
    CHECK(ship.curves[i].family == fresh.curves[i].family);
    CHECK(ship.curves[i].points.size() == fresh.curves[i].points.size());
    CHECK(ship.curves[i].shape == fresh.curves[i].shape);
    for (const auto& p : fresh.curves[i].points) {
      const double x = p.x * 1.3;  // between measured sizes
      CHECK(ship.curves[i].time(p.flops, p.bytes, x).to_us() ==
            doctest::Approx(fresh.curves[i].time(p.flops, p.bytes, x).to_us()).epsilon(1e-9));
    }
  }
  // Three files: everything from the two-GPU machine, the expert MLP at one expert per GPU up to
  // 262144 tokens from the one-GPU machine (8192 and 16384 measured on both: their median), and
  // issue 14's op families (norms, rope, swiglu, quantise, router, fp8 GEMMs, attention backward,
  // the kernel gap) from the 2026-12-06 one-GPU run.
  REQUIRE(ship.sources.size() == 3);
  CHECK(ship.sources[0].device == "NVIDIA H200");
  CHECK(ship.sources[0].git_commit == "2cc921c");
  CHECK(ship.sources[1].file == "kernels/results/h200-2026-11-30-expert-large.json");
  CHECK(ship.sources[1].git_commit == "6511846");
  CHECK(ship.sources[2].file == "kernels/results/h200-2026-12-06.json");
  CHECK(ship.sources[2].git_commit == "6ec8392");
  CHECK(ship.kernel_gap.to_us() == doctest::Approx(1.648).epsilon(1e-3));
  CHECK(ship.event_overhead.to_us() == doctest::Approx(1.881).epsilon(1e-3));
}

TEST_CASE("calibrated prices: measured shapes come back, extrapolation is flagged with its gap") {
  const CalibratedCostModel m = shipped();
  const MoeModelSpec seed = MoeModelSpec::preset("seed");
  const LayerOps ops(seed, 1);
  // expert_mlp_bf16 experts=8 tokens_per_expert=1024 measured 1111.65 us (in the fit).
  const OpWork e = ops.expert_mlp(8192, 8);
  CHECK(m.time(e).to_us() == doctest::Approx(1111.65).epsilon(0.03));
  CHECK_FALSE(m.note(e).extrapolated());
  CHECK(m.note(e).curve == "expert_mlp_bf16 experts=8 by tokens_per_expert");
  // One expert with the seed's 32768 tokens was measured (4216.5 us, the one-GPU run)...
  const OpWork seed_expert = ops.expert_mlp(32768, 1);
  CHECK_FALSE(m.note(seed_expert).extrapolated());
  CHECK(m.time(seed_expert).to_us() == doctest::Approx(4216.5).epsilon(0.03));
  // ... 524288 is twice the largest measured 262144.
  const OpWork big = ops.expert_mlp(524288, 1);
  CHECK(m.note(big).extrapolation == doctest::Approx(2.0));
  CHECK(m.note(big).detail == "tokens_per_expert 524288 above measured 1..262144 (2.00x)");
  // 4 experts: between the 1- and 8-expert series, not extrapolated, between their prices.
  const OpWork four = ops.expert_mlp(4 * 512, 4);
  CHECK_FALSE(m.note(four).extrapolated());
  CHECK(m.time(four) > m.time(ops.expert_mlp(512, 1)));
  CHECK(m.time(four) < m.time(ops.expert_mlp(8 * 512, 8)));
  // Dense MLP at 4096 tokens (tp 1) was measured at 4628.35 us.
  CHECK(m.time(ops.dense_mlp(4096)).to_us() == doctest::Approx(4628.35).epsilon(0.05));
  // Causal prefill of one 4096-token sequence with 128 heads: cuDNN SDPA measured 903.4 us.
  CHECK(m.time(ops.attention_core_prefill(1, 4096)).to_us() == doctest::Approx(903.4).epsilon(0.05));
  // Decode reads the KV cache: 32 sequences at KV 2048 measured 945.6 us (cuDNN).
  CHECK(m.time(ops.attention_core_decode(32, 2048)).to_us() == doctest::Approx(945.6).epsilon(0.05));
  CHECK(m.explain(e).find("measured neighbours") != std::string::npos);
  CHECK(m.name() == "calibrated(h200-measured)");
}

TEST_CASE("make_cost_model: nominal stays, presets resolve, bad values are ConfigErrors") {
  const GpuSpec gpu = GpuSpec::preset("h100-seed");
  CHECK(make_cost_model(CostModelSpec{}, gpu)->name() == "nominal(h100-seed)");
  CHECK(make_cost_model(CostModelSpec{"h200-measured"}, gpu)->name() == "calibrated(h200-measured)");
  CHECK_THROWS_AS(make_cost_model(CostModelSpec{"h300-imagined"}, gpu), ConfigError);
  const std::string bench = std::string(EPSIM_SOURCE_DIR) + "/kernels/results/h200x2-2026-11-29.json";
  CHECK_THROWS_AS(make_cost_model(CostModelSpec{bench}, gpu), ConfigError);  // a results file is not a profile
}

#include "models/pricing_ledger.h"

TEST_CASE("PricingLedger: per op class, which curve priced it and the worst extrapolation") {
  const CalibratedCostModel m = shipped();
  const MoeModelSpec seed = MoeModelSpec::preset("seed");
  const LayerOps ops(seed, 2);  // holds a reference to the spec
  PricingLedger ledger;
  for (int l = 0; l < 3; ++l) {
    ledger.record(ops.attention_proj(4096), m);
    ledger.record(ops.expert_mlp(524288, 1), m);
    ledger.record(ops.expert_mlp(8192, 1), m);
  }
  const auto s = ledger.summary();
  REQUIRE(s.size() == 2);
  CHECK(s[0].op == OpClass::AttentionProj);
  CHECK(s[0].ops == 3);
  CHECK(s[0].extrapolated == 0);
  CHECK(s[0].curves == std::vector<std::string>{"gemm_bf16 k=7168 n=36864 by m"});
  CHECK(s[1].op == OpClass::ExpertMlp);
  CHECK(s[1].ops == 6);
  CHECK(s[1].extrapolated == 3);
  CHECK(s[1].worst_gap == doctest::Approx(2.0));
  CHECK(s[1].model == "calibrated(h200-measured)");
  CHECK(ledger.lines()[1].find("3 of 6 ops extrapolated, up to 2.00x") != std::string::npos);
  CHECK(ledger.to_json()[1]["worst_gap"] == doctest::Approx(2.0));
  PricingLedger nominal;
  const NominalCostModel n(GpuSpec::preset("h100-seed"));
  nominal.record(ops.gate(4096), n);
  CHECK(nominal.lines()[0].find("nominal(h100-seed): roofline; no measurements") != std::string::npos);
}

TEST_CASE("calibrated: an fp8 op with no measured family falls back to the nominal roofline and says so") {
  // The profile h200-measured was before the issue-14 refit: the two 2026-11 files alone.
  std::vector<BenchFile> files;
  for (const char* f : {"h200x2-2026-11-29.json", "h200-2026-11-30-expert-large.json"})
    files.push_back(read_bench_file(std::string(EPSIM_SOURCE_DIR) + "/kernels/results/" + f));
  const CalibratedCostModel m(calibrate(files, HoldoutPolicy{}, "test").profile, "h200-2026-11", GpuSpec::preset("h200"));
  MoeModelSpec fp = MoeModelSpec::preset("seed");
  fp.precision = Precision::deepseek_fp8();
  const LayerOps ops(fp, 2);
  // That profile has no gemm_fp8: the fp8 projections are priced as nominal(h200) prices them,
  // with the preset's 1 us kernel gap (the profile measured none; measured prices include theirs).
  const OpWork proj = ops.attention_proj(4096);
  CHECK(calibrated_family(proj) == std::string("gemm_fp8"));
  CHECK(m.time(proj) == NominalCostModel(GpuSpec::preset("h200")).time(proj) + Time::us(1));
  CHECK(m.kernel_gap() == Time::zero());
  CHECK(m.note(proj).fallback);
  CHECK(m.note(proj).curve == "nominal(h200) roofline (the profile has no gemm_fp8)");
  CHECK(m.explain(proj).find("so by the nominal roofline instead") != std::string::npos);
  // It has expert_mlp_fp8: the fp8 routed experts are measured.
  CHECK_FALSE(m.note(ops.expert_mlp(8192, 8)).fallback);
  CHECK(m.note(ops.expert_mlp(8192, 8)).curve == "expert_mlp_fp8 experts=8 by tokens_per_expert");
  // The bf16 attention core keeps its measured price.
  CHECK(m.time(ops.attention_core_prefill(1, 4096)) == m.time(LayerOps(MoeModelSpec::preset("seed"), 2).attention_core_prefill(1, 4096)));
  PricingLedger ledger;
  ledger.record(proj, m);
  ledger.record(proj, m);
  CHECK(ledger.summary()[0].fallback == 2);
  CHECK(ledger.lines()[0].find("no measurement: nominal roofline") != std::string::npos);
}
