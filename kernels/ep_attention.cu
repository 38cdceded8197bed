// The attention block of epsim-ep-layer: see ep_attention.h.
#include "ep_attention.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "layer_kernels.h"

namespace epsim::bench {

namespace {

#define CBA(call)                                                                                    \
  do {                                                                                               \
    cublasStatus_t s_ = (call);                                                                      \
    if (s_ != CUBLAS_STATUS_SUCCESS) fail(#call, __FILE__, __LINE__, std::to_string((int)s_));       \
  } while (0)

// ------------------------------------------------------------------------------------------
// Flash attention forward (causal), mma.sync m16n8k16 bf16 -> fp32. A block: 64 queries of one
// (sequence, head), 4 warps of 16 query rows; K/V tiles of 64 keys in shared memory. Fragment
// layouts (PTX ISA, m16n8k16): g = lane / 4, t = lane % 4; A regs {(g, 2t..), (g+8, 2t..),
// (g, 2t+8..), (g+8, 2t+8..)}; B regs {(k 2t.., n g), (k 2t+8.., n g)}; C {(g, 2t), (g, 2t+1),
// (g+8, 2t), (g+8, 2t+1)}. The S accumulators of two adjacent 8-key tiles are the A operand of
// P V (the FlashAttention-2 register reuse).
constexpr int kBM = 64, kBN = 64, kDV = 128;

struct FlashArgs {
  const bf16 *q, *k, *v;
  bf16* o;
  long long q_row, q_head, k_row, k_head, v_row, v_head, o_row;
  int seq, heads, group;  // group = heads / kv_heads
  float scale_log2;       // log2(e) / sqrt(dqk)
};

__device__ __forceinline__ void mma16816(float* c, const uint32_t* a, uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
  __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<uint32_t*>(&v);
}
__device__ __forceinline__ uint32_t pack_bf16(bf16 lo, bf16 hi) {
  __nv_bfloat162 v;
  v.x = lo;
  v.y = hi;
  return *reinterpret_cast<uint32_t*>(&v);
}

__device__ __forceinline__ uint32_t smem_addr(const void* p) { return (uint32_t)__cvta_generic_to_shared(p); }
// Four 8x8 b16 matrices; lanes 8i..8i+7 give the 16-byte rows of matrix i. Without .trans lane t
// gets (row t/4, cols 2(t%4), +1) of each; with .trans (rows 2(t%4), +1, col t/4).
__device__ __forceinline__ void ldsm_x4(uint32_t* r, const bf16* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p)));
}
__device__ __forceinline__ void ldsm_x4_t(uint32_t* r, const bf16* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p)));
}
__device__ __forceinline__ void cp_async16(bf16* dst, const bf16* src) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" ::"r"(smem_addr(dst)), "l"(src));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;"); }
template <int N>
__device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;" ::"n"(N)); }

// kPipe: K/V tiles double-buffered through cp.async (tile j+1 loads while tile j computes) and
// fragments read with ldmatrix; else one buffer, plain loads (the first version, kept as the
// EPSIM_ATTN_CORE=simple fallback).
template <int DQK, bool kPipe>
constexpr size_t flash_smem() {
  return ((size_t)kBM * (DQK + 8) + (kPipe ? 2 : 1) * ((size_t)kBN * (DQK + 8) + (size_t)kBN * (kDV + 8))) * sizeof(bf16);
}

