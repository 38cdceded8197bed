// Rounding real shares to integers that keep their exact total (largest-remainder method).
#pragma once

#include <cstdint>
#include <vector>

namespace epsim {

// Integers n_i with sum n_i = total and |n_i - targets_i| < 1: every n_i is floor(targets_i), plus
// one for the largest fractional parts (ties: lower index). Requires targets_i >= 0 and
// sum targets_i = total up to rounding.
std::vector<std::int64_t> apportion(const std::vector<double>& targets, std::int64_t total);

// Part `part` of `n` cut into `parts` near-equal integers: n / parts each, the n mod parts
// remainder one each to the first parts (0 <= part < parts).
inline std::int64_t equal_share(std::int64_t n, std::int64_t part, std::int64_t parts) {
  return n / parts + (part < n % parts ? 1 : 0);
}

}  // namespace epsim
