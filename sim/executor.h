// Runs a TaskGraph on the event engine: a task starts when its last predecessor ends; compute tasks
// take their duration, collectives hand their flows to the Network and finish each GPU's Arrival
// when every flow from and to that GPU has arrived. Start and end times are written into the graph.
#pragma once

#include "sim/network.h"
#include "sim/simulator.h"
#include "sim/task_graph.h"

namespace epsim {

class Executor {
 public:
  Executor(Simulator& sim, Network& net, TaskGraph& graph) : sim_(sim), net_(net), graph_(graph) {}
  // Runs to completion; returns the time the last task ended. Throws SimulationError if some task
  // never ran (a dependency cycle).
  Time run();

 private:
  void ready(TaskId id);
  void finish(TaskId id);
  void start_collective(TaskId id);
  Simulator& sim_;
  Network& net_;
  TaskGraph& graph_;
};

}  // namespace epsim
