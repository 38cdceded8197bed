// The flow-level network: every flow drains at its max-min fair rate (MaxMinSolver), re-solved
// whenever the set of draining flows changes, and its last byte arrives route.latency after it has
// drained (the fluid model: bandwidth is shared while the data leaves, the pipe adds its delay).
//
// Events. start() enters a transfer's flows into the solver and asks for one solve at the current
// time (transfers started at the same instant share it). Between events rates are constant, so drain
// ends are known exactly. A wake-up completes every flow due by then, plus flows due within 1e-9 of
// their own duration later (near-simultaneous ends of an all-to-all that rounding set apart), removes
// them from the solver and re-solves (the solver only re-fills what can move). Deliveries
// (on_flow_done, then on_done once a transfer's last flow is in) run as Simulator events at drain
// end + latency: in time order, then in the order the flows drained.
//
// Per-link virtual clocks. A flow's rate is level(its bottleneck link) (unit weights), so after a
// re-solve many rates change while few flows change bottleneck. Each link keeps a virtual clock v
// (bytes served per flow bottlenecked on it; it advances at the link's level) and a heap of its
// bottlenecked flows keyed by finish tag = v at entry + bytes left. A level change re-times the
// link (O(log L)), not its flows; only flows whose bottleneck moves are re-tagged. The next drain
// end of a link is t + (smallest tag - v) / level; a heap over links gives the earliest.
//
// Flows of zero bytes or with an empty route (a GPU to itself) take no bandwidth: they arrive at
// start + latency. Times are integer picoseconds; drain ends are rounded to the nearest ps.
//
// Counters per link: bytes (all flows that cross it, counted when they start), busy (time with at
// least one flow draining over it), peak_flows (most flows draining over it at once).
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <vector>

#include "sim/max_min_solver.h"
#include "sim/network.h"
#include "sim/simulator.h"
#include "topology/link.h"

namespace epsim {

class FlowNetwork final : public Network {
 public:
  struct Stats {
    std::uint64_t flows = 0;           // flows started
    std::uint64_t wakeups = 0;         // times the network re-solved
    std::uint64_t batches = 0;         // wake-ups that completed at least one flow
    std::int64_t peak_active = 0;      // most flows draining at once
  };

  // `links` gives every link's bandwidth (each > 0); routes index into it. Both must outlive this.
  FlowNetwork(Simulator& sim, const std::vector<Link>& links);

  void start(Transfer transfer) override;
  const std::vector<LinkCounters>& counters() const override { return counters_; }
  std::string name() const override { return "flow"; }

  const Stats& stats() const { return stats_; }
  const MaxMinSolver::Stats& solver_stats() const { return solver_.stats(); }

 private:
  using Index = MaxMinSolver::Index;
  struct FlowState {
    double tag = 0.0;         // finish tag on its bottleneck link's virtual clock (bytes)
    double started = 0.0;     // ps
    Index link = -1;          // bottleneck link, as last taken from the solver; -1 before
    Time latency;
    std::uint64_t seq = 0;    // start order: ties between equal times go to the earlier flow
    std::int32_t transfer = -1;
    std::size_t index = 0;      // position in its transfer
  };
  struct Tag {
    double tag;
    std::uint64_t seq;
    Index flow;
    std::uint32_t version;
  };
  struct LinkClock {
    double v = 0.0;             // bytes served per bottlenecked flow, as of t
    std::int64_t t = 0;         // ps
    double level = 0.0;         // bytes/s per flow bottlenecked here (as last taken from the solver)
    std::vector<Tag> heap;      // bottlenecked flows by (tag, seq); stale entries skipped lazily
    std::int32_t pos = -1;      // position in the heap of links, -1 when absent
    double next = 0.0;          // exact time (ps) of its next drain end, when in the heap of links
    bool stale = false;         // its `next` must be recomputed
  };
  struct TransferState {
    std::vector<FlowSpec> flows;  // kept until the transfer is done: the routes live here
    std::function<void(std::size_t)> on_flow_done;
    std::function<void()> on_done;
    std::size_t outstanding = 0;
  };
  struct Arrival {
    Time latency;
    std::uint64_t seq;
    std::int32_t transfer;
    std::size_t index;
  };

  void process();                       // complete what is due, re-solve, re-time, wake up later
  void advance(LinkClock& c, std::int64_t t);
  const Tag* top_of(LinkClock& c);      // smallest valid tag, or null
  void retime(Index link);              // recompute `next` and its place in the heap of links
  void sift_up(std::size_t p);
  void sift_down(std::size_t p);
  void request_process(Time t);
  void deliver(const std::vector<Arrival>& arrivals);
  void schedule_arrivals(std::vector<Arrival>& arrivals);
  void link_activity(const Route& route, int delta);

  Simulator& sim_;
  MaxMinSolver solver_;
  std::vector<FlowState> flows_;        // by solver flow id
  std::vector<std::uint32_t> version_;  // by solver flow id: a heap entry is valid while its version
                                        // matches (dense and small: checked for every entry popped)
  std::vector<Index> drained_;          // scratch: flows completed by one wake-up
  std::vector<LinkClock> clocks_;       // by link
  std::vector<Index> link_heap_;        // links with bottlenecked flows, by (next, id)
  std::vector<Index> stale_links_;
  std::deque<TransferState> transfers_; // a deque: callbacks may start transfers while running
  std::vector<std::int32_t> free_transfers_;
  std::vector<LinkCounters> counters_;
  std::vector<std::int64_t> active_on_link_;
  std::vector<Time> busy_since_;
  std::vector<Arrival> arrivals_;       // scratch
  std::uint64_t next_seq_ = 0;
  std::int64_t active_ = 0;
  Time wake_at_ = Time::infinity();     // the pending wake-up, if any
  Stats stats_;
};

}  // namespace epsim
