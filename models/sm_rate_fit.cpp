#include "models/sm_rate_fit.h"

#include <algorithm>
#include <cmath>
#include <map>

namespace epsim {

int SmRateFit::knee_sms() const {
  return per_sm.bytes_per_second() > 0 ? static_cast<int>(std::ceil(ceiling.bytes_per_second() / per_sm.bytes_per_second())) : 0;
}

SmRateFit fit_sm_rate(const std::vector<BenchFile>& files) {
  constexpr double kMinBytes = 64.0 * 1024 * 1024;
  // SMs -> (bytes, best GB/s at that size): the largest size wins, then the fastest row.
  std::map<int, std::pair<double, double>> best;
  for (const auto& f : files)
    for (const auto& r : f.rows) {
      if (!r.passed || (r.kernel != "peer_dispatch" && r.kernel != "peer_dispatch_sms") || r.variant != "own_0to1") continue;
      if (!r.shape.count("blocks") || r.bytes < kMinBytes || r.median <= Time::zero()) continue;
      const int sms = static_cast<int>(r.shape.count("sms") ? r.shape.at("sms") : r.shape.at("blocks"));
      // One CTA per SM: more CTAs than SMs (2 per SM) say nothing about the SM count.
      if (f.sm_count > 0 && r.shape.at("blocks") > f.sm_count) continue;
      const double gbps = r.bytes / r.median.to_seconds() * 1e-9;
      auto& b = best[sms];
      if (r.bytes > b.first || (r.bytes == b.first && gbps > b.second)) b = {r.bytes, gbps};
    }
  SmRateFit fit;
  if (best.size() < 2) return fit;
  double ceiling = 0;
  for (const auto& [sms, b] : best) {
    fit.points.emplace_back(sms, b.second);
    ceiling = std::max(ceiling, b.second);
  }
  std::vector<double> per;
  for (const auto& [sms, gbps] : fit.points)
    if (gbps < 0.95 * ceiling) per.push_back(gbps / sms);
  double r = 0;
  if (per.empty()) {
    r = ceiling / fit.points.front().first;
  } else {
    std::sort(per.begin(), per.end());
    const std::size_t n = per.size();
    r = n % 2 ? per[n / 2] : (per[n / 2 - 1] + per[n / 2]) / 2;
  }
  fit.per_sm = Bandwidth::gb_per_s(r);
  fit.ceiling = Bandwidth::gb_per_s(ceiling);
  return fit;
}

}  // namespace epsim
