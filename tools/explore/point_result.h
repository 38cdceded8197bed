// What running one scenario document gives a sweep, a search or a served request: the resolved
// scenario, the report's headline figures, the wall time; or the message of the bad input that
// stopped it.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace epsim::explore {

struct PointResult {
  nlohmann::json scenario;  // resolved (sim/resolved_scenario.h); null when the document was rejected
  nlohmann::json metrics;   // headline_metrics() of its report; null on error
  std::string error;        // non-empty: why the document was rejected (ConfigError / InputError text)
  double wall_s = 0;        // resolving + simulating, seconds

  bool ok() const { return error.empty(); }
  nlohmann::json to_json() const;  // {"scenario", "metrics", "wall_s"} or {"error", "wall_s"}
  static PointResult from_json(const nlohmann::json& j);
};

}  // namespace epsim::explore
