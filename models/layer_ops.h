// FLOPs and bytes of every op of a transformer layer, as functions of token counts.
//
// Conventions: a GEMM of M x K by K x N costs 2*M*N*K FLOPs. Bytes count each weight read once (as
// stored: precision.weights) and each activation read once and written once, at 2 bytes (bf16; the
// input of an fp8 GEMM at 1 byte plus one FP32 scale per 128). With attention tensor parallelism
// of degree tp, a TP group of tp GPUs processes the tokens of all its GPUs with 1/tp of the heads
// (and of the dense MLP and shared expert) on each GPU. Elementwise ops (norms, rope, residual adds,
// SwiGLU, quantisation, top-k) count the operations per element their comment gives; they are
// bound by HBM. The layer program (layer_program.h) says which ops a layer runs, in which order.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "models/moe_model.h"
#include "models/op_name.h"
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
  Norm,              // RMSNorm (HBM-bound)
  Rope,              // rotary position embedding of q and k (HBM-bound)
  Residual,          // residual add (HBM-bound)
  QuantAct,          // bf16 -> fp8 with one FP32 scale per 128 channels, before an fp8 GEMM or dispatch
  RouterTopk,        // the router's score function, bias and (group-limited) top-k over its logits
  Activation,        // SiLU(gate) x up of the shared expert and the dense MLP (HBM-bound)
  AttentionCoreBwd,  // the attention core's backward (FlashAttention-2: 2.5x the forward FLOPs)
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
  // The format its math runs in (GEMMs: their op class's precision.*; the peak that prices them).
  NumberFormat precision = NumberFormat::Bf16;
  int kernels = 1;  // kernel launches it takes (a loop of per-expert GEMMs: one per non-empty expert)
  // The layer op it is (set by the layer program, `named`; the class-level functions below leave
  // it unset) and its named sizes, 0 where not given: what a profile measured op by op prices it by
  // (models/op_family.h's keys; m: GEMM rows per call, experts: calls of a per-expert loop).
  OpName name{};
  bool named = false;
  struct Sizes {
    std::int64_t m = 0, n = 0, k = 0, hidden = 0, inter = 0;
    int heads = 0, kv_heads = 0, head_dim = 0, head_dim_qk = 0, head_dim_v = 0;
    // MLA decode, absorbed: the latent width (kv_lora_rank) and the rope dims (kv_b_proj, rope,
    // attn_core); 0 elsewhere.
    int kv_lora = 0, rope_dim = 0;
  };
  Sizes sizes{};
};

// One linear layer's weight, rows x cols (input width x output width), named as the op that uses it.
struct WeightMatrix {
  const char* op;
  std::int64_t rows;
  std::int64_t cols;
  bool split = true;  // divided over the TP group (column- or row-parallel); false: replicated (MLA's down-projections)
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
  // per_gpu: what one GPU of the TP group holds (split matrices 1/tp, replicated ones whole).
  Bytes attention_weight_bytes(bool per_gpu = false) const;
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
  // convention of the measured permute and unpermute_combine kernels (kernels/moe_kernels.cu). Rows
  // at the dispatch's format (permute; the quantised tokens) or the combine's (unpermute), or `f`.
  OpWork permute(std::int64_t tokens) const { return permute(tokens, m_.precision.dispatch); }
  OpWork permute(std::int64_t tokens, NumberFormat f) const;
  OpWork unpermute(std::int64_t tokens) const;

  // The per-op work the layer program composes (layer_program.h).
  // A GEMM of `rows` x k by k x n on this GPU reading `weights` (as stored) at format f.
  OpWork linear(OpClass op, NumberFormat f, std::int64_t rows, std::int64_t k, std::int64_t n, Bytes weights) const;
  // Stored bytes of a k x n weight on this GPU (the decoder layers' format).
  Bytes weight(std::int64_t k, std::int64_t n) const { return m_.precision.weight_bytes(k, n); }
  // RMSNorm of rows x width: x read, y written, the weight read; 4 operations an element (square,
  // sum, scale, weight).
  OpWork norm(std::int64_t rows, std::int64_t width) const;
  // Rotary embedding of the TP group's `rows` tokens on this GPU's heads: MHA/GQA all of q's and
  // k's head dims, MLA the rope dims of q and the shared k_pe; read and written, 3 operations an
  // element (two multiplies and an add per rotated element). `kv_len` > 0 (decode): the op also
  // appends the token to the KV cache; its FLOPs and bytes stay the rotation's (what the nominal
  // roofline prices), its sizes name the append for a profile that measured it (op_family.h).
  OpWork rope(std::int64_t rows, std::int64_t kv_len = 0) const;
  // Residual add of `tokens` x hidden: two read, one written; one add an element.
  OpWork residual(std::int64_t tokens) const;
  // bf16 -> fp8 of rows x width: bf16 read, fp8 and one FP32 scale per 128 written; 2 operations an
  // element (the block max, the scaling).
  OpWork quant(std::int64_t rows, std::int64_t width) const;
  // SiLU(gate) x up of rows x width: 2 width read, width written; 5 operations an output (exp,
  // add, divide, two multiplies). op: ExpertActivation (routed experts) or Activation.
  OpWork swiglu(OpClass op, std::int64_t rows, std::int64_t width) const;
  // The router's score function, bias and top-k over `tokens` x experts logits (bf16 read), top_k
  // indices and weights (4 B each) written; about 8 operations a logit.
  OpWork router_topk(std::int64_t tokens) const;
  // MLA decode's kv_b_proj, absorbed: q_nope x W_UK into the latent and the latent output x W_UV,
  // per head, on the TP group's `rows` tokens: the prefill's FLOPs, other activations.
  OpWork kv_b_absorbed(std::int64_t rows) const;
  // The attention core's backward of a prefill `forward`: FlashAttention-2's 2.5x the forward FLOPs
  // (five matmuls against two, the scores recomputed); reads q, k, v, o and dO, writes dq, dk, dv:
  // twice the forward's bytes.
  OpWork attention_core_backward(const OpWork& forward) const;
  // KV heads one GPU holds (MHA/GQA): ceil(kv_heads / tp), at least 1.
  std::int64_t kv_heads_per_gpu() const { return (m_.kv_head_count() + tp_ - 1) / tp_; }

  const MoeModelSpec& model() const { return m_; }
  int tp() const { return tp_; }

 private:
  Bytes elems(double n) const { return Bytes(checked_int64(n, "elements (double) -> Bytes")) * m_.bytes_per_param; }
  void core_sizes(OpWork& w) const;  // the attention core's named sizes
  void absorbed_sizes(OpWork& w) const;  // MLA decode, absorbed: kv_lora, rope_dim, head_dim_qk
  OpWork mlp(OpClass op, NumberFormat f, std::int64_t tokens, std::int64_t intermediate, int copies, double weight_share) const;
  const MoeModelSpec& m_;
  int tp_;
};

}  // namespace epsim
