// Own kernels and GEMM wrappers of one decoder layer (issue 14). See layer_kernels.h.
#include "layer_kernels.h"

#include <cuda_fp8.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <tuple>
#include <vector>

namespace epsim::bench {

namespace {

const char* cublas_status(cublasStatus_t s) {
  switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "success";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "not initialized";
    case CUBLAS_STATUS_ALLOC_FAILED: return "alloc failed";
    case CUBLAS_STATUS_INVALID_VALUE: return "invalid value";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "arch mismatch";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "execution failed";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "not supported";
    default: return "cublas error";
  }
}
#define CBL(call)                                                                      \
  do {                                                                                 \
    cublasStatus_t s_ = (call);                                                        \
    if (s_ != CUBLAS_STATUS_SUCCESS) fail(#call, __FILE__, __LINE__, cublas_status(s_)); \
  } while (0)

}  // namespace

GemmCtx::GemmCtx() {
  CBL(cublasCreate(&h));
  CBL(cublasLtCreate(&lt));
  CK(cudaMalloc(&ws, ws_bytes));
  CBL(cublasSetWorkspace(h, ws, ws_bytes));
}
GemmCtx::~GemmCtx() {
  cublasLtDestroy(lt);
  cublasDestroy(h);
  cudaFree(ws);
}
GemmCtx& gemm_ctx() {
  static GemmCtx ctx;  // one per process: the handles outlive every caller
  return ctx;
}

void gemm_bf16(GemmMode mode, int M, int N, int K, const bf16* A, const bf16* B, void* C, bool out_f32, float beta,
               cudaStream_t s) {
  GemmCtx& g = gemm_ctx();
  CBL(cublasSetStream(g.h, s));
  const float one = 1.f;
  const cudaDataType_t ct = out_f32 ? CUDA_R_32F : CUDA_R_16BF;
  // Column-major view: C^T [N, M] = op(B) op(A) (see the header for the row-major meaning).
  switch (mode) {
    case GemmMode::NT:
      CBL(cublasGemmEx(g.h, CUBLAS_OP_T, CUBLAS_OP_N, N, M, K, &one, B, CUDA_R_16BF, K, A, CUDA_R_16BF, K, &beta, C,
                       ct, N, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
      break;
    case GemmMode::NN:
      CBL(cublasGemmEx(g.h, CUBLAS_OP_N, CUBLAS_OP_N, N, M, K, &one, B, CUDA_R_16BF, N, A, CUDA_R_16BF, K, &beta, C,
                       ct, N, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
      break;
    case GemmMode::TN:
      CBL(cublasGemmEx(g.h, CUBLAS_OP_N, CUBLAS_OP_T, N, M, K, &one, B, CUDA_R_16BF, N, A, CUDA_R_16BF, M, &beta, C,
                       ct, N, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
      break;
  }
}

// ---------------------------------------------------------------- FP8 block-scaled GEMM
namespace {

Fp8Config g_fp8;  // set once by fp8_probe (the library's answer does not change within a process)

struct LtPlan {
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  cublasLtMatmulAlgo_t algo{};
  bool ok = false;
};
std::map<std::tuple<int, int, int, int>, LtPlan>& lt_plans() {
  static std::map<std::tuple<int, int, int, int>, LtPlan> plans;
  return plans;
}

// Build (or find) the plan of mode `mode` for (M, N, K); ok = false when the heuristic has none.
LtPlan& lt_plan(int mode, int M, int N, int K) {
  auto key = std::make_tuple(mode, M, N, K);
  auto& plans = lt_plans();
  auto it = plans.find(key);
  if (it != plans.end()) return it->second;
  GemmCtx& g = gemm_ctx();
  LtPlan p;
  CBL(cublasLtMatmulDescCreate(&p.op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  cublasOperation_t t = CUBLAS_OP_T, n = CUBLAS_OP_N;
  CBL(cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_TRANSA, &t, sizeof t));
  CBL(cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_TRANSB, &n, sizeof n));
  const bool x_is_a = mode == 3 || mode == 4;
  if (mode != 2) {
    const int32_t blk = CUBLASLT_MATMUL_MATRIX_SCALE_BLK128x128_32F, vec = CUBLASLT_MATMUL_MATRIX_SCALE_VEC128_32F;
    const int32_t am = mode == 0 ? blk : vec, bm = x_is_a ? blk : vec;
    CBL(cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_A_SCALE_MODE, &am, sizeof am));
    CBL(cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_B_SCALE_MODE, &bm, sizeof bm));
    // the heuristic may want the scale pointers set: any device buffer will do here
    static float* dummy = nullptr;
    if (!dummy) CK(cudaMalloc(&dummy, 1 << 20));
    CBL(cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &dummy, sizeof dummy));
    CBL(cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &dummy, sizeof dummy));
  } else {
    int8_t fast = 1;
    CBL(cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_FAST_ACCUM, &fast, sizeof fast));
  }
  if (!x_is_a) {
    // A = W (col-major K x N, op T), B = X (col-major K x M), C = D (col-major N x M) = row-major [M, N].
    CBL(cublasLtMatrixLayoutCreate(&p.a, CUDA_R_8F_E4M3, K, N, K));
    CBL(cublasLtMatrixLayoutCreate(&p.b, CUDA_R_8F_E4M3, K, M, K));
    CBL(cublasLtMatrixLayoutCreate(&p.c, CUDA_R_16BF, N, M, N));
  } else {
    // A = X (col-major K x M, op T), B = W (col-major K x N), D = M x N: row order (mode 3, our
    // row-major [M, N]) or column order (mode 4: C^T in memory, for timing only).
    CBL(cublasLtMatrixLayoutCreate(&p.a, CUDA_R_8F_E4M3, K, M, K));
    CBL(cublasLtMatrixLayoutCreate(&p.b, CUDA_R_8F_E4M3, K, N, K));
    if (mode == 3) {
      CBL(cublasLtMatrixLayoutCreate(&p.c, CUDA_R_16BF, M, N, N));
      const int32_t row = CUBLASLT_ORDER_ROW;
      CBL(cublasLtMatrixLayoutSetAttribute(p.c, CUBLASLT_MATRIX_LAYOUT_ORDER, &row, sizeof row));
    } else {
      CBL(cublasLtMatrixLayoutCreate(&p.c, CUDA_R_16BF, M, N, M));
    }
  }
  cublasLtMatmulPreference_t pref;
  CBL(cublasLtMatmulPreferenceCreate(&pref));
  CBL(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &g.ws_bytes,
                                           sizeof g.ws_bytes));
  cublasLtMatmulHeuristicResult_t res[4]{};
  int found = 0;
  cublasStatus_t hs = cublasLtMatmulAlgoGetHeuristic(g.lt, p.op, p.a, p.b, p.c, p.c, pref, 4, res, &found);
  cublasLtMatmulPreferenceDestroy(pref);
  for (int i = 0; hs == CUBLAS_STATUS_SUCCESS && i < found; ++i)
    if (res[i].state == CUBLAS_STATUS_SUCCESS) {
      p.algo = res[i].algo;
      p.ok = true;
      break;
    }
  return plans.emplace(key, p).first->second;
}

cublasStatus_t lt_run(int mode, int M, int N, int K, const fp8* X, const float* xs, const fp8* W, const float* ws,
                      bf16* C, float alpha, cudaStream_t s) {
  LtPlan& p = lt_plan(mode, M, N, K);
  if (!p.ok) return CUBLAS_STATUS_NOT_SUPPORTED;
  const bool x_is_a = mode == 3 || mode == 4;
  if (mode != 2) {
    const float* as = x_is_a ? xs : ws;
    const float* bs = x_is_a ? ws : xs;
    CBL(cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &as, sizeof as));
    CBL(cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &bs, sizeof bs));
  }
  GemmCtx& g = gemm_ctx();
  const float zero = 0.f;
  const fp8* A = x_is_a ? X : W;
  const fp8* B = x_is_a ? W : X;
  return cublasLtMatmul(g.lt, p.op, &alpha, A, p.a, B, p.b, &zero, C, p.c, C, p.c, &p.algo, g.ws, g.ws_bytes, s);
}

