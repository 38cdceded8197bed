#include "sim/step_builder.h"

#include <algorithm>
#include <map>
#include <numeric>

#include "models/apportion.h"
#include "placement/dispatch_matrix.h"
#include "sim/transfer_memo.h"
#include "placement/slot_traffic.h"

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
DispatchMatrix chunk_of(const DispatchMatrix& m, int c, int chunks) {
  if (chunks == 1) return m;
  DispatchMatrix out = m;
  for (auto& v : out.copies) v = equal_share(v, c, chunks);
  for (auto& v : out.unique) v = equal_share(v, c, chunks);
  for (auto& v : out.node_unique) v = equal_share(v, c, chunks);
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
    std::shared_ptr<const SlotTraffic> slots;  // when `want_slots`
  };
  const GateModel& gate;
  const Placement& placement;
  const Cluster& cluster;
  std::map<std::pair<int, int>, Entry> cache;
  std::map<std::pair<int, int>, std::uint64_t> hashes;  // matrix hash of every (layer, micro-batch) seen: small, kept
  bool want_slots = false;  // per-(source, slot) rows: dispatch_impl pieces, per-expert GEMMs

  int model_layers = 0;
  int micro_batches = 1;

  // Sources are the GPUs first .. first + gpus - 1 (a pipeline stage; the whole cluster without
  // pipeline parallelism); a (layer, micro-batch) runs on one stage.
  const Entry& entry(int layer, int mb, std::int64_t tokens, int first = 0, int gpus = 0) {
    if (gpus == 0) gpus = cluster.gpu_count();
    auto key = std::make_pair(layer, mb);
    auto it = cache.find(key);
    if (it != cache.end()) return it->second;
    if (cache.size() > 8) cache.erase(cache.begin());
    // An MTP layer (beyond the model's) routes with the last layer's gate statistics and placement,
    // its own draws (micro-batch ids past the model's).
    const int mtp = layer - model_layers + 1;
    const int routed = mtp > 0 ? model_layers - 1 : layer;
    const RoutingSample r = gate.sample(routed, mtp > 0 ? mb + mtp * micro_batches : mb, gpus, tokens);
    // A stage inside one node is one node for deduplication.
    const int gpn = std::min(cluster.gpus_per_node(), gpus);
    DispatchMatrix built = build_dispatch(r, placement.layer(routed), gpn, placement.replica_choice());
    built.first_gpu = first;
    auto m = std::make_shared<const DispatchMatrix>(std::move(built));
    KeyHasher hasher;
    if (first != 0) hasher.add(first);  // a stage's traffic crosses its own links
    const std::uint64_t h = hasher.add(m->gpus).add(m->gpus_per_node).add(m->copies).add(m->unique).add(m->node_unique).key();
    hashes[key] = h;
    Entry e{std::move(m), r.expert_load(), r.dropped, nullptr};
    if (want_slots) e.slots = std::make_shared<const SlotTraffic>(slot_traffic(r, placement.layer(routed), gpn, placement.replica_choice()));
    return cache.emplace(key, std::move(e)).first->second;
  }
  std::shared_ptr<const DispatchMatrix> at(int layer, int mb, std::int64_t tokens, int first, int gpus) {
    return entry(layer, mb, tokens, first, gpus).matrix;
  }
  // Of the matrix: equal hashes, equal traffic.
  std::uint64_t hash(int layer, int mb, std::int64_t tokens, int first, int gpus) {
    if (!hashes.count({layer, mb})) entry(layer, mb, tokens, first, gpus);
    return hashes.at({layer, mb});
  }
};