template <int DQK, bool kPipe>
__global__ void __launch_bounds__(128) flash_fwd_kernel(const FlashArgs a) {
  constexpr int LQ = DQK + 8, LV = kDV + 8, KK = DQK / 16, NT = kBN / 8, OT = kDV / 8;
  constexpr int KTILE = kBN * LQ, VTILE = kBN * LV;
  extern __shared__ __align__(16) unsigned char smem[];
  bf16* Qs = reinterpret_cast<bf16*>(smem);
  bf16* Ks = Qs + kBM * LQ;                       // [buffers][kBN][LQ]
  bf16* Vs = Ks + (kPipe ? 2 : 1) * KTILE;        // [buffers][kBN][LV]
  const int nqb = a.seq / kBM;
  const int qb = nqb - 1 - (int)blockIdx.x;  // heavy (late) query blocks first
  const int h = blockIdx.y, kvh = h / a.group;
  const long long t0 = (long long)blockIdx.z * a.seq;
  const bf16* q = a.q + (t0 + (long long)qb * kBM) * a.q_row + h * a.q_head;
  const bf16* k = a.k + t0 * a.k_row + kvh * a.k_head;
  const bf16* v = a.v + t0 * a.v_row + kvh * a.v_head;
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, g = lane >> 2, t4 = lane & 3;
  const int mi = lane >> 3, mr = lane & 7;  // ldmatrix: this lane's matrix and row

  auto load_kv_async = [&](int buf, int j) {
    for (int i = tid; i < kBN * DQK / 8; i += 128) {
      const int r = i / (DQK / 8), c = (i % (DQK / 8)) * 8;
      cp_async16(Ks + buf * KTILE + r * LQ + c, k + ((long long)j * kBN + r) * a.k_row + c);
    }
    for (int i = tid; i < kBN * kDV / 8; i += 128) {
      const int r = i / (kDV / 8), c = (i % (kDV / 8)) * 8;
      cp_async16(Vs + buf * VTILE + r * LV + c, v + ((long long)j * kBN + r) * a.v_row + c);
    }
    cp_async_commit();
  };
  if (kPipe) load_kv_async(0, 0);

  for (int i = tid; i < kBM * DQK / 8; i += 128) {
    const int r = i / (DQK / 8), c = (i % (DQK / 8)) * 8;
    *reinterpret_cast<uint4*>(Qs + r * LQ + c) = *reinterpret_cast<const uint4*>(q + r * a.q_row + c);
  }
  __syncthreads();
  const int r0 = warp * 16 + g;
  uint32_t qf[KK][4];
#pragma unroll
  for (int kk = 0; kk < KK; ++kk) {
    qf[kk][0] = *reinterpret_cast<const uint32_t*>(Qs + r0 * LQ + kk * 16 + 2 * t4);
    qf[kk][1] = *reinterpret_cast<const uint32_t*>(Qs + (r0 + 8) * LQ + kk * 16 + 2 * t4);
    qf[kk][2] = *reinterpret_cast<const uint32_t*>(Qs + r0 * LQ + kk * 16 + 8 + 2 * t4);
    qf[kk][3] = *reinterpret_cast<const uint32_t*>(Qs + (r0 + 8) * LQ + kk * 16 + 8 + 2 * t4);
  }
  float oacc[OT][4];
#pragma unroll
  for (int n = 0; n < OT; ++n) oacc[n][0] = oacc[n][1] = oacc[n][2] = oacc[n][3] = 0.f;
  float m0 = -INFINITY, m1 = -INFINITY, l0 = 0.f, l1 = 0.f;
  const int row0 = qb * kBM + r0, row1 = row0 + 8;  // positions in the sequence

  for (int j = 0; j <= qb; ++j) {
    const int buf = kPipe ? (j & 1) : 0;
    if (kPipe) {
      if (j < qb) {
        load_kv_async((j + 1) & 1, j + 1);  // its buffer was last read in iteration j - 1
        cp_async_wait<1>();                 // tile j has landed (this thread's copies)
      } else {
        cp_async_wait<0>();
      }
      __syncthreads();  // every thread's copies of tile j
    } else {
      __syncthreads();  // every warp is done with the previous tile
      for (int i = tid; i < kBN * DQK / 8; i += 128) {
        const int r = i / (DQK / 8), c = (i % (DQK / 8)) * 8;
        *reinterpret_cast<uint4*>(Ks + r * LQ + c) =
            *reinterpret_cast<const uint4*>(k + ((long long)j * kBN + r) * a.k_row + c);
      }
      for (int i = tid; i < kBN * kDV / 8; i += 128) {
        const int r = i / (kDV / 8), c = (i % (kDV / 8)) * 8;
        *reinterpret_cast<uint4*>(Vs + r * LV + c) =
            *reinterpret_cast<const uint4*>(v + ((long long)j * kBN + r) * a.v_row + c);
      }
      __syncthreads();
    }
    const bf16* Kb = Ks + buf * KTILE;
    const bf16* Vb = Vs + buf * VTILE;
    float s[NT][4];
#pragma unroll
    for (int n = 0; n < NT; ++n) {
      s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.f;
      if (kPipe) {
        // matrices: keys n*8.., dims (kk + mi/2)*16 + (mi%2)*8: B of k-step kk (regs 0, 1), kk+1 (2, 3)
#pragma unroll
        for (int kk = 0; kk < KK; kk += 2) {
          uint32_t kb[4];
          ldsm_x4(kb, Kb + (n * 8 + mr) * LQ + (kk + (mi >> 1)) * 16 + (mi & 1) * 8);
          mma16816(s[n], qf[kk], kb[0], kb[1]);
          mma16816(s[n], qf[kk + 1], kb[2], kb[3]);
        }
      } else {
#pragma unroll
        for (int kk = 0; kk < KK; ++kk) {
          const bf16* kr = Kb + (n * 8 + g) * LQ + kk * 16 + 2 * t4;
          mma16816(s[n], qf[kk], *reinterpret_cast<const uint32_t*>(kr), *reinterpret_cast<const uint32_t*>(kr + 8));
        }
      }
    }
    // scale (log2 domain), causal mask on the diagonal tile, online softmax per row
    float mx0 = -INFINITY, mx1 = -INFINITY;
#pragma unroll
    for (int n = 0; n < NT; ++n)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int col = j * kBN + n * 8 + 2 * t4 + (e & 1);
        float x = s[n][e] * a.scale_log2;
        if (j == qb && col > (e < 2 ? row0 : row1)) x = -INFINITY;
        s[n][e] = x;
        if (e < 2) mx0 = fmaxf(mx0, x);
        else mx1 = fmaxf(mx1, x);
      }
#pragma unroll
    for (int o = 1; o <= 2; o <<= 1) {
      mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, o));
      mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, o));
    }
    const float mn0 = fmaxf(m0, mx0), mn1 = fmaxf(m1, mx1);  // finite: key 0 of a tile is never masked
    const float al0 = exp2f(m0 - mn0), al1 = exp2f(m1 - mn1);
    float sum0 = 0.f, sum1 = 0.f;