size_t x_index(int layout, int M, int K, int m, int kb) {
  const int KB = K / 128;
  return layout == 0 ? (size_t)kb * M + m : (size_t)m * KB + kb;
}
size_t w_index(int mode, int layout, int N, int K, int n, int kb) {
  const int KB = K / 128, NB = (N + 127) / 128;
  if (mode == 1) return x_index(layout, N, K, n, kb);
  const int ld = (KB + 3) / 4 * 4;
  return layout == 0 ? (size_t)(n / 128) * ld + kb : (size_t)kb * NB + n / 128;
}

}  // namespace

size_t fp8_x_scales(int M, int K) { return (size_t)M * (K / 128); }
size_t fp8_w_scales(int N, int K) {
  const int KB = K / 128, NB = (N + 127) / 128;
  if (g_fp8.mode == 1) return (size_t)N * KB;
  return (size_t)NB * ((KB + 3) / 4 * 4);
}
size_t fp8_x_scale_index(int M, int K, int m, int kb) { return x_index(g_fp8.x_layout, M, K, m, kb); }
size_t fp8_w_scale_index(int N, int K, int n, int kb) { return w_index(g_fp8.mode, g_fp8.w_layout, N, K, n, kb); }

void gemm_fp8_block(int M, int N, int K, const fp8* X, const float* xs, const fp8* W, const float* ws, bf16* C,
                    cudaStream_t s) {
  if (!g_fp8.probed) fp8_probe(s);
  if (K % 128 || M % 16 || N % 16) fail("gemm_fp8_block", __FILE__, __LINE__, "K % 128, M % 16, N % 16 must be 0");
  cublasStatus_t st = lt_run(g_fp8.mode, M, N, K, X, xs, W, ws, C, 1.f, s);
  if (st != CUBLAS_STATUS_SUCCESS)
    fail("cublasLtMatmul(fp8 block)", __FILE__, __LINE__,
         std::string(cublas_status(st)) + " m=" + std::to_string(M) + " n=" + std::to_string(N) + " k=" +
             std::to_string(K) + " (" + g_fp8.note + ")");
}

