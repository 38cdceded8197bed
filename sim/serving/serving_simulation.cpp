#include "sim/serving/serving_simulation.h"

#include <algorithm>
#include <cmath>
#include <deque>
#include <memory>

#include <fmt/format.h>

#include "models/errors.h"
#include "sim/network.h"
#include "sim/simulation.h"
#include "sim/simulator.h"
#include "topology/cluster.h"

namespace epsim::serving {

namespace {

class Engine {
 public:
  Engine(const Deployment& d, const std::vector<Request>& requests, const std::vector<StepPricer*>& pricers);
  ServingResult run();

 private:
  void arrive(int q);
  void prefilled(int q);
  void try_handoffs();
  void start_transfer(int q);
  void finished(int q);
  void change_in_system(int delta);
  void sample_kv();
  void produced(double tokens);
  PoolInstance& least_loaded(std::size_t pool);

  const Deployment& d_;
  Simulator sim_;
  std::vector<RequestState> reqs_;
  std::vector<std::vector<std::unique_ptr<PoolInstance>>> instances_;  // per pool
  std::unique_ptr<Cluster> fabric_;                                    // disaggregated: every pool's nodes
  std::unique_ptr<Network> net_;
  std::deque<int> handoff_;  // prefilled, waiting for a decode rank
  int open_ = 0;             // requests not finished
  // Little's law: requests in the system, integrated over [first arrival, last arrival].
  int in_system_ = 0;
  double area_ = 0;  // request-seconds
  Time last_change_, first_arrival_, last_arrival_;
  // KV samples, every sample_every_ while requests are open.
  Time sample_every_;
  std::vector<std::vector<KvSample>> kv_;
  Time window_start_, window_end_;  // the middle of the arrivals (10th to 90th percentile)
  double window_tokens_ = 0;
};

Engine::Engine(const Deployment& d, const std::vector<Request>& requests, const std::vector<StepPricer*>& pricers) : d_(d) {
  if (requests.empty()) throw ConfigError("serving.requests", "0", "must be >= 1");
  if (pricers.size() != d.pools.size()) throw SimulationError("serving: one step pricer per pool");
  const ServingSpec& spec = d.spec;
  for (const Request& r : requests) {
    if (r.id != static_cast<int>(reqs_.size())) throw SimulationError("serving: request ids must be 0, 1, ... in order");
    RequestState s;
    s.req = r;
    s.cached = std::min(static_cast<std::int64_t>(std::floor(static_cast<double>(r.input) * spec.prefix_hit)), r.input - 1);
    for (const PoolPlan& p : d.pools) {
      const std::int64_t need = p.setup.role == Role::Prefill ? r.input : r.input + r.output;
      if (need > p.setup.rank_kv_tokens)
        throw ConfigError("serving.kv_memory_fraction", fmt::format("{}", spec.kv_memory_fraction),
                          fmt::format("request {} needs {} KV tokens (prompt {} + output {}), a DP rank of the {} pool holds {} "
                                      "({:.2f} GB of KV per GPU at {:.0f} bytes per token)",
                                      r.id, need, r.input, p.setup.role == Role::Prefill ? 0 : r.output, p.name,
                                      p.setup.rank_kv_tokens, p.budget.kv.to_gb(), p.budget.bytes_per_token));
    }
    reqs_.push_back(s);
  }
  for (std::size_t i = 0; i < d.pools.size(); ++i) {
    const PoolPlan& p = d.pools[i];
    PoolInstance::Hooks hooks;
    hooks.prefilled = [this](int q) { prefilled(q); };
    hooks.finished = [this](int q) { finished(q); };
    hooks.freed = [this] { try_handoffs(); };
    hooks.produced = [this](double tokens) { produced(tokens); };
    instances_.emplace_back();
    for (int k = 0; k < p.instances; ++k)
      instances_.back().push_back(std::make_unique<PoolInstance>(p.setup, k, *pricers[i], sim_, reqs_, hooks));
  }
  if (spec.disaggregated) {
    ClusterSpec fabric = d.pools.back().scenario.cluster;
    fabric.nodes = d.nodes();
    fabric.kernel_rate = Bandwidth();
    fabric_ = std::make_unique<Cluster>(fabric);
    net_ = make_network(d.pools.back().scenario.network, sim_, *fabric_);
  }
  first_arrival_ = last_arrival_ = requests.front().arrival;
  for (const Request& r : requests) {
    first_arrival_ = min(first_arrival_, r.arrival);
    last_arrival_ = max(last_arrival_, r.arrival);
  }
  last_change_ = first_arrival_;
  std::vector<Time> arrivals;
  for (const Request& r : requests) arrivals.push_back(r.arrival);
  std::sort(arrivals.begin(), arrivals.end());
  window_start_ = arrivals[arrivals.size() / 10];
  window_end_ = arrivals[arrivals.size() * 9 / 10];
  const Time span = last_arrival_ - first_arrival_;
  sample_every_ = max(Time::ms(1), Time::ps(span.picoseconds() / 500));
  kv_.resize(d.pools.size());
}

PoolInstance& Engine::least_loaded(std::size_t pool) {
  PoolInstance* best = nullptr;
  for (auto& inst : instances_[pool])
    if (!best || inst->load() < best->load()) best = inst.get();
  return *best;
}

void Engine::change_in_system(int delta) {
  const Time now = sim_.now();
  if (last_change_ < last_arrival_) {
    const Time until = min(now, last_arrival_);
    area_ += static_cast<double>(in_system_) * (until - last_change_).to_seconds();
  }
  last_change_ = now;
  in_system_ += delta;
}

void Engine::arrive(int q) {
  change_in_system(+1);
  least_loaded(0).arrive(q);
}

void Engine::prefilled(int q) {
  RequestState& s = reqs_[static_cast<std::size_t>(q)];
  if (s.req.output == 1) {
    s.finish = sim_.now();
    instances_[0][static_cast<std::size_t>(s.instance)]->release(q);
    finished(q);
    return;
  }
  handoff_.push_back(q);
  try_handoffs();
}

void Engine::try_handoffs() {
  while (!handoff_.empty()) {
    const int q = handoff_.front();
    const RequestState& s = reqs_[static_cast<std::size_t>(q)];
    const std::int64_t need = s.req.input + s.req.output;
    // Decode instances by load (then index); the first with a rank that has room.
    std::vector<PoolInstance*> order;
    for (auto& inst : instances_[1]) order.push_back(inst.get());
    std::stable_sort(order.begin(), order.end(), [](const PoolInstance* a, const PoolInstance* b) { return a->load() < b->load(); });
    PoolInstance* target = nullptr;
    int rank = -1;
    for (PoolInstance* inst : order)
      if ((rank = inst->pick_rank(need)) >= 0) {
        target = inst;
        break;
      }
    if (!target) return;
    handoff_.pop_front();
    target->reserve(q, rank);
    start_transfer(q);
  }
}

// The KV of the request's prompt, from every GPU of its prefill rank to every GPU of its decode
// rank: each decode GPU receives its share (prompt x bytes per token there), an equal part from
// each prefill GPU.
void Engine::start_transfer(int q) {
  RequestState& s = reqs_[static_cast<std::size_t>(q)];
  s.transfer_start = sim_.now();
  const PoolPlan& pre = d_.pools[0];
  const PoolPlan& dec = d_.pools[1];
  Transfer t;
  const auto per_dst = static_cast<std::int64_t>(std::llround(static_cast<double>(s.prefilled) * dec.budget.bytes_per_token));
  for (int j = 0; j < dec.setup.tp; ++j) {
    const GpuId dst = dec.gpu(s.decode_instance, s.decode_rank, j);
    for (int i = 0; i < pre.setup.tp; ++i) {
      const GpuId src = pre.gpu(s.instance, s.rank, i);
      const std::int64_t part = per_dst / pre.setup.tp + (i == 0 ? per_dst % pre.setup.tp : 0);
      t.flows.push_back({fabric_->route(src, dst), Bytes(part)});
    }
  }
  t.on_done = [this, q] {
    RequestState& r = reqs_[static_cast<std::size_t>(q)];
    r.transfer_end = sim_.now();
    instances_[0][static_cast<std::size_t>(r.instance)]->release(q);
    instances_[1][static_cast<std::size_t>(r.decode_instance)]->kv_arrived(q);
  };
  net_->start(std::move(t));
}

void Engine::produced(double tokens) {
  if (sim_.now() >= window_start_ && sim_.now() <= window_end_) window_tokens_ += tokens;
}

void Engine::finished(int /*q*/) {
  change_in_system(-1);
  --open_;
}

void Engine::sample_kv() {
  for (std::size_t i = 0; i < d_.pools.size(); ++i) {
    const PoolPlan& p = d_.pools[i];
    double tokens = 0, share = 0;
    for (const auto& inst : instances_[i]) {
      tokens += inst->kv_tokens();
      share = std::max(share, inst->max_rank_kv_share());
    }
    kv_[i].push_back({sim_.now(), tokens * p.budget.bytes_per_token / static_cast<double>(p.gpus()) * 1e-9, share});
  }
  if (open_ > 0) sim_.after(sample_every_, [this] { sample_kv(); });
}

ServingResult Engine::run() {
  open_ = static_cast<int>(reqs_.size());
  for (const RequestState& s : reqs_) sim_.at(s.req.arrival, [this, q = s.req.id] { arrive(q); });
  sim_.at(first_arrival_, [this] { sample_kv(); });
  sim_.run();
  if (open_ != 0) throw SimulationError(fmt::format("serving: {} requests never finished", open_));
  change_in_system(0);

  ServingResult r;
  r.requests = reqs_;
  r.gpus = d_.gpus();
  r.nodes = d_.nodes();
  r.first_arrival = first_arrival_;
  r.last_arrival = last_arrival_;
  for (const RequestState& s : reqs_) r.end = max(r.end, s.finish);
  const double span = (last_arrival_ - first_arrival_).to_seconds();
  r.mean_in_system = span > 0 ? area_ / span : 0.0;
  r.nominal_rate = d_.spec.arrivals == Arrivals::Poisson ? d_.spec.rate : 0.0;
  r.window_tokens = window_tokens_;
  r.window_start = window_start_;
  r.window_end = window_end_;
  for (std::size_t i = 0; i < d_.pools.size(); ++i) {
    const PoolPlan& p = d_.pools[i];
    PoolResult pr;
    pr.name = p.name;
    pr.instances = p.instances;
    pr.nodes = p.instances * p.nodes;
    pr.gpus = p.gpus();
    pr.ranks = p.instances * p.setup.ranks();
    pr.rank_kv_tokens = static_cast<double>(p.setup.rank_kv_tokens);
    for (const auto& inst : instances_[i]) {
      const InstanceStats& s = inst->stats();
      InstanceStats& t = pr.stats;
      t.prefill_steps += s.prefill_steps;
      t.decode_steps += s.decode_steps;
      t.prefill_time += s.prefill_time;
      t.decode_time += s.decode_time;
      t.prefill_tokens += s.prefill_tokens;
      t.decode_tokens += s.decode_tokens;
      t.prefill_load += s.prefill_load;
      t.prefill_load_max += s.prefill_load_max;
      t.decode_load += s.decode_load;
      t.decode_load_max += s.decode_load_max;
    }
    pr.kv = std::move(kv_[i]);
    for (const KvSample& k : pr.kv) pr.kv_peak_gb_per_gpu = std::max(pr.kv_peak_gb_per_gpu, k.gb_per_gpu);
    r.pools.push_back(std::move(pr));
  }
  return r;
}

}  // namespace

ServingResult simulate_serving(const Deployment& deployment, const std::vector<Request>& requests,
                               const std::vector<StepPricer*>& pricers) {
  Engine engine(deployment, requests, pricers);
  return engine.run();
}

}  // namespace epsim::serving