StepBuilder::StepBuilder(const Scenario& scenario, const Cluster& cluster, const CostModel& cost,
                         const GateModel& gate, const Placement& placement)
    : sc_(scenario), cluster_(cluster), cost_(cost), ops_(scenario.model, scenario.parallelism.attention_tp),
      impl_(DispatchImpl::named(scenario.network.dispatch_impl)),
      traffic_(std::make_shared<Traffic>(Traffic{gate, placement, cluster, {}, {}, false})), gpus_(cluster.gpu_count()),
      layers_(scenario.model.layers + scenario.workload.mtp_tokens), span_{0, cluster.gpu_count()},
      mbs_(scenario.schedule.micro_batches()), serial_(scenario.schedule.micro_batches() == 1) {
  traffic_->want_slots = impl_.executor_rounds() || scenario.cost_model.per_expert_gemms;
  traffic_->model_layers = scenario.model.layers;
  traffic_->micro_batches = scenario.schedule.micro_batches();
  const EngineRates rates = engine_rates(scenario, cost);
  comm_ = comm_setup(scenario, rates, is_calibrated(cost));
  if (is_calibrated(cost)) tp_.nvlink = rates.nccl;
  // The peer kernel runs on comm_sms SMs: its rounds move at most comm_sms x the per-SM rate.
  if (impl_.name == "peer" && rates.per_sm.bytes_per_second() > 0 && scenario.schedule.comm_sms > 0)
    impl_.bandwidth = std::min(impl_.bandwidth, rates.per_sm * static_cast<double>(scenario.schedule.comm_sms));
}

int StepBuilder::routing_layer(int layer) const { return std::min(layer, sc_.model.layers - 1); }

double StepBuilder::sm_bound(const OpWork& w) const {
  if (!impl_.executor_rounds()) return 1.0;
  const double compute = w.flops.count() / sc_.gpu.peak_bf16.per_second();
  const double memory = static_cast<double>(w.bytes.count()) / sc_.gpu.hbm.bytes_per_second();
  return compute <= 0 ? 0.0 : std::clamp(1.0 - memory / compute, 0.0, 1.0);
}

std::int64_t StepBuilder::mb_tokens(int mb) const {
  return equal_share(split_.units, mb, mbs_) * split_.tokens_per_unit;
}

int StepBuilder::pass_factor(const OpWork& w, Pass pass) {
  switch (pass) {
    case Pass::Forward:
    case Pass::WeightGrad: return 1;
    case Pass::InputGrad: return w.op == OpClass::AttentionCore ? 2 : 1;  // no weights: all of it is input gradient
    case Pass::Backward: break;
  }
  return 2;
}

Time StepBuilder::scaled(const OpWork& w, Pass pass) const {
  ledger_.record(w, cost_);
  const Time t = cost_.time(w);
  return pass_factor(w, pass) == 2 ? t + t : t;
}

TaskWork StepBuilder::traced(const OpWork& w, Pass pass) {
  const int times = pass_factor(w, pass);
  return TaskWork{w.flops.count() * times, w.bytes.count() * times, w.tokens};
}

TaskId StepBuilder::compute(int gpu, Phase phase, int l, int mb, Time duration, const std::vector<TaskId>& after,
                            double sm_bound, TaskWork work) {
  const TaskId id = g_.compute(gpu, phase, l, mb, duration);
  g_.tasks()[static_cast<std::size_t>(id)].sm_bound = sm_bound;
  g_.tasks()[static_cast<std::size_t>(id)].work = work;
  TaskId& tail = compute_tail_[static_cast<std::size_t>(gpu)];
  if (tail >= 0) g_.depend(tail, id);
  for (TaskId a : after)
    if (a != tail) g_.depend(a, id);
  tail = id;
  return id;
}

TaskId StepBuilder::collective(Phase phase, int l, int mb, std::function<CommPlan()> plan, const Deps& after,
                               TaskId& tail, std::function<std::uint64_t()> key) {
  const TaskId c = g_.collective_on(span_.first, span_.count, phase, l, mb, std::move(plan), std::move(key));
  if (tail >= 0) g_.depend(tail, c);
  for (int gpu = span_.first; gpu < span_.end() && !after.empty(); ++gpu)
    for (TaskId a : after[static_cast<std::size_t>(gpu)]) g_.depend(a, c);
  tail = c;
  return c;
}

TaskId StepBuilder::tp_collective(int l, int mb, const Deps& after) {
  // All-gather or reduce-scatter inside each TP group: every GPU exchanges its tokens of hidden
  // state with each other member (ring and direct move the same bytes per GPU).
  const int tp = sc_.parallelism.attention_tp;
  const Bytes per_peer = Bytes(mb_tokens(mb) * sc_.model.hidden * sc_.model.bytes_per_param);
  const Cluster* cl = &cluster_;
  const int first = span_.first, gpus = span_.count;
  KeyHasher hasher;
  if (first != 0) hasher.add(first);
  const std::uint64_t key = hasher.add(0x7470).add(tp).add(gpus).add(per_peer.count()).key();
  return collective(Phase::TpComm, l, mb, [cl, tp, first, gpus, per_peer, setup = tp_] {
    CommPlan plan;
    for (int s = first; s < first + gpus; ++s)
      for (int d = (s / tp) * tp; d < (s / tp + 1) * tp; ++d) plan.add(*cl, s, d, per_peer);
    apply_engines(plan, *cl, setup, per_peer);
    return plan;
  }, after, tp_tail(), [key] { return key; });
}