namespace {
__global__ void fill_scales_kernel(float* s, size_t n, uint64_t seed) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    uint64_t h = (seed + i) * 0x9e3779b97f4a7c15ull;
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 32;
    s[i] = 0.5f + 1.5f * (float)((h >> 40) & 0xffff) / 65536.f;  // [0.5, 2)
  }
}
}  // namespace

const Fp8Config& fp8_probe(cudaStream_t s) {
  if (g_fp8.probed) return g_fp8;
  // Shape with 3 weight blocks along N and 5 K blocks (so a 4-padded leading dimension differs
  // from the unpadded one); random e4m3 values and random scales: a wrong layout is far off.
  const int M = 256, N = 384, K = 640, KB = K / 128, NB = 3;
  DevBuf<fp8> X((size_t)M * K), W((size_t)N * K);
  DevBuf<float> xs((size_t)M * KB), ws((size_t)N * KB + 64);
  DevBuf<bf16> C((size_t)M * N);
  fill_random(X.get(), X.size(), 11, 0.5f, 4.f, s);
  fill_random(W.get(), W.size(), 12, 0.5f, 4.f, s);
  fill_scales_kernel<<<64, 256, 0, s>>>(xs.get(), xs.size(), 13);
  fill_scales_kernel<<<64, 256, 0, s>>>(ws.get(), ws.size(), 14);
  CK_LAST();
  CK(cudaStreamSynchronize(s));
  std::vector<fp8> hx(X.size()), hw(W.size());
  std::vector<float> hxs(xs.size()), hws(ws.size());
  CK(cudaMemcpy(hx.data(), X.get(), X.bytes(), cudaMemcpyDeviceToHost));
  CK(cudaMemcpy(hw.data(), W.get(), W.bytes(), cudaMemcpyDeviceToHost));
  CK(cudaMemcpy(hxs.data(), xs.get(), xs.bytes(), cudaMemcpyDeviceToHost));
  CK(cudaMemcpy(hws.data(), ws.get(), ws.bytes(), cudaMemcpyDeviceToHost));
  // per-(m, n, K block) partial products, computed once for every candidate layout
  std::vector<double> part((size_t)M * N * KB, 0.0);
  for (int m = 0; m < M; ++m)
    for (int n = 0; n < N; ++n)
      for (int kb = 0; kb < KB; ++kb) {
        double acc = 0;
        for (int k = kb * 128; k < kb * 128 + 128; ++k)
          acc += (double)(float)hx[(size_t)m * K + k] * (double)(float)hw[(size_t)n * K + k];
        part[((size_t)m * N + n) * KB + kb] = acc;
      }
  std::string note;
  (void)NB;
  const char* names[5] = {"A=W 128x128, B=X 1x128", "A=W 1x128, B=X 1x128", "", "A=X 1x128, B=W 128x128, D row order",
                           "A=X 1x128, B=W 128x128, D column order (C^T)"};
  for (int mode : {0, 3, 1, 4}) {
    if (g_fp8.probed) break;
    if (!lt_plan(mode, M, N, K).ok) {
      note += std::string(names[mode]) + ": no cuBLASLt algorithm; ";
      continue;
    }
    for (int wl = 0; wl < 2 && !g_fp8.probed; ++wl)
      for (int xl = 0; xl < 2 && !g_fp8.probed; ++xl) {
        poison(C.get(), C.size(), s);
        cublasStatus_t st = lt_run(mode, M, N, K, X.get(), xs.get(), W.get(), ws.get(), C.get(), 1.f, s);
        CK(cudaStreamSynchronize(s));
        if (st != CUBLAS_STATUS_SUCCESS) {
          note += std::string(names[mode]) + ": cublasLtMatmul " + cublas_status(st) + "; ";
          wl = 2;
          break;
        }
        auto got = to_host_f32(C.get(), C.size());
        double num = 0, den = 0;
        for (int m = 0; m < M; ++m)
          for (int n = 0; n < N; ++n) {
            double acc = 0;
            for (int kb = 0; kb < KB; ++kb)
              acc += part[((size_t)m * N + n) * KB + kb] * hxs[x_index(xl, M, K, m, kb)] * hws[w_index(mode, wl, N, K, n, kb)];
            const double e = (double)got[mode == 4 ? (size_t)n * M + m : (size_t)m * N + n] - acc;
            num += e * e;
            den += acc * acc;
          }
        const double err = std::sqrt(num / den);
        char buf[160];
        std::snprintf(buf, sizeof buf, "%s, W layout %d X layout %d: rel err %.2e; ", names[mode], wl, xl, err);
        note += buf;
        if (std::isfinite(err) && err < 1e-2) {
          g_fp8.mode = mode;
          g_fp8.w_layout = wl;
          g_fp8.x_layout = xl;
          g_fp8.probed = true;
        }
      }
  }
  if (!g_fp8.probed) {
    // No block-scaled algorithm: per-tensor scales (the tensor-core work is the same; the block
    // scales' own cost is missing) so that the rows still run, marked by the note.
    g_fp8.mode = 2;
    g_fp8.probed = true;
    note += "FALLBACK per-tensor scales (alpha), not the block recipe";
  }
  g_fp8.note = note;
  log("fp8 probe: %s\n", note.c_str());
  return g_fp8;
}

