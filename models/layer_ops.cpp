#include "models/layer_ops.h"

#include <algorithm>

#include <string_view>

namespace epsim {

const char* to_string(OpClass c) {
  switch (c) {
    case OpClass::AttentionProj: return "attention_proj";
    case OpClass::AttentionCore: return "attention_core";
    case OpClass::Gate: return "gate";
    case OpClass::DenseMlp: return "dense_mlp";
    case OpClass::ExpertMlp: return "expert_mlp";
    case OpClass::SharedExpert: return "shared_expert";
    case OpClass::LmHead: return "lm_head";
    case OpClass::Permute: return "permute";
    case OpClass::Unpermute: return "unpermute";
    case OpClass::ExpertGemm: return "expert_gemm";
    case OpClass::ExpertActivation: return "expert_activation";
    case OpClass::LocalCopy: return "local_copy";
    case OpClass::Norm: return "norm";
    case OpClass::Rope: return "rope";
    case OpClass::Residual: return "residual";
    case OpClass::QuantAct: return "quant_act";
    case OpClass::RouterTopk: return "router_topk";
    case OpClass::Activation: return "activation";
    case OpClass::AttentionCoreBwd: return "attention_core_bwd";
    case OpClass::MtpProjection: return "mtp_projection";
  }
  return "?";
}

std::vector<WeightMatrix> LayerOps::attention_matrices() const {
  const std::int64_t h = m_.hidden, H = m_.heads;
  if (m_.attention == AttentionKind::None) return {};
  if (m_.attention == AttentionKind::Mha) {
    const std::int64_t d = m_.head_dim, kv = m_.kv_head_count();
    return {{"q_proj", h, H * d}, {"kv_proj", h, 2 * kv * d}, {"o_proj", H * d, h}};
  }
  std::vector<WeightMatrix> w;
  const std::int64_t dqk = m_.qk_head_dim(), r = m_.q_lora_rank;
  if (r > 0) {
    w.push_back({"q_proj", h, r, false});  // q_a_proj, replicated over TP
    w.push_back({"q_b_proj", r, H * dqk});
  } else {
    w.push_back({"q_proj", h, H * dqk});
  }
  w.push_back({"kv_proj", h, m_.kv_lora_rank + m_.qk_rope_head_dim, false});  // kv_a_proj_with_mqa, replicated
  w.push_back({"kv_b_proj", m_.kv_lora_rank, H * (m_.qk_nope_head_dim + m_.v_head_dim)});
  w.push_back({"o_proj", H * m_.v_head_dim, h});
  return w;
}

std::int64_t LayerOps::attention_proj_params() const {
  std::int64_t n = 0;
  for (const WeightMatrix& w : attention_matrices()) n += w.rows * w.cols;
  return n;
}

Bytes LayerOps::attention_weight_bytes(bool per_gpu) const {
  Bytes b(0);
  // MHA/GQA's k and v are two matrices of hidden x kv_heads*d (their scale blocks counted apart).
  for (const WeightMatrix& w : attention_matrices()) {
    const Bytes one = std::string_view(w.op) == "kv_proj" && m_.attention == AttentionKind::Mha
                          ? m_.precision.weight_bytes(w.rows, w.cols / 2) * 2
                          : m_.precision.weight_bytes(w.rows, w.cols);
    b += per_gpu && w.split ? Bytes(one.count() / tp_) : one;
  }
  return b;
}

Bytes LayerOps::expert_weight_bytes() const {
  return m_.precision.weight_bytes(m_.hidden, m_.expert_intermediate) * 3;
}

Bytes LayerOps::dense_mlp_weight_bytes() const {
  return m_.precision.weight_bytes(m_.hidden, m_.dense_intermediate) * 3;
}

Bytes LayerOps::kv_bytes_per_token() const {
  if (m_.attention == AttentionKind::None) return Bytes(0);
  if (m_.attention == AttentionKind::Mha) {
    // The TP group caches its tp x T tokens; each GPU holds ceil(kv_heads / tp) heads of them (GQA
    // with fewer kv heads than tp replicates them), so per token of this GPU: tp x that x 2d.
    const std::int64_t per_gpu = (m_.kv_head_count() + tp_ - 1) / tp_;
    return m_.precision.kv_bytes(tp_ * per_gpu * 2 * m_.head_dim);
  }
  return m_.precision.kv_bytes(static_cast<std::int64_t>(m_.kv_lora_rank + m_.qk_rope_head_dim) * tp_);
}

OpWork LayerOps::attention_proj(std::int64_t tokens) const {
  const double params = static_cast<double>(attention_proj_params()) / tp_;
  const double group_tokens = static_cast<double>(tokens) * tp_;
  const double flops = 2.0 * group_tokens * params;
  // Reads the group's hidden states, writes q/k/v; reads the attention output, writes hidden.
  const double width = static_cast<double>(m_.heads * (2 * m_.qk_head_dim() + m_.v_dim())) / tp_;
  const double acts = group_tokens * (2.0 * static_cast<double>(m_.hidden) + width + static_cast<double>(m_.heads * m_.v_dim()) / tp_);
  OpWork w{OpClass::AttentionProj, Flops(flops), attention_weight_bytes(true) + elems(acts), tokens};
  w.rows = tokens * tp_;
  w.precision = m_.precision.attention_proj;
  return w;
}

namespace {
// (query, key) pairs of the queries cached..n-1 of one causal sequence of n tokens: query i attends
// to keys 0..i; with a sliding window w to the last min(i + 1, w); with chunks of w to the keys of
// its own chunk up to itself.
double causal_pairs(std::int64_t n, std::int64_t cached, std::int64_t window, bool chunked) {
  auto upto = [&](std::int64_t q) {  // pairs of the queries 0..q-1
    auto triangle = [](std::int64_t k) { return static_cast<double>(k) * static_cast<double>(k + 1) / 2.0; };
    if (window <= 0 || window >= q) return triangle(q);
    if (chunked) return static_cast<double>(q / window) * triangle(window) + triangle(q % window);
    return triangle(window) + static_cast<double>(q - window) * static_cast<double>(window);
  };
  return upto(n) - upto(cached);
}
}  // namespace

OpWork LayerOps::attention_core_prefill(std::int64_t seqs, std::int64_t seq_len, std::int64_t cached, std::int64_t window) const {
  // Causal: per sequence the queries cached..seq_len-1 make causal_pairs (query, key) pairs; each
  // costs 2*dqk (scores) + 2*dv (weighted values) FLOPs per head. MLA's prefill runs its k and v
  // per head (expanded by kv_b_proj); MHA/GQA reads kv_heads_per_gpu() heads of k and v.
  const double group_seqs = static_cast<double>(seqs) * tp_;
  const double heads = static_cast<double>(m_.heads) / tp_;
  const double kv_heads = m_.attention == AttentionKind::Mha ? static_cast<double>(kv_heads_per_gpu()) : heads;
  const double s = static_cast<double>(seq_len), p = static_cast<double>(cached);
  const double pairs = causal_pairs(seq_len, cached, window, m_.chunked_window);
  const double flops = group_seqs * heads * pairs * 2.0 * static_cast<double>(m_.qk_head_dim() + m_.v_dim());
  const double fresh = group_seqs * (s - p), all = group_seqs * s;
  const double dqk = static_cast<double>(m_.qk_head_dim()), dv = static_cast<double>(m_.v_dim());
  // q of the new tokens and k, v of every token in at the core's format; o of the new tokens out, bf16.
  const double in = (fresh * heads * dqk + all * kv_heads * (dqk + dv)) * static_cast<double>(Precision::element_bytes(m_.precision.attention_core));
  const double out = fresh * heads * dv * 2.0;
  OpWork w{OpClass::AttentionCore, Flops(flops), Bytes(checked_int64(in + out, "attention core bytes (double) -> Bytes")), seqs * (seq_len - cached)};
  w.seq_len = seq_len;
  core_sizes(w);
  w.precision = m_.precision.attention_core;
  return w;
}

OpWork LayerOps::attention_core_decode(std::int64_t seqs, std::int64_t context, int queries, std::int64_t window) const {
  // A windowed layer reads at most its window of the context (a chunked one: at most a whole chunk).
  const std::int64_t kv_len = window > 0 ? std::min(context, window) : context;
  const double group_seqs = static_cast<double>(seqs) * tp_;
  const double heads = static_cast<double>(m_.heads) / tp_;
  // Per head and cached token: MHA/GQA 2 dqk (scores) + 2 dv (values); MLA absorbed (DeepSeek's
  // decode): scores over the latent and k_pe, 2 (kv_lora + rope), values in the latent, 2 kv_lora.
  const double per_key = m_.attention == AttentionKind::Mla
                             ? 2.0 * static_cast<double>(2 * m_.kv_lora_rank + m_.qk_rope_head_dim)
                             : 2.0 * static_cast<double>(m_.qk_head_dim() + m_.v_dim());
  const double flops = group_seqs * queries * heads * static_cast<double>(kv_len) * per_key;
  // Memory-bound at short KV (MHA/GQA): the whole KV cache of every sequence is read once, whatever
  // its query count.
  const double kv = group_seqs * static_cast<double>(kv_len) * static_cast<double>(kv_bytes_per_token().count()) / tp_;
  OpWork w{OpClass::AttentionCore, Flops(flops), Bytes(checked_int64(kv, "KV bytes (double) -> Bytes")), seqs * queries};
  w.kv_len = kv_len;
  core_sizes(w);
  if (m_.attention == AttentionKind::Mla) absorbed_sizes(w);  // absorbed: the latent cache, MQA-like
  w.precision = m_.precision.attention_core;
  return w;
}

OpWork LayerOps::mtp_projection(std::int64_t tokens) const {
  return linear(OpClass::MtpProjection, NumberFormat::Bf16, tokens, 2 * m_.hidden, m_.hidden, weight(2 * m_.hidden, m_.hidden));
}

void LayerOps::core_sizes(OpWork& w) const {
  w.sizes.heads = m_.heads / tp_;
  w.sizes.kv_heads = m_.attention == AttentionKind::Mha ? static_cast<int>(kv_heads_per_gpu()) : w.sizes.heads;
  w.sizes.head_dim_qk = static_cast<int>(m_.qk_head_dim());
  w.sizes.head_dim_v = static_cast<int>(m_.v_dim());
}

OpWork LayerOps::attention_core_backward(const OpWork& f) const {
  OpWork w = f;
  w.op = OpClass::AttentionCoreBwd;
  w.flops = f.flops * 2.5;
  w.bytes = f.bytes + f.bytes;
  return w;
}

OpWork LayerOps::linear(OpClass op, NumberFormat f, std::int64_t rows, std::int64_t k, std::int64_t n, Bytes weights) const {
  const double m = static_cast<double>(rows), nn = static_cast<double>(n), kk = static_cast<double>(k);
  const Bytes in = f == NumberFormat::Fp8 ? Precision::token_bytes(NumberFormat::Fp8, k) * rows : Bytes(rows * k * 2);
  OpWork w{op, Flops(2.0 * m * nn * kk), weights + in + Bytes(rows * n * 2), rows};
  w.rows = rows;
  w.precision = f;
  w.sizes.m = rows;
  w.sizes.n = n;
  w.sizes.k = k;
  return w;
}

OpWork LayerOps::norm(std::int64_t rows, std::int64_t width) const {
  OpWork w{OpClass::Norm, Flops(4.0 * static_cast<double>(rows * width)), Bytes(4 * rows * width + 2 * width), rows};
  w.rows = rows;
  w.sizes.hidden = width;
  return w;
}

OpWork LayerOps::rope(std::int64_t rows, std::int64_t kv_len) const {
  const std::int64_t heads = m_.heads / tp_;
  const std::int64_t elements = m_.attention == AttentionKind::Mha ? rows * (heads + kv_heads_per_gpu()) * m_.head_dim
                                                                   : rows * (heads + 1) * m_.qk_rope_head_dim;
  OpWork w{OpClass::Rope, Flops(3.0 * static_cast<double>(elements)), Bytes(4 * elements), rows};
  w.rows = rows;
  w.sizes.heads = static_cast<int>(heads);
  if (m_.attention == AttentionKind::Mha) {
    w.sizes.kv_heads = static_cast<int>(kv_heads_per_gpu());
    w.sizes.head_dim = m_.head_dim;
  }
  w.kv_len = kv_len;
  if (kv_len > 0 && m_.attention == AttentionKind::Mla) absorbed_sizes(w);
  return w;
}

void LayerOps::absorbed_sizes(OpWork& w) const {
  w.sizes.kv_lora = m_.kv_lora_rank;
  w.sizes.rope_dim = m_.qk_rope_head_dim;
  w.sizes.head_dim_qk = static_cast<int>(m_.qk_head_dim());
}

OpWork LayerOps::residual(std::int64_t tokens) const {
  const std::int64_t elements = tokens * m_.hidden;
  OpWork w{OpClass::Residual, Flops(static_cast<double>(elements)), Bytes(6 * elements), tokens};
  w.sizes.hidden = m_.hidden;
  return w;
}

OpWork LayerOps::quant(std::int64_t rows, std::int64_t width) const {
  OpWork w{OpClass::QuantAct, Flops(2.0 * static_cast<double>(rows * width)),
           Bytes(2 * rows * width) + Precision::token_bytes(NumberFormat::Fp8, width) * rows, rows};
  w.rows = rows;
  w.sizes.k = width;
  return w;
}

OpWork LayerOps::swiglu(OpClass op, std::int64_t rows, std::int64_t width) const {
  OpWork w{op, Flops(5.0 * static_cast<double>(rows * width)), Bytes(6 * rows * width), rows};
  w.rows = rows;
  w.sizes.inter = width;
  return w;
}

OpWork LayerOps::router_topk(std::int64_t tokens) const {
  const std::int64_t logits = tokens * m_.routed_experts;
  return {OpClass::RouterTopk, Flops(8.0 * static_cast<double>(logits)), Bytes(2 * logits + 8 * tokens * m_.top_k), tokens};
}

OpWork LayerOps::kv_b_absorbed(std::int64_t rows) const {
  const std::int64_t heads = m_.heads / tp_, r = m_.kv_lora_rank, nope = m_.qk_nope_head_dim, v = m_.v_head_dim;
  const NumberFormat f = m_.precision.attention_proj;
  const Bytes weights(weight(r, m_.heads * (nope + v)).count() / tp_);
  // q_nope in, its latent out; the latent output in, v out (per head).
  const std::int64_t acts = rows * heads * (nope + r) + rows * heads * (r + v);
  OpWork w{OpClass::AttentionProj, Flops(2.0 * static_cast<double>(rows * heads) * static_cast<double>(r * (nope + v))),
           weights + Bytes(2 * acts), rows};
  w.rows = rows;
  w.precision = f;
  // Named sizes of the two per-head products (op_family.h prices them apart): m rows, per head
  // q_nope (head_dim_qk = nope) x W_UK into kv_lora, kv_lora x W_UV into head_dim_v.
  w.sizes.m = rows;
  w.sizes.heads = static_cast<int>(heads);
  w.sizes.kv_lora = static_cast<int>(r);
  w.sizes.head_dim_qk = static_cast<int>(nope);
  w.sizes.head_dim_v = static_cast<int>(v);
  return w;
}

OpWork LayerOps::gate(std::int64_t tokens) const {
  return linear(OpClass::Gate, NumberFormat::Bf16, tokens, m_.hidden, m_.routed_experts, gate_weight_bytes());
}

OpWork LayerOps::mlp(OpClass op, NumberFormat f, std::int64_t tokens, std::int64_t intermediate, int copies, double weight_share) const {
  // gate+up: h -> 2I, SiLU*mul, down: I -> h. Three h x I GEMMs per token; weights as stored.
  const double t = static_cast<double>(tokens);
  const double params = 3.0 * static_cast<double>(m_.hidden * intermediate) * copies * weight_share;
  const double flops = 2.0 * t * params;
  const double inter = static_cast<double>(intermediate) * copies * weight_share;
  const double acts = t * (2.0 * static_cast<double>(m_.hidden) + 3.0 * inter);  // x in, y out, 2I out + I in
  const double weights = static_cast<double>((m_.precision.weight_bytes(m_.hidden, intermediate) * 3).count()) * copies * weight_share;
  OpWork w{op, Flops(flops), Bytes(checked_int64(weights, "MLP weight bytes (double) -> Bytes")) + elems(acts), tokens, copies};
  w.precision = f;
  return w;
}

OpWork LayerOps::dense_mlp(std::int64_t tokens) const {
  return mlp(OpClass::DenseMlp, m_.precision.dense_mlp, tokens * tp_, m_.dense_intermediate, 1, 1.0 / tp_);
}

OpWork LayerOps::expert_mlp(std::int64_t tokens, int experts) const {
  // Each token passes through one expert; weights of all `experts` are read.
  OpWork w = mlp(OpClass::ExpertMlp, m_.precision.routed_experts, tokens, m_.expert_intermediate, 1, 1.0);
  w.bytes += expert_weight_bytes() * (experts - 1);
  w.experts = experts;
  return w;
}

OpWork LayerOps::expert_gemm_up(std::int64_t rows) const {
  const std::int64_t n = 2 * m_.expert_intermediate;
  return linear(OpClass::ExpertGemm, m_.precision.routed_experts, rows, m_.hidden, n, weight(m_.hidden, n));
}

OpWork LayerOps::expert_gemm_down(std::int64_t rows) const {
  return linear(OpClass::ExpertGemm, m_.precision.routed_experts, rows, m_.expert_intermediate, m_.hidden,
                weight(m_.expert_intermediate, m_.hidden));
}

OpWork LayerOps::expert_activation(std::int64_t rows) const {
  return swiglu(OpClass::ExpertActivation, rows, m_.expert_intermediate);
}

OpWork LayerOps::local_copy(Bytes bytes) const {
  return {OpClass::LocalCopy, Flops(0), bytes + bytes, 0};
}

OpWork LayerOps::shared_expert(std::int64_t tokens) const {
  return mlp(OpClass::SharedExpert, m_.precision.shared_expert, tokens * tp_, m_.expert_intermediate, m_.shared_experts, 1.0 / tp_);
}

OpWork LayerOps::lm_head(std::int64_t tokens) const {
  const double t = static_cast<double>(tokens) * tp_;
  const double params = static_cast<double>(m_.vocab * m_.hidden) / tp_;
  OpWork w{OpClass::LmHead, Flops(2.0 * t * params),
           Bytes(lm_head_weight_bytes().count() / tp_) + elems(t * (static_cast<double>(m_.hidden) + static_cast<double>(m_.vocab) / tp_)), tokens};
  w.rows = tokens * tp_;
  w.precision = m_.precision.lm_head;
  return w;
}

OpWork LayerOps::permute(std::int64_t tokens, NumberFormat f) const {
  const std::int64_t rows = tokens * (m_.top_k + 1);
  return {OpClass::Permute, Flops(0), Precision::token_bytes(f, m_.hidden) * rows, tokens};
}

OpWork LayerOps::unpermute(std::int64_t tokens) const {
  // The weighted sum: top_k multiply-adds per output element.
  OpWork w = permute(tokens, m_.precision.combine);
  w.op = OpClass::Unpermute;
  w.flops = Flops(2.0 * static_cast<double>(tokens * m_.top_k * m_.hidden));
  return w;
}

}  // namespace epsim
