#include "models/kernel_jitter.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "models/errors.h"
#include "models/random_stream.h"

namespace epsim {

double normal_range_d2(int n) {
  if (n < 2) throw SimulationError("normal_range_d2: needs n >= 2");
  // d2(n) = integral over x of 1 - Phi(x)^n - (1 - Phi(x))^n (the midpoint rule; the integrand is
  // below 1e-20 beyond |x| = 10 for any n we meet).
  const double h = 1e-3;
  double sum = 0;
  for (double x = -10 + h / 2; x < 10; x += h) {
    const double phi = 0.5 * std::erfc(-x / std::numbers::sqrt2);
    sum += 1 - std::pow(phi, n) - std::pow(1 - phi, n);
  }
  return sum * h;
}

KernelJitter KernelJitter::lognormal(double cv) {
  KernelJitter j;
  j.enabled_ = cv > 0;
  j.cv_ = cv;
  return j;
}

KernelJitter KernelJitter::measured(const MeasuredLayerFile& file, double fallback_cv) {
  KernelJitter j;
  j.enabled_ = true;
  j.cv_ = fallback_cv;
  for (const MeasuredLayerCase& c : file.cases) {
    if (c.repetitions < 2) continue;
    const double d2 = normal_range_d2(c.repetitions);
    std::vector<Spread> ops;
    for (const MeasuredLayerOp& op : c.ops)
      if (op.slowest > op.fastest && op.measured > Time::zero())
        ops.push_back({op.name, op.measured.to_us(), (op.slowest - op.fastest).to_us() / d2});
    if (!ops.empty()) j.cases_.push_back(std::move(ops));
  }
  if (j.cases_.empty())
    throw InputError(file.path + ": no op carries a repeat spread (us_min, us_max over layer_us.iters >= 2 repetitions)");
  return j;
}

double KernelJitter::cv(const std::vector<std::string>& ops) const {
  if (!enabled_) return 0;
  if (cases_.empty()) return cv_;
  std::vector<double> per_case;
  for (const auto& c : cases_) {
    double mean = 0, var = 0;
    for (const Spread& s : c)
      if (std::find(ops.begin(), ops.end(), s.op) != ops.end()) {
        mean += s.median_us;
        var += s.sigma_us * s.sigma_us;
      }
    if (mean > 0) per_case.push_back(std::sqrt(var) / mean);
  }
  if (per_case.empty()) return cv_;
  std::sort(per_case.begin(), per_case.end());
  const std::size_t n = per_case.size();
  return n % 2 == 1 ? per_case[n / 2] : 0.5 * (per_case[n / 2 - 1] + per_case[n / 2]);
}

bool KernelJitter::measures(const std::vector<std::string>& ops) const {
  for (const auto& c : cases_)
    for (const Spread& s : c)
      if (std::find(ops.begin(), ops.end(), s.op) != ops.end()) return true;
  return false;
}

double KernelJitter::factor(std::uint64_t seed, std::int64_t step, std::int64_t task, double cv) {
  if (cv <= 0) return 1.0;
  auto uniform = [&](std::int64_t k) {  // in (0, 1)
    return (static_cast<double>(derive_seed(seed, {step, task, k}) >> 11) + 0.5) * 0x1.0p-53;
  };
  const double z = std::sqrt(-2 * std::log(uniform(0))) * std::cos(2 * std::numbers::pi * uniform(1));
  const double s2 = std::log1p(cv * cv);
  return std::exp(-s2 / 2 + std::sqrt(s2) * z);
}

}  // namespace epsim
