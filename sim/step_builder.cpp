#include "sim/step_builder.h"

#include <algorithm>
#include <map>
#include <limits>
#include <numeric>
#include <tuple>

#include "models/apportion.h"
#include "models/op_pricing.h"
#include "placement/dispatch_matrix.h"
#include "sim/layer_listing.h"
#include "sim/pair_traffic.h"
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
// Chunk c of the matrix: only the counts `scheme` reads (comm_scheme.h: direct the distinct tokens
// per pair, per-token the copies, hierarchical the distinct tokens per pair and per node); the
// others are left empty (a copy of all three cost more than the plan built from it).
DispatchMatrix chunk_of(const DispatchMatrix& m, int c, int chunks, CommScheme scheme) {
  DispatchMatrix out;
  out.gpus = m.gpus;
  out.gpus_per_node = m.gpus_per_node;
  out.first_gpu = m.first_gpu;
  const auto cut = [&](const std::vector<std::int64_t>& from, std::vector<std::int64_t>& to) {
    to.resize(from.size());
    for (std::size_t i = 0; i < from.size(); ++i) to[i] = chunks == 1 ? from[i] : equal_share(from[i], c, chunks);
  };
  if (scheme == CommScheme::PerToken) cut(m.copies, out.copies);
  else cut(m.unique, out.unique);
  if (scheme == CommScheme::Hierarchical) cut(m.node_unique, out.node_unique);
  return out;
}

// Failures in a routing sample (its sources: GPUs first_gpu, first_gpu + 1, ...): sources that hold no tokens route none, and the selections of
// `lost` experts (no live replica) are dropped. Returns the selections dropped.
std::int64_t drop_unserved(RoutingSample& r, const ComputeFaults& faults, int first_gpu, const std::vector<int>& lost) {
  std::int64_t dropped = 0;
  for (int s = 0; s < r.sources; ++s) {
    if (faults.serves_tokens(first_gpu + s)) continue;
    r.tokens[static_cast<std::size_t>(s)] = 0;
    std::fill_n(r.counts.begin() + static_cast<std::ptrdiff_t>(s) * r.experts, r.experts, 0);
  }
  for (int e : lost)
    for (int s = 0; s < r.sources; ++s) {
      std::int64_t& c = r.counts[static_cast<std::size_t>(s) * static_cast<std::size_t>(r.experts) + static_cast<std::size_t>(e)];
      dropped += c;
      c = 0;
    }
  return dropped;
}
}  // namespace

// Re-derives dispatch matrices on demand (deterministic), keeping only the latest few, so a step's
// memory does not grow with layers x GPUs^2.
struct StepBuilder::Traffic {
  struct Entry {
    std::shared_ptr<const DispatchMatrix> matrix;
    std::vector<std::int64_t> expert_load;
    std::int64_t dropped = 0;
    std::int64_t lost = 0;  // selections of lost experts (drop_unserved)
    std::shared_ptr<const SlotTraffic> slots;  // when `want_slots`
    std::uint64_t used = 0;                     // `tick` at its last use (least recently used goes first)
  };
  const GateModel& gate;
  const Placement& placement;
  const Cluster& cluster;
  const ComputeFaults& faults;
  std::map<std::pair<int, int>, Entry> cache;
  std::map<std::pair<int, int>, std::uint64_t> hashes;  // matrix hash of every (layer, micro-batch) seen: small, kept
  bool want_slots = false;  // per-(source, slot) rows: dispatch_impl pieces, per-expert GEMMs

  int model_layers = 0;
  int micro_batches = 1;
  std::uint64_t tick = 0;  // entry() calls, for the cache's eviction order

