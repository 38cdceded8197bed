#include "sim/executor.h"

#include <memory>

#include "models/errors.h"

namespace epsim {

Time Executor::run() {
  auto& tasks = graph_.tasks();
  for (std::size_t i = 0; i < tasks.size(); ++i)
    if (tasks[i].waiting == 0) {
      const auto id = static_cast<TaskId>(i);
      sim_.at(sim_.now(), [this, id] { ready(id); });
    }
  sim_.run();
  Time last = Time::zero();
  for (const auto& t : tasks) {
    if (t.end == Time::infinity()) throw SimulationError("task graph has a cycle: a task never ran");
    last = max(last, t.end);
  }
  return last;
}

void Executor::ready(TaskId id) {
  Task& t = graph_.tasks()[static_cast<std::size_t>(id)];
  t.start = sim_.now();
  switch (t.kind) {
    case TaskKind::Compute: sim_.after(t.duration, [this, id] { finish(id); }); break;
    case TaskKind::Collective: start_collective(id); break;
    case TaskKind::Arrival: break;  // finished by its collective
  }
}

void Executor::finish(TaskId id) {
  Task& t = graph_.tasks()[static_cast<std::size_t>(id)];
  t.end = sim_.now();
  for (TaskId n : t.next)
    if (--graph_.tasks()[static_cast<std::size_t>(n)].waiting == 0) ready(n);
}

namespace {
void summarise(const CommPlan& plan, CollectiveInfo& info, std::size_t links) {
  std::vector<std::int64_t> per_link(links, 0);
  info.flows = static_cast<std::int64_t>(plan.flows.size());
  for (const auto& f : plan.flows) {
    info.bytes += f.bytes;
    for (LinkId l : f.route) per_link[static_cast<std::size_t>(l)] += f.bytes.count();
  }
  for (std::size_t l = 0; l < links; ++l)
    if (per_link[l] > info.busiest_bytes.count()) {
      info.busiest_bytes = Bytes(per_link[l]);
      info.busiest_link = static_cast<LinkId>(l);
    }
}
}  // namespace

void Executor::start_collective(TaskId id) {
  const int c = graph_.task(id).collective;
  CollectiveInfo& info = graph_.info(c);
  auto plan = std::make_shared<const CommPlan>(info.make_plan());
  info.make_plan = nullptr;
  summarise(*plan, info, net_.counters().size());
  const auto& arrivals = graph_.arrivals(c);
  // Flows still in flight per GPU (sent or received); a GPU with none is done at once.
  auto pending = std::make_shared<std::vector<int>>(arrivals.size(), 0);
  for (std::size_t f = 0; f < plan->flows.size(); ++f) {
    ++(*pending)[static_cast<std::size_t>(plan->src[f])];
    ++(*pending)[static_cast<std::size_t>(plan->dst[f])];
  }
  for (TaskId a : arrivals) graph_.tasks()[static_cast<std::size_t>(a)].start = sim_.now();
  for (std::size_t g = 0; g < arrivals.size(); ++g)
    if ((*pending)[g] == 0) finish(arrivals[g]);

  Transfer tr;
  tr.flows = plan->flows;
  tr.on_flow_done = [this, c, plan, pending](std::size_t f) {
    const auto& arr = graph_.arrivals(c);
    for (GpuId g : {plan->src[f], plan->dst[f]})
      if (--(*pending)[static_cast<std::size_t>(g)] == 0) finish(arr[static_cast<std::size_t>(g)]);
  };
  tr.on_done = [this, id] { finish(id); };
  net_.start(std::move(tr));
}

}  // namespace epsim
