// FLOPs and bytes of every op of a transformer layer, as functions of token counts.
//
// Conventions: a GEMM of M x K by K x N costs 2*M*N*K FLOPs. Bytes count each weight read once and
// each activation read once and written once, at the model's bytes per element (BF16: 2). With
// attention tensor parallelism of degree tp, a TP group of tp GPUs processes the tokens of all its
// GPUs with 1/tp of the heads (and of the dense MLP) on each GPU.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "models/moe_model.h"
#include "models/units.h"

namespace epsim {

enum class OpClass {
  AttentionProj,
  AttentionCore,
  Gate,
  DenseMlp,
  ExpertMlp,
  SharedExpert,
  LmHead,
  Permute,    // gather each token's top-k copies into expert order before the dispatch (HBM-bound)
  Unpermute,  // weighted sum of each token's top-k expert outputs after the combine (HBM-bound)
  ExpertGemm,        // one GEMM of one expert's MLP (cost_model.expert_gemms=per-expert)
  ExpertActivation,  // SiLU(gate) x up over a chunk's expert rows, between the two GEMMs (HBM-bound)
  LocalCopy,         // rows a dispatch or combine round sends to its own GPU: a device copy (HBM-bound)
  MtpProjection,     // the MTP module's 2 x hidden -> hidden GEMM (workload.mtp_tokens)
};
const char* to_string(OpClass c);

struct OpWork {
  OpClass op;
  Flops flops;
  Bytes bytes;
  std::int64_t tokens = 0;  // tokens the op processes on this GPU (for calibrated costs)
  int experts = 1;          // experts whose weights the op reads (ExpertMlp)
  // Shape hints for calibrated costs (0: not given). rows: GEMM rows M on this GPU when they differ
  // from `tokens` (TP-sharded attention projections and LM head: tokens x tp); seq_len: causal
  // prefill sequence length; kv_len: decode KV length (AttentionCore).
  std::int64_t rows = 0;
  std::int64_t seq_len = 0;
  std::int64_t kv_len = 0;
};

// One linear layer's weight, rows x cols (input width x output width), named as the op that uses it.
struct WeightMatrix {
  const char* op;
  std::int64_t rows;
  std::int64_t cols;
};

class LayerOps {
 public:
  LayerOps(const MoeModelSpec& model, int tp) : m_(model), tp_(tp) {}

  // One layer's attention projections, whole (not divided by tp): MHA/GQA q, k, v, o; MLA q (or
  // q_a and q_b), kv_a (kv_proj), kv_b, o.
  std::vector<WeightMatrix> attention_matrices() const;
  // Parameters (elements) of one layer's attention projections, whole (not divided by tp).
  std::int64_t attention_proj_params() const;
  // Stored bytes of one layer's weights at precision.weights (fp8: with the 128 x 128 block scales),
  // whole (not divided by tp): attention projections, one expert (gate, up, down: hidden x I each),
  // the dense MLP; the router (hidden x experts, bf16) and the LM head (precision.lm_head_weight_bytes).
  Bytes attention_weight_bytes() const;
  Bytes expert_weight_bytes() const;
  Bytes dense_mlp_weight_bytes() const;
  Bytes gate_weight_bytes() const { return Precision::matrix_bytes(NumberFormat::Bf16, m_.hidden, m_.routed_experts); }
  Bytes lm_head_weight_bytes() const { return m_.precision.lm_head_weight_bytes(m_.hidden, m_.vocab); }
  std::int64_t expert_params() const { return 3 * m_.hidden * m_.expert_intermediate; }
  std::int64_t dense_mlp_params() const { return 3 * m_.hidden * m_.dense_intermediate; }
  std::int64_t gate_params() const { return m_.hidden * m_.routed_experts; }
  // KV-cache bytes per token per layer, on one GPU of a TP group (MHA: heads split over tp;
  // MLA: the compressed latent is replicated).
  Bytes kv_bytes_per_token() const;

  // `tokens` is the tokens of this GPU (T); the TP group processes tp*T with 1/tp of the weights.
  OpWork attention_proj(std::int64_t tokens) const;
  // Causal prefill of `seqs` sequences of `seq_len` tokens on this GPU (heads split over tp), the
  // first `cached` of each sequence from the prefix cache: only the others are queries, every
  // token's k and v is read. `window` > 0: a local-attention layer (model.attention_window,
  // sliding or chunked).
  OpWork attention_core_prefill(std::int64_t seqs, std::int64_t seq_len, std::int64_t cached = 0,
                                std::int64_t window = 0) const;
  // `queries` decode tokens (the new one and its MTP drafts) for each of `seqs` sequences at KV
  // length `kv_len`: the KV cache is read once per sequence. `window` > 0: the layer reads at most
  // that many of the cached tokens.
  OpWork attention_core_decode(std::int64_t seqs, std::int64_t kv_len, int queries = 1, std::int64_t window = 0) const;
  // DeepSeek-V3's MTP projection: [norm(h); norm(embedding)] (2 x hidden) -> hidden, one GEMM.
  OpWork mtp_projection(std::int64_t tokens) const;
  std::int64_t mtp_projection_params() const { return 2 * m_.hidden * m_.hidden; }
  OpWork gate(std::int64_t tokens) const;
  OpWork dense_mlp(std::int64_t tokens) const;
  // `tokens` routed tokens spread over `experts` experts held by this GPU.
  OpWork expert_mlp(std::int64_t tokens, int experts) const;
  // One expert's MLP as the measured layer runs it (kernels/ep_layer.cu, a cuBLAS GEMM per expert):
  // gate+up `rows` x 2I x hidden, down `rows` x hidden x I (rows = M, weights per row = N x K).
  OpWork expert_gemm_up(std::int64_t rows) const;
  OpWork expert_gemm_down(std::int64_t rows) const;
  // SiLU(gate) x up of `rows` rows: 2I read, I written per row (one kernel per chunk in the layer).
  OpWork expert_activation(std::int64_t rows) const;
  // A device-to-device copy of `bytes` (read once, written once).
  OpWork local_copy(Bytes bytes) const;
  OpWork shared_expert(std::int64_t tokens) const;
  OpWork lm_head(std::int64_t tokens) const;
  // `tokens` tokens of this GPU, each read once and written top_k times in expert order (permute),
  // or top_k rows read and one written per token (unpermute): (top_k + 1) rows of hidden each, the
  // convention of the measured permute and unpermute_combine kernels (kernels/moe_kernels.cu).
  OpWork permute(std::int64_t tokens) const;
  OpWork unpermute(std::int64_t tokens) const;

  const MoeModelSpec& model() const { return m_; }
  int tp() const { return tp_; }

 private:
  Bytes elems(double n) const { return Bytes(static_cast<std::int64_t>(n) * m_.bytes_per_param); }
  OpWork mlp(OpClass op, std::int64_t tokens, std::int64_t intermediate, int copies, double weight_share) const;
  OpWork gemm(OpClass op, std::int64_t rows, std::int64_t n, std::int64_t k) const;
  const MoeModelSpec& m_;
  int tp_;
};

}  // namespace epsim