  // Sources are the GPUs first .. first + gpus - 1 (a pipeline stage; the whole cluster without
  // pipeline parallelism); a (layer, micro-batch) runs on one stage.
  const Entry& entry(int layer, int mb, std::int64_t tokens, int first = 0, int gpus = 0) {
    if (gpus == 0) gpus = cluster.gpu_count();
    auto key = std::make_pair(layer, mb);
    auto it = cache.find(key);
    if (it != cache.end()) {
      it->second.used = ++tick;
      return it->second;
    }
    // The least recently used goes (not the lowest layer: a dual micro-batch step asks for (l, 0)
    // and (l, 1) in turn, which evicting the lowest key re-sampled at every chunk).
    if (cache.size() > 8)
      cache.erase(std::min_element(cache.begin(), cache.end(), [](const auto& a, const auto& b) { return a.second.used < b.second.used; }));
    // An MTP layer (beyond the model's) routes with the last layer's gate statistics and placement,
    // its own draws (micro-batch ids past the model's).
    const int mtp = layer - model_layers + 1;
    const int routed = mtp > 0 ? model_layers - 1 : layer;
    RoutingSample r = gate.sample(routed, mtp > 0 ? mb + mtp * micro_batches : mb, gpus, tokens);
    const std::int64_t lost = cluster.spec().failed_gpus.empty() ? 0 : drop_unserved(r, faults, first, placement.layer(routed).lost());
    // A stage inside one node is one node for deduplication.
    const int gpn = std::min(cluster.gpus_per_node(), gpus);
    DispatchMatrix built = r.law ? build_dispatch(r, placement.layer(routed), gpn, placement.replica_choice(), reach_of(routed, gpn, r))
                                 : build_dispatch(r, placement.layer(routed), gpn, placement.replica_choice());
    built.first_gpu = first;
    auto m = std::make_shared<const DispatchMatrix>(std::move(built));
    KeyHasher hasher;
    if (first != 0) hasher.add(first);  // a stage's traffic crosses its own links
    const std::uint64_t h = hasher.add(m->gpus).add(m->gpus_per_node).add(m->copies).add(m->unique).add(m->node_unique).key();
    hashes[key] = h;
    keep(key, *m);
    Entry e{std::move(m), r.expert_load(), r.dropped, lost, nullptr, ++tick};
    if (want_slots) e.slots = std::make_shared<const SlotTraffic>(slot_traffic(r, placement.layer(routed), gpn, placement.replica_choice()));
    return cache.emplace(key, std::move(e)).first->second;
  }
  std::shared_ptr<const DispatchMatrix> at(int layer, int mb, std::int64_t tokens, int first, int gpus) {
    return entry(layer, mb, tokens, first, gpus).matrix;
  }
  // Per routed layer, the distinct-token tables of its law (a micro-batch's sample has the layer's
  // law; a new law, e.g. after bias balancing moved the marginals, makes new tables).
  struct Reach {
    std::shared_ptr<const SelectionLaw> law;
    int gpus_per_node = 0;
    std::unique_ptr<DestinationReach> tables;
  };
  std::map<int, Reach> reach{};
  DestinationReach& reach_of(int routed, int gpus_per_node, const RoutingSample& r) {
    Reach& at = reach[routed];
    if (!at.tables || at.law != r.law || at.gpus_per_node != gpus_per_node)
      at = Reach{r.law, gpus_per_node,
                 std::make_unique<DestinationReach>(r.law, placement.layer(routed), gpus_per_node, placement.replica_choice(), r.max_nodes)};
    return *at.tables;
  }
  // The (layer, micro-batch) matrix cut into chunks, one way: the chunks of a dispatch or combine ask
  // in turn (the forward and backward alike), so a few are kept, least recently used going first.
  struct Cut {
    std::shared_ptr<const ChunkedPairs> pairs;
    std::uint64_t used = 0;
  };
  std::map<std::tuple<int, int, bool>, Cut> cuts{};
  std::map<std::tuple<int, int, bool>, std::shared_ptr<const PairRoutes>> routes{};  // per (first GPU, GPUs, outbound): kept
  std::shared_ptr<const ChunkedPairs> pairs(int layer, int mb, std::int64_t tokens, int first, int gpus, bool outbound, int chunks) {
    const auto key = std::make_tuple(layer, mb, outbound);
    if (auto it = cuts.find(key); it != cuts.end()) {
      it->second.used = ++tick;
      return it->second.pairs;
    }
    if (cuts.size() > 4)
      cuts.erase(std::min_element(cuts.begin(), cuts.end(), [](const auto& a, const auto& b) { return a.second.used < b.second.used; }));
    std::shared_ptr<const PairRoutes>& r = routes[std::make_tuple(first, gpus, outbound)];
    if (!r) r = std::make_shared<const PairRoutes>(cluster, first, gpus, !outbound);
    std::shared_ptr<const ChunkedPairs> p;
    if (const auto k = kept.find({layer, mb}); k != kept.end()) {
      p = std::make_shared<const ChunkedPairs>(r, k->second, chunks, cluster.links().size(), cluster.gpu_count());
    } else {
      const auto m = at(layer, mb, tokens, first, gpus);
      p = std::make_shared<const ChunkedPairs>(r, pair_counts(*m), chunks, cluster.links().size(), cluster.gpu_count());
    }
    cuts.emplace(key, Cut{p, ++tick});
    return p;
  }
  // The pair counts of each (layer, micro-batch) the chunks cut (`keep_counts`: the step's plans are
  // pairwise, comm_scheme.h), kept from when the step is built until it runs, so the routing is
  // drawn once, not again when the matrix left the cache above: 4 bytes a GPU pair (the seed, dual
  // micro-batch: 116 x 256 KB), at most kKeptBytes in all (beyond that, drawn again).
  bool keep_counts = false;
  CommScheme scheme = CommScheme::Direct;  // the step's: which counts a pair's flow carries
  const std::vector<std::int64_t>& pair_counts(const DispatchMatrix& m) const {
    return scheme == CommScheme::PerToken ? m.copies : m.unique;
  }
  static constexpr std::size_t kKeptBytes = std::size_t{64} << 20;
  std::map<std::pair<int, int>, std::vector<std::int32_t>> kept{};
  std::size_t kept_bytes = 0;
  void keep(const std::pair<int, int>& key, const DispatchMatrix& m) {
    const std::vector<std::int64_t>& counts = pair_counts(m);
    if (!keep_counts || kept.count(key) || kept_bytes + counts.size() * sizeof(std::int32_t) > kKeptBytes) return;
    std::vector<std::int32_t> narrow(counts.size());
    for (std::size_t i = 0; i < counts.size(); ++i) {
      if (counts[i] < 0 || counts[i] > std::numeric_limits<std::int32_t>::max()) return;
      narrow[i] = static_cast<std::int32_t>(counts[i]);
    }
    kept_bytes += narrow.size() * sizeof(std::int32_t);
    kept.emplace(key, std::move(narrow));
  }
  // Of the matrix: equal hashes, equal traffic.
  std::uint64_t hash(int layer, int mb, std::int64_t tokens, int first, int gpus) {
    if (!hashes.count({layer, mb})) entry(layer, mb, tokens, first, gpus);
    return hashes.at({layer, mb});
  }
};