#pragma unroll
    for (int n = 0; n < NT; ++n) {
      s[n][0] = exp2f(s[n][0] - mn0);
      s[n][1] = exp2f(s[n][1] - mn0);
      s[n][2] = exp2f(s[n][2] - mn1);
      s[n][3] = exp2f(s[n][3] - mn1);
      sum0 += s[n][0] + s[n][1];
      sum1 += s[n][2] + s[n][3];
    }
#pragma unroll
    for (int o = 1; o <= 2; o <<= 1) {
      sum0 += __shfl_xor_sync(0xffffffffu, sum0, o);
      sum1 += __shfl_xor_sync(0xffffffffu, sum1, o);
    }
    l0 = l0 * al0 + sum0;
    l1 = l1 * al1 + sum1;
    m0 = mn0;
    m1 = mn1;
#pragma unroll
    for (int n = 0; n < OT; ++n) {
      oacc[n][0] *= al0;
      oacc[n][1] *= al0;
      oacc[n][2] *= al1;
      oacc[n][3] *= al1;
    }
    // O += P V
#pragma unroll
    for (int kt = 0; kt < kBN / 16; ++kt) {
      uint32_t pa[4] = {pack_bf16(s[2 * kt][0], s[2 * kt][1]), pack_bf16(s[2 * kt][2], s[2 * kt][3]),
                        pack_bf16(s[2 * kt + 1][0], s[2 * kt + 1][1]), pack_bf16(s[2 * kt + 1][2], s[2 * kt + 1][3])};
      if (kPipe) {
        // transposed matrices: keys kt*16 + (mi%2)*8.., dims (n + mi/2)*8..: B of n-tile n (regs 0, 1), n+1 (2, 3)
#pragma unroll
        for (int n = 0; n < OT; n += 2) {
          uint32_t vb[4];
          ldsm_x4_t(vb, Vb + (kt * 16 + (mi & 1) * 8 + mr) * LV + (n + (mi >> 1)) * 8);
          mma16816(oacc[n], pa, vb[0], vb[1]);
          mma16816(oacc[n + 1], pa, vb[2], vb[3]);
        }
      } else {
        const bf16* v0 = Vb + (kt * 16 + 2 * t4) * LV + g;
#pragma unroll
        for (int n = 0; n < OT; ++n) {
          const bf16* vp = v0 + n * 8;
          mma16816(oacc[n], pa, pack_bf16(vp[0], vp[LV]), pack_bf16(vp[8 * LV], vp[9 * LV]));
        }
      }
    }
    if (kPipe) __syncthreads();  // every warp is done with this buffer before it is refilled
  }
  const float i0 = 1.f / l0, i1 = 1.f / l1;
  bf16* o0 = a.o + (t0 + row0) * a.o_row + (long long)h * kDV + 2 * t4;
  bf16* o1 = o0 + 8 * a.o_row;
#pragma unroll
  for (int n = 0; n < OT; ++n) {
    *reinterpret_cast<uint32_t*>(o0 + n * 8) = pack_bf16(oacc[n][0] * i0, oacc[n][1] * i0);
    *reinterpret_cast<uint32_t*>(o1 + n * 8) = pack_bf16(oacc[n][2] * i1, oacc[n][3] * i1);
  }
}

// EPSIM_ATTN_CORE=simple (environment, a development knob): the first, unpipelined version.
bool flash_simple() {
  const char* e = std::getenv("EPSIM_ATTN_CORE");
  return e && std::string(e) == "simple";
}

template <int DQK, bool kPipe>
void flash_launch(const FlashArgs& a, dim3 grid, cudaStream_t s) {
  flash_fwd_kernel<DQK, kPipe><<<grid, 128, flash_smem<DQK, kPipe>(), s>>>(a);
}

