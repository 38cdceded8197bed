#include "tools/byte_sizes.h"

#include <cctype>
#include <limits>

#include "models/errors.h"

namespace epsim::cli {

std::int64_t parse_byte_size(const std::string& text, const std::string& option) {
  const std::string rule = "must be a byte count: digits with an optional K, M or G suffix (x 1024, as nccl-tests), e.g. 16M";
  std::size_t digits = 0;
  while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits]))) ++digits;
  if (digits == 0 || digits + 1 < text.size()) throw ConfigError(option, "\"" + text + "\"", rule);
  std::int64_t scale = 1;
  if (digits < text.size()) {
    switch (std::toupper(static_cast<unsigned char>(text[digits]))) {
      case 'K': scale = std::int64_t{1} << 10; break;
      case 'M': scale = std::int64_t{1} << 20; break;
      case 'G': scale = std::int64_t{1} << 30; break;
      default: throw ConfigError(option, "\"" + text + "\"", rule);
    }
  }
  if (digits > 15) throw ConfigError(option, "\"" + text + "\"", "is too large");
  const std::int64_t value = std::stoll(text.substr(0, digits));
  if (value <= 0) throw ConfigError(option, "\"" + text + "\"", "must be > 0");
  if (value > std::numeric_limits<std::int64_t>::max() / scale) throw ConfigError(option, "\"" + text + "\"", "is too large");
  return value * scale;
}

std::vector<std::int64_t> size_sweep(std::int64_t min, std::int64_t max, std::int64_t factor, std::int64_t step) {
  if (max < min) throw ConfigError("-e", std::to_string(max), "must be >= -b = " + std::to_string(min));
  if (step <= 0 && factor <= 1) throw ConfigError("-f", std::to_string(factor), "must be >= 2 (or give -i STEP)");
  std::vector<std::int64_t> sizes;
  for (std::int64_t s = min; s <= max; s = step > 0 ? s + step : s * factor) {
    sizes.push_back(s);
    // Each size is a whole run: a bounded sweep (and no vector of 10^15 sizes).
    if (sizes.size() > 4096) throw ConfigError("-i", std::to_string(step), "the sweep has more than 4096 sizes");
    if (step > 0 && s > max - step) break;  // the next one would pass max (or overflow)
    if (step <= 0 && s > max / factor) break;  // the next one would pass max (or overflow)
  }
  return sizes;
}

}  // namespace epsim::cli
