#pragma once
// The message of the ConfigError f throws, or "(no error)": the tests pin whole messages.
#include <functional>
#include <string>

#include "models/config.h"

namespace epsim::testing {

inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace epsim::testing
