// How a topology routes: the links a message from one GPU to another crosses, computed on demand.
// A topology builder supplies one with its links (Cluster holds it), so memory grows with GPUs
// and links, not with GPU pairs (an all-pairs table of 16,384 GPUs would take 13 GB).
#pragma once

#include "topology/link.h"

namespace epsim {

class RouteRule {
 public:
  virtual ~RouteRule() = default;
  // The route src -> dst; empty for src == dst. Deterministic: the same pair gives the same route.
  virtual Route route(GpuId src, GpuId dst) const = 0;
  // The same route written into `out` (a slot of a flow list: a caller that copied a route just
  // returned would wait for its narrow stores to land before its wide loads could read them).
  virtual void route_into(GpuId src, GpuId dst, Route& out) const { out = route(src, dst); }
};

}  // namespace epsim
