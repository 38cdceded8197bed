#include "models/curve_explain.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

namespace epsim {

namespace {

// 1048576 -> "1 MiB" for byte sizes; plain numbers otherwise.
std::string size_text(double x, bool bytes) {
  if (!bytes) return fmt::format("{:.6g}", x);
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  double v = x;
  while (v >= 1024 && u < 4) v /= 1024, ++u;
  return fmt::format("{:.4g} {}", v, units[u]);
}

}  // namespace

std::string explain_curve(const CalibratedCurve& c, double x) {
  const bool bytes = c.x_key == "bytes";
  std::string s;
  s += fmt::format("  curve: family {}, series {}, x = {}, shape {}, {} measured points; source {}\n", c.family,
                   c.series_text(), c.x_key, to_string(c.shape), c.points.size(), c.source);
  const bool outside = x < c.min_x() || x > c.max_x();
  if (c.shape == CurveShape::LogLog) {
    s += "  ln(time) is a natural cubic spline in log2(x) through the measured sizes; each interval as latency + x / rate (its chord):\n";
    s += fmt::format("  {:>24} {:>12} {:>12} {:>12} {:>14}\n", "segment", "us at ends", "", "latency us",
                     bytes ? "rate GB/s" : "rate x/us");
    const auto segs = c.loglog.segments();
    const LogLogSpline::Segment at = c.loglog.segment_at(x);
    for (const auto& g : segs) {
      const std::string range = size_text(g.x0, bytes) + " .. " + size_text(g.x1, bytes);
      const double rate = std::isfinite(g.rate) ? (bytes ? g.rate * 1e-9 : g.rate * 1e-6) : INFINITY;
      s += fmt::format("  {:>24} {:>12.3f} {:>12.3f} {:>12.3f} {:>14.4g}{}\n", range, g.t0 * 1e6, g.t1 * 1e6, g.latency * 1e6,
                       rate, g.x0 == at.x0 && g.x1 == at.x1 ? "   <- x" : "");
    }
    if (x > c.max_x()) s += "  above the largest measured size the last segment's latency and rate continue\n";
    if (x < c.min_x()) s += "  below the smallest measured size the time stays at the smallest size's\n";
  } else {
    s += fmt::format("  baseline = {:.3f} us + {:.4f} x max(FLOPs / {:.1f} TFLOPS, bytes / {:.0f} GB/s); ln(baseline / time) "
                     "piecewise linear in log2(x):\n",
                     c.latency.to_us(), c.slope, c.peak.to_tflops(), c.bandwidth.to_gb_per_s());
    const auto& xs = c.log_efficiency.xs();
    const auto& vs = c.log_efficiency.values();
    s += fmt::format("  {:>24} {:>24}\n", "segment", "ln efficiency at ends");
    for (std::size_t j = 0; j + 1 < xs.size(); ++j) {
      const bool here = (x >= xs[j] && x < xs[j + 1]) || (j + 2 == xs.size() && x >= xs[j + 1]) || (j == 0 && x < xs[0]);
      s += fmt::format("  {:>24} {:>11.4f} {:>12.4f}{}\n", size_text(xs[j], bytes) + " .. " + size_text(xs[j + 1], bytes),
                       vs[j], vs[j + 1], here ? "   <- x" : "");
    }
    if (outside) s += "  outside the measured sizes the efficiency of the nearest end is used\n";
  }
  // The measured point nearest x in log, to price x with the curve at that shape's FLOPs and bytes.
  const CurvePoint* near = &c.points.front();
  for (const auto& p : c.points)
    if (std::abs(std::log(p.x / x)) < std::abs(std::log(near->x / x))) near = &p;
  if (c.shape == CurveShape::LogLog) {
    const Time t = c.time(near->flops, near->bytes, x);
    s += fmt::format("  at x = {}: {:.3f} us{}{}\n", size_text(x, bytes), t.to_us(),
                     bytes ? fmt::format(" ({:.1f} GB/s)", x / t.to_seconds() * 1e-9) : "",
                     outside ? fmt::format(" (EXTRAPOLATED: measured {} .. {})", size_text(c.min_x(), bytes), size_text(c.max_x(), bytes)) : "");
  } else {
    s += fmt::format("  at x = {}: efficiency {:.3f}{} (the time also needs the op's FLOPs and bytes: `epsim explain --op`)\n",
                     size_text(x, bytes), c.efficiency(x),
                     outside ? fmt::format(" (EXTRAPOLATED: measured {} .. {})", size_text(c.min_x(), bytes), size_text(c.max_x(), bytes)) : "");
  }
  s += fmt::format("  measured points:\n  {:>14} {:>12} {:>12}   shape\n", c.x_key, "measured us", "curve us");
  for (const auto& p : c.points)
    s += fmt::format("  {:>14.6g} {:>12.3f} {:>12.3f}   {}\n", p.x, p.measured.to_us(), c.time(p.flops, p.bytes, p.x).to_us(), p.shape);
  return s;
}

}  // namespace epsim
