// Writes a StepResult: report.json (deterministic: same scenario and seed, same bytes); the Chrome
// trace is sim/chrome_trace.h.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sim/chrome_trace.h"
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
// What the HTML report draws beyond report.json, written as DIR/detail.json (compact):
//   gpu_layer: per layer (rows) and GPU (columns): compute_ms and exposed_comm_ms
//   link_timeline: bin_ms and, for the 8 busiest links, their utilisation in each bin
//   placement: the MoE layer with the most unbalanced routed load: each GPU's experts and routed
//     (token, expert) pairs
// Times rounded to the nanosecond; deterministic as report.json.
nlohmann::json report_detail_json(const Simulation& sim);

void write_file(const std::string& path, const std::string& text);  // throws InputError

}  // namespace epsim
