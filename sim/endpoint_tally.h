// Arrivals still due per endpoint of one transfer (a flow counts at both its ends; a replayed
// component counts once at each endpoint it involves).
#pragma once

#include <cstdint>
#include <vector>

#include "topology/link.h"

namespace epsim {

class EndpointTally {
 public:
  void reset(int endpoints) { pending_.assign(static_cast<std::size_t>(endpoints), 0); }
  void add(GpuId e, std::int32_t n = 1) { pending_[static_cast<std::size_t>(e)] += n; }
  // True when `e` has nothing left to wait for.
  bool remove(GpuId e, std::int32_t n = 1) { return (pending_[static_cast<std::size_t>(e)] -= n) == 0; }
  std::int32_t left(GpuId e) const { return pending_[static_cast<std::size_t>(e)]; }
  int size() const { return static_cast<int>(pending_.size()); }

 private:
  std::vector<std::int32_t> pending_;
};

}  // namespace epsim