// ---------------------------------------------------------------- elementwise kernels
namespace {

constexpr int kNormThreads = 256, kNormVec = 4;  // 256 threads x 4 x 8 = 8192 columns

__device__ __forceinline__ void unpack8(const uint4& v, float* f) {
  const __nv_bfloat162* p = reinterpret_cast<const __nv_bfloat162*>(&v);
#pragma unroll
  for (int q = 0; q < 4; ++q) {
    float2 a = __bfloat1622float2(p[q]);
    f[2 * q] = a.x;
    f[2 * q + 1] = a.y;
  }
}
__device__ __forceinline__ uint4 pack8(const float* f) {
  uint4 v;
  __nv_bfloat162* p = reinterpret_cast<__nv_bfloat162*>(&v);
#pragma unroll
  for (int q = 0; q < 4; ++q) p[q] = __floats2bfloat162_rn(f[2 * q], f[2 * q + 1]);
  return v;
}

__device__ float block_sum(float v, float* sh) {
#pragma unroll
  for (int o = 16; o; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  const int w = threadIdx.x >> 5, l = threadIdx.x & 31;
  __syncthreads();
  if (l == 0) sh[w] = v;
  __syncthreads();
  float t = 0.f;
  for (int i = 0; i < (int)(blockDim.x >> 5); ++i) t += sh[i];
  return t;
}

__global__ void __launch_bounds__(kNormThreads) rmsnorm_fwd_kernel(const bf16* __restrict__ x, long long ldx,
                                                                  const bf16* __restrict__ w, bf16* __restrict__ y,
                                                                  float* __restrict__ rstd, int H, float eps) {
  __shared__ float sh[32];
  const long long t = blockIdx.x;
  const int nv = H / 8;
  const uint4* xr = reinterpret_cast<const uint4*>(x + t * ldx);
  float v[kNormVec][8];
  float ss = 0.f;
#pragma unroll
  for (int j = 0; j < kNormVec; ++j) {
    const int i = threadIdx.x + j * kNormThreads;
    if (i < nv) {
      unpack8(xr[i], v[j]);
#pragma unroll
      for (int q = 0; q < 8; ++q) ss += v[j][q] * v[j][q];
    }
  }
  const float r = rsqrtf(block_sum(ss, sh) / H + eps);
  uint4* yr = reinterpret_cast<uint4*>(y + t * H);
  const uint4* wr = reinterpret_cast<const uint4*>(w);
#pragma unroll
  for (int j = 0; j < kNormVec; ++j) {
    const int i = threadIdx.x + j * kNormThreads;
    if (i < nv) {
      float wf[8], o[8];
      unpack8(wr[i], wf);
#pragma unroll
      for (int q = 0; q < 8; ++q) o[q] = v[j][q] * r * wf[q];
      yr[i] = pack8(o);
    }
  }
  if (threadIdx.x == 0) rstd[t] = r;
}

__global__ void __launch_bounds__(kNormThreads) rmsnorm_bwd_kernel(const bf16* __restrict__ dy,
                                                                  const bf16* __restrict__ x, long long ldx,
                                                                  const bf16* __restrict__ w,
                                                                  const float* __restrict__ rstd,
                                                                  bf16* __restrict__ dx, float* __restrict__ dw_part,
                                                                  int T, int H, int rows_per_block) {
  __shared__ float sh[32];
  const int nv = H / 8;
  float wf[kNormVec][8], acc[kNormVec][8];
#pragma unroll
  for (int j = 0; j < kNormVec; ++j) {
    const int i = threadIdx.x + j * kNormThreads;
#pragma unroll
    for (int q = 0; q < 8; ++q) acc[j][q] = 0.f;
    if (i < nv) unpack8(reinterpret_cast<const uint4*>(w)[i], wf[j]);
  }
  const int t0 = blockIdx.x * rows_per_block, t1 = min(T, t0 + rows_per_block);
  for (int t = t0; t < t1; ++t) {
    const float r = rstd[t];
    const uint4* xr = reinterpret_cast<const uint4*>(x + (long long)t * ldx);
    const uint4* dr = reinterpret_cast<const uint4*>(dy + (long long)t * H);
    float xv[kNormVec][8], gv[kNormVec][8];
    float dot = 0.f;
#pragma unroll
    for (int j = 0; j < kNormVec; ++j) {
      const int i = threadIdx.x + j * kNormThreads;
      if (i < nv) {
        unpack8(xr[i], xv[j]);
        unpack8(dr[i], gv[j]);
#pragma unroll
        for (int q = 0; q < 8; ++q) {
          dot += wf[j][q] * gv[j][q] * xv[j][q];
          acc[j][q] += gv[j][q] * xv[j][q] * r;
        }
      }
    }
    const float c = block_sum(dot, sh) / H * r * r * r;
    uint4* dxr = reinterpret_cast<uint4*>(dx + (long long)t * ldx);
#pragma unroll
    for (int j = 0; j < kNormVec; ++j) {
      const int i = threadIdx.x + j * kNormThreads;
      if (i < nv) {
        float o[8];
#pragma unroll
        for (int q = 0; q < 8; ++q) o[q] = r * wf[j][q] * gv[j][q] - xv[j][q] * c;
        dxr[i] = pack8(o);
      }
    }
  }
  // this block's partial dw (summed over blocks by dw_reduce_kernel: no atomics on shared columns)
  float* part = dw_part + (long long)blockIdx.x * H;
#pragma unroll
  for (int j = 0; j < kNormVec; ++j) {
    const int i = threadIdx.x + j * kNormThreads;
    if (i < nv)
#pragma unroll
      for (int q = 0; q < 8; ++q) part[i * 8 + q] = acc[j][q];
  }
}

__global__ void dw_reduce_kernel(const float* __restrict__ part, int blocks, int H, float* __restrict__ dw) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= H) return;
  float s = 0.f;
  for (int b = 0; b < blocks; ++b) s += part[(long long)b * H + c];
  dw[c] = s;
}