// The attention: [TP all-gather] projections and core [TP reduce-scatter].
void StepBuilder::attention_item(int l, int mb, Pass pass) {
  if (sc_.model.attention == AttentionKind::None) return;
  const Workload& w = sc_.workload;
  const std::int64_t T = mb_tokens(mb);
  const bool tp = sc_.parallelism.attention_tp > 1;
  const std::int64_t seqs = std::max<std::int64_t>(1, w.sequences() * T / w.tokens());
  Deps& ready = ready_[static_cast<std::size_t>(mb)];
  const OpWork proj_op = ops_.attention_proj(T);
  const int queries = split_.tokens_per_unit;  // decode: the new token and its drafts per sequence
  const int window = sc_.model.window_of(l);  // local attention (model.attention_window), else 0
  const OpWork core_op = w.mode == Mode::Decode ? ops_.attention_core_decode(T / queries, w.kv_len, queries, window)
                                                : ops_.attention_core_prefill(seqs, w.seq_len, w.prefix_tokens(), window);
  const Time proj = scaled(proj_op, pass);
  const Time core = scaled(core_op, pass);
  if (tp && (l > 0 || pass != Pass::Forward)) {
    const TaskId c = tp_collective(l, mb, ready);
    for (int gpu = span_.first; gpu < span_.end(); ++gpu) ready[static_cast<std::size_t>(gpu)] = {g_.arrival(c, gpu)};
  }
  for (int gpu = span_.first; gpu < span_.end(); ++gpu) {
    compute(gpu, Phase::AttentionProj, l, mb, proj, ready[static_cast<std::size_t>(gpu)], sm_bound(proj_op), traced(proj_op, pass));
    ready[static_cast<std::size_t>(gpu)] = {compute(gpu, Phase::AttentionCore, l, mb, core, {}, sm_bound(core_op), traced(core_op, pass))};
  }
  if (tp) {
    const TaskId c = tp_collective(l, mb, ready);
    for (int gpu = span_.first; gpu < span_.end(); ++gpu) ready[static_cast<std::size_t>(gpu)] = {g_.arrival(c, gpu)};
  }
}

void StepBuilder::dense_item(int l, int mb, Pass pass) {
  const OpWork mlp_op = ops_.dense_mlp(mb_tokens(mb));
  const Time mlp = scaled(mlp_op, pass);
  Deps& ready = ready_[static_cast<std::size_t>(mb)];
  for (int gpu = span_.first; gpu < span_.end(); ++gpu)
    ready[static_cast<std::size_t>(gpu)] = {compute(gpu, Phase::DenseMlp, l, mb, mlp, ready[static_cast<std::size_t>(gpu)], sm_bound(mlp_op), traced(mlp_op, pass))};
}

// The gate, and in a forward under nccl | peer the permute of the rows by expert.
void StepBuilder::moe_in_item(int l, int mb, Pass pass) {
  const std::int64_t T = mb_tokens(mb);
  const OpWork gate_op = ops_.gate(T);
  const Time gate = scaled(gate_op, pass);
  const bool permute = impl_.executor_rounds() && pass == Pass::Forward;
  const Time perm = permute ? scaled(ops_.permute(T), pass) : Time::zero();
  Deps& ready = ready_[static_cast<std::size_t>(mb)];
  for (int gpu = span_.first; gpu < span_.end(); ++gpu) {
    auto& r = ready[static_cast<std::size_t>(gpu)];
    r = {compute(gpu, Phase::Gate, l, mb, gate, r, sm_bound(gate_op), traced(gate_op, pass))};
    if (permute) r = {compute(gpu, Phase::Permute, l, mb, perm, {}, 0.0, traced(ops_.permute(T), pass))};
  }
}

