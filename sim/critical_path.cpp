#include "sim/critical_path.h"

#include <algorithm>
#include <span>

namespace epsim {

namespace {
// Every task's predecessors, flat: those of task i are ids[offsets[i] .. offsets[i + 1]).
struct Predecessors {
  std::vector<std::size_t> offsets;
  std::vector<TaskId> ids;
  std::span<const TaskId> of(TaskId t) const {
    const auto i = static_cast<std::size_t>(t);
    return {ids.data() + offsets[i], offsets[i + 1] - offsets[i]};
  }
};

Predecessors predecessors(const TaskGraph& g) {
  const std::size_t n = g.tasks().size();
  Predecessors p;
  p.offsets.assign(n + 1, 0);
  auto each = [&](auto&& edge) {
    for (std::size_t i = 0; i < n; ++i)
      for (TaskId next : g.tasks()[i].next) edge(static_cast<TaskId>(i), next);
    // An arrival is released by its collective.
    for (int c = 0; c < g.collective_count(); ++c)
      for (TaskId a : g.arrivals(c)) edge(g.collective_task(c), a);
  };
  each([&](TaskId, TaskId to) { ++p.offsets[static_cast<std::size_t>(to) + 1]; });
  for (std::size_t i = 0; i < n; ++i) p.offsets[i + 1] += p.offsets[i];
  p.ids.resize(p.offsets[n]);
  std::vector<std::size_t> fill(p.offsets.begin(), p.offsets.end() - 1);
  each([&](TaskId from, TaskId to) { p.ids[fill[static_cast<std::size_t>(to)]++] = from; });
  return p;
}

TaskId latest(const TaskGraph& g, std::span<const TaskId> ids) {
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
    const auto ps = pred.of(t);
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
        const Time wait = g.task(p).end - Time::ps(checked_int64(mean, "mean end (ps) -> Time"));
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
