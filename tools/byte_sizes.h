// Byte counts and size sweeps as nccl-tests writes them: "16M" is 16 x 1024^2 bytes (K, M, G:
// powers of 1024, either case), and -b MIN -e MAX -f FACTOR (or -i STEP) lists MIN, MIN x FACTOR,
// ... (MIN, MIN + STEP, ...) up to MAX.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace epsim::cli {

// Throws ConfigError(`option`, text, rule) unless `text` is a positive count with an optional suffix.
std::int64_t parse_byte_size(const std::string& text, const std::string& option);

// The sizes from `min` to `max` inclusive: multiplied by `factor` (> 1), or, when `step` > 0, plus
// `step`. Throws ConfigError for max < min or a factor <= 1 without a step.
std::vector<std::int64_t> size_sweep(std::int64_t min, std::int64_t max, std::int64_t factor, std::int64_t step);

}  // namespace epsim::cli
