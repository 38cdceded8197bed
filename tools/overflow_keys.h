// A UnitOverflow (a Time or Bytes quantity leaving its 64-bit range, models/units.h) raised while a
// scenario is simulated is bad input, not a bug: the scenario asks for a step longer than 106 days
// or more than 9.2e18 bytes. This maps the overflowing operation to the scenario keys that set that
// scale, so the message names keys the user can change.
#pragma once

#include <new>

#include <nlohmann/json.hpp>

#include "models/errors.h"

namespace epsim::cli {

// Throws ConfigError: the path is the first scale key of `e.op()` the document sets (else the
// first such key), the value its value, the rule names the operation and the other keys.
[[noreturn]] void throw_scale_error(const UnitOverflow& e, const nlohmann::json& doc);

// Throws ConfigError for a simulation that ran out of memory (std::bad_alloc): a scenario inside
// the Limits can still need more memory than the machine (or a ulimit) gives; the message names
// the size keys the document sets, the way throw_scale_error does.
[[noreturn]] void throw_memory_error(const nlohmann::json& doc);

// Runs `work`; a UnitOverflow inside becomes throw_scale_error's ConfigError, a std::bad_alloc
// throw_memory_error's.
template <typename F>
auto with_scale_keys(const nlohmann::json& doc, F&& work) -> decltype(work()) {
  try {
    return work();
  } catch (const UnitOverflow& e) {
    throw_scale_error(e, doc);
  } catch (const std::bad_alloc&) {
    throw_memory_error(doc);
  }
}

}  // namespace epsim::cli