StepBuilder::StepBuilder(const Scenario& scenario, const Cluster& cluster, const CostModel& cost,
                         const GateModel& gate, const Placement& placement, ComputeFaults faults)
    : sc_(scenario), cluster_(cluster), cost_(cost), faults_(std::move(faults)), ops_(scenario.model, scenario.parallelism.attention_tp),
      program_(ops_, scenario.model.shared_experts - scenario.parallelism.routed_shared(scenario.model)),
      impl_(DispatchImpl::named(scenario.network.dispatch_impl)),
      traffic_(std::make_shared<Traffic>(Traffic{gate, placement, cluster, faults_, {}, {}, false})), gpus_(cluster.gpu_count()),
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
  // Only the analytical network prices chunks from their counts (the flow network lists the flows).
  traffic_->keep_counts = pairwise_chunks() && scenario.network.model == "analytical";
  traffic_->scheme = comm_.scheme;
}

// A chunk's plan is one flow per GPU pair as the matrix gives it (comm_plan: direct or per-token,
// then apply_engines, a no-op without engines; no executor rounds).
bool StepBuilder::pairwise_chunks() const {
  return !impl_.executor_rounds() && comm_.scheme != CommScheme::Hierarchical && !comm_.nvlink && !comm_.network;
}

int StepBuilder::routing_layer(int layer) const { return std::min(layer, sc_.model.layers - 1); }

