// DeepSeek's Expert Parallelism Load Balancer (EPLB), re-implemented with its exact tie-breaking
// so that its published outputs are reproduced bit for bit.
//
// replicate: starting from one slot per logical expert, give the next redundant slot to the expert
//   with the highest load per replica (ties: lowest expert id), until every physical slot is used.
// balanced packing: items sorted by weight descending (stable: ties keep id order) go one by one
//   to the lightest pack that still has room (ties: lowest pack id); every pack gets n / packs items.
// hierarchical (when groups % nodes == 0): pack expert groups onto nodes (balanced packing of the
//   group loads), replicate within each node, then pack each node's physical experts onto its GPUs.
// global (otherwise): the same with one group and one node.
// Weights are IEEE single precision, as in the reference (torch float32), so that ties match.
#pragma once

#include <vector>

namespace epsim {

struct EplbResult {
  std::vector<std::vector<int>> phy2log;               // [layer][physical slot] -> logical expert
  std::vector<std::vector<int>> phyrank;               // [layer][physical slot] -> replica rank
  std::vector<std::vector<std::vector<int>>> log2phy;  // [layer][expert][rank] -> slot, -1 padded to the max count
  std::vector<std::vector<int>> logcnt;                // [layer][expert] -> replicas
};

struct Packing {
  std::vector<int> pack;  // per item
  std::vector<int> rank;  // position of the item in its pack
};

// Throws SimulationError unless weight.size() is a multiple of packs.
Packing balanced_packing(const std::vector<float>& weight, int packs);

struct Replication {
  std::vector<int> phy2log, rank, logcnt;
};
Replication replicate_experts(const std::vector<float>& weight, int physical);

enum class EplbPolicy { Auto, Hierarchical, Global };

// weight: [layers][logical experts] load statistics. `physical` slots (a multiple of gpus), expert
// `groups`, `nodes`, `gpus`. Throws ConfigError("placement", ...) when the shapes do not divide.
EplbResult rebalance_experts(const std::vector<std::vector<double>>& weight, int physical, int groups, int nodes, int gpus,
                             EplbPolicy policy = EplbPolicy::Auto);

}  // namespace epsim
