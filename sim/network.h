// The network as a replaceable component of the step simulation.
//
// A Transfer is a set of flows that start together at Simulator::now(); each flow has a route (the
// directed links it crosses) and a size. The network calls `on_flow_done(i)` at the simulated time
// flow i's last byte arrives (including route latency), then `on_done()` once all have arrived.
// Implementations: AnalyticalNetwork (per-transfer bottleneck bound), and the flow-level max-min
// network. Both keep per-link counters for the reports.
//
// Endpoints. A transfer may name the two endpoints of each flow (`src`, `dst`, in [0, endpoints));
// the network then calls `on_endpoint_done(e)` once per endpoint, when every flow from and to it
// has arrived (at once, during start(), for an endpoint with no flows). A collective needs no more
// than that, and it costs a few calls per GPU instead of one per flow.
//
// Replay. A transfer may carry a `key`: equal keys promise equal flows, endpoints and sizes. Its
// flows may then be left out and made on demand by `fill`, which the network calls only if it has
// to run them (see TransferMemo: a network that has seen the key before may replay the solved
// timing instead, when that is exact).
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "models/units.h"
#include "sim/solver_work.h"
#include "sim/transfer_memo_stats.h"
#include "topology/link.h"

namespace epsim {

struct FlowSpec {
  Route route;
  Bytes bytes;
};

struct PairChunk;  // sim/pair_traffic.h

struct Transfer {
  std::vector<FlowSpec> flows;
  std::vector<GpuId> src, dst;  // per flow, when endpoints > 0
  int endpoints = 0;
  std::uint64_t key = 0;                       // 0: none
  std::function<void(Transfer&)> fill;         // fills flows, src, dst; may be empty
  // May be empty, or return null: the same flows as a chunk of a matrix (sim/pair_traffic.h), its
  // local GPU ids the endpoints, for a network that prices them without listing them (instead of
  // calling fill; a transfer whose flows are reported one by one is always filled).
  std::function<std::shared_ptr<const PairChunk>()> fill_pairs;
  std::function<void(std::size_t flow_index)> on_flow_done;  // may be empty
  std::function<void(GpuId endpoint)> on_endpoint_done;      // may be empty
  std::function<void()> on_done;                             // may be empty
};

struct LinkCounters {
  Bytes bytes;                 // total bytes that crossed the link
  Time busy;                   // time with at least one active flow on the link
  std::int64_t peak_flows = 0; // most flows on the link at once
  // Adds another period's use of the link (busy periods that do not overlap).
  void add(const LinkCounters& o) {
    bytes += o.bytes;
    busy += o.busy;
    peak_flows = std::max(peak_flows, o.peak_flows);
  }
};

class Network {
 public:
  virtual ~Network() = default;
  virtual void start(Transfer transfer) = 0;
  virtual const std::vector<LinkCounters>& counters() const = 0;
  virtual std::string name() const = 0;
  // How often keyed transfers were replayed rather than solved (zeros for a network that never replays).
  virtual ReplayStats replay_stats() const { return {}; }
  // What its max-min solver did (none for a network without one).
  virtual std::optional<SolverWork> solver_work() const { return std::nullopt; }
};

}  // namespace epsim