__device__ __forceinline__ void rope_angle(int pos, int i, int rd, float* c, float* s) {
  const float inv = exp2f(-(2.f * i / rd) * 13.287712379549449f);  // 10000^(-2i/rd)
  sincosf((float)pos * inv, s, c);
}

__global__ void rope_kernel(bf16* __restrict__ x, int T, int heads, long long row_stride, int head_stride, int offset,
                            int rd, int pos0, int pos_step, float sign) {
  const int half = rd / 2;
  const long long n = (long long)T * heads * half;
  for (long long idx = blockIdx.x * (long long)blockDim.x + threadIdx.x; idx < n;
       idx += (long long)gridDim.x * blockDim.x) {
    const int i = (int)(idx % half);
    const long long th = idx / half;
    const int h = (int)(th % heads);
    const int t = (int)(th / heads);
    bf16* p = x + t * row_stride + (long long)h * head_stride + offset;
    float c, s;
    rope_angle(pos0 + t * pos_step, i, rd, &c, &s);
    s *= sign;
    const float a = __bfloat162float(p[i]), b = __bfloat162float(p[i + half]);
    p[i] = __float2bfloat16(a * c - b * s);
    p[i + half] = __float2bfloat16(a * s + b * c);
  }
}

// MLA: 128 nope + 64 rope dims per query/key head; kv_b output 128 k_nope + 128 v per head; kva
// 512 latent + 64 k_pe.
constexpr int kNope = 128, kRope = 64, kQk = 192, kKvb = 256, kKva = 576;

__global__ void mla_rope_assemble_kernel(bf16* __restrict__ q, const bf16* __restrict__ kvb,
                                         const bf16* __restrict__ kva, bf16* __restrict__ k, int H, int pos0,
                                         int pos_step) {
  const long long t = blockIdx.x;
  const int pos = pos0 + (int)t * pos_step;
  __shared__ float kpe[kRope];
  if (threadIdx.x < kRope / 2) {
    const int i = threadIdx.x;
    float c, s;
    rope_angle(pos, i, kRope, &c, &s);
    const bf16* p = kva + t * kKva + 512;
    const float a = __bfloat162float(p[i]), b = __bfloat162float(p[i + kRope / 2]);
    kpe[i] = a * c - b * s;
    kpe[i + kRope / 2] = a * s + b * c;
  }
  // queries: rope part in place
  for (int idx = threadIdx.x; idx < H * (kRope / 2); idx += blockDim.x) {
    const int h = idx / (kRope / 2), i = idx % (kRope / 2);
    bf16* p = q + (t * H + h) * kQk + kNope;
    float c, s;
    rope_angle(pos, i, kRope, &c, &s);
    const float a = __bfloat162float(p[i]), b = __bfloat162float(p[i + kRope / 2]);
    p[i] = __float2bfloat16(a * c - b * s);
    p[i + kRope / 2] = __float2bfloat16(a * s + b * c);
  }
  // keys: k_nope copied (16-byte vectors), rope part broadcast
  for (int idx = threadIdx.x; idx < H * (kNope / 8); idx += blockDim.x) {
    const int h = idx / (kNope / 8), v = idx % (kNope / 8);
    reinterpret_cast<uint4*>(k + (t * H + h) * kQk)[v] = reinterpret_cast<const uint4*>(kvb + (t * H + h) * kKvb)[v];
  }
  __syncthreads();
  for (int idx = threadIdx.x; idx < H * kRope; idx += blockDim.x) {
    const int h = idx / kRope, i = idx % kRope;
    k[(t * H + h) * kQk + kNope + i] = __float2bfloat16(kpe[i]);
  }
}

