// Noisy kernels (faults.kernel_jitter): a compute task's time is its priced time times a lognormal
// factor of mean 1 and coefficient of variation cv (sigma^2 = ln(1 + cv^2), mu = -sigma^2 / 2),
// drawn independently per task from derive_seed(seed, {step, task}) with our own Box-Muller
// transform, so a run is deterministic and a task's draw does not depend on any other.
//
// The CV is given (lognormal) or measured: kernels/results' layer files time every op of a layer
// over n repetitions and keep its median, min and max. The spread of one op in one case is
// sigma = (max - min) / d2(n), d2(n) the expected range of n standard normal draws (the range
// estimator of quality control; d2(20) = 3.735), and its CV sigma / median. A task that runs several
// ops back to back has, per case, CV = sqrt(sum sigma_i^2) / sum median_i over the ops the case
// holds (independent ops); the task's CV is the median over the cases that hold any of them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "models/layer_measurement.h"

namespace epsim {

class KernelJitter {
 public:
  KernelJitter() = default;  // no jitter: every factor is 1
  static KernelJitter lognormal(double cv);
  // CVs from `file`'s ops (those with a min and max); `fallback_cv` for ops the file lacks.
  static KernelJitter measured(const MeasuredLayerFile& file, double fallback_cv);

  bool enabled() const { return enabled_; }
  // The CV of a task running `ops` (common_names.md op names) back to back; the given CV (lognormal)
  // or the fallback (ops the file lacks).
  double cv(const std::vector<std::string>& ops) const;
  // Whether the spread file times any of `ops`.
  bool measures(const std::vector<std::string>& ops) const;
  // The factor of task `task` in step `step`: lognormal of mean 1 and coefficient of variation cv.
  static double factor(std::uint64_t seed, std::int64_t step, std::int64_t task, double cv);

 private:
  struct Spread {
    std::string op;
    double median_us = 0, sigma_us = 0;
  };
  bool enabled_ = false;
  double cv_ = 0;                            // lognormal; measured: the fallback
  std::vector<std::vector<Spread>> cases_;   // measured: per case, its ops' spreads
};

// The expected range of n independent standard normal draws (n >= 2).
double normal_range_d2(int n);

}  // namespace epsim
