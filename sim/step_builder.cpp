#include "sim/step_builder.h"

#include <algorithm>
#include <numeric>

#include "placement/dispatch_matrix.h"

namespace epsim {

std::int64_t LayerLoad::max() const {
  return per_gpu.empty() ? 0 : *std::max_element(per_gpu.begin(), per_gpu.end());
}
double LayerLoad::mean() const {
  if (per_gpu.empty()) return 0.0;
  return static_cast<double>(std::accumulate(per_gpu.begin(), per_gpu.end(), std::int64_t{0})) /
         static_cast<double>(per_gpu.size());
}

// Re-derives a layer's dispatch matrix on demand (deterministic), keeping only the latest, so a
// step's memory does not grow with layers x GPUs^2.
struct StepBuilder::Traffic {
  const GateModel& gate;
  const Placement& placement;
  const Cluster& cluster;
  std::int64_t tokens;
  int cached_layer = -1;
  std::shared_ptr<const DispatchMatrix> cached;

  std::shared_ptr<const DispatchMatrix> at(int layer) {
    if (layer != cached_layer) {
      const RoutingSample r = gate.sample(layer, 0, cluster.gpu_count(), tokens);
      cached = std::make_shared<const DispatchMatrix>(build_dispatch(r, placement, cluster.gpus_per_node()));
      cached_layer = layer;
    }
    return cached;
  }
};

StepBuilder::StepBuilder(const Scenario& scenario, const Cluster& cluster, const CostModel& cost,
                         const GateModel& gate, const Placement& placement)
    : sc_(scenario), cluster_(cluster), cost_(cost), ops_(scenario.model, scenario.parallelism.attention_tp),
      traffic_(std::make_shared<Traffic>(Traffic{gate, placement, cluster, scenario.workload.tokens(), -1, nullptr})),
      gpus_(cluster.gpu_count()) {}

void StepBuilder::chain(TaskGraph& g, std::vector<TaskId>& last, int gpu, TaskId next) {
  TaskId& prev = last[static_cast<std::size_t>(gpu)];
  if (prev >= 0) g.depend(prev, next);
  prev = next;
}

TaskGraph StepBuilder::build() {
  TaskGraph g;
  loads_.assign(static_cast<std::size_t>(sc_.model.layers), LayerLoad{});
  std::vector<TaskId> last(static_cast<std::size_t>(gpus_), -1);
  for (int l = 0; l < sc_.model.layers; ++l) layer(g, l, last);
  const Workload& w = sc_.workload;
  const std::int64_t logits = w.mode == Mode::Prefill ? w.sequences() : w.batch_per_gpu;
  const Time head = cost_.time(ops_.lm_head(logits));
  for (int gpu = 0; gpu < gpus_; ++gpu) chain(g, last, gpu, g.compute(gpu, Phase::LmHead, sc_.model.layers, 0, head));
  return g;
}

TaskId StepBuilder::tp_collective(TaskGraph& g, int l, std::vector<TaskId>& last) {
  // All-gather or reduce-scatter inside each TP group: every GPU exchanges its T tokens of hidden
  // state with each other member (ring and direct move the same bytes per GPU).
  const int tp = sc_.parallelism.attention_tp;
  const Bytes per_peer = Bytes(sc_.workload.tokens() * sc_.model.hidden * sc_.model.bytes_per_param);
  const Cluster* cl = &cluster_;
  const int gpus = gpus_;
  TaskId c = g.collective(gpus_, Phase::TpComm, l, 0, [cl, tp, gpus, per_peer] {
    CommPlan plan;
    for (int s = 0; s < gpus; ++s)
      for (int d = (s / tp) * tp; d < (s / tp + 1) * tp; ++d) plan.add(*cl, s, d, per_peer);
    return plan;
  });
  for (int gpu = 0; gpu < gpus_; ++gpu) {
    g.depend(last[static_cast<std::size_t>(gpu)], c);
    last[static_cast<std::size_t>(gpu)] = g.arrival(c, gpu);
  }
  return c;
}

TaskId StepBuilder::moe_collective(TaskGraph& g, int l, Phase phase, std::vector<TaskId>& last) {
  const CommScheme scheme = comm_scheme_from_string(sc_.network.scheme);
  const Bytes token_bytes = Bytes(sc_.model.hidden * sc_.model.bytes_per_param);
  auto traffic = traffic_;
  const Cluster* cl = &cluster_;
  TaskId c = g.collective(gpus_, phase, l, 0, [traffic, cl, l, phase, scheme, token_bytes] {
    const auto m = traffic->at(l);
    return phase == Phase::Dispatch ? dispatch_plan(scheme, *cl, *m, token_bytes)
                                    : combine_plan(scheme, *cl, *m, token_bytes);
  });
  for (int gpu = 0; gpu < gpus_; ++gpu) {
    g.depend(last[static_cast<std::size_t>(gpu)], c);
    last[static_cast<std::size_t>(gpu)] = g.arrival(c, gpu);
  }
  return c;
}

void StepBuilder::layer(TaskGraph& g, int l, std::vector<TaskId>& last) {
  const Workload& w = sc_.workload;
  const std::int64_t T = w.tokens();
  const bool tp = sc_.parallelism.attention_tp > 1;
  const Time proj = cost_.time(ops_.attention_proj(T));
  const Time core = cost_.time(w.mode == Mode::Prefill ? ops_.attention_core_prefill(w.sequences(), w.seq_len)
                                                        : ops_.attention_core_decode(w.batch_per_gpu, w.kv_len));
  if (tp && l > 0) tp_collective(g, l, last);  // all-gather the group's tokens
  for (int gpu = 0; gpu < gpus_; ++gpu) {
    chain(g, last, gpu, g.compute(gpu, Phase::AttentionProj, l, 0, proj));
    chain(g, last, gpu, g.compute(gpu, Phase::AttentionCore, l, 0, core));
  }
  if (tp) tp_collective(g, l, last);  // reduce-scatter back to each GPU's tokens
  if (!sc_.model.is_moe(l)) {
    const Time mlp = cost_.time(ops_.dense_mlp(T));
    for (int gpu = 0; gpu < gpus_; ++gpu) chain(g, last, gpu, g.compute(gpu, Phase::DenseMlp, l, 0, mlp));
    return;
  }
  const auto m = traffic_->at(l);
  LayerLoad& load = loads_[static_cast<std::size_t>(l)];
  load.per_gpu.resize(static_cast<std::size_t>(gpus_));
  for (int gpu = 0; gpu < gpus_; ++gpu) load.per_gpu[static_cast<std::size_t>(gpu)] = m->received(gpu);

  const Time gate = cost_.time(ops_.gate(T));
  const Time shared = sc_.model.shared_experts > 0 ? cost_.time(ops_.shared_expert(T)) : Time::zero();
  for (int gpu = 0; gpu < gpus_; ++gpu) chain(g, last, gpu, g.compute(gpu, Phase::Gate, l, 0, gate));
  moe_collective(g, l, Phase::Dispatch, last);
  for (int gpu = 0; gpu < gpus_; ++gpu) {
    const std::int64_t tokens = load.per_gpu[static_cast<std::size_t>(gpu)];
    const Time experts = tokens > 0 ? cost_.time(ops_.expert_mlp(tokens, sc_.parallelism.experts_per_gpu)) : Time::zero();
    chain(g, last, gpu, g.compute(gpu, Phase::Experts, l, 0, experts));
    if (sc_.model.shared_experts > 0) chain(g, last, gpu, g.compute(gpu, Phase::SharedExpert, l, 0, shared));
  }
  moe_collective(g, l, Phase::Combine, last);
}

}  // namespace epsim
