// How much KV cache a pool's GPUs hold: the memory left after weights, the largest step's
// activations and the communication buffers (models/memory_model.h, as `epsim run` reports them),
// times serving.kv_memory_fraction, in tokens of a DP rank.
#pragma once

#include <cstdint>

#include "models/units.h"
#include "sim/scenario.h"
#include "sim/serving/serving_spec.h"

namespace epsim::serving {

enum class Role { Colocated, Prefill, Decode };
const char* to_string(Role r);

struct KvBudget {
  Bytes capacity;       // per GPU
  Bytes weights;        // per GPU
  Bytes activations;    // per GPU, the largest step of the role (plus comm buffers)
  Bytes kv;             // per GPU: what holds KV cache
  // KV bytes on each GPU of a DP rank per token the rank holds: layers x kv_bytes_per_token / tp
  // (MHA splits heads over the TP group; MLA replicates its latent on every GPU of the group).
  double bytes_per_token = 0;
  std::int64_t rank_tokens = 0;  // KV tokens one DP rank holds
};

// Throws ConfigError (path serving.kv_memory_fraction) when nothing is left for KV.
KvBudget kv_budget(const Scenario& sc, const ServingSpec& spec, Role role, const std::string& pool_name);

}  // namespace epsim::serving