bool StepBuilder::local_shared() const { return sc_.model.shared_experts > sc_.parallelism.routed_shared(sc_.model); }

// The local shared experts on the compute stream; `chain`: the micro-batch's next item waits for them.
void StepBuilder::shared_item(int l, int mb, Pass pass, bool chain) {
  const OpWork op = ops_.shared_expert(mb_tokens(mb));
  const Time t = scaled(op, pass);
  for (int gpu = span_.first; gpu < span_.end(); ++gpu) {
    const TaskId st = compute(gpu, Phase::SharedExpert, l, mb, t, {}, sm_bound(op), traced(op, pass));
    if (chain) ready_[static_cast<std::size_t>(mb)][static_cast<std::size_t>(gpu)] = {st};
  }
}

// network.dispatch_impl nccl | peer: the per-expert counts exchanged before the dispatch (the host
// waits for them before it enqueues the rounds).
void StepBuilder::counts_item(int l, int mb) {
  // The host's wake-up after the first micro-batch's counts delays everything after them.
  const Time t = impl_.count_exchange + (mb == 0 ? impl_.host_gap : Time::zero());
  const int first = span_.first, gpus = span_.count;
  Deps& ready = ready_[static_cast<std::size_t>(mb)];
  const TaskId c = collective(Phase::CountExchange, l, mb, [first, gpus, t] {
    CommPlan plan;
    for (int g = first; g < first + gpus; ++g) {
      FlowSpec f;
      f.route.latency = t;
      plan.flows.push_back(f);
      plan.src.push_back(g);
      plan.dst.push_back(g);
    }
    return plan;
  }, ready, moe_tail());
  for (int gpu = span_.first; gpu < span_.end(); ++gpu) ready[static_cast<std::size_t>(gpu)] = {g_.arrival(c, gpu)};
}

void StepBuilder::attention_block(int l, int mb, Pass pass) {
  attention_item(l, mb, pass);
  if (!sc_.model.is_moe(l)) {
    dense_item(l, mb, pass);
    return;
  }
  moe_in_item(l, mb, pass);
  if (local_shared()) shared_item(l, mb, pass, serial_);  // serial: the dispatch waits for the shared expert
  if (impl_.executor_rounds() && pass == Pass::Forward) counts_item(l, mb);
}

void StepBuilder::unpermute(int l, int mb) {
  const OpWork op = ops_.unpermute(mb_tokens(mb));
  const Time t = scaled(op, Pass::Forward);
  Deps& ready = ready_[static_cast<std::size_t>(mb)];
  for (int gpu = span_.first; gpu < span_.end(); ++gpu)
    ready[static_cast<std::size_t>(gpu)] = {compute(gpu, Phase::Unpermute, l, mb, t, ready[static_cast<std::size_t>(gpu)], 0.0, traced(op, Pass::Forward))};
}

std::function<CommPlan()> StepBuilder::with_rounds(std::function<CommPlan()> plan, int l, int mb, int c) const {
  if (!impl_.executor_rounds()) return plan;
  const int chunks = sc_.schedule.chunks;
  const int first = span_.first, gpus = span_.count;
  const std::int64_t T = mb_tokens(mb);
  const Bytes row_bytes = Bytes(sc_.model.hidden * sc_.model.bytes_per_param);
  return [plan = std::move(plan), traffic = traffic_, impl = impl_, cost = &cost_, ops = ops_, row_bytes, l, mb, c, chunks, first, gpus, T] {
    CommPlan p = plan();
    // Per GPU of the span (rounds are indexed like the collective's arrivals).
    std::vector<std::int64_t> out(static_cast<std::size_t>(gpus), 0), in(static_cast<std::size_t>(gpus), 0);
    for (std::size_t f = 0; f < p.flows.size(); ++f) {
      if (p.src[f] == p.dst[f]) continue;
      out[static_cast<std::size_t>(p.src[f] - first)] += p.flows[f].bytes.count();
      in[static_cast<std::size_t>(p.dst[f] - first)] += p.flows[f].bytes.count();
    }
    const auto& entry = traffic->entry(l, mb, T, first, gpus);
    const auto slots = entry.slots;
    p.rounds.assign(static_cast<std::size_t>(gpus), RoundWork{});
    for (int g = 0; g < gpus; ++g) {  // g: within the span
      // The rows a GPU routes to its own experts (every (token, expert) copy): a local copy.
      const Bytes own = row_bytes * equal_share(entry.matrix->copies_at(g, g), c, chunks);
      p.rounds[static_cast<std::size_t>(g)] =
          impl.round_work(slots ? slots->pieces(g, c, chunks) : 0, Bytes(out[static_cast<std::size_t>(g)]),
                          Bytes(in[static_cast<std::size_t>(g)]), own,
                          own.count() > 0 && impl.self_bandwidth.bytes_per_second() <= 0 ? cost->time(ops.local_copy(own)) : Time::zero());
    }
    return p;
  };
}

