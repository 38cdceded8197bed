#include "sim/executor.h"

#include <algorithm>
#include <cmath>

#include "models/errors.h"
#include "sim/pair_traffic.h"

namespace epsim {

Executor::Executor(Simulator& sim, Network& net, TaskGraph& graph, SmSharing sm, const std::vector<Link>* links,
                   LinkTimeline* timeline)
    : sim_(sim), net_(net), graph_(graph), sm_(sm), links_(links), timeline_(timeline) {
  int gpus = 0;
  for (const Task& t : graph_.tasks()) gpus = std::max(gpus, t.gpu + 1);
  gpus_.resize(static_cast<std::size_t>(gpus));
  net_done_.assign(graph_.tasks().size(), 0);
  for (int c = 0; c < graph_.collective_count(); ++c)
    arrivals_left_.push_back(static_cast<std::int64_t>(graph_.arrivals(c).size()));
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
  if (t.kind == TaskKind::Arrival) --arrivals_left_[static_cast<std::size_t>(t.collective)];
  if (t.kind == TaskKind::Compute) {
    round_advance(t.gpu);
    gpus_[static_cast<std::size_t>(t.gpu)].running = -1;
    round_plan(t.gpu);
  }
  if (t.kind == TaskKind::Arrival) set_comm(t.gpu, -1);
  for (TaskId n : t.next)
    if (--graph_.tasks()[static_cast<std::size_t>(n)].waiting == 0) ready(n);
  if (t.kind == TaskKind::Arrival) collective_maybe_done(graph_.collective_task(t.collective));
}

void Executor::collective_maybe_done(TaskId id) {
  if (!net_done_[static_cast<std::size_t>(id)] || graph_.task(id).end != Time::infinity()) return;
  if (arrivals_left_[static_cast<std::size_t>(graph_.task(id).collective)] > 0) return;
  CollectiveInfo& info = graph_.info(graph_.task(id).collective);
  info.make_plan = nullptr;
  info.make_pairs = nullptr;
  if (timeline_ && info.traffic.links)
    for (const auto& [link, bytes] : *info.traffic.links) timeline_->add(link, graph_.task(id).start, sim_.now(), bytes);
  info.traffic.links.reset();
  finish(id);
}

void Executor::start_compute(TaskId id) {
  const Task& t = graph_.task(id);
  GpuState& s = gpus_[static_cast<std::size_t>(t.gpu)];
  if (s.running >= 0) throw SimulationError("two compute tasks at once on one GPU's compute stream");
  round_advance(t.gpu);
  s.running = id;
  s.remaining_ps = static_cast<double>(t.duration.picoseconds());
  s.since = sim_.now();
  replan(t.gpu);
  round_plan(t.gpu);
}

TaskId Executor::chained(TaskId id) const {
  const Task& t = graph_.task(id);
  if (t.next.size() != 1) return -1;
  const TaskId n = t.next.front();
  const Task& nt = graph_.task(n);
  return nt.kind == TaskKind::Compute && nt.gpu == t.gpu && nt.waiting == 1 ? n : -1;
}

void Executor::advance(int gpu) {
  GpuState& s = gpus_[static_cast<std::size_t>(gpu)];
  const Time now = sim_.now();
  while (s.running >= 0) {
    const double r = rate(s, s.running);
    const TaskId n = s.running == s.run_last ? -1 : chained(s.running);
    const Time end = s.since + Time::ceil_ps(s.remaining_ps / r);
    if (n < 0 || end > now) {
      s.remaining_ps -= static_cast<double>((now - s.since).picoseconds()) * r;
      if (s.remaining_ps < 0) s.remaining_ps = 0;
      s.since = now;
      return;
    }
    // A task inside a run ended before now: its only successor, the next op on this stream,
    // starts at that moment, as if its own event had fired.
    graph_.tasks()[static_cast<std::size_t>(s.running)].end = end;
    Task& next = graph_.tasks()[static_cast<std::size_t>(n)];
    next.waiting = 0;
    next.start = end;
    s.running = n;
    s.remaining_ps = static_cast<double>(next.duration.picoseconds());
    s.since = end;
  }
}

double Executor::round_rate(const GpuState& s, double stretch) const {
  if (s.running < 0) return 1.0;
  return 1.0 / (1.0 + stretch);
}

void Executor::round_advance(int gpu) {
  GpuState& s = gpus_[static_cast<std::size_t>(gpu)];
  if (s.round < 0) return;
  double elapsed = static_cast<double>((sim_.now() - s.round_since).picoseconds());
  const double fixed_rate = round_rate(s, sm_.fixed_stretch);
  const double fixed_done = std::min(s.fixed_left_ps, elapsed * fixed_rate);
  s.fixed_left_ps -= fixed_done;
  elapsed = std::max(0.0, elapsed - fixed_done / fixed_rate);
  s.round_left_ps -= elapsed * round_rate(s, sm_.round_stretch);
  if (s.round_left_ps < 0) s.round_left_ps = 0;
  s.round_since = sim_.now();
}

void Executor::round_plan(int gpu) {
  GpuState& s = gpus_[static_cast<std::size_t>(gpu)];
  if (s.round < 0) return;
  const std::uint64_t v = ++s.round_version;
  if (sm_.by_round && s.fixed_left_ps > 0) {
    // The fixed part ends first: from then on compute beside loses all of comm_sms (and HBM).
    sim_.after(Time::ceil_ps(s.fixed_left_ps / round_rate(s, sm_.fixed_stretch)), [this, gpu, v] {
      GpuState& st = gpus_[static_cast<std::size_t>(gpu)];
      if (st.round_version != v || st.round < 0) return;
      advance(gpu);
      round_advance(gpu);
      st.fixed_left_ps = 0;
      replan(gpu);
      round_plan(gpu);
    });
    return;
  }
  const double left = s.fixed_left_ps / round_rate(s, sm_.fixed_stretch) + s.round_left_ps / round_rate(s, sm_.round_stretch);
  sim_.after(Time::ceil_ps(left), [this, gpu, v] {
    GpuState& st = gpus_[static_cast<std::size_t>(gpu)];
    if (st.round_version != v || st.round < 0) return;
    const TaskId a = st.round;
    if (sm_.by_round) advance(gpu);
    st.round = -1;
    if (sm_.by_round) replan(gpu);
    if (net_done_[static_cast<std::size_t>(a)]) finish(a);
  });
}

void Executor::endpoint_done(TaskId arrival) {
  net_done_[static_cast<std::size_t>(arrival)] = 1;
  if (gpus_[static_cast<std::size_t>(graph_.task(arrival).gpu)].round != arrival) finish(arrival);
}

// Plans the end of the run in flight at the current rates (the caller has brought its work up to
// now): the running task's rest, then each chained task's duration at its own rate.
void Executor::replan(int gpu) {
  GpuState& s = gpus_[static_cast<std::size_t>(gpu)];
  if (s.running < 0) return;
  const std::uint64_t v = ++s.version;
  TaskId last = s.running;
  Time end = s.since + Time::ceil_ps(s.remaining_ps / rate(s, last));
  for (TaskId n = chained(last); n >= 0; n = chained(last)) {
    last = n;
    const double d = static_cast<double>(graph_.task(n).duration.picoseconds());
    end += Time::ceil_ps(d / rate(s, n));
  }
  s.run_last = last;
  sim_.at(end, [this, gpu, v, last] {
    GpuState& st = gpus_[static_cast<std::size_t>(gpu)];
    if (st.version != v) return;
    advance(gpu);
    if (st.running != last) throw SimulationError("a run of compute tasks ended on another task than planned");
    finish(last);
  });
}

bool Executor::interfering(const GpuState& s) const { return sm_.by_round ? s.round >= 0 : s.comm_active > 0; }

double Executor::rate(const GpuState& s, TaskId running) const {
  if (!interfering(s) || running < 0) return 1.0;
  const double f = sm_.every_kernel ? 1.0 : graph_.task(running).sm_bound;
  const bool fixed = sm_.by_round && s.fixed_left_ps > 0;  // no bytes move yet
  const double held = fixed ? sm_.fixed_sm_share * sm_.comm_sms : sm_.comm_sms;
  const double left = (sm_.sms - held) / sm_.sms;  // the compute's share of the SMs
  const double hbm = !fixed && sm_.hbm_share > 0 ? (1.0 - f) * sm_.hbm_share / (1.0 - sm_.hbm_share) : 0.0;
  if (f >= 1.0) return left;
  return 1.0 / (1.0 + f * (1.0 / left - 1.0) + hbm);
}

void Executor::set_comm(int gpu, int delta) {
  GpuState& s = gpus_[static_cast<std::size_t>(gpu)];
  const bool was = s.comm_active > 0;
  advance(gpu);
  s.comm_active += delta;
  if ((sm_.comm_sms > 0 || sm_.hbm_share > 0) && was != (s.comm_active > 0)) replan(gpu);
}

namespace {
// What a collective carried, from its bytes per link (`per_link`: every link, zero where unused).
void describe_links(const std::vector<std::int64_t>& per_link, const std::vector<Link>* bw, CollectiveTraffic& info) {
  double worst = 0;  // drain time in seconds (or bytes, without bandwidths)
  auto used = std::make_shared<std::vector<std::pair<LinkId, Bytes>>>();
  for (std::size_t l = 0; l < per_link.size(); ++l) {
    if (per_link[l] > 0) used->emplace_back(static_cast<LinkId>(l), Bytes(per_link[l]));
    const double load = static_cast<double>(per_link[l]) / (bw ? (*bw)[l].bandwidth.bytes_per_second() : 1.0);
    if (per_link[l] > 0 && load > worst) {
      worst = load;
      info.busiest_bytes = Bytes(per_link[l]);
      info.busiest_link = static_cast<LinkId>(l);
    }
  }
  info.links = std::move(used);
}

CollectiveTraffic summarise(const CommPlan& plan, std::size_t links, const std::vector<Link>* bw) {
  CollectiveTraffic info;
  std::vector<std::int64_t> per_link(links, 0);
  info.flows = static_cast<std::int64_t>(plan.flows.size());
  // Consecutive flows mostly share their first link (plans go source by source): its sum stays in
  // a register until the link changes (the same sums, without a store each flow waits on).
  LinkId first = -1;
  std::int64_t first_bytes = 0;
  for (const auto& f : plan.flows) {
    info.bytes += f.bytes;
    if (f.route.hops == 0) continue;
    if (f.route.link[0] != first) {
      if (first >= 0) per_link[static_cast<std::size_t>(first)] += first_bytes;
      first = f.route.link[0];
      first_bytes = 0;
    }
    first_bytes += f.bytes.count();
    for (std::size_t h = 1; h < f.route.hops; ++h) per_link[static_cast<std::size_t>(f.route.link[h])] += f.bytes.count();
  }
  if (first >= 0) per_link[static_cast<std::size_t>(first)] += first_bytes;
  describe_links(per_link, bw, info);
  if (!plan.src.empty()) {
    std::size_t endpoints = 0;
    for (std::size_t f = 0; f < plan.flows.size(); ++f)
      endpoints = std::max({endpoints, static_cast<std::size_t>(plan.src[f]) + 1, static_cast<std::size_t>(plan.dst[f]) + 1});
    auto sent = std::make_shared<std::vector<Bytes>>(endpoints), received = std::make_shared<std::vector<Bytes>>(endpoints);
    for (std::size_t f = 0; f < plan.flows.size(); ++f) {
      if (plan.src[f] == plan.dst[f]) continue;  // a GPU's rows to its own experts cross no link
      (*sent)[static_cast<std::size_t>(plan.src[f])] += plan.flows[f].bytes;
      (*received)[static_cast<std::size_t>(plan.dst[f])] += plan.flows[f].bytes;
    }
    info.sent = std::move(sent);
    info.received = std::move(received);
  }
  return info;
}

// The same from a chunk's tallies (the flows it would list: no pair to itself).
CollectiveTraffic summarise(const PairChunk& p, const std::vector<Link>* bw) {
  const ChunkedPairs& pairs = *p.pairs;
  const int c = p.chunk;
  CollectiveTraffic info;
  const ChunkedPairs::Tally total = pairs.total(c);
  info.flows = total.flows;
  info.bytes = p.token * total.tokens;
  std::vector<std::int64_t> per_link(pairs.link_count(), 0);
  for (std::size_t l = 0; l < per_link.size(); ++l) per_link[l] = pairs.link(static_cast<LinkId>(l), c).tokens * p.token.count();
  describe_links(per_link, bw, info);
  if (total.flows > 0) {
    std::size_t endpoints = 0;  // the highest GPU id with a flow, + 1
    for (std::size_t g = pairs.gpu_count(); g-- > 0 && endpoints == 0;)
      if (pairs.sent(static_cast<GpuId>(g), c).flows > 0 || pairs.received(static_cast<GpuId>(g), c).flows > 0) endpoints = g + 1;
    auto sent = std::make_shared<std::vector<Bytes>>(endpoints), received = std::make_shared<std::vector<Bytes>>(endpoints);
    for (std::size_t g = 0; g < endpoints; ++g) {
      (*sent)[g] = p.token * pairs.sent(static_cast<GpuId>(g), c).tokens;
      (*received)[g] = p.token * pairs.received(static_cast<GpuId>(g), c).tokens;
    }
    info.sent = std::move(sent);
    info.received = std::move(received);
  }
  return info;
}
}  // namespace

void Executor::start_collective(TaskId id) {
  const int c = graph_.task(id).collective;
  CollectiveInfo& info = graph_.info(c);
  const std::uint64_t key = info.make_key ? info.make_key() : 0;
  if (key != 0)
    if (auto it = summaries_.find(key); it != summaries_.end()) info.traffic = it->second;
  const auto& arrivals = graph_.arrivals(c);
  for (std::size_t g = 0; g < arrivals.size(); ++g) {
    Task& a = graph_.tasks()[static_cast<std::size_t>(arrivals[g])];
    a.start = sim_.now();
    set_comm(a.gpu, +1);
  }
  Transfer tr;
  tr.endpoints = static_cast<int>(arrivals.size());
  tr.key = key;
  tr.fill = [this, c, key](Transfer& t) { fill(c, key, t); };
  if (info.make_pairs) tr.fill_pairs = [this, c, key] { return fill_pairs(c, key); };
  tr.on_endpoint_done = [this, c](GpuId g) { endpoint_done(graph_.arrivals(c)[static_cast<std::size_t>(g)]); };
  tr.on_done = [this, id] {
    net_done_[static_cast<std::size_t>(id)] = 1;
    collective_maybe_done(id);
  };
  net_.start(std::move(tr));
}

// The chunk of a matrix the collective's flows are, for a network that prices it without its flows
// (null: none); its summary is the plan's.
std::shared_ptr<const PairChunk> Executor::fill_pairs(int collective, std::uint64_t key) {
  CollectiveInfo& info = graph_.info(collective);
  std::shared_ptr<const PairChunk> pairs = info.make_pairs();
  if (!pairs) return nullptr;
  info.traffic = summarise(*pairs, links_);
  if (key != 0) summaries_.emplace(key, info.traffic);
  return pairs;
}

// Makes the plan when the network needs its flows (always, unless it replays the key).
void Executor::fill(int collective, std::uint64_t key, Transfer& t) {
  CollectiveInfo& info = graph_.info(collective);
  CommPlan plan = info.make_plan();
  info.traffic = summarise(plan, net_.counters().size(), links_);
  if (key != 0) {
    // A replayed collective never makes its plan again: its rounds (executor work) would be lost.
    if (!plan.rounds.empty()) throw SimulationError("a keyed collective carries dispatch rounds: it cannot be replayed");
    summaries_.emplace(key, info.traffic);
  }
  const auto& arrivals = graph_.arrivals(collective);
  const int first = info.first_gpu;
  for (std::size_t g = 0; g < plan.rounds.size() && g < arrivals.size(); ++g) {
    if (plan.rounds[g].total() <= Time::zero()) continue;
    const int gpu = first + static_cast<int>(g);
    GpuState& s = gpus_[static_cast<std::size_t>(gpu)];
    if (sm_.by_round) advance(gpu);
    s.round = arrivals[g];
    s.fixed_left_ps = static_cast<double>(plan.rounds[g].fixed.picoseconds());
    s.round_left_ps = static_cast<double>(plan.rounds[g].moving.picoseconds());
    s.round_since = sim_.now();
    if (sm_.by_round) replan(gpu);
    round_plan(gpu);
  }
  t.flows = std::move(plan.flows);
  t.src = std::move(plan.src);
  t.dst = std::move(plan.dst);
  // GPU ids -> endpoints (the collective's arrivals); an end outside them counts at the other end.
  const auto n = static_cast<GpuId>(arrivals.size());
  if (first != 0 || static_cast<GpuId>(gpus_.size()) != n)
    for (std::size_t f = 0; f < t.src.size(); ++f) {
      const GpuId s = t.src[f] - first, d = t.dst[f] - first;
      const bool s_in = s >= 0 && s < n, d_in = d >= 0 && d < n;
      if (!s_in && !d_in) throw SimulationError("a collective's flow has neither end among its GPUs");
      t.src[f] = s_in ? s : d;
      t.dst[f] = d_in ? d : s;
    }
}

}  // namespace epsim
