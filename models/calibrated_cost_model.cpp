#include "models/calibrated_cost_model.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include <fmt/format.h>

#include "models/errors.h"

namespace epsim {

namespace {
std::int64_t series_value(const CalibratedCurve& c, const std::string& key) {
  auto it = c.series.find(key);
  return it == c.series.end() ? 1 : it->second;
}

// The one table from an op class at a precision to the measured family that prices it (how x is
// read from the op: pick() below). An op with no row, or whose family the profile lacks, is priced
// by the nominal roofline of the scenario's GPU and the pricing ledger says so. `decode`: the row
// applies to decode attention only (kv_len > 0), else to the rest. `within`: the family measured
// this op together with the op before it, which it prices; this one then costs nothing more
// (gate_topk times the router's GEMM and its top-k as one).
struct FamilyRow {
  OpClass op;
  NumberFormat precision;
  bool decode;
  const char* family;
  bool within = false;
};
constexpr NumberFormat kBf16 = NumberFormat::Bf16, kFp8 = NumberFormat::Fp8;
constexpr FamilyRow kFamilies[] = {
    {OpClass::ExpertMlp, kBf16, false, "expert_mlp_bf16"},       {OpClass::ExpertMlp, kFp8, false, "expert_mlp_fp8"},
    {OpClass::SharedExpert, kBf16, false, "expert_mlp_bf16"},    {OpClass::SharedExpert, kFp8, false, "expert_mlp_fp8"},
    {OpClass::DenseMlp, kBf16, false, "dense_mlp_bf16"},         {OpClass::DenseMlp, kFp8, false, "dense_mlp_fp8"},
    {OpClass::Gate, kBf16, false, "gate_topk"},                  {OpClass::RouterTopk, kBf16, false, "gate_topk", true},
    {OpClass::AttentionProj, kBf16, false, "gemm_bf16"},         {OpClass::AttentionProj, kFp8, false, "gemm_fp8"},
    {OpClass::LmHead, kBf16, false, "gemm_bf16"},                {OpClass::LmHead, kFp8, false, "gemm_fp8"},
    {OpClass::MtpProjection, kBf16, false, "gemm_bf16"},
    {OpClass::ExpertGemm, kBf16, false, "gemm_bf16"},            {OpClass::ExpertGemm, kFp8, false, "gemm_fp8"},
    {OpClass::ExpertActivation, kBf16, false, "hbm_copy"},       {OpClass::Activation, kBf16, false, "hbm_copy"},
    {OpClass::LocalCopy, kBf16, false, "hbm_copy"},
    {OpClass::Permute, kBf16, false, "permute"},                 {OpClass::Unpermute, kBf16, false, "unpermute_combine"},
    {OpClass::AttentionCore, kBf16, false, "attention_prefill"}, {OpClass::AttentionCore, kFp8, false, "attention_prefill_fp8"},
    {OpClass::AttentionCore, kBf16, true, "attention_decode"},   {OpClass::AttentionCore, kFp8, true, "attention_decode_fp8"},
    {OpClass::AttentionCoreBwd, kBf16, false, "attention_prefill_bwd"},
    {OpClass::AttentionCoreBwd, kFp8, false, "attention_prefill_bwd_fp8"},
};

const FamilyRow* row_for(const OpWork& w) {
  const bool decode = w.op == OpClass::AttentionCore && w.kv_len > 0;
  for (const FamilyRow& r : kFamilies)
    if (r.op == w.op && r.precision == w.precision && r.decode == decode) return &r;
  return nullptr;
}

// Ops whose size x is their bytes or tokens, not a shape along an efficiency curve.
bool priced_by_size(OpClass c) {
  switch (c) {
    case OpClass::Permute:
    case OpClass::Unpermute:
    case OpClass::ExpertActivation:
    case OpClass::Activation:
    case OpClass::LocalCopy:
    case OpClass::Norm:
    case OpClass::Rope:
    case OpClass::Residual:
    case OpClass::QuantAct:
    case OpClass::RouterTopk: return true;
    default: return false;
  }
}
}  // namespace

namespace {
// An op's named sizes as op_family.h reads them (only those given).
std::map<std::string, std::int64_t> op_sizes(const OpWork& w) {
  std::map<std::string, std::int64_t> s;
  auto put = [&](const char* k, std::int64_t v) {
    if (v > 0) s[k] = v;
  };
  const OpWork::Sizes& z = w.sizes;
  put("m", z.m);
  put("n", z.n);
  put("k", z.k);
  put("experts", std::max(1, w.experts));
  put("tokens", w.tokens);
  put("rows", w.rows);
  put("hidden", z.hidden);
  put("inter", z.inter);
  put("heads", z.heads);
  put("kv_heads", z.kv_heads);
  put("head_dim", z.head_dim);
  put("head_dim_qk", z.head_dim_qk);
  put("head_dim_v", z.head_dim_v);
  put("seq", w.seq_len);
  put("kv_len", w.kv_len);
  put("kv_lora", z.kv_lora);
  put("rope_dim", z.rope_dim);
  return s;
}
}  // namespace

const char* calibrated_family(const OpWork& w) {
  const FamilyRow* r = row_for(w);
  return r ? r->family : nullptr;
}

CalibratedCostModel::CalibratedCostModel(CalibrationProfile profile, std::string label, GpuSpec fallback)
    : profile_(std::move(profile)), label_(std::move(label)), nominal_(std::move(fallback)),
      per_op_(!profile_.family("rmsnorm").empty()) {
  for (const FamilyRow& r : kFamilies)
    for (const auto* c : profile_.family(r.family))
      if (c->shape != CurveShape::Efficiency && !priced_by_size(r.op))
        throw InputError("calibration profile " + label_ + ": curve " + r.family + " " + c->series_text() + " has shape " +
                         to_string(c->shape) + ", the simulator prices " + to_string(r.op) + " ops with efficiency curves");
}

CalibratedCostModel::Pick CalibratedCostModel::pick(const OpWork& w, bool describe) const {
  Pick p;
  const double tokens = static_cast<double>(std::max<std::int64_t>(w.tokens, 1));
  const double rows = static_cast<double>(w.rows > 0 ? w.rows : std::max<std::int64_t>(w.tokens, 1));
  double series_gap = 1.0;
  std::string series_detail;
  if (per_op_ && w.named) {
    FamilyQuery q = family_for_op(w.name.str(), to_string(w.precision), op_sizes(w), w.flops.count(), static_cast<double>(w.bytes.count()));
    // The router's GEMM alone only where its top-k was measured apart (else gate_topk has both).
    const bool apart = w.name.kind != OpKind::Router || !profile_.family("router_topk").empty();
    if (!q.family.empty() && !profile_.family(q.family).empty() && apart) {
      p.by_name = true;
      p.query = std::move(q);
      if (describe) {
        std::string used;
        time_family(p.query, w.flops.count(), static_cast<double>(w.bytes.count()), &used);
        p.why = "by op name " + w.name.str() + " (op_family.h): " + used;
        p.note = {name(), used + (p.query.calls > 1 ? fmt::format(" x {} calls", p.query.calls) : ""), 1.0, ""};
      }
      return p;
    }
  }
  const FamilyRow* row = row_for(w);
  const char* family = row ? row->family : nullptr;
  if (row != nullptr && row->within && !profile_.family(family).empty()) {
    p.within = true;
    if (describe) {
      p.why = fmt::format("measured within {} together with the op before it, which that family prices", family);
      p.note = {name(), fmt::format("within {}", family), 1.0, ""};
    }
    return p;
  }
  if (family == nullptr || profile_.family(family).empty()) {
    p.fallback = true;
    if (describe) {
      const std::string why = family == nullptr ? fmt::format("no measured family prices {} {}", to_string(w.precision), to_string(w.op))
                                                : fmt::format("the profile has no {}", family);
      p.why = why;
      p.note = {name(), nominal_.name() + " roofline (" + why + ")", 1.0, "", true};
    }
    return p;
  }
  auto single = [&] { p.lo = p.hi = profile_.family(family).front(); };
  switch (w.op) {
    case OpClass::ExpertMlp:
    case OpClass::SharedExpert: {
      auto curves = profile_.family(family);
      std::sort(curves.begin(), curves.end(), [](auto* a, auto* b) { return series_value(*a, "experts") < series_value(*b, "experts"); });
      const double e = w.op == OpClass::ExpertMlp ? std::max(1, w.experts) : 1.0;
      p.x = w.op == OpClass::ExpertMlp ? tokens / e : rows;
      p.x_name = w.op == OpClass::ExpertMlp ? "tokens_per_expert" : "tokens";
      const double e_lo = static_cast<double>(series_value(*curves.front(), "experts"));
      const double e_hi = static_cast<double>(series_value(*curves.back(), "experts"));
      if (e <= e_lo || e >= e_hi) {
        p.lo = p.hi = e <= e_lo ? curves.front() : curves.back();
        const double edge = e <= e_lo ? e_lo : e_hi;
        if (e != edge) {
          series_gap = std::max(e / edge, edge / e);
          series_detail = fmt::format("experts {} outside measured {}..{} ({:.2f}x)", e, e_lo, e_hi, series_gap);
        }
        if (describe) p.why = fmt::format("series experts={}", series_value(*p.lo, "experts"));
      } else {
        for (std::size_t i = 0; i + 1 < curves.size(); ++i) {
          const double a = static_cast<double>(series_value(*curves[i], "experts"));
          const double b = static_cast<double>(series_value(*curves[i + 1], "experts"));
          if (e >= a && e <= b) {
            p.lo = curves[i];
            p.hi = curves[i + 1];
            p.weight = (std::log(e) - std::log(a)) / (std::log(b) - std::log(a));
            break;
          }
        }
        if (describe) p.why = p.weight == 0 ? fmt::format("series experts={}", series_value(*p.lo, "experts"))
                              : fmt::format("ln efficiency interpolated in log(experts) between experts={} and {} (weight {:.2f})",
                                            series_value(*p.lo, "experts"), series_value(*p.hi, "experts"), p.weight);
        if (p.weight == 1.0) p.lo = p.hi, p.weight = 0;
      }
      if (w.op == OpClass::SharedExpert) p.why = "series experts=1 (one expert's MLP), x = its rows";
      break;
    }
    case OpClass::DenseMlp:
      single();
      p.x = rows;
      p.x_name = "tokens";
      if (describe) p.why = "the measured dense MLP";
      break;
    case OpClass::Gate:
      single();
      p.x = tokens;
      p.x_name = "tokens";
      if (describe) p.why = "the measured gate (logits GEMM + top-k)";
      break;
    case OpClass::AttentionProj:
    case OpClass::LmHead:
    case OpClass::MtpProjection:
    case OpClass::ExpertGemm: {
      const double weights = w.flops.count() / 2.0 / rows;  // parameters per row on this GPU
      const CalibratedCurve* best = nullptr;
      double best_d = std::numeric_limits<double>::infinity();
      for (const auto* c : profile_.family(family)) {
        const double nk = static_cast<double>(series_value(*c, "n") * series_value(*c, "k"));
        const double d = std::abs(std::log(nk / weights));
        if (d < best_d) best_d = d, best = c;
      }
      p.lo = p.hi = best;
      p.x = rows;
      p.x_name = std::string(1, 'm');  // not = "m": GCC 12 -Wrestrict false positive here
      if (describe) p.why = fmt::format("GEMM series with n*k nearest the op's {:.3g} M weights per row: {} ({:.3g} M)", weights * 1e-6,
                          best->series_text(),
                          static_cast<double>(series_value(*best, "n") * series_value(*best, "k")) * 1e-6);
      break;
    }
    default: {  // the classes priced_by_size() names but permute and unpermute: HBM-bound elementwise ops
      single();
      p.x = static_cast<double>(w.bytes.count()) / 2.0;  // a copy of x bytes reads and writes x
      p.x_name = "bytes";
      if (describe) p.why = "an HBM-bound elementwise kernel: the measured device copy of the same bytes read + written";
      break;
    }
    case OpClass::Permute:
    case OpClass::Unpermute: {
      single();
      p.x = tokens;
      p.x_name = "tokens";
      if (describe) p.why = fmt::format("the measured {} kernel", family);
      break;
    }
    case OpClass::AttentionCoreBwd:
      single();
      p.x = static_cast<double>(w.seq_len > 0 ? w.seq_len : w.tokens);
      p.x_name = "seq";
      if (describe) p.why = "causal prefill backward";
      break;
    case OpClass::AttentionCore:
      if (w.kv_len > 0) {
        single();
        p.x = static_cast<double>(w.bytes.count());
        p.x_name = "bytes";
        if (describe) p.why = fmt::format("decode of {} sequences at KV length {}: KV bytes read", w.tokens, w.kv_len);
      } else {
        single();
        p.x = static_cast<double>(w.seq_len > 0 ? w.seq_len : w.tokens);
        p.x_name = "seq";
        if (describe) p.why = "causal prefill (cuDNN SDPA reference; the project's own kernel is 7-12x slower)";
      }
      break;
  }
  if (!describe) return p;
  const double lo = std::min(p.lo->min_x(), p.hi->min_x());
  const double hi = std::max(p.lo->max_x(), p.hi->max_x());
  double gap = 1.0;
  std::string detail;
  if (p.x > hi) {
    gap = p.x / hi;
    detail = fmt::format("{} {:.10g} above measured {:.10g}..{:.10g} ({:.2f}x)", p.x_name, p.x, lo, hi, gap);
  } else if (p.x < lo) {
    gap = lo / p.x;
    detail = fmt::format("{} {:.10g} below measured {:.10g}..{:.10g} ({:.2f}x)", p.x_name, p.x, lo, hi, gap);
  }
  if (series_gap > gap) gap = series_gap;
  if (!series_detail.empty()) detail += (detail.empty() ? "" : "; ") + series_detail;
  p.note = {name(), fmt::format("{} {} by {}", p.lo->family, p.lo == p.hi ? p.lo->series_text() : p.lo->series_text() + ".." + p.hi->series_text(), p.x_name),
            gap, detail};
  return p;
}

namespace {
// A log-log (bytes-only) curve prices an op by the spline at x, scaled by the op's bytes over the
// measured shape's bytes at that x (along a series bytes grow in proportion to x): the same op as
// measured costs exactly the spline.
Time loglog_time(const CalibratedCurve& c, double x, double bytes) {
  const CurvePoint& ref = c.points.front();
  const double per_x = ref.x > 0 ? ref.bytes / ref.x : 0.0;
  const double scale = per_x > 0 && bytes > 0 ? bytes / (per_x * x) : 1.0;
  return Time::seconds(c.loglog.seconds(x) * scale);
}
}  // namespace

double CalibratedCostModel::ln_efficiency(const Pick& p) const {
  auto le = [&](const CalibratedCurve* c) { return c->log_efficiency.at(p.x); };
  return p.lo == p.hi ? le(p.lo) : (1.0 - p.weight) * le(p.lo) + p.weight * le(p.hi);
}

namespace {
// The kernel benchmark times every repetition between CUDA events, and an event between two
// back-to-back kernels costs ~2.7 us (kernels/README.md, "Timing": pipelined against per-repetition
// timing, copies and kernels alike). The expert GEMMs of a layer run back to back in one loop with
// no event between them (kernels/ep_layer.cu, Runner::experts), so each is priced at its measured
// time less that gap: at 128 rows per expert, 16 experts' 32 GEMMs measure 544 us inside the EP
// layer (ep2-h200x2-2026-11-29.json, 256 tokens, serial, 1 chunk) against 630 us as 32 measured rows
// of gemm_bf16, 544 us less the gaps.
constexpr double kBenchEventGapUs = 2.7;
}  // namespace

Time CalibratedCostModel::time(const OpWork& w) const {
  const Pick p = pick(w, false);
  if (p.by_name) return time_family(p.query, w.flops.count(), static_cast<double>(w.bytes.count()));
  if (p.within) return Time::zero();
  if (p.fallback) {
    const Time gap = profile_.kernel_gap > Time::zero() ? profile_.kernel_gap : nominal_.kernel_gap();
    return nominal_.time(w) + gap * static_cast<double>(w.kernels);
  }
  const double flops = w.flops.count(), bytes = static_cast<double>(w.bytes.count());
  if (p.lo->shape == CurveShape::LogLog) return loglog_time(*p.lo, p.x, bytes);
  const double base = p.lo == p.hi ? p.lo->baseline(flops, bytes).to_seconds()
                                   : (1.0 - p.weight) * p.lo->baseline(flops, bytes).to_seconds() +
                                         p.weight * p.hi->baseline(flops, bytes).to_seconds();
  const Time t = Time::seconds(base / std::exp(ln_efficiency(p)));
  if (w.op != OpClass::ExpertGemm) return t;
  return t - min(Time::us(kBenchEventGapUs), Time::seconds(t.to_seconds() / 2));
}

namespace {
// Distance of a curve's series from the query's: sum over the query keys the series has of
// |ln(query / series)| (keys the series lacks are ignored).
double series_distance(const CalibratedCurve& c, const std::map<std::string, double>& q) {
  double d = 0;
  for (const auto& [k, v] : q) {
    auto it = c.series.find(k);
    if (it == c.series.end() || v <= 0 || it->second <= 0) continue;
    d += std::abs(std::log(v / static_cast<double>(it->second)));
  }
  return d;
}
}  // namespace

Time CalibratedCostModel::time_family(const FamilyQuery& q, double flops, double bytes, std::string* why) const {
  Time t = time_one(q, q.flops >= 0 ? q.flops : flops, q.bytes >= 0 ? q.bytes : bytes, why);
  // The op's further kernels; a family the profile lacks is left out (as before it was measured).
  for (const FamilyQuery& part : q.more) {
    std::string used;
    if (profile_.family(part.family).empty()) {
      used = part.family + " not in the profile: left out";
    } else {
      t += time_one(part, part.flops, part.bytes, why ? &used : nullptr);
    }
    if (why) *why += " + " + used;
  }
  return t;
}

Time CalibratedCostModel::time_one(const FamilyQuery& q, double flops, double bytes, std::string* why) const {
  auto curves = profile_.family(q.family);
  if (curves.empty())
    throw InputError(fmt::format("calibration profile {} has no curve for {} (re-run epsim calibrate with its measurements)", label_, q.family));
  std::stable_sort(curves.begin(), curves.end(), [&](const CalibratedCurve* a, const CalibratedCurve* b) {
    return series_distance(*a, q.series) < series_distance(*b, q.series);
  });
  const int calls = std::max(1, q.calls);
  const double f = flops / calls, b = bytes / calls;
  auto one = [&](const CalibratedCurve& c) {
    if (c.shape == CurveShape::LogLog) return loglog_time(c, q.x, b).to_seconds();
    return c.baseline(f, b).to_seconds() / std::exp(c.log_efficiency.at(q.x));
  };
  const double d0 = series_distance(*curves[0], q.series);
  double t = one(*curves[0]);
  std::string used = curves[0]->series_text();
  if (d0 > 1e-9 && curves.size() > 1 && curves[1]->shape == curves[0]->shape) {
    const double d1 = series_distance(*curves[1], q.series);
    const double w0 = 1.0 / d0, w1 = 1.0 / std::max(d1, 1e-9);
    t = std::exp((w0 * std::log(t) + w1 * std::log(one(*curves[1]))) / (w0 + w1));
    used += fmt::format(" ({:.2f}) + {} ({:.2f})", w0 / (w0 + w1), curves[1]->series_text(), w1 / (w0 + w1));
  }
  if (why) *why = q.family + " " + used;
  // Each call's measured price carries one event overhead (per-repetition timing); the layer's
  // calls run back to back: take it off, at most half of the call.
  const double per_call = t - std::min(profile_.event_overhead.to_seconds(), t / 2);
  return Time::seconds(per_call * calls);
}

PriceNote CalibratedCostModel::note(const OpWork& w) const { return pick(w, true).note; }

std::string CalibratedCostModel::explain(const OpWork& w) const {
  const Pick p = pick(w, true);
  if (p.by_name) return fmt::format("  priced by {}: {}: {:.3f} us\n", name(), p.why, time(w).to_us());
  if (p.within) return fmt::format("  priced by {}: {}: 0 us here\n", name(), p.why);
  if (p.fallback)
    return fmt::format("  priced by {}: {}, so by the nominal roofline instead\n", name(), p.why) + nominal_.explain(w);
  const CalibratedCurve& c = *p.lo;
  const double flops = w.flops.count(), bytes = static_cast<double>(w.bytes.count());
  const Time tc = Time::seconds(c.peak.per_second() > 0 ? flops / c.peak.per_second() : 0.0);
  const Time tm = Time::seconds(bytes / c.bandwidth.bytes_per_second());
  const Time t = time(w);
  const bool loglog = c.shape == CurveShape::LogLog;
  const double eff = loglog ? c.baseline(flops, bytes) / t : std::exp(ln_efficiency(p));
  std::string s;
  s += fmt::format("  priced by {}: family {}, {}\n", name(), c.family, p.why);
  s += fmt::format("  curve: {} in log2({}), {} measured points; source {}\n",
                   loglog ? "ln(time) a cubic spline" : "ln(efficiency) piecewise linear", p.x_name, c.points.size(), c.source);
  s += fmt::format("  floor = max({:.4g} GFLOP / {:.1f} TFLOPS = {:.3f} us, {:.4g} MB / {:.0f} GB/s = {:.3f} us) = {:.3f} us ({} bound)\n",
                   flops * 1e-9, c.peak.to_tflops(), tc.to_us(), bytes * 1e-6, c.bandwidth.to_gb_per_s(), tm.to_us(),
                   max(tc, tm).to_us(), tc >= tm ? "compute" : "memory");
  const Time base = Time::seconds(t.to_seconds() * eff);
  s += fmt::format("  baseline = {:.3f} us + {:.4f} x floor = {:.3f} us (straight line fitted to the series{})\n",
                   c.latency.to_us(), c.slope, base.to_us(), p.lo == p.hi ? "" : "s, interpolated");
  auto segment = [&](const CalibratedCurve& cc) {
    if (loglog) {
      const auto g = cc.loglog.segment_at(p.x);
      s += fmt::format("  segment ({}): {} {:.6g}..{:.6g} of a log-log spline, chord {:.3f} us + {} / {:.4g} per s; scaled by bytes to the measured shape\n",
                       cc.series_text(), p.x_name, g.x0, g.x1, g.latency * 1e6, p.x_name, g.rate);
      return;
    }
    const auto& xs = cc.log_efficiency.xs();
    const auto& vs = cc.log_efficiency.values();
    if (xs.size() < 2 || p.x <= xs.front() || p.x >= xs.back()) {
      const bool below = p.x <= xs.front();
      s += fmt::format("  segment ({}): beyond the measured {:.6g}..{:.6g}: flat at the {} knot, ln efficiency {:+.4f}\n",
                       cc.series_text(), xs.front(), xs.back(), below ? "first" : "last", below ? vs.front() : vs.back());
      return;
    }
    const std::size_t j = static_cast<std::size_t>(std::upper_bound(xs.begin(), xs.end(), p.x) - xs.begin());
    s += fmt::format("  segment ({}): {} {:.6g}..{:.6g}, ln efficiency {:+.4f} -> {:+.4f}, linear in log2({})\n",
                     cc.series_text(), p.x_name, xs[j - 1], xs[j], vs[j - 1], vs[j], p.x_name);
  };
  segment(c);
  if (p.hi != p.lo) segment(*p.hi);
  s += fmt::format("  {} = {:.6g}: efficiency (baseline / time) {:.3f} -> time {:.3f} us ({:.1f} TFLOPS, {:.0f} GB/s achieved)\n",
                   p.x_name, p.x, eff, t.to_us(), flops / t.to_seconds() * 1e-12, bytes / t.to_seconds() * 1e-9);
  if (p.note.extrapolated()) s += fmt::format("  EXTRAPOLATED: {}\n", p.note.detail);
  auto neighbours = [&](const CalibratedCurve& cc) {
    std::vector<const CurvePoint*> pts;
    for (const auto& pt : cc.points) pts.push_back(&pt);
    std::size_t i = 0;
    while (i < pts.size() && pts[i]->x < p.x) ++i;
    const std::size_t from = i >= 2 ? i - 2 : 0, to = std::min(pts.size(), i + 2);
    s += fmt::format("  measured neighbours ({} {}):\n  {:>14} {:>12} {:>12} {:>10} {:>12}   shape\n", cc.family, cc.series_text(),
                     p.x_name, "measured us", "baseline us", "efficiency", "curve us");
    for (std::size_t k = from; k < to; ++k) {
      const CurvePoint& pt = *pts[k];
      const Time f = cc.baseline(pt.flops, pt.bytes);
      s += fmt::format("  {:>14.6g} {:>12.3f} {:>12.3f} {:>10.3f} {:>12.3f}   {}\n", pt.x, pt.measured.to_us(), f.to_us(),
                       f / pt.measured, cc.time(pt.flops, pt.bytes, pt.x).to_us(), pt.shape);
    }
  };
  neighbours(c);
  if (p.hi != p.lo) neighbours(*p.hi);
  return s;
}

}  // namespace epsim
