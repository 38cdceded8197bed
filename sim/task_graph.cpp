#include "sim/task_graph.h"

#include "models/errors.h"

namespace epsim {

const char* to_string(Phase p) {
  switch (p) {
    case Phase::AttentionProj: return "attn_proj";
    case Phase::AttentionCore: return "attn_core";
    case Phase::TpComm: return "tp_comm";
    case Phase::Gate: return "gate";
    case Phase::Dispatch: return "dispatch";
    case Phase::Experts: return "experts";
    case Phase::SharedExpert: return "shared_expert";
    case Phase::Combine: return "combine";
    case Phase::DenseMlp: return "dense_mlp";
    case Phase::LmHead: return "lm_head";
    case Phase::Permute: return "permute";
    case Phase::CountExchange: return "count_exchange";
    case Phase::Unpermute: return "unpermute";
    case Phase::MtpProjection: return "mtp_proj";
    case Phase::WeightGrad: return "wgrad";
    case Phase::PipeSend: return "pp_send";
  }
  return "?";
}

bool is_comm(Phase p) {
  return p == Phase::Dispatch || p == Phase::Combine || p == Phase::TpComm || p == Phase::CountExchange || p == Phase::PipeSend;
}

TaskId TaskGraph::compute(int gpu, Phase phase, int layer, int mb, Time duration, OpName op) {
  tasks_.push_back(Task{TaskKind::Compute, phase, gpu, layer, mb, duration, -1, {}, 0});
  tasks_.back().op = op;
  return static_cast<TaskId>(tasks_.size() - 1);
}

TaskId TaskGraph::collective(int gpus, Phase phase, int layer, int mb, std::function<CommPlan()> make_plan,
                             std::function<std::uint64_t()> make_key) {
  return collective_on(0, gpus, phase, layer, mb, std::move(make_plan), std::move(make_key));
}

TaskId TaskGraph::collective_on(int first_gpu, int gpus, Phase phase, int layer, int mb, std::function<CommPlan()> make_plan,
                                std::function<std::uint64_t()> make_key, std::function<std::shared_ptr<const PairChunk>()> make_pairs) {
  const int c = static_cast<int>(collectives_.size());
  collectives_.push_back(CollectiveInfo{std::move(make_plan), std::move(make_key), std::move(make_pairs), CollectiveTraffic{}, first_gpu});
  tasks_.push_back(Task{TaskKind::Collective, phase, -1, layer, mb, Time::zero(), c, {}, 0});
  const auto id = static_cast<TaskId>(tasks_.size() - 1);
  collective_tasks_.push_back(id);
  std::vector<TaskId> arr(static_cast<std::size_t>(gpus));
  for (int g = 0; g < gpus; ++g) {
    tasks_.push_back(Task{TaskKind::Arrival, phase, first_gpu + g, layer, mb, Time::zero(), c, {}, 1});
    arr[static_cast<std::size_t>(g)] = static_cast<TaskId>(tasks_.size() - 1);
  }
  arrivals_.push_back(std::move(arr));
  return id;
}

TaskId TaskGraph::arrival(TaskId collective_task, int gpu) const {
  const Task& t = task(collective_task);
  if (t.kind != TaskKind::Collective) throw SimulationError("arrival() of a task that is not a collective");
  const int e = gpu - collectives_[static_cast<std::size_t>(t.collective)].first_gpu;
  const auto& arr = arrivals_[static_cast<std::size_t>(t.collective)];
  if (e < 0 || e >= static_cast<int>(arr.size())) throw SimulationError("arrival() of a GPU outside the collective");
  return arr[static_cast<std::size_t>(e)];
}

void TaskGraph::depend(TaskId before, TaskId after) {
  tasks_[static_cast<std::size_t>(before)].next.push_back(after);
  ++tasks_[static_cast<std::size_t>(after)].waiting;
}

}  // namespace epsim