std::function<CommPlan()> StepBuilder::chunk_plan(int l, int mb, int c, bool outbound) const {
  const int chunks = sc_.schedule.chunks;
  const std::int64_t T = mb_tokens(mb);
  const int first = span_.first, gpus = span_.count;
  return [traffic = traffic_, cl = &cluster_, setup = comm_, l, mb, T, chunks, c, outbound, first, gpus] {
    return comm_plan(setup, *cl, chunk_of(*traffic->at(l, mb, T, first, gpus), c, chunks), outbound);
  };
}

std::function<std::uint64_t()> StepBuilder::chunk_key(int l, int mb, int c, bool outbound) const {
  if (impl_.executor_rounds()) return {};  // its rounds depend on per-slot pieces the matrix hash does not see
  // Within one step every chunk is shaped by the same engines: the scheme and token bytes tell the
  // directions and the plans apart.
  const int scheme = static_cast<int>(comm_.scheme);
  const std::int64_t token_bytes = (outbound ? comm_.dispatch_token : comm_.combine_token).count();
  const int chunks = sc_.schedule.chunks;
  const std::int64_t T = mb_tokens(mb);
  const int first = span_.first, gpus = span_.count;
  return [traffic = traffic_, l, mb, T, scheme, token_bytes, chunks, c, outbound, first, gpus] {
    return KeyHasher().add(traffic->hash(l, mb, T, first, gpus)).add(scheme).add(token_bytes).add(chunks).add(c).add(outbound ? 1 : 0).key();
  };
}

void StepBuilder::dispatch_half(int l, int mb) {
  Deps& ready = ready_[static_cast<std::size_t>(mb)];
  auto& out = dispatches_[static_cast<std::size_t>(mb)];
  out.clear();
  for (int c = 0; c < sc_.schedule.chunks; ++c)
    out.push_back(collective(Phase::Dispatch, l, mb, with_rounds(chunk_plan(l, mb, c, true), l, mb, c), c == 0 ? ready : Deps{},
                             moe_tail(), chunk_key(l, mb, c, true)));
}

StepBuilder::ExpertChunk StepBuilder::expert_chunk(const SlotTraffic* per_slot, std::int64_t received, int gpu, int c,
                                                   int slots, Pass pass) const {
  const int chunks = sc_.schedule.chunks;
  ExpertChunk out{Time::zero(), ops_.expert_mlp(0, 1)};
  out.work.bytes = Bytes(0);
  if (per_slot == nullptr) {
    const std::int64_t tokens = equal_share(received, c, chunks);
    if (tokens > 0) {
      out.work = ops_.expert_mlp(tokens, slots);
      out.time = scaled(out.work, pass);
    }
    return out;
  }
  // One MLP per expert slot at its own rows of this chunk (each (source, slot) count is cut into
  // chunks as the dispatch cuts it); empty slots launch nothing. Priced as the layer runs them: two
  // GEMMs per expert, one activation over the chunk's rows.
  std::int64_t rows = 0;
  const int local = gpu - span_.first;  // the slot rows are indexed within the span
  for (int j = 0; j < per_slot->slots_per_gpu; ++j) {
    std::int64_t n = 0;
    for (int s = 0; s < span_.count; ++s) n += equal_share(per_slot->at(s, local, j), c, chunks);
    if (n == 0) continue;
    rows += n;
    for (const OpWork& w : {ops_.expert_gemm_up(n), ops_.expert_gemm_down(n)}) {
      out.time += scaled(w, pass);
      out.work.flops += w.flops;
      out.work.bytes += w.bytes;
    }
  }
  if (rows > 0) {
    const OpWork w = ops_.expert_activation(rows);
    out.time += scaled(w, pass);
    out.work.bytes += w.bytes;
  }
  out.work.tokens = rows;
  return out;
}