__global__ void mla_rope_assemble_bwd_kernel(bf16* __restrict__ dq, const bf16* __restrict__ dk,
                                             const bf16* __restrict__ dv, bf16* __restrict__ dkvb,
                                             bf16* __restrict__ dkva, int H, int pos0, int pos_step) {
  const long long t = blockIdx.x;
  const int pos = pos0 + (int)t * pos_step;
  for (int idx = threadIdx.x; idx < H * (kRope / 2); idx += blockDim.x) {
    const int h = idx / (kRope / 2), i = idx % (kRope / 2);
    bf16* p = dq + (t * H + h) * kQk + kNope;
    float c, s;
    rope_angle(pos, i, kRope, &c, &s);
    const float a = __bfloat162float(p[i]), b = __bfloat162float(p[i + kRope / 2]);
    p[i] = __float2bfloat16(a * c + b * s);
    p[i + kRope / 2] = __float2bfloat16(-a * s + b * c);
  }
  for (int idx = threadIdx.x; idx < H * (kNope / 8); idx += blockDim.x) {
    const int h = idx / (kNope / 8), v = idx % (kNope / 8);
    uint4* o = reinterpret_cast<uint4*>(dkvb + (t * H + h) * kKvb);
    o[v] = reinterpret_cast<const uint4*>(dk + (t * H + h) * kQk)[v];
    o[kNope / 8 + v] = reinterpret_cast<const uint4*>(dv + (t * H + h) * kNope)[v];
  }
  if (threadIdx.x < kRope / 2) {
    const int i = threadIdx.x;
    float a = 0.f, b = 0.f;
    for (int h = 0; h < H; ++h) {
      const bf16* p = dk + (t * H + h) * kQk + kNope;
      a += __bfloat162float(p[i]);
      b += __bfloat162float(p[i + kRope / 2]);
    }
    float c, s;
    rope_angle(pos, i, kRope, &c, &s);
    bf16* o = dkva + t * kKva + 512;
    o[i] = __float2bfloat16(a * c + b * s);
    o[i + kRope / 2] = __float2bfloat16(-a * s + b * c);
  }
}

__global__ void swiglu_bwd_kernel(const bf16* __restrict__ dA, const bf16* __restrict__ H, bf16* __restrict__ dH,
                                  long long rows, int inter) {
  const int vpr = inter / 8;
  const long long n = rows * vpr;
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
    const long long r = i / vpr;
    const int c = (int)(i % vpr);
    float g[8], u[8], d[8], dg[8], du[8];
    unpack8(reinterpret_cast<const uint4*>(H + r * 2 * inter)[c], g);
    unpack8(reinterpret_cast<const uint4*>(H + r * 2 * inter + inter)[c], u);
    unpack8(reinterpret_cast<const uint4*>(dA + r * inter)[c], d);
#pragma unroll
    for (int q = 0; q < 8; ++q) {
      const float sg = 1.f / (1.f + __expf(-g[q]));
      du[q] = d[q] * g[q] * sg;
      dg[q] = d[q] * u[q] * sg * (1.f + g[q] * (1.f - sg));
    }
    reinterpret_cast<uint4*>(dH + r * 2 * inter)[c] = pack8(dg);
    reinterpret_cast<uint4*>(dH + r * 2 * inter + inter)[c] = pack8(du);
  }
}

// One warp per (row, 128-column block): 4 elements per lane.
__global__ void quant_act_kernel(const bf16* __restrict__ x, long long ldx, int rows, int K, fp8* __restrict__ q,
                                 float* __restrict__ scales, const int* __restrict__ offsets, int groups,
                                 int layout) {
  const int KB = K / 128;
  const long long warp = (blockIdx.x * (long long)blockDim.x + threadIdx.x) >> 5;
  const int lane = threadIdx.x & 31;
  if (warp >= (long long)rows * KB) return;
  const int m = (int)(warp / KB), kb = (int)(warp % KB);
  const uint2 raw = *reinterpret_cast<const uint2*>(x + m * ldx + kb * 128 + lane * 4);
  const __nv_bfloat162* p = reinterpret_cast<const __nv_bfloat162*>(&raw);
  const float2 a = __bfloat1622float2(p[0]), b = __bfloat1622float2(p[1]);
  float amax = fmaxf(fmaxf(fabsf(a.x), fabsf(a.y)), fmaxf(fabsf(b.x), fabsf(b.y)));
#pragma unroll
  for (int o = 16; o; o >>= 1) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, o));
  const float scale = fmaxf(amax, 1e-12f) / 448.f, inv = 1.f / scale;
  __nv_fp8x4_e4m3 v(make_float4(a.x * inv, a.y * inv, b.x * inv, b.y * inv));
  *reinterpret_cast<uint32_t*>(q + (long long)m * K + kb * 128 + lane * 4) = v.__x;
  if (lane == 0) {
    int g = 0, base = 0, cnt = rows;
    if (groups > 1) {
      while (g + 1 < groups && offsets[g + 1] <= m) ++g;
      base = offsets[g];
      cnt = offsets[g + 1] - offsets[g];
    }
    const int r = m - base;
    const size_t idx = (size_t)base * KB + (layout == 0 ? (size_t)kb * cnt + r : (size_t)r * KB + kb);
    scales[idx] = scale;
  }
}

__global__ void residual_add_kernel(const uint4* __restrict__ a, const uint4* __restrict__ b, uint4* __restrict__ out,
                                    long long nv) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < nv; i += (long long)gridDim.x * blockDim.x) {
    float x[8], y[8];
    unpack8(a[i], x);
    unpack8(b[i], y);
#pragma unroll
    for (int q = 0; q < 8; ++q) x[q] += y[q];
    out[i] = pack8(x);
  }
}

