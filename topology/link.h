// A directed link of the cluster and a route (the links a message crosses, in order).
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "models/errors.h"
#include "models/units.h"

namespace epsim {

using GpuId = int;
using LinkId = std::int32_t;

enum class LinkKind : std::uint8_t {
  NvlinkUp,    // GPU -> its node's NVSwitch
  NvlinkDown,  // NVSwitch -> GPU
  NicUp,       // GPU's NIC -> its rail's leaf switch (InfiniBand)
  NicDown,     // leaf -> GPU's NIC
  LeafUp,      // leaf -> spine layer (all uplinks of one leaf, aggregated)
  SpineDown,   // spine layer -> leaf (aggregated)
  Kernel,      // a GPU's dispatch/combine kernels: what its communication SMs can move (not a wire)
};

const char* to_string(LinkKind kind);
bool is_nvlink(LinkKind kind);

struct Link {
  LinkKind kind;
  Bandwidth bandwidth;  // each way (the link is directed)
  Time latency;         // added once per message that crosses it
  int owner;            // GPU id for GPU links, leaf index for leaf/spine links
  std::string name;     // "gpu12.nic.up", "leaf3.up", ...
  // Every route through it also crosses one of a set of links whose capacities sum to no more
  // than its own (a leaf's spine uplink without oversubscription: its traffic comes in through the
  // NICs under it). It can never limit a flow, so the flow network leaves it out of the max-min
  // system (the allocation is the same; only its counters are kept). The topology builder says so.
  bool dominated = false;
  // Down (faults.link_bandwidth = 0): no route crosses it; `bandwidth` keeps its nominal value.
  bool failed = false;
};

// At most kMaxHops links; composed routes (NVLink hop + rail hop) stay within it.
struct Route {
  static constexpr int kMaxHops = 8;
  std::array<LinkId, kMaxHops> link{};
  std::uint8_t hops = 0;
  Time latency = Time::zero();

  void append(LinkId id, Time link_latency) {
    if (hops == kMaxHops) throw SimulationError("route longer than Route::kMaxHops");
    link[hops++] = id;
    latency += link_latency;
  }
  const LinkId* begin() const { return link.data(); }
  const LinkId* end() const { return link.data() + hops; }
};

}  // namespace epsim
