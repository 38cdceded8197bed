#include "sim/step_metrics.h"

#include <algorithm>

namespace epsim {

namespace {
std::vector<Interval> merged(std::vector<Interval> v) {
  std::sort(v.begin(), v.end(), [](const Interval& x, const Interval& y) { return x.start < y.start; });
  std::vector<Interval> out;
  for (const auto& i : v) {
    if (i.end <= i.start) continue;
    if (!out.empty() && i.start <= out.back().end) out.back().end = max(out.back().end, i.end);
    else out.push_back(i);
  }
  return out;
}
}  // namespace

Time uncovered(std::vector<Interval> a, std::vector<Interval> b) {
  a = merged(std::move(a));
  b = merged(std::move(b));
  Time total = Time::zero();
  std::size_t j = 0;
  for (const auto& i : a) {
    Time cursor = i.start;
    while (j < b.size() && b[j].end <= cursor) ++j;
    for (std::size_t k = j; k < b.size() && b[k].start < i.end; ++k) {
      if (b[k].start > cursor) total += b[k].start - cursor;
      cursor = max(cursor, b[k].end);
      if (cursor >= i.end) break;
    }
    if (cursor < i.end) total += i.end - cursor;
  }
  return total;
}

void collect_metrics(const TaskGraph& graph, const std::vector<LayerLoad>& loads, int layers, StepResult& r) {
  const int G = r.gpus;
  const auto L = static_cast<std::size_t>(layers) + 1;  // + the LM head's pseudo-layer
  const auto idx = [G](std::size_t l, int g) { return l * static_cast<std::size_t>(G) + static_cast<std::size_t>(g); };
  std::vector<std::vector<Interval>> compute(L * static_cast<std::size_t>(G)), comm(L * static_cast<std::size_t>(G));
  std::vector<Time> busy(L * static_cast<std::size_t>(G));
  r.layers.assign(L - 1, LayerResult{});
  for (std::size_t l = 0; l + 1 < L; ++l) {
    r.layers[l].layer = static_cast<int>(l);
    r.layers[l].start = Time::infinity();
  }
  for (const Task& t : graph.tasks()) {
    const auto l = static_cast<std::size_t>(t.layer);
    if (l + 1 < L) {
      LayerResult& lr = r.layers[l];
      lr.start = min(lr.start, t.start);
      lr.end = max(lr.end, t.end);
    }
    switch (t.kind) {
      case TaskKind::Compute:
        compute[idx(l, t.gpu)].push_back({t.start, t.end});
        busy[idx(l, t.gpu)] += t.end - t.start;
        break;
      case TaskKind::Arrival: comm[idx(l, t.gpu)].push_back({t.start, t.end}); break;
      case TaskKind::Collective: {
        if (l + 1 >= L) break;
        LayerResult& lr = r.layers[l];
        const Time d = t.end - t.start;
        if (t.phase == Phase::Dispatch) {
          lr.dispatch += d;
          const CollectiveInfo& info = graph.info(t.collective);
          if (info.traffic.busiest_bytes > lr.busiest_link_bytes) {
            lr.busiest_link_bytes = info.traffic.busiest_bytes;
            lr.busiest_link = info.traffic.busiest_link;
          }
        } else if (t.phase == Phase::CountExchange) {
          lr.dispatch += d;  // the count exchange before the dispatch rounds (dispatch_impl nccl | peer)
        } else if (t.phase == Phase::Combine) {
          lr.combine += d;
        } else {
          lr.tp_comm += d;
        }
        break;
      }
    }
  }
  r.per_gpu.assign(static_cast<std::size_t>(G), GpuResult{});
  for (std::size_t l = 0; l < L; ++l) {
    Time exposed_sum = Time::zero(), busy_sum = Time::zero();
    for (int g = 0; g < G; ++g) {
      const Time exposed = uncovered(comm[idx(l, g)], compute[idx(l, g)]);
      GpuResult& gr = r.per_gpu[static_cast<std::size_t>(g)];
      gr.compute_busy += busy[idx(l, g)];
      gr.exposed_comm += exposed;
      gr.comm_busy += uncovered(comm[idx(l, g)], {});
      if (l + 1 < L) {
        LayerResult& lr = r.layers[l];
        lr.compute_max = max(lr.compute_max, busy[idx(l, g)]);
        lr.exposed_comm_max = max(lr.exposed_comm_max, exposed);
        lr.compute_by_gpu.push_back(busy[idx(l, g)]);
        lr.exposed_comm_by_gpu.push_back(exposed);
      }
      exposed_sum += exposed;
      busy_sum += busy[idx(l, g)];
    }
    if (l + 1 < L) {
      r.layers[l].exposed_comm_mean = Time::ps(exposed_sum.picoseconds() / G);
      r.layers[l].compute_mean = Time::ps(busy_sum.picoseconds() / G);
    }
  }
  for (std::size_t l = 0; l + 1 < L; ++l) {
    const LayerLoad& load = loads[l];
    LayerResult& lr = r.layers[l];
    lr.moe = !load.per_gpu.empty();
    if (!lr.moe) continue;
    lr.expert_tokens_by_gpu = load.per_gpu;
    lr.expert_tokens_max = load.max();
    lr.expert_tokens_mean = load.mean();
    lr.expert_tokens_max_gpu = load.first_gpu + static_cast<int>(std::max_element(load.per_gpu.begin(), load.per_gpu.end()) - load.per_gpu.begin());
  }
}

}  // namespace epsim
