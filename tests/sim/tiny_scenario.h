// Test helper: the smallest scenario with the seed's structure, worked by hand in the step tests:
// 2 nodes x 2 GPUs, one expert per GPU, 2 layers (1 dense, 1 MoE), 256 tokens per GPU, top-2 of 4
// experts, hidden 1024, 8 heads of 128, serial schedule, attention TP 1.
#pragma once

#include <nlohmann/json.hpp>

namespace epsim::test {

inline nlohmann::json tiny_scenario() {
  return nlohmann::json{{"model", {{"layers", 2}, {"dense_layers", 1}, {"hidden", 1024}, {"dense_intermediate", 2048},
                                   {"expert_intermediate", 512}, {"routed_experts", 4}, {"top_k", 2}, {"heads", 8},
                                   {"head_dim", 128}, {"vocab", 1000}}},
                        {"cluster", {{"nodes", 2}, {"gpus_per_node", 2}}},
                        {"workload", {{"tokens_per_gpu", 256}}}};
}

}  // namespace epsim::test
