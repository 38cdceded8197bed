// Expert capacity (GShard / Switch style token dropping): each expert of a layer processes at most
// capacity = ceil(factor x mean expert load) selections; the overflow is dropped (the token keeps
// its other experts and the residual path). The kept selections of an over-full expert are shared
// among its sources in proportion to what they sent (largest remainder, ties to lower sources).
#pragma once

#include <cstdint>

#include "models/routing_sample.h"

namespace epsim {

// Drops the overflow of every expert in `r` in place and adds it to r.dropped; factor > 0.
void apply_capacity(RoutingSample& r, double factor);

// ceil(factor x total / experts): the most selections one expert keeps.
std::int64_t expert_capacity(std::int64_t total_selections, int experts, double factor);

}  // namespace epsim