double StepBuilder::sm_bound(const OpWork& w) const {
  if (!impl_.executor_rounds()) return 1.0;
  const double compute = w.flops.count() / sc_.gpu.peak(w.precision).per_second();
  const double memory = static_cast<double>(w.bytes.count()) / sc_.gpu.hbm.bytes_per_second();
  return compute <= 0 ? 0.0 : std::clamp(1.0 - memory / compute, 0.0, 1.0);
}

std::int64_t StepBuilder::mb_tokens(int mb) const {
  return equal_share(split_.units, mb, mbs_) * split_.tokens_per_unit;
}

LayerShape StepBuilder::shape(int l, int mb) const {
  // decode: split_.tokens_per_unit is the new token and its drafts per sequence
  LayerShape s = step_layer_shape(sc_, mb_tokens(mb), split_.tokens_per_unit);
  s.window = sc_.model.window_of(l);  // local attention (model.attention_window), else 0
  return s;
}

namespace {
Phase phase_of(const LayerOp& op) {
  switch (op.block) {
    case Block::AttnIn:
    case Block::AttnOut: return Phase::AttentionProj;
    case Block::Attention: return op.name.kind == OpKind::AttnCore ? Phase::AttentionCore : Phase::AttentionProj;
    case Block::MoeIn: return op.name.kind == OpKind::QuantDispatch || op.name.kind == OpKind::Permute ? Phase::Permute : Phase::Gate;
    case Block::Shared: return Phase::SharedExpert;
    case Block::Experts: return Phase::Experts;
    case Block::MoeOut: return Phase::Unpermute;
    case Block::Dense: return Phase::DenseMlp;
    case Block::Head: return Phase::LmHead;
    case Block::MtpIn: return Phase::MtpProjection;
  }
  return Phase::AttentionProj;
}

// The backward ops a pass runs: InputGrad all but the weight gradients, WeightGrad those alone.
std::vector<LayerOp> of_pass(std::vector<LayerOp> ops, bool input, bool weight) {
  if (input && weight) return ops;
  std::vector<LayerOp> out;
  for (LayerOp& o : ops)
    if ((o.name.grad == Grad::Wgrad) == weight) out.push_back(std::move(o));
  return out;
}
}  // namespace

StepBuilder::TaskOp StepBuilder::task_op(const PricedOp& p, Pass pass) const {
  const OpWork& w = p.op.work;
  return {p.op.name, pass == Pass::WeightGrad ? Phase::WeightGrad : phase_of(p.op), p.time, sm_bound(w),
          TaskWork{w.flops.count(), w.bytes.count(), w.tokens}};
}

std::vector<StepBuilder::TaskOp> StepBuilder::priced(const std::vector<LayerOp>& ops, Pass pass) const {
  std::vector<TaskOp> out;
  out.reserve(ops.size());
  for (const LayerOp& op : ops) out.push_back(task_op(price_op(op, cost_, &ledger_), pass));
  return out;
}

std::vector<LayerOp> StepBuilder::block_ops(Block b, int l, int mb, Pass pass) const {
  if (pass == Pass::Forward) return program_.block(b, shape(l, mb), epsim::Pass::Forward);
  return of_pass(program_.block(b, shape(l, mb), epsim::Pass::Backward), pass != Pass::WeightGrad, pass != Pass::InputGrad);
}

TaskId StepBuilder::emit(int gpu, int l, int mb, const std::vector<TaskOp>& ops, const std::vector<TaskId>& after) {
  TaskId last = -1;
  for (std::size_t i = 0; i < ops.size(); ++i) last = compute(gpu, ops[i], l, mb, i == 0 ? after : std::vector<TaskId>{});
  return last;
}

