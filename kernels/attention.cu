// epsim-bench: own attention kernels (MHA, head_dim 128) and their benchmarks.
//  * prefill: causal flash-style forward, bf16 tensor cores through WMMA, fp32 online softmax;
//  * decode: one query per (batch, head) over a KV cache of length L, split over the keys
//    (flash-decoding) with 16-byte loads, then a combine kernel.
// Layout: Q, K, V, O are [batch][heads][seq][128] bf16 (decode: Q, O are [batch][heads][128]).
#include <mma.h>

#include <algorithm>
#include <cmath>

#include "common.h"

namespace epsim::bench {
namespace {

using namespace nvcuda;
constexpr int D = 128;
constexpr int BM = 64, BN = 64;               // query rows per block, keys per tile
constexpr int LDQ = D + 8, LDS = BN + 4, LDP = BN + 8, LDO = D + 4;
constexpr size_t kPrefillSmem = (size_t)BM * LDQ * 2 * 3 + (size_t)BM * LDS * 4 +
                                (size_t)BM * LDP * 2 + (size_t)BM * LDO * 4;

__global__ void __launch_bounds__(128) flash_prefill_kernel(const bf16* __restrict__ Q,
                                                            const bf16* __restrict__ K,
                                                            const bf16* __restrict__ V,
                                                            bf16* __restrict__ O, int S,
                                                            float scale_log2) {
  extern __shared__ __align__(128) unsigned char smem[];
  bf16* Qs = reinterpret_cast<bf16*>(smem);
  bf16* Ks = Qs + BM * LDQ;
  bf16* Vs = Ks + BN * LDQ;
  float* Ss = reinterpret_cast<float*>(Vs + BN * LDQ);
  bf16* Ps = reinterpret_cast<bf16*>(Ss + BM * LDS);
  float* Os = reinterpret_cast<float*>(Ps + BM * LDP);

  const int qb = gridDim.x - 1 - blockIdx.x;  // heavy (late) query blocks first
  const long long head = (long long)blockIdx.z * gridDim.y + blockIdx.y;
  const bf16* q = Q + head * S * D + (long long)qb * BM * D;
  const bf16* k = K + head * S * D;
  const bf16* v = V + head * S * D;
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;

  // load Q tile, zero O
  for (int i = tid; i < BM * D / 8; i += 128) {
    int r = i / (D / 8), c = (i % (D / 8)) * 8;
    *reinterpret_cast<uint4*>(Qs + r * LDQ + c) = *reinterpret_cast<const uint4*>(q + r * D + c);
  }
  for (int i = tid; i < BM * LDO; i += 128) Os[i] = 0.f;
  __syncthreads();
  wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::row_major> qf[D / 16];
#pragma unroll
  for (int kk = 0; kk < D / 16; ++kk) wmma::load_matrix_sync(qf[kk], Qs + warp * 16 * LDQ + kk * 16, LDQ);

  const int r = warp * 16 + (lane >> 1);  // this lane's softmax row (two lanes per row)
  const int half = lane & 1;
  const int qpos = qb * BM + r;
  float m = -INFINITY, l = 0.f;

  for (int j = 0; j <= qb; ++j) {
    __syncthreads();
    for (int i = tid; i < BN * D / 8; i += 128) {
      int rr = i / (D / 8), c = (i % (D / 8)) * 8;
      *reinterpret_cast<uint4*>(Ks + rr * LDQ + c) =
          *reinterpret_cast<const uint4*>(k + ((long long)j * BN + rr) * D + c);
      *reinterpret_cast<uint4*>(Vs + rr * LDQ + c) =
          *reinterpret_cast<const uint4*>(v + ((long long)j * BN + rr) * D + c);
    }
    __syncthreads();
    // S = Q K^T for this warp's 16 rows
#pragma unroll
    for (int nb = 0; nb < BN / 16; ++nb) {
      wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
      wmma::fill_fragment(acc, 0.f);
#pragma unroll
      for (int kk = 0; kk < D / 16; ++kk) {
        wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::col_major> kf;
        wmma::load_matrix_sync(kf, Ks + nb * 16 * LDQ + kk * 16, LDQ);
        wmma::mma_sync(acc, qf[kk], kf, acc);
      }
      wmma::store_matrix_sync(Ss + warp * 16 * LDS + nb * 16, acc, LDS, wmma::mem_row_major);
    }
    __syncwarp();
    // online softmax on row r, columns half*32 .. +32
    float* srow = Ss + r * LDS + half * 32;
    float mx = -INFINITY;
    const int kbase = j * BN + half * 32;
#pragma unroll 8
    for (int c = 0; c < 32; ++c) {
      float x = (kbase + c <= qpos) ? srow[c] * scale_log2 : -INFINITY;
      srow[c] = x;
      mx = fmaxf(mx, x);
    }
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
    const float mnew = fmaxf(m, mx);
    float sum = 0.f;
    bf16* prow = Ps + r * LDP + half * 32;
#pragma unroll 8
    for (int c = 0; c < 32; ++c) {
      float p = exp2f(srow[c] - mnew);
      bf16 pb = __float2bfloat16(p);
      prow[c] = pb;
      sum += __bfloat162float(pb);
    }
    sum += __shfl_xor_sync(0xffffffffu, sum, 1);
    const float alpha = exp2f(m - mnew);
    l = l * alpha + sum;
    m = mnew;
    // rescale this row's O (each lane half the row)
    float* orow = Os + r * LDO + half * 64;
#pragma unroll 8
    for (int c = 0; c < 64; ++c) orow[c] *= alpha;
    __syncwarp();
    // O += P V
#pragma unroll
    for (int nb = 0; nb < D / 16; ++nb) {
      wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
      wmma::load_matrix_sync(acc, Os + warp * 16 * LDO + nb * 16, LDO, wmma::mem_row_major);
#pragma unroll
      for (int kk = 0; kk < BN / 16; ++kk) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::row_major> pf;
        wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::row_major> vf;
        wmma::load_matrix_sync(pf, Ps + warp * 16 * LDP + kk * 16, LDP);
        wmma::load_matrix_sync(vf, Vs + kk * 16 * LDQ + nb * 16, LDQ);
        wmma::mma_sync(acc, pf, vf, acc);
      }
      wmma::store_matrix_sync(Os + warp * 16 * LDO + nb * 16, acc, LDO, wmma::mem_row_major);
    }
    __syncwarp();
  }
  // write O / l
  const float inv = 1.f / l;
  bf16* out = O + head * S * D + (long long)qpos * D + half * 64;
  const float* orow = Os + r * LDO + half * 64;
#pragma unroll
  for (int c = 0; c < 64; c += 8) {
    uint4 w;
    bf16* wp = reinterpret_cast<bf16*>(&w);
#pragma unroll
    for (int u = 0; u < 8; ++u) wp[u] = __float2bfloat16(orow[c + u] * inv);
    *reinterpret_cast<uint4*>(out + c) = w;
  }
}

// ---------------------------------------------------------------- decode (split-K)
constexpr int kDecThreads = 128;  // 8 half-warps
constexpr int kUnroll = 4;

__global__ void __launch_bounds__(kDecThreads) decode_split_kernel(
    const bf16* __restrict__ Q, const bf16* __restrict__ K, const bf16* __restrict__ V, int L,
    int chunk, float scale_log2, float* __restrict__ pm, float* __restrict__ pl,
    float* __restrict__ pacc) {
  const int split = blockIdx.x, splits = gridDim.x;
  const long long bh = blockIdx.y;
  const int tid = threadIdx.x, hw = tid >> 4, l16 = tid & 15;
  const bf16* k = K + bh * L * D;
  const bf16* v = V + bh * L * D;
  float qv[8];
  {
    uint4 raw = *reinterpret_cast<const uint4*>(Q + bh * D + l16 * 8);
    const __nv_bfloat162* p = reinterpret_cast<const __nv_bfloat162*>(&raw);
#pragma unroll
    for (int u = 0; u < 4; ++u) {
      float2 f = __bfloat1622float2(p[u]);
      qv[2 * u] = f.x * scale_log2;
      qv[2 * u + 1] = f.y * scale_log2;
    }
  }
  const int beg = split * chunk, end = min(L, beg + chunk);
  float m = -INFINITY, l = 0.f, acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  // The loop runs the same number of times in every lane (shuffles need the whole warp);
  // keys past the chunk are predicated off.
  for (int base = beg; base < end; base += 8 * kUnroll) {
    uint4 kr[kUnroll], vr[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      int key = base + hw + u * 8;
      if (key < end) {
        kr[u] = __ldg(reinterpret_cast<const uint4*>(k + (long long)key * D) + l16);
        vr[u] = __ldg(reinterpret_cast<const uint4*>(v + (long long)key * D) + l16);
      } else {
        kr[u] = make_uint4(0, 0, 0, 0);
        vr[u] = make_uint4(0, 0, 0, 0);
      }
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const bool valid = base + hw + u * 8 < end;
      const __nv_bfloat162* kp = reinterpret_cast<const __nv_bfloat162*>(&kr[u]);
      float s = 0.f;
#pragma unroll
      for (int q = 0; q < 4; ++q) {
        float2 f = __bfloat1622float2(kp[q]);
        s += qv[2 * q] * f.x + qv[2 * q + 1] * f.y;
      }
#pragma unroll
      for (int o = 8; o; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o, 16);
      if (valid) {
        float mn = fmaxf(m, s);
        float a = exp2f(m - mn), p = exp2f(s - mn);
        l = l * a + p;
        m = mn;
        const __nv_bfloat162* vp = reinterpret_cast<const __nv_bfloat162*>(&vr[u]);
#pragma unroll
        for (int q = 0; q < 4; ++q) {
          float2 f = __bfloat1622float2(vp[q]);
          acc[2 * q] = acc[2 * q] * a + p * f.x;
          acc[2 * q + 1] = acc[2 * q + 1] * a + p * f.y;
        }
      }
    }
  }
  // combine the 8 half-warps
  __shared__ float sm_m[8], sm_l[8], sm_acc[8][D];
  if (l16 == 0) { sm_m[hw] = m; sm_l[hw] = l; }
#pragma unroll
  for (int u = 0; u < 8; ++u) sm_acc[hw][l16 * 8 + u] = acc[u];
  __syncthreads();
  const int d = tid;  // 128 threads = 128 dims
  float M = -INFINITY;
  for (int i = 0; i < 8; ++i) M = fmaxf(M, sm_m[i]);
  float Ls = 0.f, A = 0.f;
  for (int i = 0; i < 8; ++i) {
    float f = sm_m[i] == -INFINITY ? 0.f : exp2f(sm_m[i] - M);
    Ls += sm_l[i] * f;
    A += sm_acc[i][d] * f;
  }
  long long o = bh * splits + split;
  pacc[o * D + d] = A;
  if (d == 0) { pm[o] = M; pl[o] = Ls; }
}

__global__ void __launch_bounds__(D) decode_combine_kernel(const float* __restrict__ pm,
                                                          const float* __restrict__ pl,
                                                          const float* __restrict__ pacc,
                                                          int splits, bf16* __restrict__ O) {
  const long long bh = blockIdx.x;
  const int d = threadIdx.x;
  float M = -INFINITY;
  for (int i = 0; i < splits; ++i) M = fmaxf(M, pm[bh * splits + i]);
  float Ls = 0.f, A = 0.f;
  for (int i = 0; i < splits; ++i) {
    float mi = pm[bh * splits + i];
    float f = mi == -INFINITY ? 0.f : exp2f(mi - M);
    Ls += pl[bh * splits + i] * f;
    A += pacc[(bh * splits + i) * D + d] * f;
  }
  O[bh * D + d] = __float2bfloat16(A / Ls);
}

int decode_splits(int BH, int L) {
  int want = (int)ceil_div(8LL * sm_count(), BH);
  return (int)std::clamp<long long>(std::min<long long>(want, ceil_div(L, 256)), 1, 1024);
}

// ---------------------------------------------------------------- references (host, float64)
std::vector<float> dl(const bf16* p, size_t n) { return to_host_f32(p, n); }

// Reference attention for one query row against keys [0, nkeys).
void ref_row(const float* q, const float* k, const float* v, int nkeys, double* out) {
  std::vector<double> s(nkeys);
  double mx = -INFINITY;
  for (int j = 0; j < nkeys; ++j) {
    double a = 0;
    for (int d = 0; d < D; ++d) a += (double)q[d] * k[(size_t)j * D + d];
    s[j] = a / std::sqrt((double)D);
    mx = std::max(mx, s[j]);
  }
  double sum = 0;
  for (int j = 0; j < nkeys; ++j) sum += s[j] = std::exp(s[j] - mx);
  for (int d = 0; d < D; ++d) {
    double a = 0;
    for (int j = 0; j < nkeys; ++j) a += s[j] * v[(size_t)j * D + d];
    out[d] = a / sum;
  }
}

Check make(double err, double thr, long long nonfinite) {
  Check c;
  c.rel_err = nonfinite ? INFINITY : err;
  c.threshold = thr;
  c.done = true;
  c.pass = nonfinite == 0 && std::isfinite(err) && err <= thr;
  if (nonfinite) c.note = std::to_string(nonfinite) + " non-finite outputs";
  return c;
}

void bench_prefill(Report& rep, const Options& opt) {
  cudaStream_t s;
  CK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  CK(cudaFuncSetAttribute(flash_prefill_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                          (int)kPrefillSmem));
  const int H = 128, B = 1;
  std::vector<int> Ss = opt.quick ? std::vector<int>{1024} : std::vector<int>{512, 1024, 2048, 4096, 8192};
  const float scale_log2 = (float)(1.0 / std::sqrt((double)D) * 1.4426950408889634);
  for (int S : Ss) {
    size_t n = (size_t)B * H * S * D;
    int rot = rotation_count(n * 2 * 4, 4);
    std::vector<DevBuf<bf16>> Q(rot), K(rot), V(rot), O(rot);
    for (int r = 0; r < rot; ++r) {
      Q[r].alloc(n); K[r].alloc(n); V[r].alloc(n); O[r].alloc(n);
      fill_random(Q[r].get(), n, 6000 + r + S, 0.25f, 1.f);
      fill_random(K[r].get(), n, 6100 + r + S, 0.25f, 1.f);
      fill_random(V[r].get(), n, 6200 + r + S, 0.25f, 1.f);
    }
    auto run = [&](int i) {
      int r = i % rot;
      flash_prefill_kernel<<<dim3(S / BM, H, B), 128, kPrefillSmem, s>>>(
          Q[r].get(), K[r].get(), V[r].get(), O[r].get(), S, scale_log2);
      CK_LAST();
    };
    poison(O[0].get(), n);
    run(0);
    CK(cudaStreamSynchronize(s));
    long long bad = count_nonfinite(O[0].get(), n);
    std::vector<double> ref;
    std::vector<float> got;
    for (int h : {0, 37, H - 1}) {
      size_t off = (size_t)h * S * D;
      auto hq = dl(Q[0].get() + off, (size_t)S * D), hk = dl(K[0].get() + off, (size_t)S * D),
           hv = dl(V[0].get() + off, (size_t)S * D), ho = dl(O[0].get() + off, (size_t)S * D);
      for (int row : sample_rows(S, 12, S + h)) {
        double o[D];
        ref_row(hq.data() + (size_t)row * D, hk.data(), hv.data(), row + 1, o);
        ref.insert(ref.end(), o, o + D);
        got.insert(got.end(), ho.begin() + (size_t)row * D, ho.begin() + (size_t)(row + 1) * D);
      }
    }
    Check c = make(rel_err(ref, got), 1e-2, bad);
    auto t = time_it(s, run, opt);
    Result res;
    res.kernel = "attention_prefill";
    res.variant = "own_wmma_flash";
    res.shape = {{"batch", B}, {"seq", S}, {"heads", H}, {"head_dim", D}, {"causal", 1}};
    res.us_median = t.med; res.us_min = t.min; res.us_max = t.max; res.iters = t.iters;
    res.flops = 4.0 * B * H * (double)S * S * D / 2;
    res.bytes = (double)n * 2 * 4;
    res.check = c;
    rep.add(res);
  }
  CK(cudaStreamDestroy(s));
}

void bench_decode(Report& rep, const Options& opt) {
  cudaStream_t s;
  CK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  const int H = 128;
  std::vector<int> Bs = opt.quick ? std::vector<int>{8} : std::vector<int>{1, 8, 32, 128};
  std::vector<int> Ls = opt.quick ? std::vector<int>{4096} : std::vector<int>{512, 2048, 8192, 32768};
  const float scale_log2 = (float)(1.0 / std::sqrt((double)D) * 1.4426950408889634);
  for (int B : Bs)
    for (int L : Ls) {
      if ((long long)B * L > 131072) continue;
      const int BH = B * H;
      size_t kv = (size_t)BH * L * D;
      int rot = rotation_count(kv * 4, 8);
      int splits = decode_splits(BH, L);
      int chunk = (int)ceil_div(L, splits);
      std::vector<DevBuf<bf16>> Q(rot), K(rot), V(rot), O(rot);
      for (int r = 0; r < rot; ++r) {
        Q[r].alloc((size_t)BH * D); K[r].alloc(kv); V[r].alloc(kv); O[r].alloc((size_t)BH * D);
        fill_random(Q[r].get(), Q[r].size(), 7000 + r + L, 0.25f, 1.f);
        fill_random(K[r].get(), kv, 7100 + r + L + B, 0.25f, 1.f);
        fill_random(V[r].get(), kv, 7200 + r + L + B, 0.25f, 1.f);
      }
      DevBuf<float> pm((size_t)BH * splits), pl((size_t)BH * splits), pacc((size_t)BH * splits * D);
      auto run = [&](int i) {
        int r = i % rot;
        decode_split_kernel<<<dim3(splits, BH), kDecThreads, 0, s>>>(
            Q[r].get(), K[r].get(), V[r].get(), L, chunk, scale_log2, pm.get(), pl.get(), pacc.get());
        CK_LAST();
        decode_combine_kernel<<<BH, D, 0, s>>>(pm.get(), pl.get(), pacc.get(), splits, O[r].get());
        CK_LAST();
      };
      poison(O[0].get(), O[0].size());
      run(0);
      CK(cudaStreamSynchronize(s));
      long long bad = count_nonfinite(O[0].get(), O[0].size());
      auto ho = dl(O[0].get(), O[0].size());
      auto hq = dl(Q[0].get(), Q[0].size());
      std::vector<double> ref;
      std::vector<float> got;
      for (int bh : sample_rows(BH, 6, B + L)) {
        size_t off = (size_t)bh * L * D;
        auto hk = dl(K[0].get() + off, (size_t)L * D), hv = dl(V[0].get() + off, (size_t)L * D);
        double o[D];
        ref_row(hq.data() + (size_t)bh * D, hk.data(), hv.data(), L, o);
        ref.insert(ref.end(), o, o + D);
        got.insert(got.end(), ho.begin() + (size_t)bh * D, ho.begin() + (size_t)(bh + 1) * D);
      }
      Check c = make(rel_err(ref, got), 1e-2, bad);
      auto t = time_it(s, run, opt);
      Result res;
      res.kernel = "attention_decode";
      res.variant = "own_split_kv";
      res.shape = {{"batch", B}, {"kv_len", L}, {"heads", H}, {"head_dim", D}, {"splits", splits}};
      res.us_median = t.med; res.us_min = t.min; res.us_max = t.max; res.iters = t.iters;
      res.flops = 4.0 * BH * (double)L * D;
      res.bytes = (double)kv * 2 * 2 + (double)BH * D * 2 * 2;
      res.check = c;
      rep.add(res);
    }
  CK(cudaStreamDestroy(s));
}

}  // namespace

void suite_attention(Report& rep, const Options& opt) {
  if (opt.want("prefill")) bench_prefill(rep, opt);
  if (opt.want("decode")) bench_decode(rep, opt);
}

}  // namespace epsim::bench
