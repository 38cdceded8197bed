#include "models/memory_model.h"

namespace epsim {

MemoryReport estimate_memory(const LayerOps& ops, const Parallelism& par, const Workload& work, const GpuSpec& gpu) {
  const MoeModelSpec& m = ops.model();
  const std::int64_t b = m.bytes_per_param, tp = par.attention_tp;
  // workload.mtp_tokens: the MTP module (one MoE decoder layer and its 2h x h projection; the
  // embedding and the LM head are the model's) is stored once, whatever the draft count.
  const std::int64_t mtp = work.mtp_tokens > 0 ? 1 : 0;
  const std::int64_t layers = m.layers + mtp;
  const std::int64_t moe = m.moe_layers() + mtp;
  const std::int64_t shared_here = m.shared_experts - par.routed_shared(m);
  MemoryReport r;
  // Weights as stored (models/precision.h: bf16, or fp8 with one FP32 scale per 128 x 128 block).
  r.attention_weights = Bytes(layers * ops.attention_weight_bytes().count() / tp);
  r.dense_weights = Bytes(m.dense_layers * ops.dense_mlp_weight_bytes().count() / tp);
  r.expert_weights = ops.expert_weight_bytes() * (moe * par.experts_per_gpu);
  // Routed shared experts sit in expert slots (counted in experts_per_gpu), not on every GPU.
  r.shared_weights = Bytes(moe * shared_here * ops.expert_weight_bytes().count() / tp);
  // Gates (bf16), the embedding (bf16) and the LM head, the last two 1/tp.
  const Bytes embedding = Precision::matrix_bytes(NumberFormat::Bf16, m.vocab, m.hidden);
  r.other_weights = ops.gate_weight_bytes() * moe + Bytes((embedding + ops.lm_head_weight_bytes()).count() / tp);
  if (mtp > 0) r.other_weights += m.precision.weight_bytes(2 * m.hidden, m.hidden);

  const std::int64_t cached_tokens = work.mode == Mode::Prefill  ? work.tokens_per_gpu
                                     : work.mode == Mode::Decode ? work.batch_per_gpu * work.kv_len
                                                                 : 0;
  r.kv_cache = Bytes(cached_tokens * layers * ops.kv_bytes_per_token().count());

  // One layer's peak: residual stream in and out, the TP group's q/k/v/o, and the MoE buffers:
  // dispatch receive and expert output (R tokens of hidden), expert intermediate (R x 3I), combine
  // receive (T x top_k of hidden), with R = T x top_k expected routed tokens per GPU.
  const std::int64_t T = work.tokens();
  const std::int64_t R = T * m.top_k;
  const std::int64_t attn = T * tp * m.heads / tp * (2 * m.qk_head_dim() + 2 * m.v_dim());
  const std::int64_t moe_buf = R * (2 * m.hidden + 3 * m.expert_intermediate) + R * m.hidden;
  r.activations = Bytes((2 * T * m.hidden + attn + moe_buf) * b);
  if (work.mode == Mode::Training) {
    // Gradients (2 B) and Adam's master weights, m and v (3 x 4 B) per parameter, whatever the
    // weights' stored format.
    const std::int64_t params = m.layers * ops.attention_proj_params() / tp + m.dense_layers * ops.dense_mlp_params() / tp +
                                moe * par.experts_per_gpu * ops.expert_params() + moe * shared_here * ops.expert_params() / tp +
                                moe * ops.gate_params() + 2 * m.vocab * m.hidden / tp;
    r.optimizer = Bytes(params * 14);
    r.activations = r.activations * m.layers;
  }
  r.capacity = gpu.memory;
  return r;
}

}  // namespace epsim
