// time = latency + bytes / bandwidth, fitted by least squares on relative error (each point
// weighted by 1 / its time, so a 5 us message counts as much as a 5 ms one).
#pragma once

#include <vector>

#include "models/units.h"

namespace epsim {

struct LatencyBandwidthFit {
  Time latency;
  Bandwidth bandwidth;

  Time at(double bytes) const { return latency + Time::seconds(bytes / bandwidth.bytes_per_second()); }
  // Throws std::invalid_argument with fewer than 2 points or a fit without a positive bandwidth.
  static LatencyBandwidthFit fit(const std::vector<double>& bytes, const std::vector<Time>& times);
};

}  // namespace epsim
