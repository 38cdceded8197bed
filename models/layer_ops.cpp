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
    w.push_back({"q_proj", h, r});  // q_a_proj
    w.push_back({"q_b_proj", r, H * dqk});
  } else {
    w.push_back({"q_proj", h, H * dqk});
  }
  w.push_back({"kv_proj", h, m_.kv_lora_rank + m_.qk_rope_head_dim});  // kv_a_proj_with_mqa
  w.push_back({"kv_b_proj", m_.kv_lora_rank, H * (m_.qk_nope_head_dim + m_.v_head_dim)});
  w.push_back({"o_proj", H * m_.v_head_dim, h});
  return w;
}

std::int64_t LayerOps::attention_proj_params() const {
  std::int64_t n = 0;
  for (const WeightMatrix& w : attention_matrices()) n += w.rows * w.cols;
  return n;
}

Bytes LayerOps::attention_weight_bytes() const {
  Bytes b(0);
  // MHA/GQA's k and v are two matrices of hidden x kv_heads*d (their scale blocks counted apart).
  for (const WeightMatrix& w : attention_matrices())
    b += std::string_view(w.op) == "kv_proj" && m_.attention == AttentionKind::Mha
             ? m_.precision.weight_bytes(w.rows, w.cols / 2) * 2
             : m_.precision.weight_bytes(w.rows, w.cols);
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
  OpWork w{OpClass::AttentionProj, Flops(flops), elems(params + acts), tokens};
  w.rows = tokens * tp_;
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
  // costs 2*dqk (scores) + 2*dv (weighted values) FLOPs per head.
  const double group_seqs = static_cast<double>(seqs) * tp_;
  const double heads = static_cast<double>(m_.heads) / tp_;
  const double s = static_cast<double>(seq_len);
  const double pairs = causal_pairs(seq_len, cached, window, m_.chunked_window);
  const double flops = group_seqs * heads * pairs * 2.0 * static_cast<double>(m_.qk_head_dim() + m_.v_dim());
  // q in and o out for the new tokens, k and v in for every token.
  const double width = static_cast<double>(m_.qk_head_dim() + m_.v_dim());
  const double io = group_seqs * heads * (static_cast<double>(seq_len - cached) * width + s * width);
  OpWork w{OpClass::AttentionCore, Flops(flops), elems(io), seqs * (seq_len - cached)};
  w.seq_len = seq_len;
  return w;
}

OpWork LayerOps::attention_core_decode(std::int64_t seqs, std::int64_t context, int queries, std::int64_t window) const {
  // A windowed layer reads at most its window of the context (a chunked one: at most a whole chunk).
  const std::int64_t kv_len = window > 0 ? std::min(context, window) : context;
  const double group_seqs = static_cast<double>(seqs) * tp_;
  const double heads = static_cast<double>(m_.heads) / tp_;
  const double flops = group_seqs * queries * heads * static_cast<double>(kv_len) * 2.0 * static_cast<double>(m_.qk_head_dim() + m_.v_dim());
  // Memory-bound: the whole KV cache of every sequence is read once, whatever its query count.
  const double kv = group_seqs * static_cast<double>(kv_len) * static_cast<double>(kv_bytes_per_token().count()) / tp_;
  OpWork w{OpClass::AttentionCore, Flops(flops), Bytes(static_cast<std::int64_t>(kv)), seqs * queries};
  w.kv_len = kv_len;
  return w;
}

OpWork LayerOps::mtp_projection(std::int64_t tokens) const {
  return gemm(OpClass::MtpProjection, tokens, m_.hidden, 2 * m_.hidden);
}

OpWork LayerOps::gate(std::int64_t tokens) const {
  const double t = static_cast<double>(tokens);
  const double flops = 2.0 * t * static_cast<double>(gate_params());
  return {OpClass::Gate, Flops(flops), elems(static_cast<double>(gate_params()) + t * static_cast<double>(m_.hidden + m_.routed_experts)), tokens};
}

