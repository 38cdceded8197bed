// Counts of what a network did with keyed transfers (sim/transfer_memo.h).
#pragma once

#include <cstdint>

namespace epsim {

struct ReplayStats {
  std::uint64_t hits = 0;          // keyed transfers seen before
  std::uint64_t misses = 0;        // keyed transfers solved (and recorded when they ran alone)
  std::uint64_t stored = 0;        // records kept
  std::uint64_t replayed = 0;      // components replayed
  std::uint64_t solved = 0;        // hits with a component solved because its links were in use
  std::uint64_t materialised = 0;  // replays taken back into the solver part-way
};

}  // namespace epsim
