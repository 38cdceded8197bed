// One draw of the gate: for one layer and micro-batch of one step, how many tokens each source GPU
// sends to each routed expert.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "models/selection_law.h"

namespace epsim {

// counts[s * experts + e]: tokens of source s that selected expert e and were kept. Each token
// selects top_k distinct experts, so sum over e = tokens[s] * top_k (minus what a capacity factor
// dropped) and counts <= tokens[s].
struct RoutingSample {
  int sources = 0;
  int experts = 0;
  int step = 0;                      // the gate's step when drawn (GateModel::begin_step)
  std::vector<std::int64_t> tokens;  // per source
  std::vector<std::int64_t> counts;
  std::int64_t dropped = 0;          // (token, expert) selections over capacity, not in counts
  // The joint law of one token's selection these counts were drawn under (which experts a token
  // takes together: distinct tokens per destination come from it); null: the pooled loads' law
  // without a group limit (placement/dispatch_matrix.h).
  std::shared_ptr<const SelectionLaw> law;
  int max_nodes = 0;                 // routing.max_nodes: a token's experts on at most this many nodes (0: no limit)

  std::int64_t at(int s, int e) const { return counts[static_cast<std::size_t>(s) * static_cast<std::size_t>(experts) + static_cast<std::size_t>(e)]; }
  std::vector<std::int64_t> expert_load() const;  // per expert, summed over sources
  double imbalance() const;                       // max / mean of expert_load() (1 = balanced)
};

// The sample with `extra` experts appended that every token of every source takes (counts = tokens).
RoutingSample with_always_chosen(const RoutingSample& r, int extra);

// max / mean of per-expert loads; 1.0 for an empty or all-zero load.
double max_over_mean(const std::vector<std::int64_t>& load);

}  // namespace epsim