void flash_prepare() {
  CK(cudaFuncSetAttribute(flash_fwd_kernel<128, true>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)flash_smem<128, true>()));
  CK(cudaFuncSetAttribute(flash_fwd_kernel<192, true>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)flash_smem<192, true>()));
  CK(cudaFuncSetAttribute(flash_fwd_kernel<128, false>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)flash_smem<128, false>()));
  CK(cudaFuncSetAttribute(flash_fwd_kernel<192, false>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)flash_smem<192, false>()));
}

// ------------------------------------------------------------------------------------------
// Host references
// rows [r0, r0 + n) of a strided bf16 matrix, `width` elements each, as float
std::vector<float> rows_f32(const bf16* base, long long ld, long long r0, int n, int width) {
  std::vector<bf16> h((size_t)n * width);
  CK(cudaMemcpy2D(h.data(), (size_t)width * sizeof(bf16), base + r0 * ld, (size_t)ld * sizeof(bf16),
                  (size_t)width * sizeof(bf16), n, cudaMemcpyDeviceToHost));
  std::vector<float> f(h.size());
  for (size_t i = 0; i < h.size(); ++i) f[i] = __bfloat162float(h[i]);
  return f;
}
std::vector<float> row_f32(const bf16* base, long long ld, long long r, int width) { return rows_f32(base, ld, r, 1, width); }

// Sampled rows of C[M, N] = A[M, K] W[N, K]^T against the device float64 reference.
double check_gemm(const bf16* A, const bf16* W, const bf16* C, int M, int N, int K, uint64_t seed) {
  const auto rows = sample_rows(M, 8, seed);
  const auto drows = to_device(rows);
  DevBuf<double> ref(rows.size() * (size_t)N);
  ref_gemm_rows(A, W, drows.get(), (int)rows.size(), N, K, ref.get());
  CK(cudaDeviceSynchronize());
  const auto r = to_host(ref.get(), ref.size());
  std::vector<float> got;
  for (int row : rows) {
    const auto g = row_f32(C, N, row, N);
    got.insert(got.end(), g.begin(), g.end());
  }
  return rel_err(r, got);
}

void host_rope_angle(int pos, int i, int rd, double* c, double* s) {
  const float inv = exp2f(-(2.f * i / rd) * 13.287712379549449f);  // as the kernel: 10000^(-2i/rd) in float
  const double ang = (double)((float)pos * inv);
  *c = std::cos(ang);
  *s = std::sin(ang);
}
// rotate-half RoPE of one head slice (rd dims) at position pos
void host_rope(const float* in, int rd, int pos, double* out) {
  for (int i = 0; i < rd / 2; ++i) {
    double c, s;
    host_rope_angle(pos, i, rd, &c, &s);
    out[i] = in[i] * c - in[i + rd / 2] * s;
    out[i + rd / 2] = in[i] * s + in[i + rd / 2] * c;
  }
}

void note_op(std::vector<double>& err, int op, double e) { err[op] = std::max(err[op], e); }

}  // namespace

