#include "models/apportion.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "models/units.h"

namespace epsim {

std::vector<std::int64_t> apportion(const std::vector<double>& targets, std::int64_t total) {
  const std::size_t n = targets.size();
  std::vector<std::int64_t> out(n);
  std::int64_t sum = 0;
  for (std::size_t i = 0; i < n; ++i) {
    out[i] = checked_int64(std::floor(targets[i]), "apportioned share -> count");
    sum += out[i];
  }
  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  auto frac = [&](std::size_t i) { return targets[i] - static_cast<double>(out[i]); };
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return frac(a) > frac(b); });
  std::int64_t rest = total - sum;
  for (std::size_t j = 0; rest > 0 && n > 0; j = (j + 1) % n, --rest) ++out[order[j]];
  // Only from rounding error: take back one at a time from the smallest fractions, skipping zeros.
  for (bool took = true; rest < 0 && took;) {
    took = false;
    for (std::size_t j = n; j-- > 0 && rest < 0;) {
      if (out[order[j]] > 0) {
        --out[order[j]];
        ++rest;
        took = true;
      }
    }
  }
  return out;
}

}  // namespace epsim