// Forward: tokens go out in the dispatch and back in the combine. Backward: output gradients go
// out the dispatch way and input gradients come back the combine way, so the program is the same.
// The experts' chunks on every GPU; combine_item sends them back.
void StepBuilder::experts_item(int l, int mb, Pass pass) {
  const int chunks = sc_.schedule.chunks;
  const std::int64_t T = mb_tokens(mb);
  const auto& entry = traffic_->entry(l, mb, T, span_.first, span_.count);
  const auto m = entry.matrix;
  LayerLoad& load = loads_[static_cast<std::size_t>(l)];
  load.per_gpu.resize(static_cast<std::size_t>(span_.count), 0);  // the layer's stage's GPUs
  load.first_gpu = span_.first;
  // Per routed expert: routed shared experts (always taken) are left out of the balance figures.
  load.per_expert.resize(static_cast<std::size_t>(sc_.model.routed_experts), 0);
  std::vector<std::int64_t> received(static_cast<std::size_t>(gpus_));
  for (int gpu = span_.first; gpu < span_.end(); ++gpu) received[static_cast<std::size_t>(gpu)] = m->received(gpu - span_.first);
  if (pass == Pass::Forward) {
    for (int gpu = span_.first; gpu < span_.end(); ++gpu)
      load.per_gpu[static_cast<std::size_t>(gpu - span_.first)] += received[static_cast<std::size_t>(gpu)];
    for (std::size_t e = 0; e < load.per_expert.size(); ++e) load.per_expert[e] += entry.expert_load[e];
    load.dropped += entry.dropped;
  }

  const auto& dispatches = dispatches_[static_cast<std::size_t>(mb)];
  // Weights read per GPU: its physical slots in this layer (redundant experts add slots).
  const int slots = traffic_->placement.layer(routing_layer(l)).slots_per_gpu();
  const SlotTraffic* per_slot = sc_.cost_model.per_expert_gemms ? entry.slots.get() : nullptr;
  std::vector<Deps> per_chunk(static_cast<std::size_t>(chunks), Deps(static_cast<std::size_t>(gpus_)));
  for (int gpu = span_.first; gpu < span_.end(); ++gpu)
    for (int c = 0; c < chunks; ++c) {
      const ExpertChunk work = expert_chunk(per_slot, received[static_cast<std::size_t>(gpu)], gpu, c, slots, pass);
      const TaskId e = compute(gpu, Phase::Experts, l, mb, work.time, {g_.arrival(dispatches[static_cast<std::size_t>(c)], gpu)},
                               sm_bound(work.work), traced(work.work, pass));
      per_chunk[static_cast<std::size_t>(c)][static_cast<std::size_t>(gpu)] = {e};
      // The dispatch chunk's arrival here: the (token, expert) pairs it brought (for the trace).
      g_.tasks()[static_cast<std::size_t>(g_.arrival(dispatches[static_cast<std::size_t>(c)], gpu))].work.tokens =
          equal_share(received[static_cast<std::size_t>(gpu)], c, chunks);
    }
  combine_after_[static_cast<std::size_t>(mb)] = std::move(per_chunk);
  routed_in_[static_cast<std::size_t>(mb)] = std::move(received);
}

// Chunk c leaves once every GPU has computed its chunk c; the micro-batch's next item waits for all.
void StepBuilder::combine_item(int l, int mb) {
  const auto& per_chunk = combine_after_[static_cast<std::size_t>(mb)];
  Deps& ready = ready_[static_cast<std::size_t>(mb)];
  for (int gpu = span_.first; gpu < span_.end(); ++gpu) ready[static_cast<std::size_t>(gpu)].clear();
  for (int c = 0; c < sc_.schedule.chunks; ++c) {
    const TaskId comb = collective(Phase::Combine, l, mb, with_rounds(chunk_plan(l, mb, c, false), l, mb, c),
                                   per_chunk[static_cast<std::size_t>(c)], moe_tail(), chunk_key(l, mb, c, false));
    for (int gpu = span_.first; gpu < span_.end(); ++gpu) {
      const TaskId a = g_.arrival(comb, gpu);
      // The (token, expert) pairs this GPU's experts send back in this chunk (for the trace).
      g_.tasks()[static_cast<std::size_t>(a)].work.tokens =
          equal_share(routed_in_[static_cast<std::size_t>(mb)][static_cast<std::size_t>(gpu)], c, sc_.schedule.chunks);
      ready[static_cast<std::size_t>(gpu)].push_back(a);
    }
  }
}

