// The attention block of a decoder layer for epsim-ep-layer (`--attention mha|gqa|mla`, issue 16):
// attn_norm, the projections, RoPE, the attention core, o_proj and the residual, plus the MoE
// block's own norm and residual (ffn_norm, ffn_residual), so that each micro-batch runs a whole
// decoder layer. Norms, RoPE and residual are the whole-layer program's kernels (layer_kernels.h);
// the GEMMs are cuBLAS on the rank's handle; the attention core is flash_attention() below (PyTorch
// SDPA cannot be called from this C++ program). Op names are the shared whole-layer names
// (attn_norm, q_proj, q_a_norm, q_b_proj, kv_proj, kv_a_norm, kv_b_proj, rope, attn_core, o_proj,
// attn_residual, ffn_norm, ffn_residual).
#pragma once

#include <cublas_v2.h>

#include <functional>
#include <string>
#include <vector>

#include "common.h"

namespace epsim::bench {

// C[M, N] = X[M, K] W[N, K]^T, bf16 in and out, fp32 accumulation, on the handle's stream (every
// GEMM of epsim-ep-layer: the attention block's projections and the experts').
void gemm_xwt(cublasHandle_t h, const bf16* X, const bf16* W, bf16* C, int M, int N, int K);

struct AttnConfig {
  std::string kind = "none";  // none | mha | gqa | mla
  int heads = 0;              // query heads (0: the kind's default: mla 128, else 64)
  int kv_heads = 0;           // mha/gqa: key/value heads (0: mha = heads, gqa = heads / 8)
  int head_dim = 128;         // mha/gqa (the core supports 128)
  int seq_len = 1024;         // tokens per sequence; a micro-batch holds whole sequences
  // MLA: DeepSeek-V3's dimensions (the only MLA the simulator prices)
  static constexpr int kQLora = 1536, kKvLora = 512, kNope = 128, kRopeDim = 64, kV = 128;
  bool on() const { return kind != "none"; }
  bool mla() const { return kind == "mla"; }
  int qk_dim() const { return mla() ? kNope + kRopeDim : head_dim; }
  int v_dim() const { return mla() ? kV : head_dim; }
  int kvh() const { return mla() ? heads : kv_heads; }
  // Fills the defaults and checks the shape against the hidden size and the micro-batch tokens;
  // throws std::runtime_error naming the option.
  void resolve(int hidden);
  void check_tokens(int tokens_per_microbatch) const;
};

enum AttnOp {
  kAttnNorm, kQProj, kQANorm, kQBProj, kKvProj, kKvANorm, kKvBProj, kRope, kAttnCore, kOProj, kAttnResidual,
  kFfnNorm, kFfnResidual, kAttnOps
};
const char* attn_op_name(int op);
bool attn_op_applies(const AttnConfig& c, int op);

// One layer's attention weights (and the MoE block's norm weight).
struct AttnWeights {
  DevBuf<bf16> norm, ffn_norm;       // [H]
  DevBuf<bf16> wq, wkv, wo;          // mha/gqa: [heads*D, H], [2*kvh*D, H]; o: [H, heads*Dv]
  DevBuf<bf16> wqa, qa_norm, wqb;    // mla: [1536, H], [1536], [heads*192, 1536]
  DevBuf<bf16> wkva, kva_norm, wkvb; // mla: [576, H], [512], [heads*256, 512]
};
// One micro-batch's attention activations (reused by every layer; the check reads the last
// layer's). q_pre / k_pre: the projections before RoPE, kept by the check pass.
struct AttnBuffers {
  DevBuf<bf16> xn, q, kv, qa, qan, kva, kvn, kvb, k, o, a, q_pre, k_pre;
  DevBuf<float> rstd;
};

void attn_alloc_weights(const AttnConfig& c, int H, uint64_t seed, AttnWeights& w);
void attn_alloc_buffers(const AttnConfig& c, int T, int H, AttnBuffers& b);
void attn_poison(AttnBuffers& b, cudaStream_t s);

// Timing hooks: begin(op) before an op's kernels, end() after them (CUDA events on the stream).
struct AttnHooks {
  std::function<void(int)> begin;
  std::function<void()> end;
};
// Enqueues attn_norm .. attn_residual on `s` for T tokens of x [T, H]: h = x + o_proj(attn(norm(x))).
// keep: copy q (and k) before RoPE into q_pre / k_pre (the check pass).
void attn_forward(const AttnConfig& c, cublasHandle_t blas, cudaStream_t s, const AttnWeights& w, AttnBuffers& b,
                  const bf16* x, bf16* h, int T, int H, bool keep, const AttnHooks& hk);

// Causal attention over sequences of `seq` consecutive tokens: element (t, head, d) of q at
// q + t*q_row + head*q_head + d (k, v alike with the key/value head head / (heads / kv_heads)),
// o at o + t*o_row + head*dv + d. dqk 128 or 192, dv 128, seq a multiple of 64. Tensor cores
// (mma.sync m16n8k16 bf16, fp32 accumulation and online softmax), 64 queries per block.
struct AttnView {
  const bf16* p;
  long long row;
  long long head;
};
// K/V tiles double-buffered through cp.async, fragments read with ldmatrix; EPSIM_ATTN_CORE=simple
// (environment) runs the first, unpipelined version instead. flash_attention_impl() names the one
// that runs ("own_mma_flash" | "own_mma_flash_simple"; the JSON's options.attention_core).
void flash_attention(AttnView q, AttnView k, AttnView v, bf16* o, long long o_row, int T, int seq, int heads,
                     int kv_heads, int dqk, int dv, cudaStream_t s);
const char* flash_attention_impl();

// Checks of one micro-batch's attention ops (the last layer's buffers) against float64 host
// references on sampled rows; x / h: that layer's input and attn_residual output rows of this
// micro-batch. Returns the worst relative error per op (-1: not checked) and appends a note.
std::vector<double> attn_check(const AttnConfig& c, const AttnWeights& w, const AttnBuffers& b, const bf16* x,
                               const bf16* h, int T, int H, uint64_t seed);
// ffn_norm rows of h against a float64 RMSNorm; residual rows: out = a + b. Relative errors.
double check_rmsnorm(const bf16* x, long long ldx, const bf16* w, const bf16* y, int T, int H, uint64_t seed);
double check_residual(const bf16* a, const bf16* b, const bf16* out, int T, int H, uint64_t seed);

constexpr float kNormEps = 1e-6f;

}  // namespace epsim::bench
