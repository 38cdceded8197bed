#include "sim/executor.h"

#include <cmath>
#include <memory>

#include "models/errors.h"

namespace epsim {

Executor::Executor(Simulator& sim, Network& net, TaskGraph& graph, SmSharing sm, const std::vector<Link>* links)
    : sim_(sim), net_(net), graph_(graph), sm_(sm), links_(links) {
  int gpus = 0;
  for (const Task& t : graph_.tasks()) gpus = std::max(gpus, t.gpu + 1);
  gpus_.resize(static_cast<std::size_t>(gpus));
}

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
    case TaskKind::Compute: start_compute(id); break;
    case TaskKind::Collective: start_collective(id); break;
    case TaskKind::Arrival: break;  // finished by its collective
  }
}

void Executor::finish(TaskId id) {
  Task& t = graph_.tasks()[static_cast<std::size_t>(id)];
  t.end = sim_.now();
  if (t.kind == TaskKind::Compute) gpus_[static_cast<std::size_t>(t.gpu)].running = -1;
  if (t.kind == TaskKind::Arrival) set_comm(t.gpu, -1);
  for (TaskId n : t.next)
    if (--graph_.tasks()[static_cast<std::size_t>(n)].waiting == 0) ready(n);
}

void Executor::start_compute(TaskId id) {
  const Task& t = graph_.task(id);
  GpuState& s = gpus_[static_cast<std::size_t>(t.gpu)];
  if (s.running >= 0) throw SimulationError("two compute tasks at once on one GPU's compute stream");
  s.running = id;
  s.remaining_ps = static_cast<double>(t.duration.picoseconds());
  s.since = sim_.now();
  replan(t.gpu);
}

// Brings the running task's remaining work up to now at the old rate (the caller changes the rate
// afterwards), then plans its finish at the current rate.
void Executor::replan(int gpu) {
  GpuState& s = gpus_[static_cast<std::size_t>(gpu)];
  if (s.running < 0) return;
  const std::uint64_t v = ++s.version;
  const TaskId id = s.running;
  const double left = s.remaining_ps / rate(s);
  sim_.after(Time::ps(static_cast<std::int64_t>(std::ceil(left))), [this, gpu, v, id] {
    GpuState& st = gpus_[static_cast<std::size_t>(gpu)];
    if (st.version != v || st.running != id) return;
    finish(id);
  });
}

double Executor::rate(const GpuState& s) const {
  if (s.comm_active == 0 || s.running < 0) return 1.0;
  const double f = graph_.task(s.running).sm_bound;
  if (f >= 1.0) return sm_.compute_rate();
  return 1.0 / (1.0 + f * (1.0 / sm_.compute_rate() - 1.0));
}

void Executor::set_comm(int gpu, int delta) {
  GpuState& s = gpus_[static_cast<std::size_t>(gpu)];
  const bool was = s.comm_active > 0;
  if (s.running >= 0) {
    s.remaining_ps -= static_cast<double>((sim_.now() - s.since).picoseconds()) * rate(s);
    if (s.remaining_ps < 0) s.remaining_ps = 0;
    s.since = sim_.now();
  }
  s.comm_active += delta;
  if (sm_.comm_sms > 0 && was != (s.comm_active > 0)) replan(gpu);
}

namespace {
void summarise(const CommPlan& plan, CollectiveInfo& info, std::size_t links, const std::vector<Link>* bw) {
  std::vector<std::int64_t> per_link(links, 0);
  info.flows = static_cast<std::int64_t>(plan.flows.size());
  for (const auto& f : plan.flows) {
    info.bytes += f.bytes;
    for (LinkId l : f.route) per_link[static_cast<std::size_t>(l)] += f.bytes.count();
  }
  double worst = 0;  // drain time in seconds (or bytes, without bandwidths)
  for (std::size_t l = 0; l < links; ++l) {
    const double load = static_cast<double>(per_link[l]) / (bw ? (*bw)[l].bandwidth.bytes_per_second() : 1.0);
    if (per_link[l] > 0 && load > worst) {
      worst = load;
      info.busiest_bytes = Bytes(per_link[l]);
      info.busiest_link = static_cast<LinkId>(l);
    }
  }
}
}  // namespace

void Executor::start_collective(TaskId id) {
  const int c = graph_.task(id).collective;
  CollectiveInfo& info = graph_.info(c);
  auto plan = std::make_shared<CommPlan>(info.make_plan());
  info.make_plan = nullptr;
  summarise(*plan, info, net_.counters().size(), links_);
  const auto& arrivals = graph_.arrivals(c);
  // Flows still in flight per GPU (sent or received); a GPU with none is done at once.
  auto pending = std::make_shared<std::vector<int>>(arrivals.size(), 0);
  for (std::size_t f = 0; f < plan->src.size(); ++f) {
    ++(*pending)[static_cast<std::size_t>(plan->src[f])];
    ++(*pending)[static_cast<std::size_t>(plan->dst[f])];
  }
  for (std::size_t g = 0; g < arrivals.size(); ++g) {
    graph_.tasks()[static_cast<std::size_t>(arrivals[g])].start = sim_.now();
    set_comm(static_cast<int>(g), +1);
  }
  for (std::size_t g = 0; g < arrivals.size(); ++g)
    if ((*pending)[g] == 0) finish(arrivals[g]);

  Transfer tr;
  tr.flows = std::move(plan->flows);  // the executor keeps only the endpoints
  tr.on_flow_done = [this, c, plan, pending](std::size_t f) {
    const auto& arr = graph_.arrivals(c);
    for (GpuId g : {plan->src[f], plan->dst[f]})
      if (--(*pending)[static_cast<std::size_t>(g)] == 0) finish(arr[static_cast<std::size_t>(g)]);
  };
  tr.on_done = [this, id] { finish(id); };
  net_.start(std::move(tr));
}

}  // namespace epsim