void StepBuilder::expert_half(int l, int mb, Pass pass) {
  experts_item(l, mb, pass);
  combine_item(l, mb);
}

// Pipeline backward: layer l's weight gradients on every GPU of the span, one task per GPU (the
// attention projections, the dense MLP or the gate, local shared expert and the GPU's experts at
// their forward cost; the experts' activation is counted with them). `chain`: the micro-batch's
// next block waits for it (a backward that computes both gradients before moving on, as autograd
// does); a deferred W chunk waits for nothing.
void StepBuilder::weight_grad(int l, int mb, bool chain) {
  const std::int64_t T = mb_tokens(mb);
  const bool moe = sc_.model.is_moe(l);
  Time common = Time::zero();  // the same on every GPU of the span
  if (sc_.model.attention != AttentionKind::None) common += scaled(ops_.attention_proj(T), Pass::WeightGrad);
  if (!moe) {
    common += scaled(ops_.dense_mlp(T), Pass::WeightGrad);
  } else {
    common += scaled(ops_.gate(T), Pass::WeightGrad);
    if (sc_.model.shared_experts > sc_.parallelism.routed_shared(sc_.model))
      common += scaled(ops_.shared_expert(T), Pass::WeightGrad);
  }
  const auto* entry = moe ? &traffic_->entry(l, mb, T, span_.first, span_.count) : nullptr;
  const int slots = traffic_->placement.layer(routing_layer(l)).slots_per_gpu();
  const SlotTraffic* per_slot = entry && sc_.cost_model.per_expert_gemms ? entry->slots.get() : nullptr;
  for (int gpu = span_.first; gpu < span_.end(); ++gpu) {
    Time t = common;
    if (moe) {
      const std::int64_t received = entry->matrix->received(gpu - span_.first);
      for (int c = 0; c < sc_.schedule.chunks; ++c) t += expert_chunk(per_slot, received, gpu, c, slots, Pass::WeightGrad).time;
    }
    const TaskId w = compute(gpu, Phase::WeightGrad, l, mb, t, {});
    if (chain) ready_[static_cast<std::size_t>(mb)][static_cast<std::size_t>(gpu)] = {w};
  }
}

void StepBuilder::lm_head(int layer, int mb, Pass pass, bool chain) {
  const Workload& w = sc_.workload;
  // Prefill needs logits of each sequence's last token; decode (every verified position) and
  // training of every token.
  const std::int64_t T = mb_tokens(mb);
  const std::int64_t logits = w.mode == Mode::Prefill ? std::max<std::int64_t>(1, w.sequences() * T / w.tokens()) : T;
  const OpWork op = ops_.lm_head(logits);
  const Time head = scaled(op, pass);
  Deps& ready = ready_[static_cast<std::size_t>(mb)];
  for (int gpu = span_.first; gpu < span_.end(); ++gpu) {
    const TaskId t = compute(gpu, Phase::LmHead, layer, mb, head, chain ? ready[static_cast<std::size_t>(gpu)] : std::vector<TaskId>{},
                             1.0, traced(op, pass));
    if (chain) ready[static_cast<std::size_t>(gpu)] = {t};
  }
}

void StepBuilder::mtp_pass(int k) {
  const int mbs = sc_.schedule.micro_batches();
  const int l = sc_.model.layers + k;
  split_ = {sc_.workload.batch_per_gpu, 1};
  for (int mb = 0; mb < mbs; ++mb) {
    const OpWork op = ops_.mtp_projection(mb_tokens(mb));
    const Time t = scaled(op, Pass::Forward);
    Deps& ready = ready_[static_cast<std::size_t>(mb)];
    for (int gpu = span_.first; gpu < span_.end(); ++gpu)
      ready[static_cast<std::size_t>(gpu)] = {compute(gpu, Phase::MtpProjection, l, mb, t, ready[static_cast<std::size_t>(gpu)], sm_bound(op), traced(op, Pass::Forward))};
    attention_block(l, mb, Pass::Forward);
  }
  for (int mb = 0; mb < mbs; ++mb) dispatch_half(l, mb);
  for (int mb = 0; mb < mbs; ++mb) expert_half(l, mb, Pass::Forward);
  for (int mb = 0; mb < mbs; ++mb) {
    if (impl_.executor_rounds()) unpermute(l, mb);
    if (sc_.model.vocab > 0) lm_head(l, mb, Pass::Forward);
  }
}