OpWork LayerOps::mlp(OpClass op, std::int64_t tokens, std::int64_t intermediate, int copies, double weight_share) const {
  // gate+up: h -> 2I, SiLU*mul, down: I -> h. Three h x I GEMMs per token.
  const double t = static_cast<double>(tokens);
  const double params = 3.0 * static_cast<double>(m_.hidden * intermediate) * copies * weight_share;
  const double flops = 2.0 * t * params;
  const double inter = static_cast<double>(intermediate) * copies * weight_share;
  const double acts = t * (2.0 * static_cast<double>(m_.hidden) + 3.0 * inter);  // x in, y out, 2I out + I in
  return {op, Flops(flops), elems(params + acts), tokens, copies};
}

OpWork LayerOps::dense_mlp(std::int64_t tokens) const {
  return mlp(OpClass::DenseMlp, tokens * tp_, m_.dense_intermediate, 1, 1.0 / tp_);
}

OpWork LayerOps::expert_mlp(std::int64_t tokens, int experts) const {
  // Each token passes through one expert; weights of all `experts` are read.
  OpWork w = mlp(OpClass::ExpertMlp, tokens, m_.expert_intermediate, 1, 1.0);
  const double extra = 3.0 * static_cast<double>(m_.hidden * m_.expert_intermediate) * (experts - 1);
  w.bytes += elems(extra);
  w.experts = experts;
  return w;
}

OpWork LayerOps::gemm(OpClass op, std::int64_t rows, std::int64_t n, std::int64_t k) const {
  const double m = static_cast<double>(rows), nn = static_cast<double>(n), kk = static_cast<double>(k);
  OpWork w{op, Flops(2.0 * m * nn * kk), elems(nn * kk + m * (nn + kk)), rows};
  w.rows = rows;
  return w;
}

OpWork LayerOps::expert_gemm_up(std::int64_t rows) const {
  return gemm(OpClass::ExpertGemm, rows, 2 * m_.expert_intermediate, m_.hidden);
}

OpWork LayerOps::expert_gemm_down(std::int64_t rows) const {
  return gemm(OpClass::ExpertGemm, rows, m_.hidden, m_.expert_intermediate);
}

OpWork LayerOps::expert_activation(std::int64_t rows) const {
  const double r = static_cast<double>(rows), i = static_cast<double>(m_.expert_intermediate);
  OpWork w{OpClass::ExpertActivation, Flops(0), elems(r * 3.0 * i), rows};
  w.rows = rows;
  return w;
}

OpWork LayerOps::local_copy(Bytes bytes) const {
  return {OpClass::LocalCopy, Flops(0), bytes + bytes, 0};
}

OpWork LayerOps::shared_expert(std::int64_t tokens) const {
  return mlp(OpClass::SharedExpert, tokens * tp_, m_.expert_intermediate, m_.shared_experts, 1.0 / tp_);
}

OpWork LayerOps::lm_head(std::int64_t tokens) const {
  const double t = static_cast<double>(tokens) * tp_;
  const double params = static_cast<double>(m_.vocab * m_.hidden) / tp_;
  OpWork w{OpClass::LmHead, Flops(2.0 * t * params), elems(params + t * (static_cast<double>(m_.hidden) + static_cast<double>(m_.vocab) / tp_)), tokens};
  w.rows = tokens * tp_;
  return w;
}

OpWork LayerOps::permute(std::int64_t tokens) const {
  const double rows = static_cast<double>(tokens) * static_cast<double>(m_.top_k + 1);
  return {OpClass::Permute, Flops(0), elems(rows * static_cast<double>(m_.hidden)), tokens};
}

OpWork LayerOps::unpermute(std::int64_t tokens) const {
  OpWork w = permute(tokens);
  w.op = OpClass::Unpermute;
  return w;
}

}  // namespace epsim
