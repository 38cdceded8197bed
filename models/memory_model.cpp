#include "models/memory_model.h"

#include <algorithm>

namespace epsim {

ModelShare ModelShare::whole(const MoeModelSpec& m, const Workload& work) {
  // workload.mtp_tokens: the MTP modules (model.mtp_layers, at least one; each one MoE decoder layer
  // and its 2h x h projection; the embedding and the LM head are the model's) are stored once,
  // whatever the draft count.
  const int mtp = work.mtp_tokens > 0 ? std::max(1, m.mtp_layers) : 0;
  ModelShare s;
  s.dense_layers = m.dense_layer_count();
  s.moe_layers = m.moe_layers() + mtp;
  s.mtp_projections = mtp;
  for (int l = 0; l < m.layers; ++l) s.window_layers += m.window_of(l) > 0 ? 1 : 0;
  s.activation_layers = work.mode == Mode::Training ? m.layers : 1;
  s.activation_tokens = work.tokens();
  return s;
}

MemoryReport estimate_memory(const LayerOps& ops, const Parallelism& par, const Workload& work, const GpuSpec& gpu) {
  return estimate_memory(ops, par, work, gpu, ModelShare::whole(ops.model(), work));
}

MemoryReport estimate_memory(const LayerOps& ops, const Parallelism& par, const Workload& work, const GpuSpec& gpu,
                             const ModelShare& share) {
  const MoeModelSpec& m = ops.model();
  const std::int64_t b = m.bytes_per_param, tp = par.attention_tp;
  const std::int64_t layers = share.dense_layers + share.moe_layers;
  const std::int64_t moe = share.moe_layers;
  const std::int64_t shared_here = m.shared_experts - par.routed_shared(m);
  MemoryReport r;
  // Weights as stored (models/precision.h: bf16, or fp8 with one FP32 scale per 128 x 128 block).
  r.attention_weights = ops.attention_weight_bytes(true) * layers;
  r.dense_weights = Bytes(share.dense_layers * ops.dense_mlp_weight_bytes().count() / tp);
  r.expert_weights = ops.expert_weight_bytes() * (moe * par.experts_per_gpu);
  // Routed shared experts sit in expert slots (counted in experts_per_gpu), not on every GPU.
  r.shared_weights = Bytes(moe * shared_here * ops.expert_weight_bytes().count() / tp);
  // Gates (bf16), the embedding (bf16) and the LM head, the last two 1/tp.
  const Bytes embedding = share.embedding ? Precision::matrix_bytes(NumberFormat::Bf16, m.vocab, m.hidden) : Bytes(0);
  const Bytes head = share.lm_head ? ops.lm_head_weight_bytes() : Bytes(0);
  r.other_weights = ops.gate_weight_bytes() * moe + Bytes((embedding + head).count() / tp);
  r.other_weights += m.precision.weight_bytes(2 * m.hidden, m.hidden) * share.mtp_projections;

  // KV cache: each sequence's context in every layer held; a windowed layer keeps at most its window
  // of it (sliding: the last tokens; chunked: the current chunk).
  const std::int64_t context = work.mode == Mode::Prefill ? work.seq_len : work.mode == Mode::Decode ? work.kv_len : 0;
  const std::int64_t seqs = work.mode == Mode::Training ? 0 : work.sequences();
  const std::int64_t kept = m.attention_window > 0 ? std::min<std::int64_t>(m.attention_window, context) : context;
  r.kv_cache = Bytes(seqs * ((layers - share.window_layers) * context + share.window_layers * kept) * ops.kv_bytes_per_token().count());

  // One layer's peak: residual stream in and out, the TP group's q/k/v/o, and the MoE buffers:
  // dispatch receive and expert output (R tokens of hidden), expert intermediate (R x 3I), combine
  // receive (T x top_k of hidden), with R = T x top_k expected routed tokens per GPU.
  const std::int64_t T = share.activation_tokens;
  const std::int64_t R = T * m.top_k;
  const std::int64_t attn = T * tp * m.heads / tp * (2 * m.qk_head_dim() + 2 * m.v_dim());
  const std::int64_t moe_buf = R * (2 * m.hidden + 3 * m.expert_intermediate) + R * m.hidden;
  const Bytes one_layer((2 * T * m.hidden + attn + moe_buf) * b);
  r.activations = Bytes(checked_int64(static_cast<double>(one_layer.count()) * share.activation_layers, "activation bytes (double) -> Bytes"));
  if (work.mode == Mode::Training) {
    // Gradients (2 B) and Adam's master weights, m and v (3 x 4 B) per parameter, whatever the
    // weights' stored format.
    const std::int64_t vocab_matrices = (share.embedding ? 1 : 0) + (share.lm_head ? 1 : 0);
    const std::int64_t params = layers * ops.attention_proj_params() / tp + share.dense_layers * ops.dense_mlp_params() / tp +
                                moe * par.experts_per_gpu * ops.expert_params() + moe * shared_here * ops.expert_params() / tp +
                                moe * ops.gate_params() + vocab_matrices * m.vocab * m.hidden / tp;
    r.optimizer = Bytes(params * 14);
  }
  r.capacity = gpu.memory;
  return r;
}

}  // namespace epsim
