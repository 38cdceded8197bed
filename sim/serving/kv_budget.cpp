#include "sim/serving/kv_budget.h"

#include <algorithm>

#include <fmt/format.h>

#include "models/errors.h"
#include "models/memory_model.h"
#include "sim/dispatch_mode.h"

namespace epsim::serving {

const char* to_string(Role r) {
  return r == Role::Colocated ? "colocated" : r == Role::Prefill ? "prefill" : "decode";
}

namespace {

// Per GPU: the memory report of one step of `w`, with the low-latency buffers that step needs.
MemoryReport step_memory(Scenario sc, const Workload& w, const EngineRates& rates, bool calibrated, int slots) {
  sc.workload = w;
  MemoryReport m = estimate_memory(LayerOps(sc.model, sc.parallelism.attention_tp), [&] {
    Parallelism p = sc.parallelism;
    p.experts_per_gpu = slots;
    return p;
  }(), sc.workload, sc.gpu);
  m.comm_buffers = low_latency_buffers(sc, comm_setup(sc, rates, calibrated), slots);
  return m;
}

}  // namespace

KvBudget kv_budget(const Scenario& sc, const ServingSpec& spec, Role role, const std::string& pool_name) {
  const auto cost = make_cost_model(sc.cost_model, sc.gpu);
  const EngineRates rates = engine_rates(sc, *cost);
  const bool calibrated = is_calibrated(*cost);
  // Physical expert slots per GPU, redundant ones included (as the run's placement makes them).
  const Parallelism& par = sc.parallelism;
  const int experts = sc.model.routed_experts + par.routed_shared(sc.model) + sc.placement.redundant_slots;
  const int slots = std::max(par.experts_per_gpu, (experts + par.ep - 1) / par.ep);

  Workload decode = sc.workload;
  decode.mode = Mode::Decode;
  decode.batch_per_gpu = spec.max_batch_per_gpu;
  decode.kv_len = 1;
  decode.prefix_hit = 0;
  Workload prefill;
  prefill.mode = Mode::Prefill;
  prefill.tokens_per_gpu = prefill.seq_len = spec.max_prefill_tokens_per_gpu;

  KvBudget b;
  const MemoryReport d = step_memory(sc, decode, rates, calibrated, slots);
  const MemoryReport p = step_memory(sc, prefill, rates, calibrated, slots);
  b.capacity = d.capacity;
  b.weights = d.weights();
  const Bytes d_act = d.activations + d.comm_buffers, p_act = p.activations + p.comm_buffers;
  b.activations = role == Role::Decode ? d_act : role == Role::Prefill ? p_act : std::max(d_act, p_act);
  // d.kv_cache is batch_per_gpu x 1 token x layers x kv_bytes_per_token on one GPU, whose DP rank
  // holds tp x batch_per_gpu tokens.
  const int tp = par.attention_tp;
  b.bytes_per_token = static_cast<double>(d.kv_cache.count()) / static_cast<double>(spec.max_batch_per_gpu * tp);
  const std::int64_t left = b.capacity.count() - b.weights.count() - b.activations.count() - d.optimizer.count();
  if (left <= 0 || b.bytes_per_token <= 0)
    throw ConfigError("serving.kv_memory_fraction", fmt::format("{}", spec.kv_memory_fraction),
                      fmt::format("the {} pool's GPUs have no memory left for KV cache ({:.2f} GB of weights and {:.2f} GB of "
                                  "activations and buffers per GPU of {:.2f} GB)",
                                  pool_name, b.weights.to_gb(), b.activations.to_gb(), b.capacity.to_gb()));
  b.kv = Bytes(static_cast<std::int64_t>(static_cast<double>(left) * spec.kv_memory_fraction));
  b.rank_tokens = static_cast<std::int64_t>(static_cast<double>(b.kv.count()) / b.bytes_per_token);
  return b;
}

}  // namespace epsim::serving
