// The program of one simulated step: compute tasks on GPUs, collectives on the network, and the
// dependencies between them. Built by the step builder, run by the Executor, read by the metrics.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <utility>
#include <vector>

#include <boost/container/small_vector.hpp>

#include "models/layer_op.h"
#include "models/units.h"
#include "sim/comm_scheme.h"

namespace epsim {

using TaskId = std::int32_t;

// The coarse part of a layer a task belongs to (metrics and `epsim validate` sum tasks by it; a
// compute task's own op is Task::op): the attention block's ops (norms, projections, rope,
// residual) are AttentionProj but for the core; router, top-k and ffn_norm Gate; quant_dispatch
// and permute Permute; the routed experts' ops Experts; unpermute and ffn_residual Unpermute;
// a dense layer's MLP, norm and residual DenseMlp; final_norm and lm_head LmHead.
enum class Phase : std::uint8_t {
  AttentionProj, AttentionCore, TpComm, Gate, Dispatch, Experts, SharedExpert, Combine, DenseMlp, LmHead,
  Permute, CountExchange, Unpermute,  // network.dispatch_impl nccl | peer (models/dispatch_impl.h)
  MtpProjection,                      // the MTP module's input projection (workload.mtp_tokens)
  WeightGrad,                         // a layer's weight gradients, apart from its backward (parallelism.pp)
  PipeSend,                           // activations or gradients to the next pipeline stage
};
const char* to_string(Phase p);
bool is_comm(Phase p);

// What a task moves, shown in the trace. Compute: the op's FLOPs, HBM bytes and tokens (rows; a
// backward op twice its forward FLOPs and bytes). Arrival of a dispatch or combine: the routed
// (token, expert) pairs this GPU's experts receive (dispatch) or send back (combine) in it; its
// bytes on the wire come from CollectiveTraffic.
struct TaskWork {
  double flops = 0;
  std::int64_t bytes = 0;
  std::int64_t tokens = 0;
};

enum class TaskKind : std::uint8_t {
  Compute,     // runs `duration` on its GPU's compute stream
  Collective,  // starts its CommPlan on the network; its per-GPU parts are Arrival tasks
  Arrival,     // one GPU's part of a collective: done when all flows from and to it have arrived
};

struct Task {
  TaskKind kind;
  Phase phase;
  int gpu;          // -1 for a collective
  int layer;
  int micro_batch;
  Time duration;    // Compute only
  int collective = -1;  // Collective and Arrival: index into TaskGraph::plans
  boost::container::small_vector<TaskId, 2> next;  // most tasks have one or two successors: no allocation
  int waiting = 0;  // unfinished predecessors
  // Compute only: the share of its time bound by SMs (1: all; 0: HBM- or latency-bound), which the
  // SMs communication kernels hold slow down (Executor, SmSharing).
  double sm_bound = 1.0;
  Time start = Time::infinity();
  Time end = Time::infinity();
  TaskWork work = {};  // for the trace's slice args
  OpName op{};  // Compute: the op it runs (its trace slice's name)
};

struct PairChunk;  // sim/pair_traffic.h

// What a collective's plan carries (the same for every collective of one key).
struct CollectiveTraffic {
  std::int64_t flows = 0;
  Bytes bytes;              // all flows
  LinkId busiest_link = -1; // the link with the longest drain (bytes / bandwidth) in this collective
  Bytes busiest_bytes;
  // Per GPU (endpoint): bytes its flows sent and received, for the trace (null: no endpoints).
  std::shared_ptr<const std::vector<Bytes>> sent, received;
  // Bytes on each link it used, for the link timeline; dropped when the collective ends.
  std::shared_ptr<const std::vector<std::pair<LinkId, Bytes>>> links;
};

// A collective: how to make its plan, and what it carried, filled in when it starts.
struct CollectiveInfo {
  std::function<CommPlan()> make_plan;  // dropped when the collective ends
  // Equal keys promise equal plans (0 or empty: no key); lets the network replay a plan's timing.
  std::function<std::uint64_t()> make_key;
  // May be empty, or return null: make_plan's flows as a chunk of a matrix (no rounds), for a
  // network that prices them without listing them (sim/pair_traffic.h); dropped when it ends.
  std::function<std::shared_ptr<const PairChunk>()> make_pairs;
  CollectiveTraffic traffic;
  // Its GPUs are first_gpu .. first_gpu + arrivals - 1 (arrival e is GPU first_gpu + e); a flow with
  // one end outside them (a pipeline send: the sender does not wait) counts at its end inside only.
  int first_gpu = 0;
};

class TaskGraph {
 public:
  TaskId compute(int gpu, Phase phase, int layer, int mb, Time duration, OpName op = {});
  // Adds a collective and one Arrival task per GPU; returns the collective. The plan is made when
  // the collective starts and dropped when it ends, so a step never holds all its flows at once.
  TaskId collective(int gpus, Phase phase, int layer, int mb, std::function<CommPlan()> make_plan,
                    std::function<std::uint64_t()> make_key = {});
  // The same over GPUs first_gpu .. first_gpu + gpus - 1 (a pipeline stage).
  TaskId collective_on(int first_gpu, int gpus, Phase phase, int layer, int mb, std::function<CommPlan()> make_plan,
                       std::function<std::uint64_t()> make_key = {}, std::function<std::shared_ptr<const PairChunk>()> make_pairs = {});
  void depend(TaskId before, TaskId after);
  void reserve(std::size_t tasks) { tasks_.reserve(tasks); }

  std::vector<Task>& tasks() { return tasks_; }
  const std::vector<Task>& tasks() const { return tasks_; }
  const Task& task(TaskId id) const { return tasks_[static_cast<std::size_t>(id)]; }
  // GPU `gpu`'s arrival task of a collective (throws SimulationError for a GPU outside it).
  TaskId arrival(TaskId collective_task, int gpu) const;
  const std::vector<TaskId>& arrivals(int collective) const { return arrivals_[static_cast<std::size_t>(collective)]; }
  int collective_count() const { return static_cast<int>(collectives_.size()); }
  TaskId collective_task(int collective) const { return collective_tasks_[static_cast<std::size_t>(collective)]; }
  CollectiveInfo& info(int collective) { return collectives_[static_cast<std::size_t>(collective)]; }
  const CollectiveInfo& info(int collective) const { return collectives_[static_cast<std::size_t>(collective)]; }

 private:
  std::vector<Task> tasks_;
  std::vector<CollectiveInfo> collectives_;
  std::vector<TaskId> collective_tasks_;
  std::vector<std::vector<TaskId>> arrivals_;
};

}  // namespace epsim
