#include "models/loglog_spline.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

namespace epsim {

namespace {

// Natural cubic spline through (u_i, y_i): second derivatives, zero at both ends.
std::vector<double> second_derivatives(const std::vector<double>& u, const std::vector<double>& y) {
  const std::size_t n = u.size();
  std::vector<double> m(n, 0.0);
  if (n < 3) return m;
  // Rows i = 1..n-2: h[i-1] m[i-1] + 2 (h[i-1] + h[i]) m[i] + h[i] m[i+1] = 6 (slope[i] - slope[i-1]).
  std::vector<double> c(n, 0.0), d(n, 0.0);
  for (std::size_t i = 1; i + 1 < n; ++i) {
    const double h0 = u[i] - u[i - 1], h1 = u[i + 1] - u[i];
    const double rhs = 6.0 * ((y[i + 1] - y[i]) / h1 - (y[i] - y[i - 1]) / h0);
    const double diag = 2.0 * (h0 + h1) - h0 * c[i - 1];
    c[i] = h1 / diag;
    d[i] = (rhs - h0 * d[i - 1]) / diag;
  }
  for (std::size_t i = n - 2; i >= 1; --i) m[i] = d[i] - c[i] * m[i + 1];
  return m;
}

}  // namespace

LogLogSpline::LogLogSpline(std::vector<double> xs, std::vector<double> ln_seconds)
    : xs_(std::move(xs)), ln_t_(std::move(ln_seconds)) {
  if (xs_.empty() || xs_.size() != ln_t_.size()) throw std::invalid_argument("LogLogSpline: knots and values differ");
  if (!(xs_.front() > 0)) throw std::invalid_argument("LogLogSpline: x must be > 0");
  for (std::size_t i = 1; i < xs_.size(); ++i)
    if (!(xs_[i] > xs_[i - 1])) throw std::invalid_argument("LogLogSpline: knots must ascend");
  std::vector<double> u(xs_.size());
  for (std::size_t i = 0; i < xs_.size(); ++i) u[i] = std::log2(xs_[i]);
  second_ = second_derivatives(u, ln_t_);
}

LogLogSpline LogLogSpline::fit(const std::vector<double>& xs, const std::vector<double>& seconds) {
  if (xs.empty() || xs.size() != seconds.size())
    throw std::invalid_argument("LogLogSpline::fit: need as many x as times, at least one");
  std::vector<std::size_t> order(xs.size());
  for (std::size_t i = 0; i < order.size(); ++i) {
    if (!(xs[i] > 0) || !(seconds[i] > 0)) throw std::invalid_argument("LogLogSpline::fit: x and times must be > 0");
    order[i] = i;
  }
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return xs[a] < xs[b]; });
  std::vector<double> knots, values;
  for (std::size_t i = 0; i < order.size();) {  // repeats at one x: the mean of their ln t
    std::size_t j = i;
    double sum = 0;
    while (j < order.size() && xs[order[j]] == xs[order[i]]) sum += std::log(seconds[order[j++]]);
    knots.push_back(xs[order[i]]);
    values.push_back(sum / static_cast<double>(j - i));
    i = j;
  }
  return LogLogSpline(std::move(knots), std::move(values));
}

double LogLogSpline::seconds(double x) const {
  if (xs_.empty()) throw std::logic_error("LogLogSpline::seconds on an empty curve");
  if (x <= xs_.front() || xs_.size() == 1) return std::exp(ln_t_.front());
  if (x >= xs_.back()) {
    const Segment s = segment_at(x);
    return s.rate > 0 ? s.latency + x / s.rate : std::exp(ln_t_.back());  // a falling last segment: flat
  }
  const std::size_t j = static_cast<std::size_t>(std::upper_bound(xs_.begin(), xs_.end(), x) - xs_.begin());
  const std::size_t i = j - 1;
  const double u0 = std::log2(xs_[i]), u1 = std::log2(xs_[j]), h = u1 - u0;
  const double a = (u1 - std::log2(x)) / h, b = 1.0 - a;
  const double y = a * ln_t_[i] + b * ln_t_[j] + ((a * a * a - a) * second_[i] + (b * b * b - b) * second_[j]) * h * h / 6.0;
  return std::exp(y);
}

LogLogSpline::Segment LogLogSpline::segment(std::size_t i) const {
  Segment s;
  s.x0 = xs_[i];
  s.x1 = xs_[i + 1];
  s.t0 = std::exp(ln_t_[i]);
  s.t1 = std::exp(ln_t_[i + 1]);
  const double per_x = (s.t1 - s.t0) / (s.x1 - s.x0);  // seconds per unit of x
  s.rate = per_x != 0 ? 1.0 / per_x : std::numeric_limits<double>::infinity();
  s.latency = s.t0 - per_x * s.x0;
  return s;
}

std::vector<LogLogSpline::Segment> LogLogSpline::segments() const {
  std::vector<Segment> out;
  for (std::size_t i = 0; i + 1 < xs_.size(); ++i) out.push_back(segment(i));
  return out;
}

LogLogSpline::Segment LogLogSpline::segment_at(double x) const {
  if (xs_.size() < 2) {
    Segment s;
    s.x0 = s.x1 = xs_.front();
    s.t0 = s.t1 = s.latency = std::exp(ln_t_.front());
    s.rate = std::numeric_limits<double>::infinity();
    return s;
  }
  // the first segment whose end is at or above x; beyond the last knot, the last segment
  const auto end = static_cast<std::size_t>(std::lower_bound(xs_.begin() + 1, xs_.end(), x) - xs_.begin());
  return segment(std::min(end, xs_.size() - 1) - 1);
}

}  // namespace epsim
