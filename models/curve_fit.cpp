#include "models/curve_fit.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include <Eigen/Dense>

namespace epsim {

LogCurve::LogCurve(std::vector<double> xs, std::vector<double> values) : xs_(std::move(xs)), values_(std::move(values)) {
  if (xs_.empty() || xs_.size() != values_.size()) throw std::invalid_argument("LogCurve: knots and values differ");
  for (std::size_t i = 1; i < xs_.size(); ++i)
    if (!(xs_[i] > xs_[i - 1])) throw std::invalid_argument("LogCurve: knots must ascend");
}

LogCurve LogCurve::fit(const std::vector<double>& xs, const std::vector<double>& ys, double smoothing) {
  if (xs.empty() || xs.size() != ys.size()) throw std::invalid_argument("LogCurve::fit: need as many x as y, at least one");
  for (double x : xs)
    if (!(x > 0)) throw std::invalid_argument("LogCurve::fit: x must be > 0");
  std::vector<double> knots = xs;
  std::sort(knots.begin(), knots.end());
  knots.erase(std::unique(knots.begin(), knots.end()), knots.end());
  const Eigen::Index m = static_cast<Eigen::Index>(knots.size());
  std::vector<double> lk(knots.size());
  for (std::size_t j = 0; j < knots.size(); ++j) lk[j] = std::log2(knots[j]);

  const Eigen::Index n = static_cast<Eigen::Index>(xs.size());
  const Eigen::Index penalties = m >= 3 ? m - 2 : 0;
  Eigen::MatrixXd a = Eigen::MatrixXd::Zero(n + penalties, m);
  Eigen::VectorXd b = Eigen::VectorXd::Zero(n + penalties);
  for (Eigen::Index i = 0; i < n; ++i) {
    const double lx = std::log2(xs[static_cast<std::size_t>(i)]);
    const auto it = std::lower_bound(lk.begin(), lk.end(), lx - 1e-12);
    const Eigen::Index j = it - lk.begin();
    if (j < m && std::abs(lk[static_cast<std::size_t>(j)] - lx) < 1e-9) {
      a(i, j) = 1.0;
    } else {  // cannot happen (knots are the x), kept for safety: hat weights between j-1 and j
      const double w = (lx - lk[static_cast<std::size_t>(j - 1)]) / (lk[static_cast<std::size_t>(j)] - lk[static_cast<std::size_t>(j - 1)]);
      a(i, j - 1) = 1.0 - w;
      a(i, j) = w;
    }
    b(i) = ys[static_cast<std::size_t>(i)];
  }
  // Second differences in log2(x), scaled to the local spacing (zero on straight lines).
  const double s = std::sqrt(std::max(0.0, smoothing));
  for (Eigen::Index j = 1; j + 1 < m; ++j) {
    const double h0 = lk[static_cast<std::size_t>(j)] - lk[static_cast<std::size_t>(j - 1)];
    const double h1 = lk[static_cast<std::size_t>(j + 1)] - lk[static_cast<std::size_t>(j)];
    const Eigen::Index r = n + j - 1;
    a(r, j - 1) = s / h0;
    a(r, j) = -s * (1.0 / h0 + 1.0 / h1);
    a(r, j + 1) = s / h1;
  }
  const Eigen::VectorXd v = a.colPivHouseholderQr().solve(b);
  std::vector<double> values(static_cast<std::size_t>(m));
  for (Eigen::Index j = 0; j < m; ++j) values[static_cast<std::size_t>(j)] = v(j);
  return LogCurve(std::move(knots), std::move(values));
}

double LogCurve::at(double x) const {
  if (xs_.empty()) throw std::logic_error("LogCurve::at on an empty curve");
  if (x <= xs_.front()) return values_.front();
  if (x >= xs_.back()) return values_.back();
  const auto it = std::upper_bound(xs_.begin(), xs_.end(), x);
  const std::size_t j = static_cast<std::size_t>(it - xs_.begin());
  const double l0 = std::log2(xs_[j - 1]), l1 = std::log2(xs_[j]);
  const double w = (std::log2(x) - l0) / (l1 - l0);
  return values_[j - 1] * (1.0 - w) + values_[j] * w;
}

}  // namespace epsim
