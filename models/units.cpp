#include "models/units.h"

#include <fmt/format.h>

#include "models/errors.h"

namespace epsim {

void throw_unit_overflow(const char* op, double value) {
  throw UnitOverflow(op, fmt::format("{:.6g} is outside the range of a 64-bit count "
                                     "(Time: +-106 days in picoseconds; Bytes: 9.2e18)", value));
}

void throw_unit_overflow(const char* op, std::int64_t a, std::int64_t b) {
  throw UnitOverflow(op, fmt::format("{} and {} leave the range of a 64-bit count "
                                     "(Time: +-106 days in picoseconds; Bytes: 9.2e18)", a, b));
}

}  // namespace epsim
