// How a source GPU's tokens for one expert split over the expert's replicas
// (`placement.replica_choice`). Every consumer of a placement (the dispatch matrix, per-slot rows,
// the expected link loads) splits through these functions, so they agree.
//   even:    over every replica: count / r each, the count mod r extra tokens to the replicas
//            starting at index source mod r (so that sources even them out).
//   nearest: over the replicas on the source's own GPU; if it holds none, over those on its node;
//            if the node holds none, over every replica; within the chosen tier as `even` splits.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "models/apportion.h"
#include "placement/layer_placement.h"

namespace epsim {

enum class ReplicaChoice { even, nearest };

const std::vector<std::string>& replica_choice_names();  // "even", "nearest": the key's choices
ReplicaChoice replica_choice_from_name(const std::string& name);  // one of replica_choice_names()
const char* replica_choice_name(ReplicaChoice choice);

// Replica `index` of `replicas` gets this share of source `source`'s `count` tokens (the even split,
// its remainder rotated by the source).
inline std::int64_t replica_share(std::int64_t count, std::int64_t replicas, std::int64_t index, int source) {
  return equal_share(count, ((index - source) % replicas + replicas) % replicas, replicas);
}

// out[i] = the GPU id of the expert's i-th replica (placement.replicas(expert)) in the EP group whose
// first GPU is group_base.
void replica_gpus(const LayerPlacement& placement, int expert, int group_base, std::vector<int>& out);

// out[i] = tokens of source `source` (a GPU id) that go to the replica on GPU replica_gpus[i];
// the shares sum to `count`. gpus_per_node groups GPU ids into nodes (id / gpus_per_node).
void replica_shares(ReplicaChoice choice, std::int64_t count, const std::vector<int>& replica_gpus, int source,
                    int gpus_per_node, std::vector<std::int64_t>& out);

// out[i] = the fraction of the source's tokens that replica i receives in expectation (the shares'
// limit for many tokens); the fractions sum to 1.
void replica_fractions(ReplicaChoice choice, const std::vector<int>& replica_gpus, int source, int gpus_per_node,
                       std::vector<double>& out);

}  // namespace epsim
