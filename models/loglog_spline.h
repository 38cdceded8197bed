// A time curve t(x) whose logarithm is a natural cubic spline in log2(x), through measured points.
//
// For kernels priced by bytes alone (copies, NCCL all-to-all, P2P, permute) the time is smooth in
// the size but no single latency + bandwidth line follows it: NCCL changes protocol between 4 and
// 64 MiB, copies reach their bandwidth only above ~100 MB. The spline passes through every
// measured size (knots: the distinct x; repeats at one x: the mean of their ln t), with zero
// second derivative at both ends, so between two measured sizes it follows the curvature of the
// neighbours instead of the straight chord. Each interval between knots is also a segment
// t = latency + x / rate: the chord through its two ends (segments(); `epsim explain` and
// `epsim calibrate -v` print them). Outside the knots: below, the smallest size's time (a latency
// floor); above, the last segment continues (its latency and rate); callers flag extrapolation.
//
// The spline's second derivatives solve a tridiagonal system (Thomas algorithm, no pivoting
// needed: it is strictly diagonally dominant), so the fit has no rank decision and no sum whose
// order depends on vectorisation.
#pragma once

#include <vector>

namespace epsim {

class LogLogSpline {
 public:
  struct Segment {
    double x0 = 0, x1 = 0;   // the measured sizes at its ends
    double t0 = 0, t1 = 0;   // the curve's times there (s)
    double latency = 0;      // chord t = latency + x / rate (s)
    double rate = 0;         // x per second (bytes/s when x is bytes); infinite when t1 == t0
  };

  LogLogSpline() = default;
  // Knots (ascending x > 0) and ln(seconds) there; the second derivatives are recomputed.
  LogLogSpline(std::vector<double> xs, std::vector<double> ln_seconds);

  // Throws std::invalid_argument when xs and seconds differ in size, are empty, or hold a value <= 0.
  static LogLogSpline fit(const std::vector<double>& xs, const std::vector<double>& seconds);

  double seconds(double x) const;
  std::vector<Segment> segments() const;
  // The segment that prices x (the first below the smallest knot, the last above the largest).
  Segment segment_at(double x) const;
  const std::vector<double>& xs() const { return xs_; }
  const std::vector<double>& ln_seconds() const { return ln_t_; }
  double min_x() const { return xs_.front(); }
  double max_x() const { return xs_.back(); }

 private:
  Segment segment(std::size_t i) const;  // between knots i and i + 1
  std::vector<double> xs_;
  std::vector<double> ln_t_;
  std::vector<double> second_;  // d2 ln t / d (log2 x)^2 at the knots
};

}  // namespace epsim