void gemm_xwt(cublasHandle_t h, const bf16* X, const bf16* W, bf16* C, int M, int N, int K) {
  const float one = 1.f, zero = 0.f;
  CBA(cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, N, M, K, &one, W, CUDA_R_16BF, K, X, CUDA_R_16BF, K, &zero, C,
                   CUDA_R_16BF, N, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

// ------------------------------------------------------------------------------------------
const char* flash_attention_impl() { return flash_simple() ? "own_mma_flash_simple" : "own_mma_flash"; }

const char* attn_op_name(int op) {
  static const char* n[kAttnOps] = {"attn_norm", "q_proj", "q_a_norm", "q_b_proj", "kv_proj", "kv_a_norm", "kv_b_proj",
                                    "rope", "attn_core", "o_proj", "attn_residual", "ffn_norm", "ffn_residual"};
  return n[op];
}

bool attn_op_applies(const AttnConfig& c, int op) {
  if (!c.on()) return false;
  if (op == kQANorm || op == kQBProj || op == kKvANorm || op == kKvBProj) return c.mla();
  return op >= 0 && op < kAttnOps;
}

void AttnConfig::resolve(int hidden) {
  if (kind != "none" && kind != "mha" && kind != "gqa" && kind != "mla")
    throw std::runtime_error("--attention: none | mha | gqa | mla");
  if (!on()) return;
  if (mla()) {
    if (heads == 0) heads = 128;
    if (kv_heads != 0 && kv_heads != heads) throw std::runtime_error("--kv-heads: MLA has one key/value head per query head");
    kv_heads = heads;
    head_dim = kNope + kRopeDim;
  } else {
    if (heads == 0) heads = 64;
    if (kv_heads == 0) kv_heads = kind == "gqa" ? std::max(1, heads / 4) : heads;
    if (kind == "mha" && kv_heads != heads) throw std::runtime_error("--kv-heads: mha has kv heads = heads (use gqa)");
    if (kind == "gqa" && (kv_heads >= heads || heads % kv_heads))
      throw std::runtime_error("--kv-heads: gqa needs fewer key/value heads than heads, dividing them");
    if (head_dim != 128) throw std::runtime_error("--head-dim: the attention core supports 128");
  }
  if (heads < 1 || heads > 256) throw std::runtime_error("--heads: 1..256");
  if (seq_len < 64 || seq_len % 64) throw std::runtime_error("--seq-len: a multiple of 64");
  if (hidden % 128) throw std::runtime_error("--hidden: a multiple of 128 with --attention");
}

void AttnConfig::check_tokens(int tokens) const {
  if (on() && tokens % seq_len)
    throw std::runtime_error("--seq-len " + std::to_string(seq_len) + " must divide the tokens of a micro-batch (" +
                             std::to_string(tokens) + ")");
}

void attn_alloc_weights(const AttnConfig& c, int H, uint64_t seed, AttnWeights& w) {
  auto fill = [&](DevBuf<bf16>& b, size_t n, int k, float lo, float hi) {
    b.alloc(n);
    fill_random(b.get(), n, seed * 7919ull + (uint64_t)k, lo, hi);
  };
  // projections: |w| in [a/4, a] with a = 2.3 / sqrt(K), so outputs keep about their inputs' size
  auto proj = [&](DevBuf<bf16>& b, size_t n, size_t K, int k) {
    const float a = 2.3f / std::sqrt((float)K);
    fill(b, n * K, k, 0.25f * a, a);
  };
  fill(w.norm, H, 1, 0.5f, 1.f);
  fill(w.ffn_norm, H, 2, 0.5f, 1.f);
  const size_t heads = c.heads, dv = c.v_dim();
  if (c.mla()) {
    proj(w.wqa, AttnConfig::kQLora, H, 3);
    fill(w.qa_norm, AttnConfig::kQLora, 4, 0.5f, 1.f);
    proj(w.wqb, heads * c.qk_dim(), AttnConfig::kQLora, 5);
    proj(w.wkva, AttnConfig::kKvLora + AttnConfig::kRopeDim, H, 6);
    fill(w.kva_norm, AttnConfig::kKvLora, 7, 0.5f, 1.f);
    proj(w.wkvb, heads * (AttnConfig::kNope + AttnConfig::kV), AttnConfig::kKvLora, 8);
  } else {
    proj(w.wq, heads * c.head_dim, H, 3);
    proj(w.wkv, 2 * (size_t)c.kv_heads * c.head_dim, H, 4);
  }
  proj(w.wo, H, heads * dv, 9);
}

void attn_alloc_buffers(const AttnConfig& c, int T, int H, AttnBuffers& b) {
  flash_prepare();
  const size_t t = T, heads = c.heads;
  b.xn.alloc(t * H);
  b.rstd.alloc(t);
  b.q.alloc(t * heads * c.qk_dim());
  b.q_pre.alloc(b.q.size());
  b.o.alloc(t * heads * c.v_dim());
  b.a.alloc(t * H);
  if (c.mla()) {
    b.qa.alloc(t * AttnConfig::kQLora);
    b.qan.alloc(t * AttnConfig::kQLora);
    b.kva.alloc(t * (AttnConfig::kKvLora + AttnConfig::kRopeDim));
    b.kvn.alloc(t * AttnConfig::kKvLora);
    b.kvb.alloc(t * heads * (AttnConfig::kNope + AttnConfig::kV));
    b.k.alloc(t * heads * c.qk_dim());
  } else {
    b.kv.alloc(t * 2 * c.kv_heads * c.head_dim);
    b.k_pre.alloc(b.kv.size());
  }
}

void attn_poison(AttnBuffers& b, cudaStream_t s) {
  for (DevBuf<bf16>* p : {&b.xn, &b.q, &b.kv, &b.qa, &b.qan, &b.kva, &b.kvn, &b.kvb, &b.k, &b.o, &b.a, &b.q_pre, &b.k_pre})
    if (p->size()) poison(p->get(), p->size(), s);
  poison(b.rstd.get(), b.rstd.size(), s);
}

void flash_attention(AttnView q, AttnView k, AttnView v, bf16* o, long long o_row, int T, int seq, int heads,
                     int kv_heads, int dqk, int dv, cudaStream_t s) {
  if (dv != kDV || (dqk != 128 && dqk != 192)) fail("flash_attention", __FILE__, __LINE__, "head dims: qk 128|192, v 128");
  if (seq % kBM || T % seq || heads % kv_heads) fail("flash_attention", __FILE__, __LINE__, "shape");
  FlashArgs a{q.p, k.p, v.p, o, q.row, q.head, k.row, k.head, v.row, v.head, o_row, seq, heads, heads / kv_heads,
              1.4426950408889634f / std::sqrt((float)dqk)};
  const dim3 grid(seq / kBM, heads, T / seq);
  const bool simple = flash_simple();
  if (dqk == 128) simple ? flash_launch<128, false>(a, grid, s) : flash_launch<128, true>(a, grid, s);
  else simple ? flash_launch<192, false>(a, grid, s) : flash_launch<192, true>(a, grid, s);
  CK_LAST();
}

void attn_forward(const AttnConfig& c, cublasHandle_t blas, cudaStream_t s, const AttnWeights& w, AttnBuffers& b,
                  const bf16* x, bf16* h, int T, int H, bool keep, const AttnHooks& hk) {
  const int heads = c.heads, dqk = c.qk_dim(), dv = c.v_dim();
  hk.begin(kAttnNorm);
  rmsnorm_fwd(x, w.norm.get(), b.xn.get(), b.rstd.get(), T, H, kNormEps, s);
  hk.end();
  if (c.mla()) {
    constexpr int QL = AttnConfig::kQLora, KL = AttnConfig::kKvLora, KVA = KL + AttnConfig::kRopeDim,
                  KVB = AttnConfig::kNope + AttnConfig::kV;
    hk.begin(kQProj);
    gemm_xwt(blas, b.xn.get(), w.wqa.get(), b.qa.get(), T, QL, H);
    hk.end();
    hk.begin(kQANorm);
    rmsnorm_fwd(b.qa.get(), w.qa_norm.get(), b.qan.get(), b.rstd.get(), T, QL, kNormEps, s);
    hk.end();
    hk.begin(kQBProj);
    gemm_xwt(blas, b.qan.get(), w.wqb.get(), b.q.get(), T, heads * dqk, QL);
    hk.end();
    hk.begin(kKvProj);
    gemm_xwt(blas, b.xn.get(), w.wkva.get(), b.kva.get(), T, KVA, H);
    hk.end();
    hk.begin(kKvANorm);
    rmsnorm_fwd_strided(b.kva.get(), KVA, w.kva_norm.get(), b.kvn.get(), b.rstd.get(), T, KL, kNormEps, s);
    hk.end();
    hk.begin(kKvBProj);
    gemm_xwt(blas, b.kvn.get(), w.wkvb.get(), b.kvb.get(), T, heads * KVB, KL);
    hk.end();
    if (keep) CK(cudaMemcpyAsync(b.q_pre.get(), b.q.get(), b.q.bytes(), cudaMemcpyDeviceToDevice, s));
    hk.begin(kRope);
    mla_rope_assemble(b.q.get(), b.kvb.get(), b.kva.get(), b.k.get(), T, heads, 0, 1, s);
    hk.end();
    hk.begin(kAttnCore);
    flash_attention({b.q.get(), (long long)heads * dqk, dqk}, {b.k.get(), (long long)heads * dqk, dqk},
                    {b.kvb.get() + AttnConfig::kNope, (long long)heads * KVB, KVB}, b.o.get(), (long long)heads * dv, T,
                    c.seq_len, heads, heads, dqk, dv, s);
    hk.end();
  } else {
    const int kvh = c.kv_heads, D = c.head_dim;
    const long long ldkv = 2LL * kvh * D;
    hk.begin(kQProj);
    gemm_xwt(blas, b.xn.get(), w.wq.get(), b.q.get(), T, heads * D, H);
    hk.end();
    hk.begin(kKvProj);
    gemm_xwt(blas, b.xn.get(), w.wkv.get(), b.kv.get(), T, (int)ldkv, H);
    hk.end();
    if (keep) {
      CK(cudaMemcpyAsync(b.q_pre.get(), b.q.get(), b.q.bytes(), cudaMemcpyDeviceToDevice, s));
      CK(cudaMemcpyAsync(b.k_pre.get(), b.kv.get(), b.kv.bytes(), cudaMemcpyDeviceToDevice, s));
    }
    hk.begin(kRope);
    rope(b.q.get(), T, heads, (long long)heads * D, D, 0, D, 0, 1, 1.f, s);
    rope(b.kv.get(), T, kvh, ldkv, D, 0, D, 0, 1, 1.f, s);
    hk.end();
    hk.begin(kAttnCore);
    flash_attention({b.q.get(), (long long)heads * D, D}, {b.kv.get(), ldkv, D}, {b.kv.get() + (long long)kvh * D, ldkv, D},
                    b.o.get(), (long long)heads * D, T, c.seq_len, heads, kvh, D, D, s);
    hk.end();
  }
  hk.begin(kOProj);
  gemm_xwt(blas, b.o.get(), w.wo.get(), b.a.get(), T, H, heads * dv);
  hk.end();
  hk.begin(kAttnResidual);
  residual_add(x, b.a.get(), h, (long long)T * H, s);
  hk.end();
}

// ------------------------------------------------------------------------------------------
double check_rmsnorm(const bf16* x, long long ldx, const bf16* w, const bf16* y, int T, int H, uint64_t seed) {
  const auto wf = row_f32(w, H, 0, H);
  std::vector<double> ref;
  std::vector<float> got;
  for (int r : sample_rows(T, 8, seed)) {
    const auto xr = row_f32(x, ldx, r, H);
    const auto yr = row_f32(y, H, r, H);
    double ss = 0;
    for (float v : xr) ss += (double)v * v;
    const double rs = 1.0 / std::sqrt(ss / H + kNormEps);
    for (int i = 0; i < H; ++i) ref.push_back(xr[i] * rs * wf[i]);
    got.insert(got.end(), yr.begin(), yr.end());
  }
  return rel_err(ref, got);
}

double check_residual(const bf16* a, const bf16* b, const bf16* out, int T, int H, uint64_t seed) {
  std::vector<double> ref;
  std::vector<float> got;
  for (int r : sample_rows(T, 8, seed)) {
    const auto ar = row_f32(a, H, r, H), br = row_f32(b, H, r, H), orow = row_f32(out, H, r, H);
    for (int i = 0; i < H; ++i) ref.push_back((double)ar[i] + br[i]);
    got.insert(got.end(), orow.begin(), orow.end());
  }
  return rel_err(ref, got);
}

std::vector<double> attn_check(const AttnConfig& c, const AttnWeights& w, const AttnBuffers& b, const bf16* x,
                               const bf16* h, int T, int H, uint64_t seed) {
  std::vector<double> err(kAttnOps, -1.0);
  const int heads = c.heads, dqk = c.qk_dim(), dv = c.v_dim(), kvh = c.kvh();
  note_op(err, kAttnNorm, check_rmsnorm(x, H, w.norm.get(), b.xn.get(), T, H, seed + 1));
  // q (before RoPE), k before RoPE (MHA/GQA: the k half of kv), and where q / k / v live after it
  const bf16 *k_post, *v_post;
  long long k_row, k_head, v_row, v_head;
  if (c.mla()) {
    constexpr int QL = AttnConfig::kQLora, KL = AttnConfig::kKvLora, KVA = KL + AttnConfig::kRopeDim,
                  KVB = AttnConfig::kNope + AttnConfig::kV, NOPE = AttnConfig::kNope, RD = AttnConfig::kRopeDim;
    note_op(err, kQProj, check_gemm(b.xn.get(), w.wqa.get(), b.qa.get(), T, QL, H, seed + 2));
    note_op(err, kQANorm, check_rmsnorm(b.qa.get(), QL, w.qa_norm.get(), b.qan.get(), T, QL, seed + 3));
    note_op(err, kQBProj, check_gemm(b.qan.get(), w.wqb.get(), b.q_pre.get(), T, heads * dqk, QL, seed + 4));
    note_op(err, kKvProj, check_gemm(b.xn.get(), w.wkva.get(), b.kva.get(), T, KVA, H, seed + 5));
    note_op(err, kKvANorm, check_rmsnorm(b.kva.get(), KVA, w.kva_norm.get(), b.kvn.get(), T, KL, seed + 6));
    note_op(err, kKvBProj, check_gemm(b.kvn.get(), w.wkvb.get(), b.kvb.get(), T, heads * KVB, KL, seed + 7));
    // rope: q's rope dims rotated in place; k = [kv_b's k_nope | rotated shared k_pe] per head
    std::vector<double> ref;
    std::vector<float> got;
    for (int r : sample_rows(T, 4, seed + 8)) {
      const auto qp = row_f32(b.q_pre.get(), (long long)heads * dqk, r, heads * dqk);
      const auto qr = row_f32(b.q.get(), (long long)heads * dqk, r, heads * dqk);
      const auto kva = row_f32(b.kva.get(), KVA, r, KVA);
      const auto kvb = row_f32(b.kvb.get(), (long long)heads * KVB, r, heads * KVB);
      const auto kr = row_f32(b.k.get(), (long long)heads * dqk, r, heads * dqk);
      double rot[RD], kpe[RD];
      host_rope(kva.data() + KL, RD, r, kpe);
      for (int hh = 0; hh < heads; ++hh) {
        const size_t qo = (size_t)hh * dqk;
        for (int i = 0; i < NOPE; ++i) ref.push_back(qp[qo + i]);
        host_rope(qp.data() + qo + NOPE, RD, r, rot);
        ref.insert(ref.end(), rot, rot + RD);
        got.insert(got.end(), qr.begin() + qo, qr.begin() + qo + dqk);
        for (int i = 0; i < NOPE; ++i) ref.push_back(kvb[(size_t)hh * KVB + i]);
        ref.insert(ref.end(), kpe, kpe + RD);
        got.insert(got.end(), kr.begin() + qo, kr.begin() + qo + dqk);
      }
    }
    note_op(err, kRope, rel_err(ref, got));
    k_post = b.k.get(), k_row = (long long)heads * dqk, k_head = dqk;
    v_post = b.kvb.get() + NOPE, v_row = (long long)heads * KVB, v_head = KVB;
  } else {
    const int D = c.head_dim;
    const long long ldkv = 2LL * kvh * D;
    note_op(err, kQProj, check_gemm(b.xn.get(), w.wq.get(), b.q_pre.get(), T, heads * D, H, seed + 2));
    note_op(err, kKvProj, check_gemm(b.xn.get(), w.wkv.get(), b.k_pre.get(), T, (int)ldkv, H, seed + 5));
    std::vector<double> ref;
    std::vector<float> got;
    std::vector<double> rot(D);
    for (int r : sample_rows(T, 4, seed + 8)) {
      const auto qp = row_f32(b.q_pre.get(), (long long)heads * D, r, heads * D);
      const auto qr = row_f32(b.q.get(), (long long)heads * D, r, heads * D);
      const auto kp = row_f32(b.k_pre.get(), ldkv, r, (int)ldkv);
      const auto kr = row_f32(b.kv.get(), ldkv, r, (int)ldkv);
      for (int hh = 0; hh < heads; ++hh) {
        host_rope(qp.data() + (size_t)hh * D, D, r, rot.data());
        ref.insert(ref.end(), rot.begin(), rot.end());
        got.insert(got.end(), qr.begin() + (size_t)hh * D, qr.begin() + (size_t)(hh + 1) * D);
      }
      for (int hh = 0; hh < kvh; ++hh) {
        host_rope(kp.data() + (size_t)hh * D, D, r, rot.data());
        ref.insert(ref.end(), rot.begin(), rot.end());
        got.insert(got.end(), kr.begin() + (size_t)hh * D, kr.begin() + (size_t)(hh + 1) * D);
      }
      // v untouched by RoPE
      for (long long i = (long long)kvh * D; i < ldkv; ++i) {
        ref.push_back(kp[i]);
        got.push_back(kr[i]);
      }
    }
    note_op(err, kRope, rel_err(ref, got));
    k_post = b.kv.get(), k_row = ldkv, k_head = D;
    v_post = b.kv.get() + (long long)kvh * D, v_row = ldkv, v_head = D;
  }
  // attention core: float64 softmax(q k^T / sqrt(dqk)) v over keys 0..i of the query's sequence,
  // on the GPU's own (post-RoPE) q, k, v, for sampled (sequence, head, query) triples: the first
  // and the last query of the micro-batch, the rest spread
  {
    const int seq = c.seq_len, seqs = T / seq;
    std::vector<double> ref;
    std::vector<float> got;
    const auto picks = sample_rows(T, 6, seed + 9);
    std::vector<int> toks = {0, T - 1};
    toks.insert(toks.end(), picks.begin(), picks.end());
    for (size_t n = 0; n < toks.size(); ++n) {
      const int t = toks[n], sidx = t / seq, i = t % seq;
      const int hh = (int)((n * 37 + (size_t)seed) % (size_t)heads), kh = hh / (heads / kvh);
      (void)seqs;
      const long long t0 = (long long)sidx * seq;
      const auto qv = row_f32(b.q.get() + (long long)hh * dqk, (long long)heads * dqk, t, dqk);
      const auto ks = rows_f32(k_post + kh * k_head, k_row, t0, i + 1, dqk);
      const auto vs = rows_f32(v_post + kh * v_head, v_row, t0, i + 1, dv);
      const auto ov = row_f32(b.o.get() + (long long)hh * dv, (long long)heads * dv, t, dv);
      std::vector<double> sc(i + 1);
      double mx = -1e300;
      for (int j = 0; j <= i; ++j) {
        double d = 0;
        for (int e = 0; e < dqk; ++e) d += (double)qv[e] * ks[(size_t)j * dqk + e];
        sc[j] = d / std::sqrt((double)dqk);
        mx = std::max(mx, sc[j]);
      }
      double den = 0;
      for (auto& v : sc) den += (v = std::exp(v - mx));
      for (int e = 0; e < dv; ++e) {
        double acc = 0;
        for (int j = 0; j <= i; ++j) acc += sc[j] * vs[(size_t)j * dv + e];
        ref.push_back(acc / den);
      }
      got.insert(got.end(), ov.begin(), ov.end());
    }
    note_op(err, kAttnCore, rel_err(ref, got));
  }
  note_op(err, kOProj, check_gemm(b.o.get(), w.wo.get(), b.a.get(), T, H, heads * dv, seed + 10));
  note_op(err, kAttnResidual, check_residual(x, b.a.get(), h, T, H, seed + 11));
  return err;
}

}  // namespace epsim::bench
