// The scenario's `serving` section: the traffic (Poisson arrivals or a CSV replay), the
// continuous-batching scheduler's limits, the pools (one colocated pool, or prefill and decode
// pools with their own scenario overrides), the latency targets and how step times are priced.
// Every key is declared once in schemas() (`epsim keys` prints them; scenarios/README.md documents
// them). A scenario with a serving section is still a scenario: `epsim run` ignores the section.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "models/config.h"

namespace epsim::serving {

// One pool: identical instances of a scenario. An instance is the whole scenario cluster, which
// runs one step at a time (its GPUs meet at every all-to-all).
struct PoolSpec {
  int instances = 1;
  nlohmann::json set = nlohmann::json::object();  // {"key.path": value} applied to the base scenario
};

enum class Arrivals { Poisson, Trace };
enum class StepPricing { Interpolated, Exact };

struct ServingSpec {
  Arrivals arrivals = Arrivals::Poisson;
  double rate = 1.0;                // requests/s over the whole deployment (poisson)
  std::int64_t requests = 1000;     // poisson: how many arrive
  std::string trace;                // trace: CSV of arrival_s, input_tokens, output_tokens
  std::int64_t input_tokens = 2048;   // poisson: mean prompt length
  std::int64_t output_tokens = 256;   // poisson: mean generated tokens (the first comes from prefill)
  double length_spread = 0.0;         // poisson: lengths uniform in mean x [1 - s, 1 + s], rounded
  std::uint64_t seed = 1;
  double prefix_hit = 0.0;            // fraction of each prompt already in the prefix cache
  std::int64_t max_batch_per_gpu = 64;            // sequences a GPU holds (a TP group of n: n x this)
  std::int64_t max_prefill_tokens_per_gpu = 8192; // tokens per GPU in one prefill step
  bool chunked_prefill = true;
  double kv_memory_fraction = 0.9;  // of the memory left after weights, activations and buffers
  bool disaggregated = false;
  PoolSpec colocated, prefill, decode;
  double ttft_ms = 0.0, tpot_ms = 0.0;  // targets for goodput; 0: none
  StepPricing pricing = StepPricing::Interpolated;
  int check_samples = 4;                // exact runs per step table to measure interpolation error

  // `j` is the serving section (null: every default). Throws ConfigError naming serving.*.
  static ServingSpec from_json(const nlohmann::json& j);
  // Every key, with its default: the section as the run used it (written into serve.json and the
  // scenario files `epsim search` writes).
  nlohmann::json to_json() const;
  static std::vector<const Schema*> schemas();
};

// The scenario document of one pool's instances: `doc` without its serving section, with the
// pool's `set` applied (a bad key or value names serving.<pool>.set.<key>). `pool` is
// "prefill" | "decode" | "colocated".
nlohmann::json pool_document(const nlohmann::json& doc, const PoolSpec& pool, const std::string& pool_name);

// A scenario's serving section checked as `epsim serve` reads it (its keys, each pool's `set`
// applied to the scenario), for the commands that simulate one step and otherwise ignore it: a bad
// serving section is bad input whichever command reads the file. No section: nothing to check.
void check_serving_section(const nlohmann::json& doc);

}  // namespace epsim::serving
