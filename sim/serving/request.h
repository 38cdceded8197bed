// A request of the served traffic, and the traffic itself: Poisson arrivals or a CSV replay.
#pragma once

#include <cstdint>
#include <vector>

#include "models/units.h"
#include "sim/serving/serving_spec.h"

namespace epsim::serving {

struct Request {
  int id = 0;
  Time arrival;
  std::int64_t input = 1;   // prompt tokens
  std::int64_t output = 1;  // generated tokens (>= 1; the first comes out of the prefill)
};

// The requests of `spec` in arrival order (ids 0, 1, ...): Poisson gaps -ln(1 - u) / rate and
// lengths uniform in mean x [1 - spread, 1 + spread] from one seeded stream, or the trace file's
// rows (throws InputError naming the file, line and rule).
std::vector<Request> make_requests(const ServingSpec& spec);

// Parses the CSV text of a trace (`name` for messages).
std::vector<Request> parse_trace(const std::string& text, const std::string& name);

}  // namespace epsim::serving
