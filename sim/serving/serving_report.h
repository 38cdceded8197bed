// Writes a serving run: serve.json (deterministic: same scenario and seed, same bytes), a CSV row
// per request and the KV cache over time.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "sim/report.h"
#include "sim/serving/deployment.h"
#include "sim/serving/serving_metrics.h"
#include "sim/serving/serving_result.h"

namespace epsim::serving {

// The scenario as served: resolved_scenario() of the document without its serving section, plus
// the serving section with every key (`epsim serve` on it alone gives the same figures).
nlohmann::json resolved_serving_scenario(const nlohmann::json& doc);

nlohmann::json serving_json(const Deployment& d, const ServingResult& r, const ServingMetrics& m, const Provenance& provenance);
// id, arrival_s, input_tokens, output_tokens, ttft_ms, tpot_ms, e2e_ms, kv_transfer_ms, instance, rank
std::string requests_csv(const ServingResult& r);
// time_s, then per pool: <pool>_kv_gb_per_gpu, <pool>_max_rank_share
std::string kv_csv(const ServingResult& r);

}  // namespace epsim::serving
