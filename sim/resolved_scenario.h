// The scenario as it was simulated: the document after presets, --set and defaults, every key
// explicit. report.json and every sweep point record it; `epsim run` on it reproduces the run.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace epsim {

// Validates `doc` (throws ConfigError / InputError as Scenario::from_json does) and returns it with
// every declared key present: keys the document gives are kept as written; absent keys get their
// schema default, or the value the model and GPU presets (and the keys derived from them:
// precision.*, model.kv_heads, cluster.nvlink_gbps, cluster.nodes, workload.seq_len,
// schedule.comm_sms) and the transfer engines' defaults or calibrated profile (network.*_efficiency,
// *_round_us, rdma_message_rate_m, comm_gbps_per_sm) gave the run. Left out when the document leaves
// them out: the alternatives cluster.gpus and model.hf_config (unresolved_keys()).
// Resolving a resolved document changes nothing, and it parses to the same Scenario.
nlohmann::json resolved_scenario(const nlohmann::json& doc);

// The keys resolved_scenario() leaves out when absent ("section.key").
const std::vector<std::string>& unresolved_keys();

}  // namespace epsim
