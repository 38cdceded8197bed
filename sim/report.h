// Writes a StepResult: report.json (deterministic: same scenario and seed, same bytes) and the
// Chrome trace (trace event format; opens in Perfetto and chrome://tracing).
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "sim/simulation.h"

namespace epsim {

nlohmann::json report_json(const Simulation& sim);
// A process per GPU, thread 0 = compute stream, thread 1 = communication.
std::string chrome_trace(const Simulation& sim);
void write_file(const std::string& path, const std::string& text);  // throws InputError

}  // namespace epsim