__global__ void map_local_kernel(int* ids, long long n, int local) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
    ids[i] = (int)(i % local);
}

__global__ void __launch_bounds__(128) unpermute_bwd_kernel(const bf16* __restrict__ dout, const bf16* __restrict__ y,
                                                            const int* __restrict__ dest, const float* __restrict__ w,
                                                            int topk, int nvec, bf16* __restrict__ dy,
                                                            float* __restrict__ dw) {
  __shared__ float sh[8][4];
  const long long t = blockIdx.x;
  int d[8];
  float wt[8], part[8];
#pragma unroll
  for (int j = 0; j < 8; ++j) {
    d[j] = j < topk ? dest[t * topk + j] : 0;
    wt[j] = j < topk ? w[t * topk + j] : 0.f;
    part[j] = 0.f;
  }
  for (int i = threadIdx.x; i < nvec; i += blockDim.x) {
    float g[8];
    unpack8(reinterpret_cast<const uint4*>(dout)[t * nvec + i], g);
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      if (j >= topk) break;
      float yv[8], o[8];
      unpack8(reinterpret_cast<const uint4*>(y)[(long long)d[j] * nvec + i], yv);
#pragma unroll
      for (int q = 0; q < 8; ++q) {
        part[j] += g[q] * yv[q];
        o[q] = wt[j] * g[q];
      }
      reinterpret_cast<uint4*>(dy)[(long long)d[j] * nvec + i] = pack8(o);
    }
  }
  const int wp = threadIdx.x >> 5, l = threadIdx.x & 31;
#pragma unroll
  for (int j = 0; j < 8; ++j) {
    float v = part[j];
#pragma unroll
    for (int o = 16; o; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    if (l == 0) sh[j][wp] = v;
  }
  __syncthreads();
  if (threadIdx.x < topk) dw[t * topk + threadIdx.x] = sh[threadIdx.x][0] + sh[threadIdx.x][1] + sh[threadIdx.x][2] + sh[threadIdx.x][3];
}

__global__ void router_topk_bwd_kernel(const float* __restrict__ dw, const int* __restrict__ ids,
                                       const float* __restrict__ logits, int T, int topk, int E,
                                       bf16* __restrict__ dlogits) {
  const long long t = (blockIdx.x * (long long)blockDim.x + threadIdx.x) >> 5;
  const int lane = threadIdx.x & 31;
  if (t >= T) return;
  for (int e = lane; e < E; e += 32) dlogits[t * E + e] = __float2bfloat16(0.f);
  __syncwarp();
  float s = 0.f, g = 0.f;
  int id = 0;
  if (lane < topk) {
    id = ids[t * topk + lane];
    s = 1.f / (1.f + expf(-logits[t * E + id]));
    g = dw[t * topk + lane];
  }
  float S = s;
#pragma unroll
  for (int o = 16; o; o >>= 1) S += __shfl_xor_sync(0xffffffffu, S, o);
  float gw = g * s / S;
#pragma unroll
  for (int o = 16; o; o >>= 1) gw += __shfl_xor_sync(0xffffffffu, gw, o);
  if (lane < topk) dlogits[t * E + id] = __float2bfloat16((g - gw) / S * s * (1.f - s));
}

__global__ void empty_k() {}
__global__ void tiny_copy_k(const float* a, float* b, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) b[i] = a[i] + 1.f;
}

int grid_for(long long n, int threads) {
  return (int)std::min<long long>(std::max<long long>(ceil_div(n, threads), 1), (long long)sm_count() * 16);
}

}  // namespace

