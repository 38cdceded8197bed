// What the faults of a scenario did, for report.json ("faults") and the console summary.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sim/simulation.h"

namespace epsim {

// Null when the scenario has no faults.
nlohmann::json faults_json(const Simulation& sim);
// One line per kind of fault (empty without faults).
std::vector<std::string> fault_lines(const Simulation& sim);

}  // namespace epsim
