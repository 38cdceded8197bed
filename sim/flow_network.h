// The flow-level network: every flow drains at its max-min fair rate (MaxMinSolver), re-solved
// whenever the set of draining flows changes, and its last byte arrives route.latency after it has
// drained (the fluid model: bandwidth is shared while the data leaves, the pipe adds its delay).
//
// Events. start() enters a transfer's flows into the solver and asks for one solve at the current
// time (transfers started at the same instant share it). Between events rates are constant, so drain
// ends are known exactly. A wake-up completes every flow due by then (and, with a completion window,
// some due a little later: below), removes them from the solver and re-solves once (the solver only
// re-fills what can move). Deliveries (on_flow_done, then on_done once a transfer's last flow is in)
// run as Simulator events at drain end + latency: in time order, then in the order the flows drained.
//
// The completion window w (network.completion_window). In an all-to-all of many different sizes
// (skewed routing, jitter) every end moves rates all over the system, so each costs a filling of
// most of it; a wake-up may therefore also complete flows whose drain would end a little later
// ("early"), and one solve serves all of them. w <= 1e-9 is exact: only ends that rounding set
// 1e-9 of a duration apart join. For a larger w, a flow f (started s) whose drain ends at e under
// the current rates is completed early at t only when
//   (a) its own share: e - t <= w/4 x (e - s);
//   (b) no flow entered the solver since the last solve (the rates are then current: a flow that
//       has just started would slow f, and f's exact end could be far past e);
//   (c) every link l that f binds on has room for f's residual bytes r = rate x (e - t): for every
//       flow that entered l since l was last idle, started at s_g, the residual bytes dropped on l
//       since s_g, r included, stay within w/4 x C_l x (t - s_g) (one running sum and one bound per
//       link: the bound is the least over those flows, dead ones included, so it errs on the safe
//       side).
// Theorem (one shared link, flows that start together: processor sharing, e.g. an incast or one
// NIC's flows). Up to rounding (1 ps, 1e-9 of a duration), every flow arrives no later than exactly
// and at most 0.51 w of its exact duration early (w <= 0.05, the largest a scenario takes).
// Proof. With sizes s_j starting at 0 on a link of capacity C, g's drain ends at T_g =
// sum_j min(s_j, s_g) / C. Completing j early with r_j bytes left is the exact run of the sizes
// s_j - r_j, so the window's end is T~_g = sum_j min(s_j - r_j, s_g - r_g) / C. Term by term the
// difference is >= 0 (never late), at most r_j / C when j was completed before g, r_g / C
// otherwise. The latter terms number the flows draining when g was completed at t (C / g's rate
// then), so they sum to at most e - t <= w/4 (e - 0) by (a); as e - t <= w/4 e and t = T~_g <= T_g,
// e <= T_g / (1 - w/4). The former sum to the bytes dropped on the link before t, over C, which (c)
// keeps within w/4 t <= w/4 T_g. Together T_g - T~_g <= w/4 (1 + 1 / (1 - w/4)) T_g < 0.51 w T_g.
// Beyond one link it is a measured figure, not a theorem, and no rule that saves solves can certify
// it from the rates it solves: (1) a merged solve skips sets of flows that the exact run passes
// through, and a flow's max-min rate in a skipped set is not bracketed by its rates in the solved
// ones (L1 cap 1 {f1, g}, L2 cap 1.5 {g, k}, L3 cap 1 {k, f2}: g gets 0.5 with all four, 1.0
// without f1, 0.75 without f1 and f2), so a sound certificate must allow an error of the order of
// g's rate over each merged span; summed over the batches g lives through, which cover its life
// when ends are dense, that allowance is g's whole duration whatever w; (2) starts cannot be
// foreseen: a flow that starts after f was completed early can slow f in the exact run by up to
// f's whole duration, and finds f's links emptier than the exact run does (it may end early by up
// to f's residual bytes / capacity, however short it is). The other
// half of w is the margin for networks, where a flow also feels the bytes dropped on its other
// links (an inter-node flow crosses its source's and its destination's NIC: w/4 + 2 x w/4 by the
// argument above, were each link alone); measured worst 0.68 w on a jittered 256-GPU all-to-all
// (README "Speed under skew"). epsim-simgrid-bench --window compares every flow of its cases with
// the exact run and exits 4 when one is outside w (CI runs it).
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

#include <array>
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
    std::uint64_t early = 0;           // flows the completion window completed before their drain ended
    std::int64_t peak_active = 0;      // most flows draining at once
  };

  // `links` gives every link's bandwidth (each > 0); routes index into it. Both must outlive this.
  // `replay`: reuse the timing of keyed transfers seen before (see above; off only to check).
  // `completion_window`: w above (0: exact, up to 1e-9).
  FlowNetwork(Simulator& sim, const std::vector<Link>& links, bool replay = true, double completion_window = 0.0);

  void start(Transfer transfer) override;
  const std::vector<LinkCounters>& counters() const override { return counters_; }
  std::string name() const override { return "flow"; }

  const Stats& stats() const { return stats_; }
  ReplayStats replay_stats() const override { return memo_.stats(); }
  std::optional<SolverWork> solver_work() const override;

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
  // The links of `route` that can limit it (the solver's view): the non-dominated ones, or all of them
  // if none is. Returns how many were written to `out`.
  std::size_t binding_links(const Route& route, std::array<Index, Route::kMaxHops>& out) const;
  // Window rule (c): whether f's links have room for `bytes` more dropped at time `t` (ps); charges
  // them if so.
  bool charge_budget(const Route& route, double bytes, double t);
  // Whether the flow atop link clock `c`, whose drain ends at `end` (ps), may complete early at `t`
  // (rules (a) to (c); charges its links' budgets when it may).
  bool early_ok(const LinkClock& c, const Tag& top, double end, double t);
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
  // The window's link budgets (rule (c) above; empty when exact): per link, the residual bytes dropped
  // by early completions since it was last idle, and the greatest over the flows that entered it since
  // of w/4 x C x start (s) - (dropped when it entered): the room left = w/4 x C x now - base - dropped.
  std::vector<double> dropped_;
  std::vector<double> budget_base_;
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
  bool entered_ = false;                // flows entered the solver since the last solve
  std::uint64_t next_seq_ = 0;
  std::int64_t active_ = 0;
  Time wake_at_ = Time::infinity();     // the pending wake-up, if any
  Stats stats_;
};

}  // namespace epsim
