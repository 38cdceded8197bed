// Runs a TaskGraph on the event engine: a task starts when its last predecessor ends; compute tasks
// take their duration, collectives hand their flows to the Network and finish each GPU's Arrival
// when every flow from and to that GPU has arrived. Start and end times are written into the graph.
//
// SM sharing: while a GPU takes part in a collective (from its start to that GPU's arrival), its
// communication kernels hold `comm_sms` of its `sms` SMs, and a compute task running meanwhile
// progresses at (sms - comm_sms) / sms of its full speed; a task only partly bound by SMs (Task::
// sm_bound = f) stretches by f of that, and its HBM-bound rest by the HBM share the collective's
// traffic takes: 1 / rate = 1 + f (sms / (sms - comm_sms) - 1) + (1 - f) hbm_share / (1 - hbm_share).
// A collective with rounds (CommPlan::rounds, the dispatch implementation's own work on each GPU)
// slows compute only while that GPU's round runs: during its fixed part by fixed_sm_share x
// comm_sms SMs, during its moving part by comm_sms SMs and hbm_share (with every_kernel, each
// kernel by the SMs' share, sm_bound taken as 1). The other way, a round is slowed while that GPU
// runs any compute task (HBM-bound ones included: they contend too): first the round's fixed part
// (latency, per-piece cost: host and proxy work) at 1 / (1 + fixed_stretch), then its moving part
// (the bytes) at 1 / (1 + round_stretch). A GPU's part of a collective ends when its flows and its
// round are both done. Finishes are re-planned whenever a rate changes; stale finish events
// are recognised by a per-GPU version and ignored.
//
// Runs: a compute task whose only successor is the next task on its GPU's compute stream, which
// waits for nothing else, hands over to it without an event of its own: one event plans the end
// of the whole run (each task at its own rate), and the boundaries inside it are written when the
// run's work is brought up to date (a rate change, the run's end). Start and end times are those
// one event per task would give; a layer's dozens of ops cost a few events.
#pragma once

#include <cstdint>
#include <unordered_map>
#include <vector>

#include "sim/link_timeline.h"
#include "sim/network.h"
#include "sim/simulator.h"
#include "sim/task_graph.h"
#include "topology/link.h"

namespace epsim {

struct SmSharing {
  int sms = 132;
  int comm_sms = 0;        // 0: communication never slows compute through SMs
  double hbm_share = 0;    // share of HBM bandwidth a collective takes from compute bound by HBM
  double round_stretch = 0;  // a round's moving part (CommPlan::rounds) progresses at 1 / (1 + this) while its GPU computes
  double fixed_stretch = 0;  // its fixed part at 1 / (1 + this)
  // Collectives with rounds (network.dispatch_impl nccl, peer; see above):
  bool by_round = false;      // compute is slowed only while its GPU's own round runs
  double fixed_sm_share = 1;  // share of comm_sms held during the round's fixed part (no HBM share then)
  bool every_kernel = false;  // every kernel loses the held SMs' share (Task::sm_bound taken as 1)
};

class Executor {
 public:
  // `links` (optional) lets each collective name its busiest link by drain time (bytes / bandwidth)
  // rather than by bytes. `timeline` (optional) receives each collective's bytes per link over its
  // lifetime when it ends.
  Executor(Simulator& sim, Network& net, TaskGraph& graph, SmSharing sm = {}, const std::vector<Link>* links = nullptr,
           LinkTimeline* timeline = nullptr);
  // Runs to completion; returns the time the last task ended. Throws SimulationError if some task
  // never ran (a dependency cycle).
  Time run();

 private:
  struct GpuState {
    int comm_active = 0;          // collectives this GPU is part of right now
    TaskId running = -1;          // compute task in flight
    TaskId run_last = -1;         // the last task of its run, as last planned
    double remaining_ps = 0;      // its work left, in picoseconds at full speed
    Time since;                   // when remaining_ps was last brought up to date
    std::uint64_t version = 0;    // bumps on every re-plan
    TaskId round = -1;            // arrival whose round is in flight
    double fixed_left_ps = 0;     // its fixed part left at full speed (done first)
    double round_left_ps = 0;     // its moving part left at full speed
    Time round_since;
    std::uint64_t round_version = 0;
  };
  void ready(TaskId id);
  void finish(TaskId id);
  void start_collective(TaskId id);
  void fill(int collective, std::uint64_t key, Transfer& t);
  std::shared_ptr<const PairChunk> fill_pairs(int collective, std::uint64_t key);
  void start_compute(TaskId id);
  void set_comm(int gpu, int delta);
  void replan(int gpu);
  // Brings the run in flight up to now: tasks of the run that ended meanwhile get their end, the
  // next one its start; the running task's work left is reduced at its rate.
  void advance(int gpu);
  // The next task of a run after `id`, or -1 (see above).
  TaskId chained(TaskId id) const;
  double rate(const GpuState& s, TaskId running) const;
  bool interfering(const GpuState& s) const;
  double round_rate(const GpuState& s, double stretch) const;
  void round_advance(int gpu);  // brings the round's work left up to now at its current rate
  void round_plan(int gpu);     // plans its end at the current rate
  void endpoint_done(TaskId arrival);
  std::vector<char> net_done_;  // per task: an arrival whose flows are done, a collective whose transfer is
  // A collective ends when its transfer and every GPU's part (flows and round) have ended.
  void collective_maybe_done(TaskId collective);
  std::vector<std::int64_t> arrivals_left_;  // per collective index: its arrivals not yet finished

  Simulator& sim_;
  Network& net_;
  TaskGraph& graph_;
  SmSharing sm_;
  const std::vector<Link>* links_;
  LinkTimeline* timeline_;
  std::vector<GpuState> gpus_;
  // What a keyed plan carried (flows, bytes, busiest link), for collectives the network replays
  // without making their plan.
  std::unordered_map<std::uint64_t, CollectiveTraffic> summaries_;
};

}  // namespace epsim
