// Own kernels and GEMM wrappers of one decoder layer (issue 14), shared by epsim-bench (its
// `layer`, `gemm_grid`, `fp8_gemm` and `gap` suites) and, through the C entry points in
// layer_capi.cu (libepsim_ops.so), by the whole-layer program kernels/epsim_layer.py. Row-major
// everywhere; bf16 activations, fp32 arithmetic inside the kernels.
#pragma once

#include <cublasLt.h>
#include <cublas_v2.h>

#include <string>

#include "common.h"

namespace epsim::bench {

// ---------------------------------------------------------------- GEMMs (cuBLAS / cuBLASLt)
// One handle pair and workspace per process (the layer program and the bench share the code).
struct GemmCtx {
  cublasHandle_t h = nullptr;
  cublasLtHandle_t lt = nullptr;
  void* ws = nullptr;
  size_t ws_bytes = 64ull << 20;
  GemmCtx();
  ~GemmCtx();
  GemmCtx(const GemmCtx&) = delete;
  GemmCtx& operator=(const GemmCtx&) = delete;
};
GemmCtx& gemm_ctx();

// BF16 GEMMs, fp32 accumulation, row-major operands:
//   NT (forward, Y = X W^T):          C[M,N] = A[M,K] B[N,K]^T
//   NN (input gradient, dX = dY W):   C[M,N] = A[M,K] B[K,N]
//   TN (weight gradient, dW = dY^T X): C[M,N] = A[K,M]^T B[K,N]
// out_f32: C is float (the router's logits). beta: C = ... + beta C.
enum class GemmMode { NT = 0, NN = 1, TN = 2 };
void gemm_bf16(GemmMode mode, int M, int N, int K, const bf16* A, const bf16* B, void* C, bool out_f32,
               float beta, cudaStream_t s);

// Block-scaled FP8 GEMM (DeepSeek-V3 recipe): C[M,N] (bf16) = dequant(X[M,K]) dequant(W[N,K])^T,
// X e4m3 with one FP32 scale per 1x128 tile (row m, K block kb), W e4m3 with one FP32 scale per
// 128x128 block; scale = the value an e4m3 element is multiplied by. cuBLASLt block scaling
// (CUBLASLT_MATMUL_MATRIX_SCALE_VEC128_32F / BLK128x128_32F) where the library offers it on this
// GPU; fp8_probe() finds out once (and which scale layout it reads) by checking candidates
// against a float64 reference. K must be a multiple of 128, M and N multiples of 16.
struct Fp8Config {
  bool probed = false;
  int mode = -1;        // 0: block scaling, A = W (128x128), B = X (1x128); 3: the same with A = X,
                        // B = W and D in row order; 1: X and W both 1x128 (VEC128); 4: as 3 with D in
                        // column order (C^T in memory: timing only); 2: no block scaling
                        // available: per-tensor scales (alpha), see note
  int x_layout = 0;     // X scales: 0 s[kb*M + m] (M fastest), 1 s[m*KB + kb]
  int w_layout = 0;     // W scales (mode 0): 0 s[nb*ld + kb] with ld = roundup(KB, 4), 1 s[kb*NB + nb]
                        //          (mode 1): as x_layout with N rows
  std::string note;     // what was tried and what ran
};
const Fp8Config& fp8_probe(cudaStream_t s);
// Number of floats of X's / W's scale tensor in the probed layout.
size_t fp8_x_scales(int M, int K);
size_t fp8_w_scales(int N, int K);
// Index of X's scale for (m, kb) / W's scale for (n-block or row, kb) in the probed layout.
size_t fp8_x_scale_index(int M, int K, int m, int kb);
size_t fp8_w_scale_index(int N, int K, int n, int kb);
void gemm_fp8_block(int M, int N, int K, const fp8* X, const float* xs, const fp8* W, const float* ws, bf16* C,
                    cudaStream_t s);

// ---------------------------------------------------------------- own elementwise kernels
// RMSNorm: y = x * rsqrt(mean(x^2) + eps) * w; rstd[t] saved for the backward. H % 8 == 0, H <= 8192.
void rmsnorm_fwd(const bf16* x, const bf16* w, bf16* y, float* rstd, int T, int H, float eps, cudaStream_t s);
// Same, x rows ldx elements apart (y contiguous): MLA's kv_a_norm reads the latent part of kv_a's rows.
void rmsnorm_fwd_strided(const bf16* x, long long ldx, const bf16* w, bf16* y, float* rstd, int T, int H, float eps,
                         cudaStream_t s);
// dx = rstd * (w dy) - x rstd^3 mean(w dy x); dw[h] = sum_t dy x rstd (fp32, written): per-block
// partial sums, then one reduction kernel (two launches).
void rmsnorm_bwd(const bf16* dy, const bf16* x, const bf16* w, const float* rstd, bf16* dx, float* dw, int T, int H,
                 cudaStream_t s);
// Same, x and dx rows ldx elements apart (dy contiguous).
void rmsnorm_bwd_strided(const bf16* dy, const bf16* x, long long ldx, const bf16* w, const float* rstd, bf16* dx,
                         float* dw, int T, int H, cudaStream_t s);
// RoPE (rotate-half) in place on `heads` heads of each of T rows: head h of row t starts at
// x + t*row_stride + h*head_stride + offset; its first rd elements rotate, pairs (i, i + rd/2),
// angle (pos0 + t*pos_step) * base^(-2i/rd). sign -1: the inverse rotation (the backward).
void rope(bf16* x, int T, int heads, long long row_stride, int head_stride, int offset, int rd, int pos0,
          int pos_step, float sign, cudaStream_t s);
// MLA: q [T, H, 192] rope in place on dims 128..191; k [T, H, 192] assembled from kv_b's output
// [T, H, 256] (k_nope = its dims 0..127) and the rotated shared k_pe (kva [T, 576], dims 512..575).
void mla_rope_assemble(bf16* q, const bf16* kvb, const bf16* kva, bf16* k, int T, int H, int pos0, int pos_step,
                       cudaStream_t s);
// Its backward: dq rope part rotated back in place; d(kv_b out) = [dk[..., :128] | dv] per head;
// d(kva)[512:576] = sum over heads of the back-rotated dk[..., 128:] (written, not accumulated).
// dk [T, H, 192], dv [T, H, 128] contiguous.
void mla_rope_assemble_bwd(bf16* dq, const bf16* dk, const bf16* dv, bf16* dkvb, bf16* dkva, int T, int H, int pos0,
                           int pos_step, cudaStream_t s);
// SwiGLU backward: H = [gate | up] [rows, 2I], dA [rows, I] -> dH [rows, 2I].
void swiglu_bwd(const bf16* dA, const bf16* H, bf16* dH, long long rows, int inter, cudaStream_t s);
// Per-token 1x128 FP8 quantisation of x [rows, K] (row stride ldx): q [rows, K] e4m3, scales in
// the probed X layout. groups > 1: rows are split at offsets[0..groups] (device ints) and each
// group's scales form their own tensor (for per-expert GEMMs), starting at offsets[g] * K/128.
void quant_act(const bf16* x, long long ldx, int rows, int K, fp8* q, float* scales, const int* offsets, int groups,
               cudaStream_t s);
// out = a + b (n elements, n % 8 == 0); out may alias a or b.
void residual_add(const bf16* a, const bf16* b, bf16* out, long long n, cudaStream_t s);
// ids[i] = i % local: choice j of token t goes to local expert (t*topk + j) mod local, so every
// local expert receives the same number of rows (the balanced case of a dispatch; the router's
// own choices still decide the weights). Written to a buffer of its own.
void map_local(int* ids, long long n, int local, cudaStream_t s);
// Backward of the weighted combine out[t] = sum_j w[t,j] y[dest[t,j]]:
//   dy[dest[t,j]] = w[t,j] dout[t];  dw[t,j] = <dout[t], y[dest[t,j]]>.   topk <= 8.
void unpermute_bwd(const bf16* dout, const bf16* y, const int* dest, const float* w, int T, int topk, int hidden,
                   bf16* dy, float* dw, cudaStream_t s);
// Backward of the router's top-k weights (sigmoid scores, normalised over the chosen k):
// dlogits [T, E] bf16, zero outside the chosen experts.
void router_topk_bwd(const float* dw, const int* ids, const float* logits, int T, int topk, int E, bf16* dlogits,
                     cudaStream_t s);
// A kernel that does nothing (the launch-gap probe) and one that copies n floats (a small
// dependent kernel).
void empty_kernel(cudaStream_t s);
void tiny_copy(const float* a, float* b, int n, cudaStream_t s);

}  // namespace epsim::bench
