#include "sim/step_builder.h"

#include <algorithm>
#include <map>
#include <numeric>

#include "placement/dispatch_matrix.h"
#include "sim/transfer_memo.h"

namespace epsim {

std::int64_t LayerLoad::max() const {
  return per_gpu.empty() ? 0 : *std::max_element(per_gpu.begin(), per_gpu.end());
}
double LayerLoad::mean() const {
  if (per_gpu.empty()) return 0.0;
  return static_cast<double>(std::accumulate(per_gpu.begin(), per_gpu.end(), std::int64_t{0})) /
         static_cast<double>(per_gpu.size());
}

namespace {
// Chunk c of `chunks` of a count: the remainder goes to the first chunks.
std::int64_t share(std::int64_t n, int c, int chunks) { return n / chunks + (c < n % chunks ? 1 : 0); }

DispatchMatrix chunk_of(const DispatchMatrix& m, int c, int chunks) {
  if (chunks == 1) return m;
  DispatchMatrix out = m;
  for (auto& v : out.copies) v = share(v, c, chunks);
  for (auto& v : out.unique) v = share(v, c, chunks);
  for (auto& v : out.node_unique) v = share(v, c, chunks);
  return out;
}
}  // namespace

// Re-derives dispatch matrices on demand (deterministic), keeping only the latest few, so a step's
// memory does not grow with layers x GPUs^2.
struct StepBuilder::Traffic {
  struct Entry {
    std::shared_ptr<const DispatchMatrix> matrix;
    std::vector<std::int64_t> expert_load;
    std::int64_t dropped = 0;
    std::uint64_t hash = 0;  // of the matrix: equal hashes, equal traffic
  };
  const GateModel& gate;
  const Placement& placement;
  const Cluster& cluster;
  std::map<std::pair<int, int>, Entry> cache;
  std::map<std::pair<int, int>, std::uint64_t> hashes;  // every (layer, micro-batch) seen: small, kept

