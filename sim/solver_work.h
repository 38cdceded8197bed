// What a flow-level network's max-min solver did over a run: the figures that say why a skewed or
// jittered run on the flow network takes the time it does (README "Speed under skew"), printed by
// `epsim run` and `epsim net`. A network without a solver (the analytical one) has none.
#pragma once

#include <cstdint>

namespace epsim {

struct SolverWork {
  std::uint64_t flows = 0;           // flows that entered the network (replayed ones excluded)
  std::uint64_t solves = 0;          // re-solves that had something to do
  std::uint64_t full_fills = 0;      // of them, fillings from level 0 (nothing kept)
  std::uint64_t flows_refilled = 0;  // sum over re-solves of the flows re-filled
  std::uint64_t rates_changed = 0;   // of those, the ones whose rate changed (bit for bit)
  std::uint64_t levels_changed = 0;  // sum over re-solves of the links whose level changed
  std::uint64_t moves = 0;           // sum over re-solves of the flows whose bottleneck changed
  std::uint64_t batches = 0;         // wake-ups that completed at least one flow
  std::uint64_t early = 0;           // flows the completion window completed before their drain ended
};

}  // namespace epsim