void StepBuilder::run_block(int l, int mb, Block b, Pass pass, bool chain) {
  const std::vector<TaskOp> ops = priced(block_ops(b, l, mb, pass), pass);
  if (ops.empty()) return;
  Deps& ready = ready_[static_cast<std::size_t>(mb)];
  for (int gpu = span_.first; gpu < span_.end(); ++gpu) {
    const TaskId last = emit(gpu, l, mb, ops, chain ? ready[static_cast<std::size_t>(gpu)] : std::vector<TaskId>{});
    if (chain) ready[static_cast<std::size_t>(gpu)] = {last};
  }
}

TaskId StepBuilder::compute(int gpu, const TaskOp& op, int l, int mb, const std::vector<TaskId>& after) {
  const TaskId id = g_.compute(gpu, op.phase, l, mb, op.time, op.name);
  Task& task = g_.tasks()[static_cast<std::size_t>(id)];
  task.duration = faults_.duration(op.time, gpu, op.name, id);
  task.sm_bound = op.sm_bound;
  task.work = op.work;
  TaskId& tail = compute_tail_[static_cast<std::size_t>(gpu)];
  if (tail >= 0) g_.depend(tail, id);
  for (TaskId a : after)
    if (a != tail) g_.depend(a, id);
  tail = id;
  return id;
}

TaskId StepBuilder::collective(Phase phase, int l, int mb, std::function<CommPlan()> plan, const Deps& after,
                               TaskId& tail, std::function<std::uint64_t()> key,
                               std::function<std::shared_ptr<const PairChunk>()> pairs) {
  const TaskId c = g_.collective_on(span_.first, span_.count, phase, l, mb, std::move(plan), std::move(key), std::move(pairs));
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
  // A group with a failed GPU holds no tokens and exchanges none (the key is per step: equal).
  return collective(Phase::TpComm, l, mb, [cl, tp, first, gpus, per_peer, setup = tp_, faults = &faults_] {
    CommPlan plan;
    for (int s = first; s < first + gpus; ++s)
      for (int d = (s / tp) * tp; d < (s / tp + 1) * tp; ++d)
        if (faults->serves_tokens(s)) plan.add(*cl, s, d, per_peer);
    apply_engines(plan, *cl, setup, per_peer);
    return plan;
  }, after, tp_tail(), [key] { return key; });
}

// attn_norm, [TP all-gather] the attention ops, [TP reduce-scatter] attn_residual; a backward
// the same blocks reversed, each reversed.
void StepBuilder::attention_item(int l, int mb, Pass pass) {
  if (sc_.model.attention == AttentionKind::None) return;
  const bool tp = sc_.parallelism.attention_tp > 1 && pass != Pass::WeightGrad;
  const bool forward = pass == Pass::Forward;
  Deps& ready = ready_[static_cast<std::size_t>(mb)];
  auto tp_sync = [&] {
    const TaskId c = tp_collective(l, mb, ready);
    for (int gpu = span_.first; gpu < span_.end(); ++gpu) ready[static_cast<std::size_t>(gpu)] = {g_.arrival(c, gpu)};
  };
  run_block(l, mb, forward ? Block::AttnIn : Block::AttnOut, pass);
  if (tp && (l > 0 || !forward)) tp_sync();
  run_block(l, mb, Block::Attention, pass);
  if (tp) tp_sync();
  run_block(l, mb, forward ? Block::AttnOut : Block::AttnIn, pass);
}

void StepBuilder::dense_item(int l, int mb, Pass pass) { run_block(l, mb, Block::Dense, pass); }

// ffn_norm, router, router_topk, [quant_dispatch], permute (a backward: their gradients, reversed).
void StepBuilder::moe_in_item(int l, int mb, Pass pass) { run_block(l, mb, Block::MoeIn, pass); }

bool StepBuilder::local_shared() const { return sc_.model.shared_experts > sc_.parallelism.routed_shared(sc_.model); }

