#include "sim/critical_path.h"

#include <algorithm>

namespace epsim {

namespace {
std::vector<std::vector<TaskId>> predecessors(const TaskGraph& g) {
  std::vector<std::vector<TaskId>> pred(g.tasks().size());
  for (std::size_t i = 0; i < g.tasks().size(); ++i)
    for (TaskId n : g.tasks()[i].next) pred[static_cast<std::size_t>(n)].push_back(static_cast<TaskId>(i));
  // An arrival is released by its collective.
  for (int c = 0; c < g.collective_count(); ++c)
    for (TaskId a : g.arrivals(c)) pred[static_cast<std::size_t>(a)].push_back(g.collective_task(c));
  return pred;
}

TaskId latest(const TaskGraph& g, const std::vector<TaskId>& ids) {
  TaskId best = -1;
  for (TaskId id : ids)
    if (best < 0 || g.task(id).end > g.task(best).end || (g.task(id).end == g.task(best).end && id < best)) best = id;
  return best;
}
}  // namespace

CriticalPath critical_path(const TaskGraph& g, int gpus, int layers, const std::vector<char>* idle) {
  CriticalPath cp;
  cp.straggler_by_layer.assign(static_cast<std::size_t>(layers), -1);
  if (g.tasks().empty()) return cp;
  const auto pred = predecessors(g);
  std::vector<TaskId> all(g.tasks().size());
  for (std::size_t i = 0; i < all.size(); ++i) all[i] = static_cast<TaskId>(i);
  std::vector<Time> straggle(static_cast<std::size_t>(gpus));
  std::vector<Time> compute(static_cast<std::size_t>(gpus));
  std::vector<Time> per_layer(static_cast<std::size_t>(layers) + 1);
  Time longest_collective = Time::zero();

  for (TaskId t = latest(g, all); t >= 0;) {
    cp.tasks.push_back(t);
    const Task& task = g.task(t);
    const auto l = static_cast<std::size_t>(std::min(task.layer, layers));
    if (task.kind == TaskKind::Compute) {
      compute[static_cast<std::size_t>(task.gpu)] += task.end - task.start;
      per_layer[l] += task.end - task.start;
    }
    const auto& ps = pred[static_cast<std::size_t>(t)];
    const TaskId p = latest(g, ps);
    if (task.kind == TaskKind::Collective) {
      per_layer[l] += task.end - task.start;
      if (task.end - task.start > longest_collective) {
        longest_collective = task.end - task.start;
        cp.collective = task.collective;
      }
      if (p >= 0 && g.task(p).gpu >= 0) {
        double mean = 0;  // over the GPUs' own tasks (not the previous collective on the stream)
        int n = 0;
        for (TaskId q : ps)
          if (g.task(q).gpu >= 0 && !(idle && (*idle)[static_cast<std::size_t>(g.task(q).gpu)])) {
            mean += static_cast<double>(g.task(q).end.picoseconds());
            ++n;
          }
        mean /= std::max(n, 1);
        const Time wait = g.task(p).end - Time::ps(static_cast<std::int64_t>(mean));
        straggle[static_cast<std::size_t>(g.task(p).gpu)] += wait;
        cp.barrier_wait += wait;
        if (task.phase == Phase::Dispatch || task.phase == Phase::Combine || task.phase == Phase::CountExchange) cp.alltoall_wait += wait;
        if (l < static_cast<std::size_t>(layers) && wait > Time::zero()) cp.straggler_by_layer[l] = g.task(p).gpu;
      }
    }
    t = p;
  }
  std::reverse(cp.tasks.begin(), cp.tasks.end());
  const auto top = [](const std::vector<Time>& v) {
    return static_cast<int>(std::max_element(v.begin(), v.end()) - v.begin());
  };
  cp.straggle = straggle;
  cp.gpu = top(straggle);
  cp.gpu_straggle = straggle[static_cast<std::size_t>(cp.gpu)];
  if (cp.gpu_straggle <= Time::zero()) cp.gpu = top(compute);
  per_layer.pop_back();  // the LM head is not a layer
  cp.layer = per_layer.empty() ? -1 : top(per_layer);
  if (cp.layer >= 0) cp.layer_time = per_layer[static_cast<std::size_t>(cp.layer)];
  return cp;
}

}  // namespace epsim
