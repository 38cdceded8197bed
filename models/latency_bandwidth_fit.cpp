#include "models/latency_bandwidth_fit.h"

#include <algorithm>
#include <stdexcept>

#include <Eigen/Dense>

namespace epsim {

LatencyBandwidthFit LatencyBandwidthFit::fit(const std::vector<double>& bytes, const std::vector<Time>& times) {
  if (bytes.size() < 2 || bytes.size() != times.size())
    throw std::invalid_argument("latency/bandwidth fit: need at least 2 (bytes, time) points");
  const Eigen::Index n = static_cast<Eigen::Index>(bytes.size());
  Eigen::MatrixXd a(n, 2);
  Eigen::VectorXd b = Eigen::VectorXd::Ones(n);
  for (Eigen::Index i = 0; i < n; ++i) {
    const double t = times[static_cast<std::size_t>(i)].to_seconds();
    if (!(t > 0)) throw std::invalid_argument("latency/bandwidth fit: times must be > 0");
    a(i, 0) = 1.0 / t;                                   // latency (s)
    a(i, 1) = bytes[static_cast<std::size_t>(i)] / t;    // seconds per byte
  }
  // The two columns differ by ~10 orders of magnitude (1/s against bytes/s): solve on columns
  // scaled to unit norm, so the QR's pivoting and rank test see comparable columns.
  Eigen::Vector2d scale;
  for (Eigen::Index j = 0; j < 2; ++j) {
    scale(j) = a.col(j).norm();
    if (!(scale(j) > 0)) throw std::invalid_argument("latency/bandwidth fit: a column is zero (all bytes 0?)");
    a.col(j) /= scale(j);
  }
  const Eigen::Vector2d v = a.colPivHouseholderQr().solve(b).cwiseQuotient(scale);
  if (!(v(1) > 0)) throw std::invalid_argument("latency/bandwidth fit: no positive bandwidth");
  return {Time::seconds(std::max(0.0, v(0))), Bandwidth::bytes_per_s(1.0 / v(1))};
}

}  // namespace epsim
