// The flow-level network: every flow drains at its max-min fair rate (MaxMinSolver), re-solved
// whenever the set of draining flows changes, and its last byte arrives route.latency after it has
// drained (the fluid model: bandwidth is shared while the data leaves, the pipe adds its delay).
//
// Events. start() enters a transfer's flows into the solver and asks for one solve at the current
// time (transfers started at the same instant share it). Between events rates are constant, so drain
// ends are known exactly. A wake-up completes every flow due by then, plus the flows due within the
// completion window w of their own duration later (end - now <= w x (end - start)), removes them
// from the solver and re-solves once (the solver only re-fills what can move). w = 1e-9 (the least)
// only joins ends that rounding set apart: exact. A larger w trades accuracy for speed: a flow
// arrives at most w of its duration early, and in an all-to-all of many different sizes (skewed
// routing) one solve then serves every end in the window instead of one solve per end (each a
// filling of the whole system when rates move everywhere). Deliveries (on_flow_done, then on_done
// once a transfer's last flow is in) run as Simulator events at drain end + latency: in time order,
// then in the order the flows drained.
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
//
// Replay (sim/transfer_memo.h). The first time a keyed transfer runs, each of its link-disjoint
// components that kept its links to itself until its last arrival is recorded. When the key comes
// again, a component whose links are all free is replayed: its links are held until its flows would
// have drained, and its endpoints finish at their recorded offsets; no flow is solved. A component
// whose links are in use is solved as usual. If another flow enters a held link before the replay
// has drained, the replay is taken back into the solver: a scratch network runs the component
// alone from its start to now (exact: it was alone until now), and its flows continue from that
// state. Results equal those of solving everything, up to floating-point rounding (<= 1 ps).
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <vector>

#include "sim/endpoint_tally.h"
#include "sim/max_min_solver.h"
#include "sim/network.h"
#include "sim/simulator.h"
#include "sim/transfer_memo.h"
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
  // `replay`: reuse the timing of keyed transfers seen before (see above; off only to check).
  // `completion_window`: a wake-up also completes the flows due within this fraction of their own
  // duration (see above; 0: exact, up to 1e-9).
  FlowNetwork(Simulator& sim, const std::vector<Link>& links, bool replay = true, double completion_window = 0.0);

  void start(Transfer transfer) override;
  const std::vector<LinkCounters>& counters() const override { return counters_; }
  std::string name() const override { return "flow"; }

  const Stats& stats() const { return stats_; }
  const MaxMinSolver::Stats& solver_stats() const { return solver_.stats(); }
  ReplayStats replay_stats() const override { return memo_.stats(); }

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
  // A keyed transfer's component while it is recorded (first time its key is seen).
  struct Recording {
    MemoComponent result;              // links sorted; counters hold the values at the start until done
    std::vector<std::int32_t> left_at; // per endpoint: its flows in this component not yet arrived
    std::int64_t left = 0;             // flows not yet arrived
    std::size_t flows = 0;
    bool clean = true;                 // no other flow shared its links while it ran
  };
  struct TransferState {
    std::vector<FlowSpec> flows;  // kept until the transfer is done: the routes live here
    std::vector<GpuId> src, dst;
    int endpoints = 0;
    EndpointTally pending;
    std::function<void(Transfer&)> fill;  // kept while a replay may need the flows
    std::function<void(std::size_t)> on_flow_done;
    std::function<void(GpuId)> on_endpoint_done;
    std::function<void()> on_done;
    std::size_t outstanding = 0;  // flows not arrived, plus replays not ended
    std::int64_t started = 0;     // ps
    std::uint64_t key = 0;
    std::vector<std::int32_t> component;       // per flow (keyed transfers)
    // A hit: `flows` holds only the components taken into the solver; the whole plan, made when a
    // component without kept flows is taken in, and its flows' components.
    std::shared_ptr<Transfer> plan;
    std::vector<std::int32_t> plan_component;
    std::vector<Recording> recording;          // per component, while recorded; else empty
    std::int32_t recorded = 0;                 // components whose recording is complete
    std::shared_ptr<const MemoRecord> record;  // the record being replayed (a hit)
  };
  struct Replay {
    std::int32_t transfer = -1;
    std::int32_t component = -1;
    std::int64_t started = 0;   // ps
    std::uint32_t version = 0;  // bumps when it ends or is taken back: its pending events then do nothing
    std::vector<char> fired;    // per entry of the component's endpoint_done
  };
  struct Arrival {
    Time latency;
    std::uint64_t seq;
    std::int32_t transfer;
    std::size_t index;
  };

  void process();                       // complete what is due, re-solve, re-time, wake up later
  void advance(LinkClock& c, std::int64_t t);
  static double clock_at(const LinkClock& c, double t);  // its v at time t (ps), without moving it
  const Tag* top_of(LinkClock& c);      // smallest valid tag, or null
  void retime(Index link);              // recompute `next` and its place in the heap of links
  void sift_up(std::size_t p);
  void sift_down(std::size_t p);
  void request_process(Time t);
  void deliver(const std::vector<Arrival>& arrivals);
  void schedule_arrivals(std::vector<Arrival>& arrivals);
  void link_activity(const Route& route, int delta, std::int64_t owner);
  std::int32_t new_transfer_slot();
  void start_solved(std::int32_t slot);
  void start_hit(std::int32_t slot);
  // Flows [first, end) of a transfer: counted as outstanding at both endpoints, then entered into
  // the solver (or scheduled, when they take no bandwidth).
  void expect_flows(TransferState& tr, std::size_t first);
  void enter_flows(std::int32_t slot, std::size_t first);
  void begin_recording(TransferState& tr);
  void finish_recording(std::int32_t slot, std::int32_t component);
  void begin_replay(std::int32_t slot, std::int32_t component);
  void materialise(std::int32_t replay);
  // Appends a recorded component's flows to a hit transfer's flows; returns the first new index.
  std::size_t take_in(TransferState& tr, std::int32_t component);
  // Enters flow `index` of a transfer into the solver with `bytes` left, started at `started` ps.
  void add_live(std::int32_t slot, std::size_t index, double bytes, double started, bool count_bytes);
  void finish_empty_endpoints(std::int32_t slot);
  void unit_done(std::int32_t slot);  // a flow arrived or a replay ended
  void mark_dirty(std::int64_t owner);
  std::int64_t owner_of(std::int32_t slot, std::size_t index) const;
  // Scratch runs (materialise): bytes left per flow of transfer `slot`, and busy time so far.
  std::vector<double> remaining(std::int32_t slot, std::size_t flows) const;
  Time busy_so_far(LinkId link) const;

  Simulator& sim_;
  const std::vector<Link>& links_;
  bool replay_;
  double window_;  // completion window, relative to a flow's duration (>= 1e-9)
  TransferMemo memo_;
  std::vector<Replay> replays_;
  std::vector<std::int32_t> free_replays_;
  std::vector<std::int32_t> held_by_;   // per link: the replay holding it, -1 none
  std::vector<std::int64_t> owner_;     // per link: owner_of() its draining flows; -1 none, -2 several
  std::vector<double>* drain_log_ = nullptr;  // scratch runs: drain end (ps) per flow index
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
