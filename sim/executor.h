// Runs a TaskGraph on the event engine: a task starts when its last predecessor ends; compute tasks
// take their duration, collectives hand their flows to the Network and finish each GPU's Arrival
// when every flow from and to that GPU has arrived. Start and end times are written into the graph.
//
// SM sharing: while a GPU takes part in a collective (from its start to that GPU's arrival), its
// communication kernels hold `comm_sms` of its `sms` SMs, and a compute task running meanwhile
// progresses at (sms - comm_sms) / sms of its full speed; a task only partly bound by SMs (Task::
// sm_bound = f) stretches by f of that: 1 / rate = 1 + f (sms / (sms - comm_sms) - 1). Its finish is re-planned whenever that
// rate changes; stale finish events are recognised by a per-task version and ignored.
#pragma once

#include <cstdint>
#include <unordered_map>
#include <vector>

#include "sim/network.h"
#include "sim/simulator.h"
#include "sim/task_graph.h"
#include "topology/link.h"

namespace epsim {

struct SmSharing {
  int sms = 132;
  int comm_sms = 0;  // 0: communication never slows compute
  double compute_rate() const { return static_cast<double>(sms - comm_sms) / sms; }
};

class Executor {
 public:
  // `links` (optional) lets each collective name its busiest link by drain time (bytes / bandwidth)
  // rather than by bytes.
  Executor(Simulator& sim, Network& net, TaskGraph& graph, SmSharing sm = {}, const std::vector<Link>* links = nullptr);
  // Runs to completion; returns the time the last task ended. Throws SimulationError if some task
  // never ran (a dependency cycle).
  Time run();

 private:
  struct GpuState {
    int comm_active = 0;          // collectives this GPU is part of right now
    TaskId running = -1;          // compute task in flight
    double remaining_ps = 0;      // its work left, in picoseconds at full speed
    Time since;                   // when remaining_ps was last brought up to date
    std::uint64_t version = 0;    // bumps on every re-plan
  };
  void ready(TaskId id);
  void finish(TaskId id);
  void start_collective(TaskId id);
  void fill(int collective, std::uint64_t key, Transfer& t);
  void start_compute(TaskId id);
  void set_comm(int gpu, int delta);
  void replan(int gpu);
  double rate(const GpuState& s) const;

  Simulator& sim_;
  Network& net_;
  TaskGraph& graph_;
  SmSharing sm_;
  const std::vector<Link>* links_;
  std::vector<GpuState> gpus_;
  // What a keyed plan carried (flows, bytes, busiest link), for collectives the network replays
  // without making their plan.
  std::unordered_map<std::uint64_t, CollectiveInfo> summaries_;
};

}  // namespace epsim
