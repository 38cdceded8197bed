#include "models/calibration_fit.h"

#include <algorithm>
#include <cmath>
#include <set>
#include <sstream>

#include <fmt/format.h>

#include "models/errors.h"

namespace epsim {

const std::vector<FamilyDef>& families() {
  // x_key "@bytes" / "@flops": the row's byte / FLOP count (decode: the KV cache read; attention:
  // its work, which folds heads and sequence into one size), not a shape key.
  static const std::vector<FamilyDef> defs = {
      {"gemm_bf16", {"gemm_bf16"}, {"cublas"}, {"n", "k"}, "m", {}, {}, true, "hbm", "attention_proj, lm_head"},
      {"grouped_gemm_bf16", {"grouped_gemm_bf16"}, {}, {"experts", "balanced"}, "tokens_per_expert", {"n", "k"}, {}, true, "hbm", "(profile only)"},
      {"expert_mlp_bf16", {"expert_mlp_bf16"}, {}, {"experts"}, "tokens_per_expert", {"hidden", "inter"}, {}, true, "hbm", "expert_mlp, shared_expert"},
      {"expert_mlp_fp8", {"expert_mlp_fp8"}, {}, {"experts"}, "tokens_per_expert", {"hidden", "inter"}, {}, true, "hbm", "(profile only)"},
      {"dense_mlp_bf16", {"dense_mlp_bf16"}, {}, {}, "tokens", {"hidden", "inter"}, {}, true, "hbm", "dense_mlp"},
      {"gate_topk", {"gate_topk"}, {}, {}, "tokens", {"experts", "hidden", "topk"}, {}, true, "hbm", "gate"},
      {"attention_prefill", {"sdpa_prefill_torch"}, {}, {}, "seq", {"batch", "heads", "head_dim"}, {}, true, "hbm", "attention_core (prefill)"},
      {"attention_decode", {"attention_decode", "sdpa_decode_torch"}, {}, {}, "@bytes", {"batch", "kv_len", "heads", "head_dim"}, {}, true, "hbm", "attention_core (decode)"},
      {"permute", {"permute"}, {"full_atomic_count+gather_pdl"}, {}, "tokens", {"topk", "hidden"}, {}, false, "hbm", "(profile only)"},
      {"unpermute_combine", {"unpermute_combine"}, {}, {}, "tokens", {"topk", "hidden"}, {}, false, "hbm", "(profile only)"},
      {"hbm_copy", {"hbm_copy"}, {"cudaMemcpy"}, {}, "bytes", {}, {}, false, "self", "(profile only)"},
      {"p2p_copy", {"p2p_copy"}, {"ce_0to1"}, {}, "bytes", {}, {}, false, "self", "(network terms)"},
      {"nccl_alltoall", {"nccl_alltoall"}, {}, {}, "bytes", {}, {}, false, "self", "(network terms)"},
      {"peer_dispatch", {"peer_dispatch"}, {"own_0to1"}, {}, "bytes", {}, {{"blocks", 32}}, false, "self", "(profile only)"},
      // issue 14: every op class of a decoder layer (kernels/bench_layer.cu, sdpa_torch.py's layer rows)
      {"gemm_bf16_dgrad", {"gemm_bf16_dgrad"}, {}, {"n", "k"}, "m", {}, {}, true, "hbm", "GEMM input gradients (.dgrad)"},
      {"gemm_bf16_wgrad", {"gemm_bf16_wgrad"}, {}, {"n", "k"}, "m", {}, {}, true, "hbm", "GEMM weight gradients (.wgrad)"},
      {"gemm_fp8_block", {"gemm_fp8_block"}, {}, {"n", "k"}, "m", {}, {}, true, "hbm", "FP8 linear layers"},
      {"rmsnorm", {"rmsnorm"}, {}, {"hidden"}, "tokens", {}, {}, true, "hbm", "RMSNorms"},
      {"rmsnorm_bwd", {"rmsnorm_bwd"}, {}, {"hidden"}, "tokens", {}, {}, true, "hbm", "RMSNorm .dgrad"},
      {"rope", {"rope"}, {}, {"heads", "head_dim", "rope_dim"}, "tokens", {}, {}, true, "hbm", "rope (MHA/GQA)"},
      {"mla_rope", {"mla_rope"}, {}, {"heads"}, "tokens", {}, {}, true, "hbm", "rope (MLA)"},
      {"swiglu", {"swiglu"}, {}, {"inter"}, "rows", {}, {}, true, "hbm", "swiglu, shared_swiglu"},
      {"swiglu_bwd", {"swiglu_bwd"}, {}, {"inter"}, "rows", {}, {}, true, "hbm", "swiglu .dgrad"},
      {"quant_act", {"quant_act"}, {}, {"k"}, "rows", {}, {}, true, "hbm", "quant_act.*"},
      {"residual_add", {"residual_add"}, {}, {"hidden"}, "tokens", {}, {}, true, "hbm", "residual adds"},
      {"unpermute_bwd", {"unpermute_bwd"}, {}, {}, "tokens", {"topk", "hidden"}, {}, true, "hbm", "unpermute .dgrad"},
      {"router_topk", {"router_topk"}, {}, {}, "tokens", {"experts", "topk"}, {}, true, "hbm", "router_topk"},
      {"router_topk_bwd", {"router_topk_bwd"}, {}, {}, "tokens", {"experts", "topk"}, {}, true, "hbm", "router_topk .dgrad"},
      {"attention_fwd", {"attention_fwd"}, {}, {"heads", "kv_heads", "head_dim_qk", "head_dim_v"}, "seq", {"batch", "causal"}, {}, true, "hbm", "attn_core (prefill)"},
      {"attention_bwd", {"attention_bwd"}, {}, {"heads", "kv_heads", "head_dim_qk", "head_dim_v"}, "seq", {"batch", "causal"}, {}, true, "hbm", "attn_core.bwd"},
      {"attention_decode_gqa", {"attention_decode_torch"}, {}, {"heads", "kv_heads", "head_dim_qk", "head_dim_v"}, "@bytes", {"batch", "kv_len"}, {}, true, "hbm", "attn_core (decode)"},
      // MLA decode as deployments run it, absorbed (sdpa_torch.py mla_rows): the core over the
      // compressed cache, kv_b_proj's two per-head products, and the decode RoPE's KV-append copies
      {"attention_decode_mla", {"mla_decode_torch"}, {}, {"heads"}, "@bytes", {"batch", "kv_len"}, {}, true, "hbm", "attn_core (MLA decode, absorbed)"},
      {"mla_absorb", {"mla_absorb_torch"}, {}, {"n", "k"}, "m", {"heads"}, {}, true, "hbm", "kv_b_proj (MLA decode, absorbed)"},
      {"kv_append", {"kv_append_torch"}, {}, {"segments", "width"}, "batch", {"kv_len"}, {}, false, "hbm", "rope's KV append (decode)"},
  };
  return defs;
}

std::string HoldoutPolicy::text() const {
  if (!shapes.empty()) {
    std::string s = "shapes:";
    for (const auto& x : shapes) s += " " + x;
    return s;
  }
  if (fraction <= 0) return "none";
  const int k = std::max(2, static_cast<int>(std::lround(1.0 / fraction)));
  return fmt::format("every {}th interior size of each series (fraction {}), range ends always fitted", k, fraction);
}

namespace {

struct Sample {
  std::map<std::string, std::int64_t> shape;  // identifying keys
  std::map<std::string, std::int64_t> series;
  std::string kernel, variant;
  double x = 0;
  Time t;
  double flops = 0, bytes = 0;
  std::string shape_text;
};

bool has(const std::vector<std::string>& v, const std::string& s) { return std::find(v.begin(), v.end(), s) != v.end(); }

Time median(std::vector<Time> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : Time::ps((v[n / 2 - 1].picoseconds() + v[n / 2].picoseconds()) / 2);
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

std::vector<Sample> collect(const FamilyDef& f, const std::vector<BenchFile>& files) {
  // (identity key text, kernel/variant) -> rows
  std::map<std::string, std::map<std::string, std::vector<const BenchRow*>>> groups;
  for (const auto& file : files)
    for (const auto& r : file.rows) {
      if (!has(f.kernels, r.kernel) || !r.passed) continue;
      if (!f.variants.empty() && !has(f.variants, r.variant)) continue;
      if (f.compute && !(r.flops > 0))
        throw InputError(r.where + ".flops = " + fmt::format("{:g}", r.flops) + ": must be > 0 (family " + f.name +
                         " is priced by FLOPs)");
      bool skipped = false;
      for (const auto& [k, v] : f.skip)
        if (r.shape.count(k) && r.shape.at(k) == v) skipped = true;
      if (skipped) continue;
      std::string key;
      for (const auto& k : f.series_keys) key += k + "=" + std::to_string(r.at(k)) + " ";
      for (const auto& k : f.identity)
        if (r.shape.count(k)) key += k + "=" + std::to_string(r.at(k)) + " ";
      if (f.x_key[0] != '@') key += f.x_key + "=" + std::to_string(r.at(f.x_key));  // else the identity keys fix the size
      groups[key][r.kernel + "/" + r.variant].push_back(&r);
    }
  std::vector<Sample> out;
  for (const auto& [key, by_variant] : groups) {
    Sample best;
    bool first = true;
    for (const auto& [kv, rows] : by_variant) {
      std::vector<Time> ts;
      for (const auto* r : rows) ts.push_back(r->median);
      const Time t = median(ts);
      if (first || t < best.t) {
        const BenchRow& r = *rows.front();
        best = Sample{};
        best.kernel = r.kernel;
        best.variant = r.variant;
        best.t = t;
        best.flops = r.flops;
        best.bytes = r.bytes;
        best.shape = r.shape;
        for (const auto& k : f.series_keys) best.series[k] = r.at(k);
        best.x = f.x_key == "@bytes" ? r.bytes : f.x_key == "@flops" ? r.flops : static_cast<double>(r.at(f.x_key));
        best.shape_text = r.shape_text();
        first = false;
      }
    }
    out.push_back(std::move(best));
  }
  return out;
}

// "kernel:key=value,key=value"
struct ShapeSpec {
  std::string kernel;
  std::map<std::string, std::int64_t> keys;
};

ShapeSpec parse_spec(const std::string& s) {
  const auto colon = s.find(':');
  if (colon == std::string::npos || colon == 0)
    throw InputError("--holdout-shapes " + s + ": expected KERNEL:key=value[,key=value...]");
  ShapeSpec spec{s.substr(0, colon), {}};
  std::stringstream ss(s.substr(colon + 1));
  std::string item;
  while (std::getline(ss, item, ',')) {
    const auto eq = item.find('=');
    if (eq == std::string::npos) throw InputError("--holdout-shapes " + s + ": '" + item + "' is not key=value");
    try {
      spec.keys[item.substr(0, eq)] = std::stoll(item.substr(eq + 1));
    } catch (const std::exception&) {
      throw InputError("--holdout-shapes " + s + ": '" + item + "' needs an integer value");
    }
  }
  return spec;
}

bool matches(const ShapeSpec& spec, const Sample& s) {
  if (spec.kernel != s.kernel) return false;
  for (const auto& [k, v] : spec.keys) {
    auto it = s.shape.find(k);
    if (it == s.shape.end() || it->second != v) return false;
  }
  return true;
}

std::string series_text(const std::map<std::string, std::int64_t>& m) {
  std::string s;
  for (const auto& [k, v] : m) s += (s.empty() ? "" : " ") + k + "=" + std::to_string(v);
  return s.empty() ? "-" : s;
}

// Families with FLOPs: a straight baseline in the roofline floor, and ln(baseline / time) piecewise
// linear in log2 x. Families priced by bytes alone: ln(time) a natural cubic spline in log2 x.
CalibratedCurve make_curve(const FamilyDef& f, const std::vector<Sample>& pts, FlopRate peak, Bandwidth bw,
                           double smoothing) {
  CalibratedCurve c;
  c.family = f.name;
  c.shape = f.compute ? CurveShape::Efficiency : CurveShape::LogLog;
  c.series = pts.front().series;
  c.x_key = f.x_key[0] == '@' ? f.x_key.substr(1) : f.x_key;
  c.peak = peak;
  c.bandwidth = bw;
  std::map<std::string, int> winners;
  std::vector<double> xs, ys;
  for (const auto& p : pts) {
    ++winners[p.kernel + "/" + p.variant];
    xs.push_back(p.x);
    c.points.push_back({p.x, p.t, p.flops, p.bytes, p.shape_text});
  }
  for (const auto& [w, n] : winners) c.source += (c.source.empty() ? "" : ", ") + fmt::format("{} ({})", w, n);
  if (c.shape == CurveShape::LogLog) {
    for (const auto& p : pts) ys.push_back(p.t.to_seconds());
    c.loglog = LogLogSpline::fit(xs, ys);
    return c;
  }
  if (pts.size() >= 2) {
    std::vector<double> floors;
    std::vector<Time> ts;
    for (const auto& p : pts) {
      floors.push_back(c.floor(p.flops, p.bytes).to_seconds());
      ts.push_back(p.t);
    }
    const LatencyBandwidthFit lb = LatencyBandwidthFit::fit(floors, ts);  // "bytes" = floor seconds
    c.latency = lb.latency;
    c.slope = 1.0 / lb.bandwidth.bytes_per_second();
  }
  for (const auto& p : pts) ys.push_back(std::log(c.baseline(p.flops, p.bytes) / p.t));
  c.log_efficiency = LogCurve::fit(xs, ys, smoothing);
  return c;
}

}  // namespace

CalibrationResult calibrate(const std::vector<BenchFile>& files, const HoldoutPolicy& policy, const std::string& command) {
  CalibrationResult result;
  CalibrationProfile& prof = result.profile;
  prof.command = command;
  prof.holdout = policy.text();
  prof.fit = fmt::format(
      "per family and series: fastest passing variant per shape (median of repeats); families with FLOPs: "
      "ln(baseline/time) piecewise linear in log2(size), least squares with second-difference smoothing {}, baseline = "
      "latency + slope x floor, floor = max(FLOPs/peak, bytes/bandwidth) at the run's own ceilings; families priced by "
      "bytes alone: ln(time) a natural cubic spline in log2(size) through the measured sizes",
      policy.smoothing);
  for (const auto& f : files)
    prof.sources.push_back({f.path, f.device, f.device_count, f.date, f.git_commit, f.libraries});

  // Ceilings of the same run(s): best BF16 GEMM rate and best HBM copy rate.
  double gemm_peak = 0, hbm = 0;
  for (const auto& f : files)
    for (const auto& r : f.rows) {
      if (!r.passed || r.median <= Time::zero()) continue;
      if (r.kernel == "gemm_bf16") gemm_peak = std::max(gemm_peak, r.flops / r.median.to_seconds());
      if (r.kernel == "hbm_copy") hbm = std::max(hbm, r.bytes / r.median.to_seconds());
    }

  std::vector<ShapeSpec> specs;
  for (const auto& s : policy.shapes) specs.push_back(parse_spec(s));
  const int k = policy.fraction > 0 ? std::max(2, static_cast<int>(std::lround(1.0 / policy.fraction))) : 0;

  for (const FamilyDef& f : families()) {
    std::vector<Sample> samples = collect(f, files);
    if (samples.empty()) continue;
    double fam_peak = gemm_peak, fam_bw = hbm;
    if (f.compute && gemm_peak <= 0)
      for (const auto& s : samples) fam_peak = std::max(fam_peak, s.flops / s.t.to_seconds());
    if (f.bandwidth_from == "self" || hbm <= 0) {
      fam_bw = 0;
      for (const auto& s : samples) fam_bw = std::max(fam_bw, s.bytes / s.t.to_seconds());
    }
    if (f.name == "expert_mlp_fp8" || f.name == "gemm_fp8_block") fam_peak *= 2;  // e4m3 tensor-core rate is twice BF16's
    const FlopRate peak = FlopRate::per_s(f.compute ? fam_peak : 0.0);
    const Bandwidth bw = Bandwidth::bytes_per_s(fam_bw);

    std::map<std::string, std::vector<Sample>> by_series;
    for (auto& s : samples) by_series[series_text(s.series)].push_back(s);
    std::vector<double> errs;
    int total = 0;
    for (auto& [stext, pts] : by_series) {
      std::stable_sort(pts.begin(), pts.end(), [](const Sample& a, const Sample& b) { return a.x < b.x; });
      total += static_cast<int>(pts.size());
      std::vector<double> xs;
      for (const auto& p : pts)
        if (xs.empty() || xs.back() != p.x) xs.push_back(p.x);
      std::vector<bool> held(pts.size(), false);
      for (std::size_t i = 0; i < pts.size(); ++i) {
        if (!specs.empty()) {
          for (const auto& sp : specs) held[i] = held[i] || matches(sp, pts[i]);
        } else if (k > 0) {
          const auto j = static_cast<int>(std::lower_bound(xs.begin(), xs.end(), pts[i].x) - xs.begin());
          const int n = static_cast<int>(xs.size());
          held[i] = j >= 1 && j <= n - 2 && (j - 1) % k == (k - 1) / 2;
        }
      }
      std::vector<Sample> fit, test;
      for (std::size_t i = 0; i < pts.size(); ++i) (held[i] ? test : fit).push_back(pts[i]);
      if (!test.empty() && !fit.empty()) {
        const CalibratedCurve c = make_curve(f, fit, peak, bw, policy.smoothing);
        for (const auto& p : test) {
          const Time pred = c.time(p.flops, p.bytes, p.x);
          const double e = std::abs(pred / p.t - 1.0) * 100.0;
          errs.push_back(e);
          result.heldout.push_back({f.name, stext, p.shape_text, p.t, pred, e});
        }
      }
      prof.curves.push_back(make_curve(f, pts, peak, bw, policy.smoothing));
    }
    FamilyError fe;
    fe.family = f.name;
    fe.used_for = f.used_for;
    fe.points = total;
    fe.heldout = static_cast<int>(errs.size());
    fe.median_pct = median(errs);
    fe.max_pct = errs.empty() ? 0 : *std::max_element(errs.begin(), errs.end());
    prof.errors.push_back(fe);

    if (!f.compute && f.bandwidth_from == "self" && samples.size() >= 2) {
      std::vector<double> b;
      std::vector<Time> t;
      for (const auto& s : samples) {
        b.push_back(s.bytes);
        t.push_back(s.t);
      }
      prof.links[f.name] = LatencyBandwidthFit::fit(b, t);
    }
  }
  // Launch and dependency gap between back-to-back dependent kernels on one stream (kernel_gap
  // rows, empty kernels): the median over the files that measured it.
  // An event between the kernels (empty_event_between) adds the event overhead to that gap.
  std::vector<double> gaps, with_events;
  for (const auto& f : files)
    for (const auto& r : f.rows) {
      if (r.kernel != "kernel_gap" || !r.passed) continue;
      if (r.variant == "empty_back_to_back") gaps.push_back(r.median.to_us());
      if (r.variant == "empty_event_between") with_events.push_back(r.median.to_us());
    }
  if (!gaps.empty()) prof.kernel_gap = Time::us(median(gaps));
  if (!gaps.empty() && !with_events.empty())
    prof.event_overhead = Time::us(std::max(0.0, median(with_events) - median(gaps)));
  if (prof.curves.empty()) throw InputError("calibrate: no rows of any known kernel in the given files");
  if (const SmRateFit sm = fit_sm_rate(files); !sm.points.empty()) prof.sm_rates["peer_dispatch"] = sm;
  return result;
}

}  // namespace epsim