void rmsnorm_fwd(const bf16* x, const bf16* w, bf16* y, float* rstd, int T, int H, float eps, cudaStream_t s) {
  rmsnorm_fwd_strided(x, H, w, y, rstd, T, H, eps, s);
}
void rmsnorm_fwd_strided(const bf16* x, long long ldx, const bf16* w, bf16* y, float* rstd, int T, int H, float eps,
                         cudaStream_t s) {
  if (H % 8 || H > kNormThreads * kNormVec * 8 || ldx % 8) fail("rmsnorm_fwd", __FILE__, __LINE__, "H % 8, H <= 8192");
  rmsnorm_fwd_kernel<<<T, kNormThreads, 0, s>>>(x, ldx, w, y, rstd, H, eps);
  CK_LAST();
}
void rmsnorm_bwd(const bf16* dy, const bf16* x, const bf16* w, const float* rstd, bf16* dx, float* dw, int T, int H,
                 cudaStream_t s) {
  rmsnorm_bwd_strided(dy, x, H, w, rstd, dx, dw, T, H, s);
}
void rmsnorm_bwd_strided(const bf16* dy, const bf16* x, long long ldx, const bf16* w, const float* rstd, bf16* dx,
                         float* dw, int T, int H, cudaStream_t s) {
  if (H % 8 || H > kNormThreads * kNormVec * 8 || ldx % 8) fail("rmsnorm_bwd", __FILE__, __LINE__, "H % 8, H <= 8192");
  const int rpb = (int)std::max<long long>(1, ceil_div(T, 2LL * sm_count()));
  const int blocks = (int)ceil_div(T, rpb);
  static DevBuf<float> part;  // per-block partial dw, grown as needed (one per process)
  if (part.size() < (size_t)blocks * H) part.alloc((size_t)blocks * H);
  rmsnorm_bwd_kernel<<<blocks, kNormThreads, 0, s>>>(dy, x, ldx, w, rstd, dx, part.get(), T, H, rpb);
  CK_LAST();
  dw_reduce_kernel<<<(unsigned)ceil_div(H, 256), 256, 0, s>>>(part.get(), blocks, H, dw);
  CK_LAST();
}
void rope(bf16* x, int T, int heads, long long row_stride, int head_stride, int offset, int rd, int pos0, int pos_step,
          float sign, cudaStream_t s) {
  if (rd % 2) fail("rope", __FILE__, __LINE__, "rotary dims must be even");
  rope_kernel<<<grid_for((long long)T * heads * rd / 2, 256), 256, 0, s>>>(x, T, heads, row_stride, head_stride, offset,
                                                                          rd, pos0, pos_step, sign);
  CK_LAST();
}
void mla_rope_assemble(bf16* q, const bf16* kvb, const bf16* kva, bf16* k, int T, int H, int pos0, int pos_step,
                       cudaStream_t s) {
  mla_rope_assemble_kernel<<<T, 256, 0, s>>>(q, kvb, kva, k, H, pos0, pos_step);
  CK_LAST();
}
void mla_rope_assemble_bwd(bf16* dq, const bf16* dk, const bf16* dv, bf16* dkvb, bf16* dkva, int T, int H, int pos0,
                           int pos_step, cudaStream_t s) {
  mla_rope_assemble_bwd_kernel<<<T, 256, 0, s>>>(dq, dk, dv, dkvb, dkva, H, pos0, pos_step);
  CK_LAST();
}
void swiglu_bwd(const bf16* dA, const bf16* H, bf16* dH, long long rows, int inter, cudaStream_t s) {
  if (inter % 8) fail("swiglu_bwd", __FILE__, __LINE__, "inter % 8");
  swiglu_bwd_kernel<<<grid_for(rows * inter / 8, 256), 256, 0, s>>>(dA, H, dH, rows, inter);
  CK_LAST();
}
void quant_act(const bf16* x, long long ldx, int rows, int K, fp8* q, float* scales, const int* offsets, int groups,
               cudaStream_t s) {
  if (K % 128 || ldx % 4) fail("quant_act", __FILE__, __LINE__, "K % 128");
  if (!g_fp8.probed) fp8_probe(s);
  const long long warps = (long long)rows * (K / 128);
  if (warps == 0) return;
  quant_act_kernel<<<(unsigned)ceil_div(warps * 32, 256), 256, 0, s>>>(x, ldx, rows, K, q, scales, offsets, groups,
                                                                       g_fp8.x_layout);
  CK_LAST();
}
void residual_add(const bf16* a, const bf16* b, bf16* out, long long n, cudaStream_t s) {
  if (n % 8) fail("residual_add", __FILE__, __LINE__, "n % 8");
  residual_add_kernel<<<grid_for(n / 8, 256), 256, 0, s>>>(reinterpret_cast<const uint4*>(a),
                                                          reinterpret_cast<const uint4*>(b),
                                                          reinterpret_cast<uint4*>(out), n / 8);
  CK_LAST();
}
void map_local(int* ids, long long n, int local, cudaStream_t s) {
  map_local_kernel<<<grid_for(n, 256), 256, 0, s>>>(ids, n, local);
  CK_LAST();
}
void unpermute_bwd(const bf16* dout, const bf16* y, const int* dest, const float* w, int T, int topk, int hidden,
                   bf16* dy, float* dw, cudaStream_t s) {
  if (topk > 8 || hidden % 8) fail("unpermute_bwd", __FILE__, __LINE__, "topk <= 8, hidden % 8");
  unpermute_bwd_kernel<<<T, 128, 0, s>>>(dout, y, dest, w, topk, hidden / 8, dy, dw);
  CK_LAST();
}
void router_topk_bwd(const float* dw, const int* ids, const float* logits, int T, int topk, int E, bf16* dlogits,
                     cudaStream_t s) {
  if (topk > 32) fail("router_topk_bwd", __FILE__, __LINE__, "topk <= 32");
  router_topk_bwd_kernel<<<(unsigned)ceil_div((long long)T * 32, 256), 256, 0, s>>>(dw, ids, logits, T, topk, E,
                                                                                    dlogits);
  CK_LAST();
}
void empty_kernel(cudaStream_t s) {
  empty_k<<<1, 32, 0, s>>>();
  CK_LAST();
}
void tiny_copy(const float* a, float* b, int n, cudaStream_t s) {
  tiny_copy_k<<<(unsigned)ceil_div(n, 256), 256, 0, s>>>(a, b, n);
  CK_LAST();
}

}  // namespace epsim::bench
