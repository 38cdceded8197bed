#include "sim/pipeline_metrics.h"

#include <algorithm>

#include <fmt/format.h>

#include "sim/step_metrics.h"

namespace epsim {

namespace {
std::string layer_ranges(const PipelineRun& run, const std::vector<int>& stages) {
  std::vector<int> sorted = stages;
  std::sort(sorted.begin(), sorted.end());
  std::string out;
  for (int v : sorted) {
    const int a = run.stage_first_layer[static_cast<std::size_t>(v)], b = a + run.stage_layers(v) - 1;
    out += (out.empty() ? "" : ", ") + (a == b ? fmt::format("{}", a) : fmt::format("{}-{}", a, b));
  }
  return out;
}
}  // namespace

PipelineResult pipeline_metrics(const TaskGraph& graph, const PipelineRun& run, Time step) {
  const PipelineSchedule& s = run.schedule;
  PipelineResult out{s.name, s.ranks, s.micro_batches, s.stages, {}, Time::zero(), 0.0};
  const std::vector<int> peaks = peak_chunks_held(s);
  for (int r = 0; r < s.ranks; ++r) {
    PipelineRankResult rr;
    rr.rank = r;
    for (const PipeSlot& slot : s.slots[static_cast<std::size_t>(r)])
      if (std::find(rr.stages.begin(), rr.stages.end(), slot.chunk.stage) == rr.stages.end()) rr.stages.push_back(slot.chunk.stage);
    rr.layers = layer_ranges(run, rr.stages);
    const int first = r * run.gpus_per_rank, end = first + run.gpus_per_rank;
    std::vector<Interval> slots;
    for (const auto& [a, b] : run.slot_tasks[static_cast<std::size_t>(r)]) {
      Interval in{Time::infinity(), Time::zero()};
      for (TaskId id = a; id < b; ++id) {
        const Task& t = graph.task(id);
        if (t.kind == TaskKind::Collective || t.gpu < first || t.gpu >= end) continue;
        in.start = min(in.start, t.start);
        in.end = max(in.end, t.end);
      }
      if (in.end > in.start) slots.push_back(in);
    }
    rr.busy = uncovered(slots, {});
    rr.bubble = step - rr.busy;
    rr.bubble_fraction = rr.bubble.to_seconds() / step.to_seconds();
    rr.peak_chunks = peaks[static_cast<std::size_t>(r)];
    out.bubble = max(out.bubble, rr.bubble);
    out.per_rank.push_back(std::move(rr));
  }
  out.bubble_fraction = out.bubble.to_seconds() / step.to_seconds();
  return out;
}

}  // namespace epsim
