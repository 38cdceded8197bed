// The figures of a report that a sweep records per point and tabulates: one flat object of numbers
// (and the busiest link's name), each named with its unit.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace epsim::explore {

// From report.json (sim/report.h). Keys, in headline_metric_names() order:
//   step_time_ms, tokens_per_s_per_gpu, tokens_per_s_per_node: as report.json
//   compute_ms, dispatch_ms, combine_ms, exposed_comm_ms: summed over layers (compute and exposed:
//     each layer's worst GPU)
//   gpu_load_max_over_mean: routed tokens of the busiest GPU over the mean, worst MoE layer
//   memory_per_gpu_gb, memory_fits; busiest_link and busiest_link_utilisation (of the step, by
//   bytes); bound_layer (the layer with the most time on the critical path); events
nlohmann::json headline_metrics(const nlohmann::json& report);
const std::vector<std::string>& headline_metric_names();
// {name: {"label", "unit", "better": "lower" | "higher" | ""}} for charts and tables.
nlohmann::json headline_metric_info();

}  // namespace epsim::explore
