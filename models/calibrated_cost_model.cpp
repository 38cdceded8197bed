#include "models/calibrated_cost_model.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include <fmt/format.h>

#include "models/errors.h"

namespace epsim {

namespace {
const char* const kRequired[] = {"expert_mlp_bf16", "dense_mlp_bf16", "gate_topk", "gemm_bf16", "attention_prefill",
                                 "attention_decode"};

std::int64_t series_value(const CalibratedCurve& c, const std::string& key) {
  auto it = c.series.find(key);
  return it == c.series.end() ? 1 : it->second;
}
}  // namespace

CalibratedCostModel::CalibratedCostModel(CalibrationProfile profile, std::string label)
    : profile_(std::move(profile)), label_(std::move(label)) {
  for (const char* f : kRequired) {
    if (profile_.family(f).empty())
      throw InputError("calibration profile " + label_ + " has no curve for " + f + " (re-run epsim calibrate with its measurements)");
    for (const auto* c : profile_.family(f))
      if (c->shape != CurveShape::Efficiency)
        throw InputError("calibration profile " + label_ + ": curve " + f + " " + c->series_text() + " has shape " +
                         to_string(c->shape) + ", the simulator prices ops with efficiency curves");
  }
}

CalibratedCostModel::Pick CalibratedCostModel::pick(const OpWork& w, bool describe) const {
  Pick p;
  const double tokens = static_cast<double>(std::max<std::int64_t>(w.tokens, 1));
  const double rows = static_cast<double>(w.rows > 0 ? w.rows : std::max<std::int64_t>(w.tokens, 1));
  double series_gap = 1.0;
  std::string series_detail;
  // The family's one curve (families the constructor does not require are checked here).
  auto single = [&](const std::string& family) {
    const auto curves = profile_.family(family);
    if (curves.empty())
      throw InputError(fmt::format("calibration profile {} has no curve for {} (re-run epsim calibrate with its measurements)", label_, family));
    p.lo = p.hi = curves.front();
  };
  switch (w.op) {
    case OpClass::ExpertMlp:
    case OpClass::SharedExpert: {
      auto curves = profile_.family("expert_mlp_bf16");
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
      single("dense_mlp_bf16");
      p.x = rows;
      p.x_name = "tokens";
      if (describe) p.why = "the measured dense MLP";
      break;
    case OpClass::Gate:
      single("gate_topk");
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
      for (const auto* c : profile_.family("gemm_bf16")) {
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
    case OpClass::ExpertActivation:
    case OpClass::LocalCopy: {
      single("hbm_copy");
      p.x = static_cast<double>(w.bytes.count()) / 2.0;  // a copy of x bytes reads and writes x
      p.x_name = "bytes";
      if (describe) p.why = "an HBM-bound elementwise kernel: the measured device copy of the same bytes read + written";
      break;
    }
    case OpClass::Permute:
    case OpClass::Unpermute: {
      const char* family = w.op == OpClass::Permute ? "permute" : "unpermute_combine";
      single(family);
      p.x = tokens;
      p.x_name = "tokens";
      if (describe) p.why = fmt::format("the measured {} kernel", family);
      break;
    }
    case OpClass::AttentionCore:
      if (w.kv_len > 0) {
        single("attention_decode");
        p.x = static_cast<double>(w.bytes.count());
        p.x_name = "bytes";
        if (describe) p.why = fmt::format("decode of {} sequences at KV length {}: KV bytes read", w.tokens, w.kv_len);
      } else {
        single("attention_prefill");
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