// The local shared experts on the compute stream; `chain`: the micro-batch's next item waits for them.
void StepBuilder::shared_item(int l, int mb, Pass pass, bool chain) { run_block(l, mb, Block::Shared, pass, chain); }

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

void StepBuilder::moe_out(int l, int mb) { run_block(l, mb, Block::MoeOut, Pass::Forward); }

Bytes StepBuilder::token_bytes(bool outbound, Pass pass) const {
  return outbound && pass == Pass::Forward ? comm_.dispatch_token : comm_.combine_token;
}

std::function<CommPlan()> StepBuilder::with_rounds(std::function<CommPlan()> plan, int l, int mb, int c, bool outbound, Pass pass) const {
  if (!impl_.executor_rounds()) return plan;
  const int chunks = sc_.schedule.chunks;
  const int first = span_.first, gpus = span_.count;
  const std::int64_t T = mb_tokens(mb);
  const Bytes row_bytes = token_bytes(outbound, pass);
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

std::function<CommPlan()> StepBuilder::chunk_plan(int l, int mb, int c, bool outbound, Pass pass) const {
  const int chunks = sc_.schedule.chunks;
  const std::int64_t T = mb_tokens(mb);
  const int first = span_.first, gpus = span_.count;
  CommSetup setup = comm_;
  if (pass != Pass::Forward) setup.dispatch_token = setup.combine_token;  // gradients both ways, as the combine
  return [traffic = traffic_, cl = &cluster_, setup, l, mb, T, chunks, c, outbound, first, gpus] {
    return comm_plan(setup, *cl, chunk_of(*traffic->at(l, mb, T, first, gpus), c, chunks, setup.scheme), outbound);
  };
}

std::function<std::uint64_t()> StepBuilder::chunk_key(int l, int mb, int c, bool outbound, Pass pass) const {
  if (impl_.executor_rounds()) return {};  // its rounds depend on per-slot pieces the matrix hash does not see
  // Within one step every chunk is shaped by the same engines: the scheme and token bytes tell the
  // directions and the plans apart.
  const int scheme = static_cast<int>(comm_.scheme);
  const std::int64_t bytes = token_bytes(outbound, pass).count();
  const int chunks = sc_.schedule.chunks;
  const std::int64_t T = mb_tokens(mb);
  const int first = span_.first, gpus = span_.count;
  return [traffic = traffic_, l, mb, T, scheme, bytes, chunks, c, outbound, first, gpus] {
    return KeyHasher().add(traffic->hash(l, mb, T, first, gpus)).add(scheme).add(bytes).add(chunks).add(c).add(outbound ? 1 : 0).key();
  };
}

std::function<std::shared_ptr<const PairChunk>()> StepBuilder::chunk_pairs(int l, int mb, int c, bool outbound, Pass pass) const {
  if (!pairwise_chunks()) return {};
  const Bytes token = token_bytes(outbound, pass);
  if (token.count() <= 0) return {};
  const std::int64_t T = mb_tokens(mb);
  const int first = span_.first, gpus = span_.count;
  return [traffic = traffic_, chunks = sc_.schedule.chunks, token, l, mb, T, c, outbound, first, gpus] {
    return std::make_shared<const PairChunk>(PairChunk{traffic->pairs(l, mb, T, first, gpus, outbound, chunks), c, token});
  };
}

void StepBuilder::dispatch_half(int l, int mb, Pass pass) {
  if (pass == Pass::Backward || pass == Pass::InputGrad) run_block(l, mb, Block::MoeOut, pass);
  Deps& ready = ready_[static_cast<std::size_t>(mb)];
  auto& out = dispatches_[static_cast<std::size_t>(mb)];
  out.clear();
  for (int c = 0; c < sc_.schedule.chunks; ++c)
    out.push_back(collective(Phase::Dispatch, l, mb, with_rounds(chunk_plan(l, mb, c, true, pass), l, mb, c, true, pass),
                             c == 0 ? ready : Deps{}, moe_tail(), chunk_key(l, mb, c, true, pass), chunk_pairs(l, mb, c, true, pass)));
}

std::vector<StepBuilder::TaskOp> StepBuilder::expert_chunk(const SlotTraffic* per_slot, std::int64_t received, int gpu, int c,
                                                           int slots, Pass pass) const {
  const int chunks = sc_.schedule.chunks;
  const epsim::Pass p = pass == Pass::Forward ? epsim::Pass::Forward : epsim::Pass::Backward;
  const bool input = pass != Pass::WeightGrad, weight = pass != Pass::InputGrad;
  std::vector<TaskOp> out;
  if (per_slot == nullptr) {
    const std::int64_t rows = equal_share(received, c, chunks);
    if (rows == 0) return {};
    const auto ops = program_.experts(rows, slots, p);
    return priced(pass == Pass::Forward ? ops : of_pass(ops, input, weight), pass);
  }
  // One GEMM per expert slot at its own rows of this chunk (each (source, slot) count is cut into
  // chunks as the dispatch cuts it); empty slots launch nothing (models/op_pricing.h).
  const int local = gpu - span_.first;  // the slot rows are indexed within the span
  std::vector<std::int64_t> n(static_cast<std::size_t>(per_slot->slots_per_gpu), 0);
  for (int j = 0; j < per_slot->slots_per_gpu; ++j)
    for (int s = 0; s < span_.count; ++s) n[static_cast<std::size_t>(j)] += equal_share(per_slot->at(s, local, j), c, chunks);
  for (const PricedOp& priced_op : price_experts_per_expert(program_, n, p, cost_, &ledger_))
    if (pass == Pass::Forward || (priced_op.op.name.grad == Grad::Wgrad) == weight || (input && weight))
      out.push_back(task_op(priced_op, pass));
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
    load.lost += entry.lost;
  }

  const auto& dispatches = dispatches_[static_cast<std::size_t>(mb)];
  // Weights read per GPU: its physical slots in this layer (redundant experts add slots).
  const int slots = traffic_->placement.layer(routing_layer(l)).slots_per_gpu();
  const SlotTraffic* per_slot = sc_.cost_model.per_expert_gemms ? entry.slots.get() : nullptr;
  std::vector<Deps> per_chunk(static_cast<std::size_t>(chunks), Deps(static_cast<std::size_t>(gpus_)));
  for (int gpu = span_.first; gpu < span_.end(); ++gpu)
    for (int c = 0; c < chunks; ++c) {
      std::vector<TaskOp> ops = expert_chunk(per_slot, received[static_cast<std::size_t>(gpu)], gpu, c, slots, pass);
      // No rows: a zero-time task keeps the chunk's place on the compute stream.
      if (ops.empty()) ops.push_back({{OpKind::ExpertUp, OpKind::ExpertUp, Grad::None}, Phase::Experts, Time::zero(), 1.0, {}});
      const TaskId arrival = g_.arrival(dispatches[static_cast<std::size_t>(c)], gpu);
      // The dispatch chunk's arrival here: the (token, expert) pairs it brought (for the trace).
      g_.tasks()[static_cast<std::size_t>(arrival)].work.tokens = equal_share(received[static_cast<std::size_t>(gpu)], c, chunks);
      per_chunk[static_cast<std::size_t>(c)][static_cast<std::size_t>(gpu)] = {emit(gpu, l, mb, ops, {arrival})};
    }
  combine_after_[static_cast<std::size_t>(mb)] = std::move(per_chunk);
  routed_in_[static_cast<std::size_t>(mb)] = std::move(received);
}

