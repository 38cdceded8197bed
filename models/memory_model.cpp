#include "models/memory_model.h"

namespace epsim {

MemoryReport estimate_memory(const LayerOps& ops, const Parallelism& par, const Workload& work, const GpuSpec& gpu) {
  const MoeModelSpec& m = ops.model();
  const std::int64_t b = m.bytes_per_param, tp = par.attention_tp;
  const std::int64_t moe = m.moe_layers();
  MemoryReport r;
  r.attention_weights = Bytes(m.layers * ops.attention_proj_params() / tp * b);
  r.dense_weights = Bytes(m.dense_layers * ops.dense_mlp_params() / tp * b);
  r.expert_weights = Bytes(moe * par.experts_per_gpu * ops.expert_params() * b);
  // Routed shared experts sit in expert slots (counted in experts_per_gpu), not on every GPU.
  r.shared_weights = Bytes(moe * (m.shared_experts - par.routed_shared(m)) * ops.expert_params() / tp * b);
  r.other_weights = Bytes((moe * ops.gate_params() + 2 * m.vocab * m.hidden / tp) * b);

  const std::int64_t cached_tokens = work.mode == Mode::Prefill  ? work.tokens_per_gpu
                                     : work.mode == Mode::Decode ? work.batch_per_gpu * work.kv_len
                                                                 : 0;
  r.kv_cache = Bytes(cached_tokens * m.layers * ops.kv_bytes_per_token().count());

  // One layer's peak: residual stream in and out, the TP group's q/k/v/o, and the MoE buffers:
  // dispatch receive and expert output (R tokens of hidden), expert intermediate (R x 3I), combine
  // receive (T x top_k of hidden), with R = T x top_k expected routed tokens per GPU.
  const std::int64_t T = work.tokens();
  const std::int64_t R = T * m.top_k;
  const std::int64_t attn = T * tp * m.heads / tp * (2 * m.qk_head_dim() + 2 * m.v_dim());
  const std::int64_t moe_buf = R * (2 * m.hidden + 3 * m.expert_intermediate) + R * m.hidden;
  r.activations = Bytes((2 * T * m.hidden + attn + moe_buf) * b);
  if (work.mode == Mode::Training) {
    r.optimizer = Bytes(r.weights().count() / b * 14);
    r.activations = r.activations * m.layers;
  }
  r.capacity = gpu.memory;
  return r;
}

}  // namespace epsim
