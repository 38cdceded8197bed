// A curve y(x) that is piecewise linear in log2(x), fitted to points by least squares.
//
// Knots sit at the distinct x of the fitted points; the values at the knots minimise
//   sum_i (y(x_i) - y_i)^2 + smoothing * sum_j (second difference of y at knot j)^2
// (a linear least-squares problem solved with Eigen's column-pivoting QR), so repeated or noisy
// points at one x are averaged and a lone outlier is pulled towards its neighbours. Between knots
// the curve is linear in log2(x); outside the knots it is flat (callers flag extrapolation).
#pragma once

#include <vector>

namespace epsim {

class LogCurve {
 public:
  LogCurve() = default;
  LogCurve(std::vector<double> xs, std::vector<double> values);  // knots (ascending x > 0) and values

  // Throws std::invalid_argument when xs and ys differ in size, are empty or hold x <= 0.
  static LogCurve fit(const std::vector<double>& xs, const std::vector<double>& ys, double smoothing);

  double at(double x) const;
  const std::vector<double>& xs() const { return xs_; }
  const std::vector<double>& values() const { return values_; }
  double min_x() const { return xs_.front(); }
  double max_x() const { return xs_.back(); }

 private:
  std::vector<double> xs_;
  std::vector<double> values_;
};

}  // namespace epsim