  const Entry& entry(int layer, int mb, std::int64_t tokens) {
    auto key = std::make_pair(layer, mb);
    auto it = cache.find(key);
    if (it != cache.end()) return it->second;
    if (cache.size() > 8) cache.erase(cache.begin());
    const RoutingSample r = gate.sample(layer, mb, cluster.gpu_count(), tokens);
    auto m = std::make_shared<const DispatchMatrix>(build_dispatch(r, placement.layer(layer), cluster.gpus_per_node()));
    const std::uint64_t h = KeyHasher().add(m->gpus).add(m->gpus_per_node).add(m->copies).add(m->unique).add(m->node_unique).key();
    hashes[key] = h;
    Entry e{std::move(m), r.expert_load(), r.dropped, h};
    return cache.emplace(key, std::move(e)).first->second;
  }
  std::shared_ptr<const DispatchMatrix> at(int layer, int mb, std::int64_t tokens) { return entry(layer, mb, tokens).matrix; }
  std::uint64_t hash(int layer, int mb, std::int64_t tokens) {
    const auto it = hashes.find({layer, mb});
    return it != hashes.end() ? it->second : entry(layer, mb, tokens).hash;
  }
};

StepBuilder::StepBuilder(const Scenario& scenario, const Cluster& cluster, const CostModel& cost,
                         const GateModel& gate, const Placement& placement)
    : sc_(scenario), cluster_(cluster), cost_(cost), ops_(scenario.model, scenario.parallelism.attention_tp),
      traffic_(std::make_shared<Traffic>(Traffic{gate, placement, cluster, {}, {}})), gpus_(cluster.gpu_count()) {}

std::int64_t StepBuilder::mb_tokens(int mb) const {
  return share(sc_.workload.tokens(), mb, sc_.schedule.micro_batches());
}

Time StepBuilder::scaled(const OpWork& w, Pass pass) const {
  ledger_.record(w, cost_);
  const Time t = cost_.time(w);
  return pass == Pass::Forward ? t : t + t;
}

TaskId StepBuilder::compute(int gpu, Phase phase, int l, int mb, Time duration, const std::vector<TaskId>& after) {
  const TaskId id = g_.compute(gpu, phase, l, mb, duration);
  TaskId& tail = compute_tail_[static_cast<std::size_t>(gpu)];
  if (tail >= 0) g_.depend(tail, id);
  for (TaskId a : after)
    if (a != tail) g_.depend(a, id);
  tail = id;
  return id;
}

TaskId StepBuilder::collective(Phase phase, int l, int mb, std::function<CommPlan()> plan, const Deps& after,
                               TaskId& tail, std::function<std::uint64_t()> key) {
  const TaskId c = g_.collective(gpus_, phase, l, mb, std::move(plan), std::move(key));
  if (tail >= 0) g_.depend(tail, c);
  for (const auto& per_gpu : after)
    for (TaskId a : per_gpu) g_.depend(a, c);
  tail = c;
  return c;
}

TaskId StepBuilder::tp_collective(int l, int mb, const Deps& after) {
  // All-gather or reduce-scatter inside each TP group: every GPU exchanges its tokens of hidden
  // state with each other member (ring and direct move the same bytes per GPU).
  const int tp = sc_.parallelism.attention_tp;
  const Bytes per_peer = Bytes(mb_tokens(mb) * sc_.model.hidden * sc_.model.bytes_per_param);
  const Cluster* cl = &cluster_;
  const int gpus = gpus_;
  const std::uint64_t key = KeyHasher().add(0x7470).add(tp).add(gpus).add(per_peer.count()).key();
  return collective(Phase::TpComm, l, mb, [cl, tp, gpus, per_peer] {
    CommPlan plan;
    for (int s = 0; s < gpus; ++s)
      for (int d = (s / tp) * tp; d < (s / tp + 1) * tp; ++d) plan.add(*cl, s, d, per_peer);
    return plan;
  }, after, tp_tail_, [key] { return key; });
}

void StepBuilder::attention_block(int l, int mb, Pass pass) {
  const Workload& w = sc_.workload;
  const std::int64_t T = mb_tokens(mb);
  const bool tp = sc_.parallelism.attention_tp > 1;
  const bool moe = sc_.model.is_moe(l);
  const bool serial = sc_.schedule.micro_batches() == 1;
  const std::int64_t seqs = std::max<std::int64_t>(1, w.sequences() * T / w.tokens());
  const Time proj = scaled(ops_.attention_proj(T), pass);
  const Time core = scaled(w.mode == Mode::Decode ? ops_.attention_core_decode(T, w.kv_len)
                                                  : ops_.attention_core_prefill(seqs, w.seq_len), pass);
  Deps& ready = ready_[static_cast<std::size_t>(mb)];
  if (tp && (l > 0 || pass == Pass::Backward)) {
    const TaskId c = tp_collective(l, mb, ready);
    for (int gpu = 0; gpu < gpus_; ++gpu) ready[static_cast<std::size_t>(gpu)] = {g_.arrival(c, gpu)};
  }
  std::vector<TaskId> core_done(static_cast<std::size_t>(gpus_));
  for (int gpu = 0; gpu < gpus_; ++gpu) {
    compute(gpu, Phase::AttentionProj, l, mb, proj, ready[static_cast<std::size_t>(gpu)]);
    core_done[static_cast<std::size_t>(gpu)] = compute(gpu, Phase::AttentionCore, l, mb, core, {});
    ready[static_cast<std::size_t>(gpu)] = {core_done[static_cast<std::size_t>(gpu)]};
  }
  if (tp) {
    const TaskId c = tp_collective(l, mb, ready);
    for (int gpu = 0; gpu < gpus_; ++gpu) ready[static_cast<std::size_t>(gpu)] = {g_.arrival(c, gpu)};
  }
  if (!moe) {
    const Time mlp = scaled(ops_.dense_mlp(T), pass);
    for (int gpu = 0; gpu < gpus_; ++gpu)
      ready[static_cast<std::size_t>(gpu)] = {compute(gpu, Phase::DenseMlp, l, mb, mlp, ready[static_cast<std::size_t>(gpu)])};
    return;
  }
  const Time gate = scaled(ops_.gate(T), pass);
  const Time shared = sc_.model.shared_experts > 0 ? scaled(ops_.shared_expert(T), pass) : Time::zero();
  for (int gpu = 0; gpu < gpus_; ++gpu) {
    auto& r = ready[static_cast<std::size_t>(gpu)];
    const TaskId gt = compute(gpu, Phase::Gate, l, mb, gate, r);
    r = {gt};
    if (sc_.model.shared_experts > 0) {
      const TaskId st = compute(gpu, Phase::SharedExpert, l, mb, shared, {});
      if (serial) r = {st};  // serial: the dispatch waits for the shared expert
    }
  }
}

std::function<CommPlan()> StepBuilder::chunk_plan(int l, int mb, int c, bool outbound) const {
  const CommScheme scheme = comm_scheme_from_string(sc_.network.scheme);
  const Bytes token_bytes = Bytes(sc_.model.hidden * sc_.model.bytes_per_param);
  const int chunks = sc_.schedule.chunks;
  const std::int64_t T = mb_tokens(mb);
  return [traffic = traffic_, cl = &cluster_, l, mb, T, scheme, token_bytes, chunks, c, outbound] {
    const DispatchMatrix part = chunk_of(*traffic->at(l, mb, T), c, chunks);
    return outbound ? dispatch_plan(scheme, *cl, part, token_bytes) : combine_plan(scheme, *cl, part, token_bytes);
  };
}

std::function<std::uint64_t()> StepBuilder::chunk_key(int l, int mb, int c, bool outbound) const {
  const int scheme = static_cast<int>(comm_scheme_from_string(sc_.network.scheme));
  const std::int64_t token_bytes = sc_.model.hidden * sc_.model.bytes_per_param;
  const int chunks = sc_.schedule.chunks;
  const std::int64_t T = mb_tokens(mb);
  return [traffic = traffic_, l, mb, T, scheme, token_bytes, chunks, c, outbound] {
    return KeyHasher().add(traffic->hash(l, mb, T)).add(scheme).add(token_bytes).add(chunks).add(c).add(outbound ? 1 : 0).key();
  };
}

void StepBuilder::dispatch_half(int l, int mb) {
  Deps& ready = ready_[static_cast<std::size_t>(mb)];
  auto& out = dispatches_[static_cast<std::size_t>(mb)];
  out.clear();
  for (int c = 0; c < sc_.schedule.chunks; ++c)
    out.push_back(collective(Phase::Dispatch, l, mb, chunk_plan(l, mb, c, true), c == 0 ? ready : Deps{}, moe_tail_,
                             chunk_key(l, mb, c, true)));
}

// Forward: tokens go out in the dispatch and back in the combine. Backward: output gradients go
// out the dispatch way and input gradients come back the combine way, so the program is the same.
void StepBuilder::expert_half(int l, int mb, Pass pass) {
  const int chunks = sc_.schedule.chunks;
  const std::int64_t T = mb_tokens(mb);
  const auto& entry = traffic_->entry(l, mb, T);
  const auto m = entry.matrix;
  LayerLoad& load = loads_[static_cast<std::size_t>(l)];
  load.per_gpu.resize(static_cast<std::size_t>(gpus_), 0);
  load.per_expert.resize(entry.expert_load.size(), 0);
  if (pass == Pass::Forward) {
    for (int gpu = 0; gpu < gpus_; ++gpu) load.per_gpu[static_cast<std::size_t>(gpu)] += m->received(gpu);
    for (std::size_t e = 0; e < entry.expert_load.size(); ++e) load.per_expert[e] += entry.expert_load[e];
    load.dropped += entry.dropped;
  }

  const auto& dispatches = dispatches_[static_cast<std::size_t>(mb)];
  // Weights read per GPU: its physical slots in this layer (redundant experts add slots).
  const int slots = traffic_->placement.layer(l).slots_per_gpu();
  std::vector<Deps> per_chunk(static_cast<std::size_t>(chunks), Deps(static_cast<std::size_t>(gpus_)));
  for (int gpu = 0; gpu < gpus_; ++gpu) {
    const std::int64_t received = m->received(gpu);
    for (int c = 0; c < chunks; ++c) {
      const std::int64_t tokens = share(received, c, chunks);
      const Time t = tokens > 0 ? scaled(ops_.expert_mlp(tokens, slots), pass) : Time::zero();
      const TaskId e = compute(gpu, Phase::Experts, l, mb, t, {g_.arrival(dispatches[static_cast<std::size_t>(c)], gpu)});
      per_chunk[static_cast<std::size_t>(c)][static_cast<std::size_t>(gpu)] = {e};
    }
  }
  Deps& ready = ready_[static_cast<std::size_t>(mb)];
  for (auto& r : ready) r.clear();
  for (int c = 0; c < chunks; ++c) {
    const TaskId comb = collective(Phase::Combine, l, mb, chunk_plan(l, mb, c, false), per_chunk[static_cast<std::size_t>(c)],
                                   moe_tail_, chunk_key(l, mb, c, false));
    for (int gpu = 0; gpu < gpus_; ++gpu) ready[static_cast<std::size_t>(gpu)].push_back(g_.arrival(comb, gpu));
  }
}

void StepBuilder::lm_head(int mb, Pass pass) {
  const Workload& w = sc_.workload;
  // Prefill needs logits of each sequence's last token; decode and training of every token.
  const std::int64_t T = mb_tokens(mb);
  const std::int64_t logits = w.mode == Mode::Prefill ? std::max<std::int64_t>(1, w.sequences() * T / w.tokens()) : T;
  const Time head = scaled(ops_.lm_head(logits), pass);
  Deps& ready = ready_[static_cast<std::size_t>(mb)];
  for (int gpu = 0; gpu < gpus_; ++gpu)
    ready[static_cast<std::size_t>(gpu)] = {compute(gpu, Phase::LmHead, sc_.model.layers, mb, head, ready[static_cast<std::size_t>(gpu)])};
}

TaskGraph StepBuilder::build() {
  g_ = TaskGraph{};
  const int mbs = sc_.schedule.micro_batches();
  loads_.assign(static_cast<std::size_t>(sc_.model.layers), LayerLoad{});
  compute_tail_.assign(static_cast<std::size_t>(gpus_), -1);
  moe_tail_ = tp_tail_ = -1;
  ready_.assign(static_cast<std::size_t>(mbs), Deps(static_cast<std::size_t>(gpus_)));
  dispatches_.assign(static_cast<std::size_t>(mbs), {});
  auto moe = [&](int l, Pass pass) {
    for (int mb = 0; mb < mbs; ++mb) dispatch_half(l, mb);
    for (int mb = 0; mb < mbs; ++mb) expert_half(l, mb, pass);
  };
  for (int l = 0; l < sc_.model.layers; ++l) {
    for (int mb = 0; mb < mbs; ++mb) attention_block(l, mb, Pass::Forward);
    if (sc_.model.is_moe(l)) moe(l, Pass::Forward);
  }
  for (int mb = 0; mb < mbs; ++mb) lm_head(mb, Pass::Forward);
  if (sc_.workload.mode == Mode::Training) {
    for (int mb = 0; mb < mbs; ++mb) lm_head(mb, Pass::Backward);
    for (int l = sc_.model.layers - 1; l >= 0; --l) {
      if (sc_.model.is_moe(l)) moe(l, Pass::Backward);
      for (int mb = 0; mb < mbs; ++mb) attention_block(l, mb, Pass::Backward);
    }
  }
  return std::move(g_);
}

}  // namespace epsim
