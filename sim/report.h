// Writes a StepResult: report.json (deterministic: same scenario and seed, same bytes) and the
// Chrome trace (trace event format; opens in Perfetto and chrome://tracing).
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sim/simulation.h"

namespace epsim {

// Bytes that entered each class of link over the step, GB: NVLink (GPU -> NVSwitch), InfiniBand
// (GPU NIC -> leaf) and the spine (leaf -> spine).
struct TrafficByClass {
  double nvlink = 0, infiniband = 0, spine = 0;
};
TrafficByClass traffic_by_class(const Simulation& sim);

// What made a report, recorded in it so that the report alone says how to reproduce it. Empty
// fields are left out of report.json.
struct Provenance {
  std::string version;               // epsim's version (git describe at build time)
  std::vector<std::string> command;  // the command line, "epsim" first
  nlohmann::json scenario;           // resolved_scenario() of the document simulated
};

nlohmann::json report_json(const Simulation& sim, const Provenance& provenance = {});
// A process per GPU, thread 0 = compute stream, thread 1 = communication.
std::string chrome_trace(const Simulation& sim);
void write_file(const std::string& path, const std::string& text);  // throws InputError

}  // namespace epsim