void StepBuilder::run_stages(const std::vector<ScheduleStage>& stages, int l, Pass pass) {
  for (const ScheduleStage& stage : stages) {
    for (const ScheduleItem& item : stage.compute) run_item(item, l, pass);
    for (const ScheduleItem& item : stage.comm) run_item(item, l, pass);
  }
}

// One item of the overlap schedule on layer l; items that do not apply to the layer emit nothing.
void StepBuilder::run_item(const ScheduleItem& item, int l, Pass pass) {
  const int mb = item.micro_batch;
  const bool moe = sc_.model.is_moe(l), rounds = impl_.executor_rounds();
  switch (item.op) {
    case ScheduleOp::MoeOut:
      if (rounds && l > 0 && sc_.model.is_moe(l - 1)) unpermute(l - 1, mb);
      return;
    case ScheduleOp::Attention: attention_item(l, mb, pass); return;
    case ScheduleOp::MoeIn:
      if (moe) moe_in_item(l, mb, pass);
      return;
    case ScheduleOp::Shared:
      if (moe && local_shared()) shared_item(l, mb, pass, item.chain);
      return;
    case ScheduleOp::Dense:
      if (!moe) dense_item(l, mb, pass);
      return;
    case ScheduleOp::Counts:
      if (moe && rounds && pass == Pass::Forward) counts_item(l, mb);
      return;
    case ScheduleOp::Dispatch:
      if (moe) dispatch_half(l, mb);
      return;
    case ScheduleOp::Experts:
      if (moe) experts_item(l, mb, pass);
      return;
    case ScheduleOp::Combine:
      if (moe) combine_item(l, mb);
      return;
  }
}

TaskGraph StepBuilder::build() {
  if (sc_.parallelism.pp > 1) return build_pipeline();
  g_ = TaskGraph{};
  const OverlapSchedule& program = sc_.schedule.program;
  const int mbs = program.micro_batches;
  loads_.assign(static_cast<std::size_t>(layers_), LayerLoad{});
  split_ = sc_.workload.mode == Mode::Decode ? TokenSplit{sc_.workload.batch_per_gpu, sc_.workload.queries_per_sequence()}
                                             : TokenSplit{sc_.workload.tokens(), 1};
  compute_tail_.assign(static_cast<std::size_t>(gpus_), -1);
  moe_tails_.assign(1, -1);
  tp_tails_.assign(1, -1);
  ready_.assign(static_cast<std::size_t>(mbs), Deps(static_cast<std::size_t>(gpus_)));
  dispatches_.assign(static_cast<std::size_t>(mbs), {});
  combine_after_.assign(static_cast<std::size_t>(mbs), {});
  routed_in_.assign(static_cast<std::size_t>(mbs), {});
  for (int l = 0; l < sc_.model.layers; ++l) run_stages(program.forward, l, Pass::Forward);
  if (impl_.executor_rounds() && sc_.model.is_moe(sc_.model.layers - 1))
    for (int mb = 0; mb < mbs; ++mb) unpermute(sc_.model.layers - 1, mb);
  if (sc_.model.vocab > 0)
    for (int mb = 0; mb < mbs; ++mb) lm_head(layers_, mb, Pass::Forward);
  for (int k = 0; k < sc_.workload.mtp_tokens; ++k) mtp_pass(k);
  if (sc_.workload.mode == Mode::Training) {
    if (sc_.model.vocab > 0)
      for (int mb = 0; mb < mbs; ++mb) lm_head(layers_, mb, Pass::Backward);
    for (int l = sc_.model.layers - 1; l >= 0; --l) run_stages(program.backward, l, Pass::Backward);
  }
  return std::move(g_);
}

}  // namespace epsim
