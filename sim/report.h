// Writes a StepResult: report.json (deterministic: same scenario and seed, same bytes); the Chrome
// trace is sim/chrome_trace.h.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sim/chrome_trace.h"
#include "sim/simulation.h"

namespace epsim {

// What made a report, recorded in it so that the report alone says how to reproduce it. Empty
// fields are left out of report.json.
struct Provenance {
  std::string version;               // epsim's version (git describe at build time)
  std::vector<std::string> command;  // the command line, "epsim" first
  nlohmann::json scenario;           // resolved_scenario() of the document simulated
};

nlohmann::json report_json(const Simulation& sim, const Provenance& provenance = {});
void write_file(const std::string& path, const std::string& text);  // throws InputError

}  // namespace epsim
