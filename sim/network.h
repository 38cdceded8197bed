// The network as a replaceable component of the step simulation.
//
// A Transfer is a set of flows that start together at Simulator::now(); each flow has a route (the
// directed links it crosses) and a size. The network calls `on_flow_done(i)` at the simulated time
// flow i's last byte arrives (including route latency), then `on_done()` once all have arrived.
// Implementations: AnalyticalNetwork (per-transfer bottleneck bound), and the flow-level max-min
// network. Both keep per-link counters for the reports.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "models/units.h"
#include "topology/link.h"

namespace epsim {

struct FlowSpec {
  Route route;
  Bytes bytes;
};

struct Transfer {
  std::vector<FlowSpec> flows;
  std::function<void(std::size_t flow_index)> on_flow_done;  // may be empty
  std::function<void()> on_done;                             // may be empty
};

struct LinkCounters {
  Bytes bytes;                 // total bytes that crossed the link
  Time busy;                   // time with at least one active flow on the link
  std::int64_t peak_flows = 0; // most flows on the link at once
};

class Network {
 public:
  virtual ~Network() = default;
  virtual void start(Transfer transfer) = 0;
  virtual const std::vector<LinkCounters>& counters() const = 0;
  virtual std::string name() const = 0;
};

}  // namespace epsim