// Chunk c leaves once every GPU has computed its chunk c; the micro-batch's next item waits for all.
void StepBuilder::combine_item(int l, int mb, Pass pass) {
  const auto& per_chunk = combine_after_[static_cast<std::size_t>(mb)];
  Deps& ready = ready_[static_cast<std::size_t>(mb)];
  for (int gpu = span_.first; gpu < span_.end(); ++gpu) ready[static_cast<std::size_t>(gpu)].clear();
  for (int c = 0; c < sc_.schedule.chunks; ++c) {
    const TaskId comb = collective(Phase::Combine, l, mb, with_rounds(chunk_plan(l, mb, c, false, pass), l, mb, c, false, pass),
                                   per_chunk[static_cast<std::size_t>(c)], moe_tail(), chunk_key(l, mb, c, false, pass),
                                   chunk_pairs(l, mb, c, false, pass));
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
  combine_item(l, mb, pass);
}

// Pipeline backward: layer l's weight gradients on every GPU of the span, its .wgrad ops (the
// attention projections, the dense MLP or the router and local shared expert, the GPU's experts of
// every chunk) back to back. `chain`: the micro-batch's
// next block waits for it (a backward that computes both gradients before moving on, as autograd
// does); a deferred W chunk waits for nothing.
void StepBuilder::weight_grad(int l, int mb, bool chain) {
  const bool moe = sc_.model.is_moe(l);
  std::vector<TaskOp> common;  // the same on every GPU of the span
  auto add = [&](Block b) {
    for (const TaskOp& t : priced(block_ops(b, l, mb, Pass::WeightGrad), Pass::WeightGrad)) common.push_back(t);
  };
  add(Block::Attention);
  if (!moe) {
    add(Block::Dense);
  } else {
    add(Block::MoeIn);
    add(Block::Shared);
  }
  const auto* entry = moe ? &traffic_->entry(l, mb, mb_tokens(mb), span_.first, span_.count) : nullptr;
  const int slots = traffic_->placement.layer(routing_layer(l)).slots_per_gpu();
  const SlotTraffic* per_slot = entry && sc_.cost_model.per_expert_gemms ? entry->slots.get() : nullptr;
  for (int gpu = span_.first; gpu < span_.end(); ++gpu) {
    std::vector<TaskOp> ops = common;
    if (moe) {
      const std::int64_t received = entry->matrix->received(gpu - span_.first);
      for (int c = 0; c < sc_.schedule.chunks; ++c)
        for (const TaskOp& t : expert_chunk(per_slot, received, gpu, c, slots, Pass::WeightGrad)) ops.push_back(t);
    }
    if (ops.empty()) continue;
    const TaskId w = emit(gpu, l, mb, ops, {});
    if (chain) ready_[static_cast<std::size_t>(mb)][static_cast<std::size_t>(gpu)] = {w};
  }
}

void StepBuilder::lm_head(int layer, int mb, Pass pass, bool chain) { run_block(layer, mb, Block::Head, pass, chain); }

void StepBuilder::mtp_pass(int k) {
  const int mbs = sc_.schedule.micro_batches();
  const int l = sc_.model.layers + k;
  split_ = {sc_.workload.batch_per_gpu, 1};
  for (int mb = 0; mb < mbs; ++mb) {
    run_block(l, mb, Block::MtpIn, Pass::Forward);
    attention_block(l, mb, Pass::Forward);
  }
  for (int mb = 0; mb < mbs; ++mb) dispatch_half(l, mb, Pass::Forward);
  for (int mb = 0; mb < mbs; ++mb) expert_half(l, mb, Pass::Forward);
  for (int mb = 0; mb < mbs; ++mb) {
    moe_out(l, mb);
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
    case ScheduleOp::MoeOut:  // forward only: a backward runs the MoeOut gradients in its dispatch item
      if (pass == Pass::Forward && l > 0 && sc_.model.is_moe(l - 1)) moe_out(l - 1, mb);
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
      if (moe) dispatch_half(l, mb, pass);
      return;
    case ScheduleOp::Experts:
      if (moe) experts_item(l, mb, pass);
      return;
    case ScheduleOp::Combine:
      if (moe) combine_item(l, mb, pass);
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
  if (sc_.model.is_moe(sc_.model.layers - 1))
    for (int mb = 0; mb < mbs; ++mb) moe_out(sc_.model.layers - 1, mb);
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
