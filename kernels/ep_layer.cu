// epsim-ep-layer: a real expert-parallel MoE layer on N GPUs of one host (one host thread per GPU,
// one NCCL communicator), checked against a float64 single-GPU reference of the same layer, timed
// phase by phase with CUDA events. See kernels/README.md ("epsim-ep-layer").
//
// Per GPU g, per layer, per micro-batch m (serial: 1 micro-batch; dual: 2 of half the tokens):
//   compute stream: [unpermute-combine of the previous layer] gate (cuBLAS logits + own top-k)
//                   -> permute (own, by expert over all E experts)
//   comm stream:    count exchange (ncclAllGather of the E+1 offsets, copy to the host; the host
//                   waits for it: every GPU now knows the full source x expert count matrix)
//                   -> dispatch in `chunks` pieces (NCCL grouped send/recv, or own peer-pointer
//                   stores + counter signal), each chunk lands expert-major in the receive buffer
//   compute stream: per chunk, as soon as it has arrived: per local expert cuBLAS gate+up GEMM,
//                   one SiLU*up kernel, per local expert cuBLAS down GEMM
//   comm stream:    combine chunk c back to its sources (same mechanism), each row to the place
//                   it left from
//   compute stream: unpermute-combine (own), the layer's output = the next layer's input.
// Emission order per layer, compute: A0 [A1] E0 [E1]; comm: M0 [M1] D0 [D1] C0 [C1] (A = unpermute
// of the previous layer + gate + permute, M = count exchange, D/E/C = dispatch/experts/combine),
// the order the simulator's step builder uses.
// With --attention (ep_attention.h) a whole decoder layer: compute A = [unpermute + ffn_residual of the
// previous layer] attention block, ffn_norm, gate, permute; under dual the order interleaves:
// compute A0 A1 E0 E1, comm M0 D0 M1 D1 C0 C1 (micro-batch 1's attention beside 0's dispatch).
#include <cublas_v2.h>
#include <nccl.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <ctime>
#include <fstream>
#include <mutex>
#include <numeric>
#include <random>
#include <sstream>
#include <thread>

#include "common.h"
#include "ep_attention.h"
#include "layer_kernels.h"
#include "moe_kernels.h"

using namespace epsim::bench;

namespace {

constexpr int kMaxGpus = 8;
constexpr int kMaxPieces = 512;
constexpr int kMaxChunks = 16;

#define CB(call)                                                                            \
  do {                                                                                      \
    cublasStatus_t s_ = (call);                                                             \
    if (s_ != CUBLAS_STATUS_SUCCESS) fail(#call, __FILE__, __LINE__, std::to_string((int)s_)); \
  } while (0)
#define CN(call)                                                                            \
  do {                                                                                      \
    ncclResult_t r_ = (call);                                                               \
    if (r_ != ncclSuccess) fail(#call, __FILE__, __LINE__, ncclGetErrorString(r_));         \
  } while (0)

// ---------------------------------------------------------------------------------------------
// Kernels

// Gate top-k for E <= 32 * EPL experts, one warp per token. Uniform: key_e = logit_e. Skewed:
// key_e = log w_e + G(z_e), z_e = the logit standardised over the token's experts, G the Gumbel
// quantile of Phi(z) -- the Gumbel-top-k trick: with i.i.d. Gaussian logits (random inputs and
// weights) the selection is a draw of k distinct experts without replacement with probabilities
// proportional to w. Weights: softmax of the selected raw logits.
__device__ __forceinline__ bool key_better(float a, int ia, float b, int ib) {
  return a > b || (a == b && ia < ib);
}

template <int EPL>
__global__ void gate_topk_kernel(const float* __restrict__ logits, int tokens, int E, int topk,
                                 const float* __restrict__ logw, int* __restrict__ ids,
                                 float* __restrict__ wts) {
  const int warp = (blockIdx.x * blockDim.x + threadIdx.x) >> 5;
  const int lane = threadIdx.x & 31;
  if (warp >= tokens) return;
  const float* row = logits + (long long)warp * E;
  float l[EPL], key[EPL];
  float sum = 0.f, sq = 0.f;
#pragma unroll
  for (int j = 0; j < EPL; ++j) {
    const int e = j * 32 + lane;
    l[j] = e < E ? row[e] : 0.f;
    sum += e < E ? l[j] : 0.f;
    sq += e < E ? l[j] * l[j] : 0.f;
  }
  if (logw) {
#pragma unroll
    for (int o = 16; o; o >>= 1) {
      sum += __shfl_xor_sync(0xffffffffu, sum, o);
      sq += __shfl_xor_sync(0xffffffffu, sq, o);
    }
    const float mean = sum / E;
    const float sd = sqrtf(fmaxf(sq / E - mean * mean, 1e-20f));
#pragma unroll
    for (int j = 0; j < EPL; ++j) {
      const int e = j * 32 + lane;
      float u = normcdff((l[j] - mean) / sd);
      u = fminf(fmaxf(u, 1e-7f), 1.f - 1e-7f);
      key[j] = e < E ? __ldg(logw + e) - logf(-logf(u)) : -INFINITY;
    }
  } else {
#pragma unroll
    for (int j = 0; j < EPL; ++j) key[j] = j * 32 + lane < E ? l[j] : -INFINITY;
  }
  int my_id = 0;
  float my_l = 0.f, lmax = 0.f;
  for (int r = 0; r < topk; ++r) {
    float bv = -INFINITY;
    int bi = 1 << 30;
#pragma unroll
    for (int j = 0; j < EPL; ++j)
      if (key_better(key[j], j * 32 + lane, bv, bi)) { bv = key[j]; bi = j * 32 + lane; }
#pragma unroll
    for (int o = 16; o; o >>= 1) {
      const float ov = __shfl_xor_sync(0xffffffffu, bv, o);
      const int oi = __shfl_xor_sync(0xffffffffu, bi, o);
      if (key_better(ov, oi, bv, bi)) { bv = ov; bi = oi; }
    }
    float lv = 0.f;
#pragma unroll
    for (int j = 0; j < EPL; ++j)
      if (j * 32 + lane == bi) { lv = l[j]; key[j] = -INFINITY; }
    lv = __shfl_sync(0xffffffffu, lv, bi & 31);
    if (r == 0 || lv > lmax) lmax = r == 0 ? lv : fmaxf(lmax, lv);
    if (lane == r) { my_id = bi; my_l = lv; }
  }
  // softmax over the selected logits
  float ex = lane < topk ? expf(my_l - lmax) : 0.f;
  float den = ex;
#pragma unroll
  for (int o = 16; o; o >>= 1) den += __shfl_xor_sync(0xffffffffu, den, o);
  if (lane < topk) {
    ids[(long long)warp * topk + lane] = my_id;
    wts[(long long)warp * topk + lane] = ex / den;
  }
}

// Row pieces moved by the peer-pointer scatter: compact row v in [prefix[p], prefix[p+1]) is
// source row src[p] + (v - prefix[p]) and lands on GPU rank[p] at row dst[p] + (v - prefix[p]).
struct Pieces {
  int n = 0;
  int prefix[kMaxPieces + 1];
  int src[kMaxPieces];
  int dst[kMaxPieces];
  int rank[kMaxPieces];
};
struct PeerPtrs {
  int n = 0;
  uint4* base[kMaxGpus];                 // receive buffer of each GPU (peer pointers)
  unsigned long long* counter[kMaxGpus]; // the counter each GPU waits on for this round
};

__device__ __forceinline__ unsigned long long ld_acquire_sys(const unsigned long long* p) {
  unsigned long long v;
  asm volatile("ld.acquire.sys.global.u64 %0, [%1];" : "=l"(v) : "l"(p) : "memory");
  return v;
}

// One warp per row (16-byte vectors, 4 in flight per lane), stores through the peer pointers;
// then a system fence and one counter increment per block on every GPU.
__global__ void __launch_bounds__(256) scatter_rows_kernel(const uint4* __restrict__ src, int nvec,
                                                           const __grid_constant__ Pieces pc,
                                                           const __grid_constant__ PeerPtrs pp) {
  __shared__ int s_prefix[kMaxPieces + 1];
  for (int i = threadIdx.x; i <= pc.n; i += blockDim.x) s_prefix[i] = pc.prefix[i];
  __syncthreads();
  const int total = s_prefix[pc.n];
  const int lane = threadIdx.x & 31;
  const int warps = gridDim.x * (blockDim.x >> 5);
  for (int v = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5); v < total; v += warps) {
    int lo = 0, hi = pc.n - 1;  // last p with prefix[p] <= v
    while (lo < hi) {
      const int mid = (lo + hi + 1) >> 1;
      if (s_prefix[mid] <= v) lo = mid;
      else hi = mid - 1;
    }
    const int off = v - s_prefix[lo];
    const uint4* s = src + (long long)(pc.src[lo] + off) * nvec;
    uint4* d = pp.base[pc.rank[lo]] + (long long)(pc.dst[lo] + off) * nvec;
    for (int i = lane; i < nvec; i += 32 * 4) {
      uint4 val[4];
#pragma unroll
      for (int u = 0; u < 4; ++u)
        if (i + 32 * u < nvec) val[u] = __ldg(s + i + 32 * u);
#pragma unroll
      for (int u = 0; u < 4; ++u)
        if (i + 32 * u < nvec) d[i + 32 * u] = val[u];
    }
  }
  __threadfence_system();
  __syncthreads();
  if (threadIdx.x < pp.n) atomicAdd_system(pp.counter[threadIdx.x], 1ull);
}

__global__ void wait_counter_kernel(const unsigned long long* c, unsigned long long target) {
  while (ld_acquire_sys(c) < target) __nanosleep(32);
}

// ---------------------------------------------------------------------------------------------
// Options and cases
struct Case {
  int tokens = 4096;
  std::string skew = "uniform";  // uniform | zipf:S
  double zipf_s = 0;
  int chunks = 1;
  std::string overlap = "serial";  // serial | dual
  std::string dispatch = "nccl";   // nccl | peer
};

struct Opts {
  std::vector<int> tokens{4096};
  std::vector<std::string> skews{"uniform"}, overlaps{"serial"}, dispatches{"nccl"};
  std::vector<int> chunks{1};
  int experts = 32, topk = 8, layers = 1, hidden = 7168, inter = 2048, gpus = 0;
  int peer_blocks = 64, check_tokens = 16, warmup = 3, min_iters = 10, max_iters = 100;
  double budget_ms = 300;
  uint64_t seed = 1;
  std::string out = "ep-layer.json", git = "unknown", smi, command;
  AttnConfig attn;  // --attention: each micro-batch runs a whole decoder layer (ep_attention.h)
};

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> v;
  std::stringstream ss(s);
  std::string x;
  while (std::getline(ss, x, ','))
    if (!x.empty()) v.push_back(x);
  return v;
}

// ---------------------------------------------------------------------------------------------
// Shared state across the rank threads of one case
class Barrier {
 public:
  explicit Barrier(int n) : n_(n) {}
  void wait() {
    std::unique_lock<std::mutex> lk(m_);
    const long gen = gen_;
    if (++count_ == n_) {
      count_ = 0;
      ++gen_;
      cv_.notify_all();
    } else {
      cv_.wait(lk, [&] { return gen_ != gen; });
    }
  }

 private:
  std::mutex m_;
  std::condition_variable cv_;
  int n_, count_ = 0;
  long gen_ = 0;
};

enum Phase { kGate, kPermute, kMeta, kDispatch, kExperts, kCombine, kUnpermute, kPhases };
const char* kPhaseName[kPhases] = {"gate", "permute", "dispatch_meta", "dispatch_data", "experts", "combine", "unpermute"};
// With --attention, phase kPhases + op is attention op `op` (AttnOp, named by attn_op_name).
constexpr int kAllPhases = kPhases + kAttnOps;
const char* phase_name(int p) { return p < kPhases ? kPhaseName[p] : attn_op_name(p - kPhases); }

struct Instance {
  int phase, layer, mb, chunk;
  bool comm;
  cudaEvent_t a = nullptr, b = nullptr;
};

// Host plan of one (layer, micro-batch): the count matrix and every layout derived from it.
struct Plan {
  std::vector<int> C;  // [N][E] counts, source s, expert e
  std::vector<int> off;  // [N][E+1] each source's permuted-buffer offsets
  // receive layout of GPU `me`: chunk-major, then local expert, then source
  std::vector<long long> recv_off;  // [chunks][El][N]
  std::vector<long long> exp_base, exp_cnt;  // [chunks][El]
  std::vector<long long> chunk_base, chunk_rows;  // [chunks]
  long long recv_rows = 0;
};

int share(int n, int c, int chunks) { return n / chunks + (c < n % chunks ? 1 : 0); }
int share_before(int n, int c, int chunks) {
  int s = 0;
  for (int i = 0; i < c; ++i) s += share(n, i, chunks);
  return s;
}

struct Shared;

struct Rank {
  int g = 0;
  cudaStream_t comp = nullptr, comm = nullptr;
  cublasHandle_t blas = nullptr;
  DevBuf<char> ws;
  ncclComm_t nccl = nullptr;
  // per layer weights
  std::vector<DevBuf<bf16>> Wg, W1, W2;
  DevBuf<float> logw;
  // activations: act[l] is layer l's input [T, H], act[L] the output
  std::vector<DevBuf<bf16>> act;
  struct MB {
    int T = 0, tok0 = 0;
    DevBuf<float> logits, wts;
    DevBuf<int> ids, offsets, cursor, dest, allC;
    DevBuf<bf16> P, R, Hb, A, Y, Yb;
    int* hC = nullptr;  // pinned
    cudaEvent_t evP, evMeta, evD[kMaxChunks], evE[kMaxChunks], evC[kMaxChunks];
    long long rounds[2][kMaxChunks] = {};
    Plan plan;
    AttnBuffers attn;  // --attention only
  };
  MB mb[2];
  DevBuf<unsigned long long> counters;  // [mb][dispatch|combine][chunk]
  // --attention: per layer the attention weights, h = x + attention (attn_residual), its ffn_norm
  // (the MoE block's input) and the MoE output before ffn_residual (act[l+1] = hres[l] + moe[l])
  std::vector<AttnWeights> aw;
  std::vector<DevBuf<bf16>> hres, hnorm, moe;
  long long cap_recv = 0;
  // timing
  cudaEvent_t t0 = nullptr, t1 = nullptr;
  std::vector<Instance> inst;
  size_t inst_next = 0;
  std::vector<double> iter_total;
  std::vector<std::vector<double>> iter_start, iter_end;  // [iter][instance]
  // routing seen in the check pass: [layer][mb] -> N*E counts
  std::vector<std::vector<std::vector<int>>> routing;
  // the check pass's gate outputs per [layer][mb] (the buffers hold only the last layer's)
  std::vector<std::vector<DevBuf<float>>> keep_logits, keep_wts;
  std::vector<std::vector<DevBuf<int>>> keep_ids;
};

struct Shared {
  Opts o;
  Case cs;
  int N = 2, E = 32, El = 16, L = 1, H = 7168, I = 2048, K = 8, mbs = 1;
  Barrier* bar = nullptr;
  std::vector<Rank>* ranks = nullptr;
  std::vector<float> logw_host;  // empty: uniform
  std::string error;
  std::mutex err_m;
  int iters = 0;  // timed iterations (decided by rank 0 from the first one)
};

// ---------------------------------------------------------------------------------------------
class Runner {
 public:
  Runner(Shared& sh, Rank& r) : S(sh), R(r) {}

  void begin(int phase, int l, int m, int c, bool comm) {
    if (R.inst_next == R.inst.size()) {
      Instance in{phase, l, m, c, comm};
      CK(cudaEventCreate(&in.a));
      CK(cudaEventCreate(&in.b));
      R.inst.push_back(in);
    }
    Instance& in = R.inst[R.inst_next];
    in.phase = phase; in.layer = l; in.mb = m; in.chunk = c; in.comm = comm;
    CK(cudaEventRecord(in.a, comm ? R.comm : R.comp));
  }
  void end() {
    Instance& in = R.inst[R.inst_next++];
    CK(cudaEventRecord(in.b, in.comm ? R.comm : R.comp));
  }

  // compute stream: [unpermute (+ ffn_residual) of the previous layer] [attention block, ffn_norm]
  // gate, permute; comm (with_meta): count exchange
  void front(int l, int m, bool record, bool with_meta = true) {
    auto& B = R.mb[m];
    const int T = B.T;
    if (l > 0) unpermute(l - 1, m);
    bf16* x = R.act[l].get() + (size_t)B.tok0 * S.H;
    if (S.o.attn.on()) {
      bf16* h = R.hres[l].get() + (size_t)B.tok0 * S.H;
      AttnHooks hk{[&](int op) { begin(kPhases + op, l, m, 0, false); }, [&] { end(); }};
      attn_forward(S.o.attn, R.blas, R.comp, R.aw[l], B.attn, x, h, T, S.H, record && l == S.L - 1, hk);
      x = R.hnorm[l].get() + (size_t)B.tok0 * S.H;
      begin(kPhases + kFfnNorm, l, m, 0, false);
      rmsnorm_fwd(h, R.aw[l].ffn_norm.get(), x, B.attn.rstd.get(), T, S.H, kNormEps, R.comp);
      end();
    }
    begin(kGate, l, m, 0, false);
    const float one = 1.f, zero = 0.f;
    CB(cublasGemmEx(R.blas, CUBLAS_OP_T, CUBLAS_OP_N, S.E, T, S.H, &one, R.Wg[l].get(), CUDA_R_16BF, S.H, x,
                    CUDA_R_16BF, S.H, &zero, B.logits.get(), CUDA_R_32F, S.E, CUBLAS_COMPUTE_32F,
                    CUBLAS_GEMM_DEFAULT));
    const float* lw = S.logw_host.empty() ? nullptr : R.logw.get();
    const unsigned grid = (unsigned)ceil_div(T, 8);
    if (S.E <= 32) gate_topk_kernel<1><<<grid, 256, 0, R.comp>>>(B.logits.get(), T, S.E, S.K, lw, B.ids.get(), B.wts.get());
    else if (S.E <= 64) gate_topk_kernel<2><<<grid, 256, 0, R.comp>>>(B.logits.get(), T, S.E, S.K, lw, B.ids.get(), B.wts.get());
    else if (S.E <= 128) gate_topk_kernel<4><<<grid, 256, 0, R.comp>>>(B.logits.get(), T, S.E, S.K, lw, B.ids.get(), B.wts.get());
    else gate_topk_kernel<8><<<grid, 256, 0, R.comp>>>(B.logits.get(), T, S.E, S.K, lw, B.ids.get(), B.wts.get());
    CK_LAST();
    end();
    if (record) {
      CK(cudaMemcpyAsync(R.keep_logits[l][m].get(), B.logits.get(), B.logits.bytes(), cudaMemcpyDeviceToDevice, R.comp));
      CK(cudaMemcpyAsync(R.keep_wts[l][m].get(), B.wts.get(), B.wts.bytes(), cudaMemcpyDeviceToDevice, R.comp));
      CK(cudaMemcpyAsync(R.keep_ids[l][m].get(), B.ids.get(), B.ids.bytes(), cudaMemcpyDeviceToDevice, R.comp));
    }
    begin(kPermute, l, m, 0, false);
    permute_tokens_atomic(x, B.ids.get(), T, S.K, S.E, S.H, B.offsets.get(), B.cursor.get(), B.dest.get(),
                          B.P.get(), R.comp);
    end();
    CK(cudaEventRecord(B.evP, R.comp));
    if (with_meta) meta(l, m);
  }

  // comm stream: the count exchange of (l, m) once its permute is done
  void meta(int l, int m) {
    auto& B = R.mb[m];
    CK(cudaStreamWaitEvent(R.comm, B.evP, 0));
    begin(kMeta, l, m, 0, true);
    CN(ncclAllGather(B.offsets.get(), B.allC.get(), (size_t)S.E + 1, ncclInt32, R.nccl, R.comm));
    CK(cudaMemcpyAsync(B.hC, B.allC.get(), sizeof(int) * S.N * (S.E + 1), cudaMemcpyDeviceToHost, R.comm));
    end();
    CK(cudaEventRecord(B.evMeta, R.comm));
  }

  // host: wait for the counts, derive the layouts
  void plan(int l, int m, bool record) {
    auto& B = R.mb[m];
    CK(cudaEventSynchronize(B.evMeta));
    Plan& p = B.plan;
    const int N = S.N, E = S.E;
    p.off.assign(B.hC, B.hC + N * (E + 1));
    p.C.assign((size_t)N * E, 0);
    for (int s = 0; s < N; ++s)
      for (int e = 0; e < E; ++e) p.C[s * E + e] = p.off[s * (E + 1) + e + 1] - p.off[s * (E + 1) + e];
    layout(p, R.g, p.recv_off, p.exp_base, p.exp_cnt, p.chunk_base, p.chunk_rows, p.recv_rows);
    if (p.recv_rows > R.cap_recv) fail("plan", __FILE__, __LINE__, "receive buffer too small");
    if (record) R.routing[l][m] = p.C;
  }

  // receive layout of GPU d from the count matrix
  void layout(const Plan& p, int d, std::vector<long long>& recv_off, std::vector<long long>& exp_base,
              std::vector<long long>& exp_cnt, std::vector<long long>& chunk_base,
              std::vector<long long>& chunk_rows, long long& rows) const {
    const int N = S.N, E = S.E, El = S.El, ch = S.cs.chunks;
    recv_off.assign((size_t)ch * El * N, 0);
    exp_base.assign((size_t)ch * El, 0);
    exp_cnt.assign((size_t)ch * El, 0);
    chunk_base.assign(ch, 0);
    chunk_rows.assign(ch, 0);
    long long pos = 0;
    for (int c = 0; c < ch; ++c) {
      chunk_base[c] = pos;
      for (int el = 0; el < El; ++el) {
        const int e = d * El + el;
        exp_base[c * El + el] = pos;
        for (int s = 0; s < N; ++s) {
          recv_off[((size_t)c * El + el) * N + s] = pos;
          pos += share(p.C[s * E + e], c, ch);
        }
        exp_cnt[c * El + el] = pos - exp_base[c * El + el];
      }
      chunk_rows[c] = pos - chunk_base[c];
    }
    rows = pos;
  }

  PeerPtrs peers(int m, int kind, int c, bool recv_buf_R) {
    PeerPtrs pp;
    pp.n = S.N;
    for (int d = 0; d < S.N; ++d) {
      Rank& o = (*S.ranks)[d];
      pp.base[d] = reinterpret_cast<uint4*>(recv_buf_R ? o.mb[m].R.get() : o.mb[m].Yb.get());
      pp.counter[d] = o.counters.get() + ((size_t)m * 2 + kind) * kMaxChunks + c;
    }
    return pp;
  }

  void peer_round(int m, int kind, int c, const bf16* src, Pieces& pc) {
    auto& B = R.mb[m];
    const int nvec = S.H / 8;
    PeerPtrs pp = peers(m, kind, c, kind == 0);
    scatter_rows_kernel<<<S.o.peer_blocks, 256, 0, R.comm>>>(reinterpret_cast<const uint4*>(src), nvec, pc, pp);
    CK_LAST();
    B.rounds[kind][c] += 1;
    const unsigned long long target = (unsigned long long)B.rounds[kind][c] * S.N * S.o.peer_blocks;
    wait_counter_kernel<<<1, 1, 0, R.comm>>>(R.counters.get() + ((size_t)m * 2 + kind) * kMaxChunks + c, target);
    CK_LAST();
  }

  void dispatch(int l, int m) {
    auto& B = R.mb[m];
    const Plan& p = B.plan;
    const int N = S.N, E = S.E, El = S.El, ch = S.cs.chunks, g = R.g;
    const size_t H = S.H;
    // receive layouts of every destination (senders place rows directly)
    std::vector<std::vector<long long>> roff(N);
    for (int d = 0; d < N; ++d) {
      std::vector<long long> eb, ec, cb, cr;
      long long rows;
      layout(p, d, roff[d], eb, ec, cb, cr, rows);
    }
    for (int c = 0; c < ch; ++c) {
      begin(kDispatch, l, m, c, true);
      if (S.cs.dispatch == "nccl") {
        CN(ncclGroupStart());
        for (int e = 0; e < E; ++e) {  // sends, expert order (= per destination, local expert order)
          const int n = share(p.C[g * E + e], c, ch);
          if (!n) continue;
          const int d = e / El, el = e % El;
          (void)el;
          const long long src = p.off[g * (E + 1) + e] + share_before(p.C[g * E + e], c, ch);
          CN(ncclSend(B.P.get() + src * H, (size_t)n * H, ncclBfloat16, d, R.nccl, R.comm));
        }
        for (int s = 0; s < N; ++s)
          for (int el = 0; el < El; ++el) {
            const int e = g * El + el;
            const int n = share(p.C[s * E + e], c, ch);
            if (!n) continue;
            const long long dst = p.recv_off[((size_t)c * El + el) * N + s];
            CN(ncclRecv(B.R.get() + dst * H, (size_t)n * H, ncclBfloat16, s, R.nccl, R.comm));
          }
        CN(ncclGroupEnd());
      } else {
        Pieces pc;
        pc.n = 0;
        int v = 0;
        for (int e = 0; e < E; ++e) {
          const int n = share(p.C[g * E + e], c, ch);
          if (!n) continue;
          const int d = e / El, el = e % El;
          pc.prefix[pc.n] = v;
          pc.src[pc.n] = p.off[g * (E + 1) + e] + share_before(p.C[g * E + e], c, ch);
          pc.dst[pc.n] = (int)roff[d][((size_t)c * El + el) * N + g];
          pc.rank[pc.n] = d;
          v += n;
          ++pc.n;
        }
        pc.prefix[pc.n] = v;
        peer_round(m, 0, c, B.P.get(), pc);
      }
      end();
      CK(cudaEventRecord(B.evD[c], R.comm));
    }
  }

  void experts(int l, int m) {
    auto& B = R.mb[m];
    const Plan& p = B.plan;
    const int El = S.El, ch = S.cs.chunks;
    const size_t H = S.H, I = S.I;
    for (int c = 0; c < ch; ++c) {
      CK(cudaStreamWaitEvent(R.comp, B.evD[c], 0));
      begin(kExperts, l, m, c, false);
      for (int el = 0; el < El; ++el) {
        const long long M = p.exp_cnt[c * El + el], b = p.exp_base[c * El + el];
        if (M) gemm_xwt(R.blas, B.R.get() + b * H, R.W1[l].get() + (size_t)el * 2 * I * H, B.Hb.get() + b * 2 * I,
                       (int)M, (int)(2 * I), (int)H);
      }
      if (p.chunk_rows[c])
        silu_mul_bf16(B.Hb.get() + p.chunk_base[c] * 2 * I, B.A.get() + p.chunk_base[c] * I, p.chunk_rows[c],
                      (int)I, R.comp);
      for (int el = 0; el < El; ++el) {
        const long long M = p.exp_cnt[c * El + el], b = p.exp_base[c * El + el];
        if (M) gemm_xwt(R.blas, B.A.get() + b * I, R.W2[l].get() + (size_t)el * H * I, B.Y.get() + b * H, (int)M,
                       (int)H, (int)I);
      }
      end();
      CK(cudaEventRecord(B.evE[c], R.comp));
    }
  }

  void combine(int l, int m) {
    auto& B = R.mb[m];
    const Plan& p = B.plan;
    const int N = S.N, E = S.E, El = S.El, ch = S.cs.chunks, g = R.g;
    const size_t H = S.H;
    for (int c = 0; c < ch; ++c) {
      CK(cudaStreamWaitEvent(R.comm, B.evE[c], 0));
      begin(kCombine, l, m, c, true);
      if (S.cs.dispatch == "nccl") {
        CN(ncclGroupStart());
        for (int s = 0; s < N; ++s)
          for (int el = 0; el < El; ++el) {
            const int e = g * El + el;
            const int n = share(p.C[s * E + e], c, ch);
            if (!n) continue;
            const long long src = p.recv_off[((size_t)c * El + el) * N + s];
            CN(ncclSend(B.Y.get() + src * H, (size_t)n * H, ncclBfloat16, s, R.nccl, R.comm));
          }
        for (int e = 0; e < E; ++e) {
          const int n = share(p.C[g * E + e], c, ch);
          if (!n) continue;
          const long long dst = p.off[g * (E + 1) + e] + share_before(p.C[g * E + e], c, ch);
          CN(ncclRecv(B.Yb.get() + dst * H, (size_t)n * H, ncclBfloat16, e / El, R.nccl, R.comm));
        }
        CN(ncclGroupEnd());
      } else {
        Pieces pc;
        pc.n = 0;
        int v = 0;
        for (int el = 0; el < El; ++el)
          for (int s = 0; s < N; ++s) {
            const int e = g * El + el;
            const int n = share(p.C[s * E + e], c, ch);
            if (!n) continue;
            pc.prefix[pc.n] = v;
            pc.src[pc.n] = (int)p.recv_off[((size_t)c * El + el) * N + s];
            pc.dst[pc.n] = p.off[s * (E + 1) + e] + share_before(p.C[s * E + e], c, ch);
            pc.rank[pc.n] = s;
            v += n;
            ++pc.n;
          }
        pc.prefix[pc.n] = v;
        peer_round(m, 1, c, B.Y.get(), pc);
      }
      end();
      CK(cudaEventRecord(B.evC[c], R.comm));
    }
  }

  void unpermute(int l, int m) {
    auto& B = R.mb[m];
    CK(cudaStreamWaitEvent(R.comp, B.evC[S.cs.chunks - 1], 0));
    const size_t at = (size_t)B.tok0 * S.H;
    bf16* out = S.o.attn.on() ? R.moe[l].get() + at : R.act[l + 1].get() + at;
    begin(kUnpermute, l, m, 0, false);
    unpermute_combine(B.Yb.get(), B.dest.get(), B.wts.get(), B.T, S.K, S.H, out, R.comp);
    end();
    if (S.o.attn.on()) {
      begin(kPhases + kFfnResidual, l, m, 0, false);
      residual_add(R.hres[l].get() + at, out, R.act[l + 1].get() + at, (long long)B.T * S.H, R.comp);
      end();
    }
  }

  // Dual micro-batches with --attention: the interleaved order (options "dual_order").
  bool interleaved() const { return S.mbs == 2 && S.o.attn.on(); }

  // One forward pass over all layers. record: keep the routing (check pass).
  void pass(bool record) {
    R.inst_next = 0;
    CK(cudaEventRecord(R.t0, R.comp));
    CK(cudaStreamWaitEvent(R.comm, R.t0, 0));
    for (int l = 0; l < S.L; ++l) {
      if (interleaved()) {
        // two-batch overlap as deployed: compute A0 A1 E0 E1, comm M0 D0 M1 D1 C0 C1, so micro-batch
        // 1's attention runs beside micro-batch 0's dispatch (the host enqueues E0 before it waits
        // for M1, so the compute stream never idles on the host)
        front(l, 0, record);
        front(l, 1, record, false);
        plan(l, 0, record);
        dispatch(l, 0);
        experts(l, 0);
        meta(l, 1);
        plan(l, 1, record);
        dispatch(l, 1);
        experts(l, 1);
      } else {
        for (int m = 0; m < S.mbs; ++m) front(l, m, record);
        for (int m = 0; m < S.mbs; ++m) {
          plan(l, m, record);
          dispatch(l, m);
          experts(l, m);
        }
      }
      for (int m = 0; m < S.mbs; ++m) combine(l, m);
    }
    for (int m = 0; m < S.mbs; ++m) unpermute(S.L - 1, m);
    CK(cudaEventRecord(R.t1, R.comp));
    CK(cudaStreamWaitEvent(R.comm, R.t1, 0));
  }

  Shared& S;
  Rank& R;
};

// ---------------------------------------------------------------------------------------------
// Set-up, check, timing of one case on one rank (runs in that rank's thread)
uint64_t wseed(uint64_t seed, int kind, int layer, int e) {
  return seed * 1000003ull + (uint64_t)kind * 100000ull + (uint64_t)layer * 1000ull + (uint64_t)e;
}

void setup(Shared& S, Rank& R) {
  CK(cudaSetDevice(R.g));
  const int N = S.N, E = S.E, El = S.El, L = S.L, K = S.K;
  const size_t H = S.H, I = S.I;
  const int T = S.cs.tokens;
  // weights: scales so that a layer's output has about its input's magnitude (see README)
  const float a1 = 0.027f, a2 = 0.106f, ag = 0.027f;
  R.Wg.resize(L);
  R.W1.resize(L);
  R.W2.resize(L);
  for (int l = 0; l < L; ++l) {
    R.Wg[l].alloc((size_t)E * H);
    fill_random(R.Wg[l].get(), R.Wg[l].size(), wseed(S.o.seed, 0, l, 0), 0.25f * ag, ag);
    R.W1[l].alloc((size_t)El * 2 * I * H);
    R.W2[l].alloc((size_t)El * H * I);
    for (int el = 0; el < El; ++el) {
      const int e = R.g * El + el;
      fill_random(R.W1[l].get() + (size_t)el * 2 * I * H, 2 * I * H, wseed(S.o.seed, 1, l, e), 0.25f * a1, a1);
      fill_random(R.W2[l].get() + (size_t)el * H * I, H * I, wseed(S.o.seed, 2, l, e), 0.25f * a2, a2);
    }
  }
  if (!S.logw_host.empty()) {
    R.logw.alloc(E);
    CK(cudaMemcpy(R.logw.get(), S.logw_host.data(), E * sizeof(float), cudaMemcpyHostToDevice));
  }
  R.act.resize(L + 1);
  for (int l = 0; l <= L; ++l) R.act[l].alloc((size_t)T * H);
  fill_random(R.act[0].get(), R.act[0].size(), wseed(S.o.seed, 3, 0, R.g), 0.25f, 1.f);
  const int Tm = T / S.mbs;
  if (S.o.attn.on()) {
    // every GPU holds the same attention weights (data-parallel attention)
    R.aw.resize(L);
    R.hres.resize(L);
    R.hnorm.resize(L);
    R.moe.resize(L);
    for (int l = 0; l < L; ++l) {
      attn_alloc_weights(S.o.attn, (int)H, wseed(S.o.seed, 4, l, 0), R.aw[l]);
      R.hres[l].alloc((size_t)T * H);
      R.hnorm[l].alloc((size_t)T * H);
      R.moe[l].alloc((size_t)T * H);
    }
    for (int m = 0; m < S.mbs; ++m) attn_alloc_buffers(S.o.attn, Tm, (int)H, R.mb[m].attn);
  }
  // a token sends at most min(K, El) rows to one GPU
  R.cap_recv = (long long)N * Tm * std::min(K, El);
  for (int m = 0; m < S.mbs; ++m) {
    auto& B = R.mb[m];
    B.T = Tm;
    B.tok0 = m * Tm;
    const size_t rows = (size_t)Tm * K;
    B.logits.alloc((size_t)Tm * E);
    B.wts.alloc(rows);
    B.ids.alloc(rows);
    B.dest.alloc(rows);
    B.offsets.alloc(E + 1);
    B.cursor.alloc(E);
    B.allC.alloc((size_t)N * (E + 1));
    B.P.alloc(rows * H);
    B.Yb.alloc(rows * H);
    B.R.alloc((size_t)R.cap_recv * H);
    B.Y.alloc((size_t)R.cap_recv * H);
    B.Hb.alloc((size_t)R.cap_recv * 2 * I);
    B.A.alloc((size_t)R.cap_recv * I);
    if (!B.hC) CK(cudaMallocHost(&B.hC, sizeof(int) * kMaxGpus * 1025));
    std::memset(B.rounds, 0, sizeof B.rounds);
  }
  R.counters.alloc(2 * 2 * kMaxChunks);
  CK(cudaMemset(R.counters.get(), 0, R.counters.bytes()));
  R.routing.assign(L, std::vector<std::vector<int>>(S.mbs));
  R.keep_logits.clear();
  R.keep_wts.clear();
  R.keep_ids.clear();
  R.keep_logits.resize(L);
  R.keep_wts.resize(L);
  R.keep_ids.resize(L);
  for (int l = 0; l < L; ++l)
    for (int m = 0; m < S.mbs; ++m) {
      R.keep_logits[l].emplace_back((size_t)Tm * E);
      R.keep_wts[l].emplace_back((size_t)Tm * K);
      R.keep_ids[l].emplace_back((size_t)Tm * K);
    }
  R.inst.clear();
  R.iter_total.clear();
  R.iter_start.clear();
  R.iter_end.clear();
  CK(cudaDeviceSynchronize());
}

void teardown(Rank& R) {
  CK(cudaSetDevice(R.g));
  CK(cudaDeviceSynchronize());
  R.Wg.clear();
  R.W1.clear();
  R.W2.clear();
  R.act.clear();
  R.aw.clear();
  R.hres.clear();
  R.hnorm.clear();
  R.moe.clear();
  R.logw.release();
  R.keep_logits.clear();
  R.keep_wts.clear();
  R.keep_ids.clear();
  for (auto& B : R.mb) {
    B.logits.release(); B.wts.release(); B.ids.release(); B.dest.release(); B.offsets.release();
    B.cursor.release(); B.allC.release(); B.P.release(); B.Yb.release(); B.R.release(); B.Y.release();
    B.Hb.release(); B.A.release();
    B.attn = AttnBuffers();
  }
  for (auto& in : R.inst) {
    cudaEventDestroy(in.a);
    cudaEventDestroy(in.b);
  }
  R.inst.clear();
}

void sync_rank(Rank& R) {
  CK(cudaStreamSynchronize(R.comp));
  CK(cudaStreamSynchronize(R.comm));
}

// ---------------------------------------------------------------------------------------------
// Check (run by rank 0's thread after the check pass; touches every GPU)
struct CheckOut {
  std::vector<double> attn_err;  // --attention: worst rel. error per AttnOp (-1: not checked)
  double out_err = -1, logit_err = -1;
  long long nonfinite = 0, topk_mismatch_tokens = 0, tokens_checked = 0;
  double max_w_diff = 0;
  bool pass = false;
  std::string note;
};

// Threshold of every attention op's check (bf16 outputs; the core's P is rounded to bf16).
constexpr double kAttnThreshold = 2e-2;

double phi(double z) { return 0.5 * std::erfc(-z / std::sqrt(2.0)); }

void host_gate(const float* l, int E, int K, const std::vector<float>& logw, std::vector<int>& ids,
               std::vector<float>& w) {
  std::vector<std::pair<double, int>> key(E);
  double sum = 0, sq = 0;
  for (int e = 0; e < E; ++e) { sum += l[e]; sq += (double)l[e] * l[e]; }
  const double mean = sum / E, sd = std::sqrt(std::max(sq / E - mean * mean, 1e-20));
  for (int e = 0; e < E; ++e) {
    if (logw.empty()) key[e] = {l[e], e};
    else {
      double u = std::min(std::max(phi((l[e] - mean) / sd), 1e-7), 1 - 1e-7);
      key[e] = {logw[e] - std::log(-std::log(u)), e};
    }
  }
  std::partial_sort(key.begin(), key.begin() + K, key.end(), [](auto& a, auto& b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  });
  ids.resize(K);
  w.resize(K);
  double mx = -1e300, den = 0;
  for (int j = 0; j < K; ++j) mx = std::max(mx, (double)l[key[j].second]);
  for (int j = 0; j < K; ++j) den += std::exp(l[key[j].second] - mx);
  for (int j = 0; j < K; ++j) {
    ids[j] = key[j].second;
    w[j] = (float)(std::exp(l[key[j].second] - mx) / den);
  }
}


CheckOut check_case(Shared& S) {
  auto& ranks = *S.ranks;
  const int N = S.N, E = S.E, El = S.El, K = S.K, L = S.L;
  const int H = S.H, I = S.I, T = S.cs.tokens, Tm = T / S.mbs;
  CheckOut co;
  if (S.o.attn.on()) co.attn_err.assign(kAttnOps, -1.0);
  std::vector<double> lref_all;
  std::vector<float> lgot_all;
  double worst_layer = 0;
  for (int l = 0; l < L; ++l) {
    std::vector<double> ref_l;
    std::vector<float> got_l;
    for (int g = 0; g < N; ++g) {
      Rank& R = ranks[g];
      CK(cudaSetDevice(g));
      co.nonfinite += count_nonfinite(R.act[l + 1].get(), R.act[l + 1].size());
      // with --attention the MoE block reads ffn_norm(h) and writes moe[l]; act[l+1] = h + moe[l]
      const bool attn = S.o.attn.on();
      const bf16* moe_in = attn ? R.hnorm[l].get() : R.act[l].get();
      const bf16* moe_out = attn ? R.moe[l].get() : R.act[l + 1].get();
      if (attn) {
        for (auto* b : {&R.hres[l], &R.hnorm[l], &R.moe[l]}) co.nonfinite += count_nonfinite(b->get(), b->size());
        auto worst = [&](int op, double e) { co.attn_err[op] = std::max(co.attn_err[op], e); };
        worst(kFfnNorm, check_rmsnorm(R.hres[l].get(), H, R.aw[l].ffn_norm.get(), R.hnorm[l].get(), T, H, 41 + g + 7 * l));
        worst(kFfnResidual, check_residual(R.hres[l].get(), R.moe[l].get(), R.act[l + 1].get(), T, H, 43 + g + 7 * l));
        if (l == L - 1)  // the attention buffers hold the last layer's intermediates
          for (int m = 0; m < S.mbs; ++m) {
            const size_t at = (size_t)m * Tm * H;
            auto& A = R.mb[m].attn;
            for (auto* b : {&A.xn, &A.q, &A.kv, &A.kvb, &A.k, &A.o, &A.a})
              if (b->size()) co.nonfinite += count_nonfinite(b->get(), b->size());
            const auto e = attn_check(S.o.attn, R.aw[l], A, R.act[l].get() + at, R.hres[l].get() + at, Tm, H, 1000 + 10 * g + m);
            for (int op = 0; op < kAttnOps; ++op) worst(op, e[op]);
          }
      }
      // gate: top-k of every token against the host rule on the same logits; logits of sampled
      // tokens against float64
      std::vector<std::vector<int>> hid(S.mbs);
      std::vector<std::vector<float>> hwt(S.mbs);
      for (int m = 0; m < S.mbs; ++m) {
        auto hl = to_host(R.keep_logits[l][m].get(), (size_t)Tm * E);
        hid[m] = to_host(R.keep_ids[l][m].get(), (size_t)Tm * K);
        hwt[m] = to_host(R.keep_wts[l][m].get(), (size_t)Tm * K);
        std::vector<int> ids;
        std::vector<float> w;
        for (int t = 0; t < Tm; ++t) {
          host_gate(hl.data() + (size_t)t * E, E, K, S.logw_host, ids, w);
          bool bad = false;
          for (int j = 0; j < K; ++j) bad = bad || ids[j] != hid[m][(size_t)t * K + j];
          if (!bad)
            for (int j = 0; j < K; ++j)
              co.max_w_diff = std::max(co.max_w_diff, (double)std::fabs(w[j] - hwt[m][(size_t)t * K + j]));
          co.topk_mismatch_tokens += bad;
        }
        co.tokens_checked += Tm;
        auto rows = sample_rows(Tm, 16, 7 + g + m + 31 * l);
        std::vector<int> grow(rows);
        for (auto& r : grow) r += m * Tm;
        auto drows = to_device(grow);
        DevBuf<double> ref(rows.size() * E);
        ref_gemm_rows(moe_in, R.Wg[l].get(), drows.get(), (int)rows.size(), E, H, ref.get());
        CK(cudaDeviceSynchronize());
        auto hr = to_host(ref.get(), ref.size());
        lref_all.insert(lref_all.end(), hr.begin(), hr.end());
        for (int r : rows) lgot_all.insert(lgot_all.end(), hl.begin() + (size_t)r * E, hl.begin() + (size_t)(r + 1) * E);
      }
      // MoE output of sampled tokens: sum_j w_j MLP_{e_j}(x_t) in float64 with the layer's own
      // routing, each expert's MLP on the GPU that holds its weights
      auto toks = sample_rows(T, S.o.check_tokens, 101 + g + 17 * l);
      std::vector<bf16> xs((size_t)toks.size() * H);
      for (size_t i = 0; i < toks.size(); ++i)
        CK(cudaMemcpy(xs.data() + i * H, moe_in + (size_t)toks[i] * H, H * sizeof(bf16), cudaMemcpyDeviceToHost));
      std::vector<std::vector<double>> acc(toks.size(), std::vector<double>(H, 0.0));
      for (int d = 0; d < N; ++d) {
        std::vector<int> rows, rexp;
        std::vector<double> wsel;
        std::vector<int> pair_i;
        for (size_t i = 0; i < toks.size(); ++i) {
          const int m = toks[i] / Tm, t = toks[i] % Tm;
          for (int j = 0; j < K; ++j) {
            const int e = hid[m][(size_t)t * K + j];
            if (e / El != d) continue;
            rows.push_back((int)i);
            rexp.push_back(e % El);
            wsel.push_back(hwt[m][(size_t)t * K + j]);
            pair_i.push_back((int)i);
          }
        }
        if (rows.empty()) continue;
        CK(cudaSetDevice(d));
        Rank& O = ranks[d];
        auto dxd = to_device(xs);
        auto drow = to_device(rows);
        auto dexp = to_device(rexp);
        const int n = (int)rows.size();
        DevBuf<double> h1((size_t)n * 2 * I);
        ref_gemm_rows_exp(dxd.get(), H, O.W1[l].get(), (long long)2 * I * H, drow.get(), dexp.get(), n, 2 * I, H,
                          h1.get());
        CK(cudaDeviceSynchronize());
        auto hh = to_host(h1.get(), h1.size());
        std::vector<double> a((size_t)n * I);
        for (int r = 0; r < n; ++r)
          for (int q = 0; q < I; ++q) {
            const double gt = hh[(size_t)r * 2 * I + q], up = hh[(size_t)r * 2 * I + I + q];
            a[(size_t)r * I + q] = gt / (1.0 + std::exp(-gt)) * up;
          }
        auto da = to_device(a);
        std::vector<int> ident(n);
        std::iota(ident.begin(), ident.end(), 0);
        auto did = to_device(ident);
        DevBuf<double> y((size_t)n * H);
        ref_gemm_rows_exp(da.get(), I, O.W2[l].get(), (long long)H * I, did.get(), dexp.get(), n, H, I, y.get());
        CK(cudaDeviceSynchronize());
        auto hy = to_host(y.get(), y.size());
        for (int r = 0; r < n; ++r)
          for (int q = 0; q < H; ++q) acc[pair_i[r]][q] += wsel[r] * hy[(size_t)r * H + q];
      }
      CK(cudaSetDevice(g));
      for (size_t i = 0; i < toks.size(); ++i) {
        auto o = to_host_f32(moe_out + (size_t)toks[i] * H, H);
        got_l.insert(got_l.end(), o.begin(), o.end());
        ref_l.insert(ref_l.end(), acc[i].begin(), acc[i].end());
      }
    }
    worst_layer = std::max(worst_layer, rel_err(ref_l, got_l));
  }
  CK(cudaSetDevice(0));
  co.logit_err = rel_err(lref_all, lgot_all);
  co.out_err = worst_layer;
  const long long allowed = std::max<long long>(1, co.tokens_checked / 500);
  co.pass = co.nonfinite == 0 && std::isfinite(co.out_err) && co.out_err <= 2e-2 && co.logit_err <= 1e-2 &&
            co.topk_mismatch_tokens <= allowed && co.max_w_diff < 1e-4;
  for (int op = 0; op < (int)co.attn_err.size(); ++op)
    if (attn_op_applies(S.o.attn, op))
      co.pass = co.pass && std::isfinite(co.attn_err[op]) && co.attn_err[op] >= 0 && co.attn_err[op] <= kAttnThreshold;
  char buf[640];
  std::snprintf(buf, sizeof buf,
                "output: worst layer's rel err vs a float64 reference (each expert's MLP on the GPU holding its "
                "weights, the layer's own routing) on %d sampled tokens per GPU per layer, threshold 2e-2 (bf16 "
                "chain); outputs and intermediates poisoned with NaN first, full non-finite scan of every layer's "
                "output; gate: fp32 logits vs float64 on sampled tokens (1e-2), top-k ids of every token vs a host "
                "implementation of the rule on the same logits (at most %lld mismatched tokens: float vs double "
                "near-ties), weights within 1e-4",
                S.o.check_tokens, allowed);
  co.note = buf;
  if (S.o.attn.on())
    co.note += "; attention (--attention): every op of the last layer's attention block per GPU and micro-batch "
               "against float64 host references on sampled rows and (sequence, head, query) triples, on the GPU's "
               "own inputs to that op (attn_core: softmax(q k^T / sqrt(d)) v over the query's causal keys), "
               "ffn_norm and ffn_residual of every layer; threshold 2e-2 each; the MoE check reads ffn_norm's output";
  return co;
}

// ---------------------------------------------------------------------------------------------
void poison_all(Shared& S, Rank& R) {
  for (int l = 1; l <= S.L; ++l) poison(R.act[l].get(), R.act[l].size(), R.comp);
  for (auto* v : {&R.hres, &R.hnorm, &R.moe})
    for (auto& b : *v) poison(b.get(), b.size(), R.comp);
  for (int m = 0; m < S.mbs; ++m) {
    auto& B = R.mb[m];
    poison(B.P.get(), B.P.size(), R.comp);
    poison(B.Yb.get(), B.Yb.size(), R.comp);
    poison(B.R.get(), B.R.size(), R.comp);
    poison(B.Y.get(), B.Y.size(), R.comp);
    poison(B.Hb.get(), B.Hb.size(), R.comp);
    poison(B.A.get(), B.A.size(), R.comp);
    poison(B.logits.get(), B.logits.size(), R.comp);
    poison(B.wts.get(), B.wts.size(), R.comp);
    CK(cudaMemsetAsync(B.dest.get(), 0xff, B.dest.bytes(), R.comp));
    if (S.o.attn.on()) attn_poison(B.attn, R.comp);
  }
  CK(cudaStreamSynchronize(R.comp));
}

void rank_thread(Shared& S, Rank& R, CheckOut* co) {
  try {
    CK(cudaSetDevice(R.g));
    setup(S, R);
    S.bar->wait();  // every rank's buffers exist (peer pointers)
    Runner run(S, R);
    poison_all(S, R);
    S.bar->wait();
    run.pass(true);
    sync_rank(R);
    S.bar->wait();
    if (R.g == 0) *co = check_case(S);
    S.bar->wait();
    CK(cudaSetDevice(R.g));
    // timing: warm-up, then iterations until the budget (every rank runs the same count: rank 0's
    // first timed pass decides it, shared through the barrier)
    for (int i = 0; i < S.o.warmup; ++i) {
      S.bar->wait();
      gpu_spin(R.comp, 300);
      run.pass(false);
      sync_rank(R);
    }
    int iters = S.o.min_iters;
    for (int it = 0;; ++it) {
      S.bar->wait();
      if (it > 0 && it >= S.iters) break;
      S.bar->wait();
      gpu_spin(R.comp, 300);
      run.pass(false);
      sync_rank(R);
      float ms;
      CK(cudaEventElapsedTime(&ms, R.t0, R.t1));
      R.iter_total.push_back(ms * 1e3);
      std::vector<double> st(R.inst_next), en(R.inst_next);
      for (size_t k = 0; k < R.inst_next; ++k) {
        CK(cudaEventElapsedTime(&ms, R.t0, R.inst[k].a));
        st[k] = ms * 1e3;
        CK(cudaEventElapsedTime(&ms, R.t0, R.inst[k].b));
        en[k] = ms * 1e3;
      }
      R.iter_start.push_back(st);
      R.iter_end.push_back(en);
      if (it == 0 && R.g == 0) {
        const double per = std::max(R.iter_total[0] * 1e-3, 1e-3);
        S.iters = std::clamp((int)(S.o.budget_ms / per), iters, S.o.max_iters);
      }
    }
    S.bar->wait();
  } catch (std::exception& e) {
    std::lock_guard<std::mutex> lk(S.err_m);
    S.error += std::string("gpu ") + std::to_string(R.g) + ": " + e.what() + "; ";
    std::fprintf(stderr, "epsim-ep-layer: gpu %d: %s\n", R.g, e.what());
    std::fflush(stderr);
    std::_Exit(3);  // a rank that failed leaves its peers blocked in NCCL or a barrier
  }
}

// ---------------------------------------------------------------------------------------------
// JSON
std::string jstr(const std::string& s) {
  std::string o = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') { o += '\\'; o += c; }
    else if (c == '\n') o += "\\n";
    else if ((unsigned char)c < 0x20) o += ' ';
    else o += c;
  }
  return o + "\"";
}
std::string jnum(double v) {
  if (!std::isfinite(v)) return "null";
  char b[64];
  std::snprintf(b, sizeof b, "%.6g", v);
  return b;
}
double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}
template <class T>
std::string jarr(const std::vector<T>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + jnum((double)v[i]);
  return s + "]";
}

std::string case_json(Shared& S, const CheckOut& co, std::vector<double>* table_row) {
  auto& ranks = *S.ranks;
  const int N = S.N, E = S.E;
  std::ostringstream j;
  const auto& c = S.cs;
  j << "{\"options\": {\"gpus\": " << N << ", \"tokens_per_gpu\": " << c.tokens << ", \"experts\": " << E
    << ", \"experts_per_gpu\": " << S.El << ", \"topk\": " << S.K << ", \"hidden\": " << S.H
    << ", \"inter\": " << S.I << ", \"skew\": " << jstr(c.skew) << ", \"zipf_s\": " << jnum(c.zipf_s)
    << ", \"chunks\": " << c.chunks << ", \"overlap\": " << jstr(c.overlap)
    << ", \"micro_batches\": " << S.mbs << ", \"layers\": " << S.L << ", \"dispatch\": " << jstr(c.dispatch)
    << ", \"peer_blocks\": " << (c.dispatch == "peer" ? S.o.peer_blocks : 0) << ", \"seed\": " << S.o.seed
    << ", \"dtype\": \"bf16\"";
  if (S.o.attn.on()) {
    const AttnConfig& a = S.o.attn;
    j << ", \"attention\": " << jstr(a.kind) << ", \"heads\": " << a.heads << ", \"kv_heads\": " << a.kvh()
      << ", \"head_dim\": " << a.head_dim << ", \"head_dim_qk\": " << a.qk_dim() << ", \"head_dim_v\": " << a.v_dim()
      << ", \"seq_len\": " << a.seq_len;
    if (a.mla())
      j << ", \"q_lora_rank\": " << AttnConfig::kQLora << ", \"kv_lora_rank\": " << AttnConfig::kKvLora
        << ", \"qk_nope_head_dim\": " << AttnConfig::kNope << ", \"qk_rope_head_dim\": " << AttnConfig::kRopeDim
        << ", \"v_head_dim\": " << AttnConfig::kV;
    j << ", \"attention_core\": " << jstr(flash_attention_impl()) << ", \"dual_order\": " << jstr(S.mbs == 2 ? "interleaved" : "none");
  }
  j << "},\n";
  j << "  \"check\": {\"pass\": " << (co.pass ? "true" : "false") << ", \"out_rel_err\": " << jnum(co.out_err)
    << ", \"threshold\": 0.02, \"nonfinite\": " << co.nonfinite << ", \"gate_logit_rel_err\": " << jnum(co.logit_err)
    << ", \"gate_topk_mismatch_tokens\": " << co.topk_mismatch_tokens << ", \"gate_tokens_checked\": "
    << co.tokens_checked << ", \"gate_max_weight_diff\": " << jnum(co.max_w_diff);
  if (!co.attn_err.empty()) {
    j << ", \"attention_rel_err\": {";
    bool first = true;
    for (int op = 0; op < kAttnOps; ++op)
      if (attn_op_applies(S.o.attn, op)) {
        j << (first ? "" : ", ") << jstr(attn_op_name(op)) << ": " << jnum(co.attn_err[op]);
        first = false;
      }
    j << "}, \"attention_threshold\": " << jnum(kAttnThreshold);
  }
  j << ", \"note\": " << jstr(co.note) << "},\n";
  const size_t iters = ranks[0].iter_total.size();
  std::vector<double> tot(iters, 0);
  for (size_t i = 0; i < iters; ++i)
    for (int g = 0; g < N; ++g) tot[i] = std::max(tot[i], ranks[g].iter_total[i]);
  auto sorted = tot;
  std::sort(sorted.begin(), sorted.end());
  j << "  \"iters\": " << iters << ", \"warmup\": " << S.o.warmup << ", \"total_us\": " << jnum(median(tot))
    << ", \"total_us_min\": " << jnum(sorted.front()) << ", \"total_us_max\": " << jnum(sorted.back()) << ",\n";
  // per GPU: phase sums per iteration (median), timeline (median offsets)
  // with --attention the attention ops' phases follow the MoE phases (only those that apply)
  std::vector<int> shown;
  for (int p = 0; p < kAllPhases; ++p)
    if (p < kPhases || attn_op_applies(S.o.attn, p - kPhases)) shown.push_back(p);
  std::vector<double> phase_max(kAllPhases, 0);
  std::vector<double> gpu_tot(N);
  j << "  \"per_gpu\": [";
  for (int g = 0; g < N; ++g) {
    Rank& R = ranks[g];
    const size_t ni = R.inst_next;
    std::vector<std::vector<double>> ph(kAllPhases, std::vector<double>(iters, 0));
    for (size_t i = 0; i < iters; ++i)
      for (size_t k = 0; k < ni; ++k) ph[R.inst[k].phase][i] += R.iter_end[i][k] - R.iter_start[i][k];
    gpu_tot[g] = median(R.iter_total);
    j << (g ? ",\n    " : "\n    ") << "{\"gpu\": " << g << ", \"total_us\": " << jnum(gpu_tot[g]) << ", \"phases_us\": {";
    for (int p : shown) {
      const double v = median(ph[p]);
      phase_max[p] = std::max(phase_max[p], v);
      j << (p ? ", " : "") << jstr(phase_name(p)) << ": " << jnum(v);
    }
    std::vector<double> disp(iters);
    for (size_t i = 0; i < iters; ++i) disp[i] = ph[kMeta][i] + ph[kDispatch][i];
    j << ", \"dispatch\": " << jnum(median(disp)) << "},\n     \"timeline\": [";
    for (size_t k = 0; k < ni; ++k) {
      std::vector<double> a(iters), b(iters);
      for (size_t i = 0; i < iters; ++i) { a[i] = R.iter_start[i][k]; b[i] = R.iter_end[i][k]; }
      const auto& in = R.inst[k];
      j << (k ? ",\n       " : "\n       ") << "{\"phase\": " << jstr(phase_name(in.phase)) << ", \"layer\": " << in.layer
        << ", \"mb\": " << in.mb << ", \"chunk\": " << in.chunk << ", \"stream\": " << (in.comm ? "\"comm\"" : "\"compute\"")
        << ", \"start_us\": " << jnum(median(a)) << ", \"end_us\": " << jnum(median(b)) << "}";
    }
    j << "]}";
  }
  j << "],\n  \"phases_us\": {";
  for (int p : shown) j << (p ? ", " : "") << jstr(phase_name(p)) << ": " << jnum(phase_max[p]);
  j << ", \"dispatch\": " << jnum(phase_max[kMeta] + phase_max[kDispatch]) << "},\n";
  // routing: per layer, per micro-batch, per source GPU, per expert (what the check pass routed)
  j << "  \"routing\": {\"per_microbatch\": [";
  Rank& R0 = ranks[0];
  for (int l = 0; l < S.L; ++l) {
    j << (l ? ", " : "") << "[";
    for (int m = 0; m < S.mbs; ++m) {
      j << (m ? ", " : "") << "[";
      for (int s = 0; s < N; ++s) {
        std::vector<int> row(R0.routing[l][m].begin() + (size_t)s * E, R0.routing[l][m].begin() + (size_t)(s + 1) * E);
        j << (s ? ", " : "") << jarr(row);
      }
      j << "]";
    }
    j << "]";
  }
  j << "]},\n  \"trace\": {\"experts\": " << E << ", \"layers\": [";
  for (int l = 0; l < S.L; ++l) {
    j << (l ? ", " : "") << "{\"sources\": [";
    for (int s = 0; s < N; ++s) {
      std::vector<long long> row(E, 0);
      for (int m = 0; m < S.mbs; ++m)
        for (int e = 0; e < E; ++e) row[e] += R0.routing[l][m][(size_t)s * E + e];
      j << (s ? ", " : "") << jarr(row);
    }
    j << "]}";
  }
  j << "]}}";
  if (table_row) {
    table_row->assign({median(tot)});
    for (int p = 0; p < kPhases; ++p) table_row->push_back(phase_max[p]);
  }
  return j.str();
}

void usage() {
  std::printf(
      "epsim-ep-layer: an expert-parallel MoE layer on N GPUs of one host (NCCL), checked and timed.\n"
      "Options (lists are comma-separated; every combination is run as one case):\n"
      "  --tokens-per-gpu LIST   tokens per GPU (default 4096)\n"
      "  --skew LIST             uniform | zipf:S (default uniform)\n"
      "  --overlap LIST          serial | dual (two micro-batches of half the tokens; default serial)\n"
      "  --chunks LIST           dispatch/combine pieces per micro-batch, <= %d (default 1)\n"
      "  --dispatch LIST         nccl | peer (default nccl)\n"
      "  --experts E             routed experts in total, a multiple of the GPU count, <= 256 (default 32)\n"
      "  --topk K                experts per token (the permute/combine kernels support 8; default 8)\n"
      "  --layers L              chained layers (default 1)\n"
      "  --hidden H --inter I    model dims (default 7168, 2048)\n"
      "  --gpus N                GPUs to use (default: all visible, <= %d)\n"
      "  --peer-blocks B         blocks of the peer-pointer scatter kernel (default 64)\n"
      "  --attention KIND        none | mha | gqa | mla: each micro-batch runs a whole decoder layer (attn_norm,\n"
      "                          projections, RoPE, attention core, o_proj, residual, ffn_norm, MoE, ffn_residual);\n"
      "                          dual then interleaves: micro-batch 1's attention beside micro-batch 0's dispatch\n"
      "                          (default none: the MoE block alone)\n"
      "  --heads N --kv-heads N --head-dim D --seq-len S   attention shape (defaults: mla 128 heads (DeepSeek-V3\n"
      "                          dims), mha/gqa 64 heads of 128, gqa kv heads = heads / 4; seq-len 1024, a multiple\n"
      "                          of 64 dividing a micro-batch's tokens)\n"
      "  --seed S  --check-tokens N  --warmup N  --min-iters N  --max-iters N  --budget-ms MS\n"
      "  --out FILE  --git SHA  --smi TEXT\n",
      kMaxChunks, kMaxGpus);
}

}  // namespace

int main(int argc, char** argv) {
  Opts o;
  for (int i = 0; i < argc; ++i) o.command += (i ? " " : "") + std::string(argv[i]);
  try {
    for (int i = 1; i < argc; ++i) {
      std::string a = argv[i];
      auto next = [&]() -> std::string {
        if (i + 1 >= argc) throw std::runtime_error("missing value after " + a);
        return argv[++i];
      };
      auto ints = [&](const std::string& s) {
        std::vector<int> v;
        for (auto& x : split(s)) v.push_back(std::stoi(x));
        return v;
      };
      if (a == "--help" || a == "-h") { usage(); return 0; }
      else if (a == "--tokens-per-gpu") o.tokens = ints(next());
      else if (a == "--skew") o.skews = split(next());
      else if (a == "--overlap") o.overlaps = split(next());
      else if (a == "--chunks") o.chunks = ints(next());
      else if (a == "--dispatch") o.dispatches = split(next());
      else if (a == "--experts") o.experts = std::stoi(next());
      else if (a == "--topk") o.topk = std::stoi(next());
      else if (a == "--layers") o.layers = std::stoi(next());
      else if (a == "--hidden") o.hidden = std::stoi(next());
      else if (a == "--inter") o.inter = std::stoi(next());
      else if (a == "--gpus") o.gpus = std::stoi(next());
      else if (a == "--peer-blocks") o.peer_blocks = std::stoi(next());
      else if (a == "--attention") o.attn.kind = next();
      else if (a == "--heads") o.attn.heads = std::stoi(next());
      else if (a == "--kv-heads") o.attn.kv_heads = std::stoi(next());
      else if (a == "--head-dim") o.attn.head_dim = std::stoi(next());
      else if (a == "--seq-len") o.attn.seq_len = std::stoi(next());
      else if (a == "--seed") o.seed = std::stoull(next());
      else if (a == "--check-tokens") o.check_tokens = std::stoi(next());
      else if (a == "--warmup") o.warmup = std::stoi(next());
      else if (a == "--min-iters") o.min_iters = std::stoi(next());
      else if (a == "--max-iters") o.max_iters = std::stoi(next());
      else if (a == "--budget-ms") o.budget_ms = std::stod(next());
      else if (a == "--out") o.out = next();
      else if (a == "--git") o.git = next();
      else if (a == "--smi") o.smi = next();
      else throw std::runtime_error("unknown option " + a + " (see --help)");
    }
    int ndev = 0;
    CK(cudaGetDeviceCount(&ndev));
    const int N = o.gpus ? o.gpus : std::min(ndev, kMaxGpus);
    if (N < 1 || N > ndev || N > kMaxGpus) throw std::runtime_error("--gpus: need 1.." + std::to_string(std::min(ndev, kMaxGpus)));
    if (o.experts % N || o.experts > 256 || o.experts < o.topk)
      throw std::runtime_error("--experts must be a multiple of the GPU count, >= topk and <= 256");
    if (o.topk != 8) throw std::runtime_error("--topk: the permute and unpermute-combine kernels support 8");
    if (o.hidden % 8 || o.hidden > 8192 || o.inter % 8) throw std::runtime_error("--hidden: multiple of 8, <= 8192; --inter: multiple of 8");
    if (o.peer_blocks < 1 || o.peer_blocks > 1024) throw std::runtime_error("--peer-blocks: 1..1024");
    for (int c : o.chunks)
      if (c < 1 || c > kMaxChunks) throw std::runtime_error("--chunks: 1.." + std::to_string(kMaxChunks));
    for (auto& v : o.overlaps)
      if (v != "serial" && v != "dual") throw std::runtime_error("--overlap: serial | dual");
    for (auto& v : o.dispatches)
      if (v != "nccl" && v != "peer") throw std::runtime_error("--dispatch: nccl | peer");
    if (o.layers < 1) throw std::runtime_error("--layers >= 1");
    o.attn.resolve(o.hidden);

    // peer access between every pair, streams, cuBLAS, NCCL
    for (int a = 0; a < N; ++a)
      for (int b = 0; b < N; ++b) {
        if (a == b) continue;
        int can = 0;
        CK(cudaDeviceCanAccessPeer(&can, a, b));
        if (!can) {
          if (std::find(o.dispatches.begin(), o.dispatches.end(), "peer") != o.dispatches.end())
            throw std::runtime_error("GPUs " + std::to_string(a) + " and " + std::to_string(b) + " are not peer-capable: --dispatch peer impossible");
          continue;
        }
        CK(cudaSetDevice(a));
        cudaError_t e = cudaDeviceEnablePeerAccess(b, 0);
        if (e == cudaErrorPeerAccessAlreadyEnabled) (void)cudaGetLastError();
        else CK(e);
      }
    std::vector<Rank> ranks(N);
    std::vector<ncclComm_t> comms(N);
    std::vector<int> devs(N);
    std::iota(devs.begin(), devs.end(), 0);
    CN(ncclCommInitAll(comms.data(), N, devs.data()));
    for (int g = 0; g < N; ++g) {
      Rank& R = ranks[g];
      R.g = g;
      R.nccl = comms[g];
      CK(cudaSetDevice(g));
      CK(cudaStreamCreateWithFlags(&R.comp, cudaStreamNonBlocking));
      CK(cudaStreamCreateWithFlags(&R.comm, cudaStreamNonBlocking));
      CB(cublasCreate(&R.blas));
      R.ws.alloc(64ull << 20);
      CB(cublasSetStream(R.blas, R.comp));
      CB(cublasSetWorkspace(R.blas, R.ws.get(), R.ws.bytes()));
      CK(cudaEventCreate(&R.t0));
      CK(cudaEventCreate(&R.t1));
      for (auto& B : R.mb) {
        CK(cudaEventCreateWithFlags(&B.evP, cudaEventDisableTiming));
        CK(cudaEventCreateWithFlags(&B.evMeta, cudaEventDisableTiming));
        for (int c = 0; c < kMaxChunks; ++c) {
          CK(cudaEventCreateWithFlags(&B.evD[c], cudaEventDisableTiming));
          CK(cudaEventCreateWithFlags(&B.evE[c], cudaEventDisableTiming));
          CK(cudaEventCreateWithFlags(&B.evC[c], cudaEventDisableTiming));
        }
      }
    }
    // device description
    cudaDeviceProp prop;
    CK(cudaGetDeviceProperties(&prop, 0));
    int drv = 0, rt = 0, nv = 0;
    CK(cudaDriverGetVersion(&drv));
    CK(cudaRuntimeGetVersion(&rt));
    CN(ncclGetVersion(&nv));
    char date[64];
    std::time_t now = std::time(nullptr);
    std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
    auto env = [](const char* k) { const char* v = std::getenv(k); return std::string(v ? v : ""); };

    std::vector<std::string> cases_json;
    // the JSON file is rewritten after every case (a later failure keeps the earlier cases)
    auto write_json = [&]() {
    std::ofstream f(o.out);
    f << "{\"schema\": \"epsim-ep-layer/1\",\n \"device\": {\"name\": " << jstr(prop.name) << ", \"count\": " << N
      << ", \"cc\": \"" << prop.major << "." << prop.minor << "\", \"sm_count\": " << prop.multiProcessorCount
      << ", \"smi\": " << jstr(o.smi) << "},\n \"driver\": " << drv << ", \"cuda\": " << rt << ", \"nccl\": " << nv
      << ",\n \"date\": \"" << date << "\", \"git_commit\": " << jstr(o.git) << ", \"command\": " << jstr(o.command)
      << ",\n \"env\": {\"NCCL_NVLS_ENABLE\": " << jstr(env("NCCL_NVLS_ENABLE")) << ", \"TORCH_SYMM_MEM_DISABLE_MULTICAST\": "
      << jstr(env("TORCH_SYMM_MEM_DISABLE_MULTICAST")) << ", \"NVSHMEM_DISABLE_NVLS\": " << jstr(env("NVSHMEM_DISABLE_NVLS"))
      << "},\n \"timing\": " << jstr("CUDA events on each GPU's compute and comm streams; every iteration starts after a host barrier "
                                     "and a 300 us GPU spin; per-phase = sum of that phase's instances in one iteration; "
                                     "medians over iterations after warm-up; total_us = median over iterations of the max over GPUs")
      << ",\n \"cases\": [\n";
    for (size_t i = 0; i < cases_json.size(); ++i) f << (i ? ",\n" : "") << cases_json[i];
    f << "\n]}\n";
    f.close();
    };
    std::vector<std::pair<std::string, std::vector<double>>> table;
    int failures = 0;
    for (auto& disp : o.dispatches)
      for (int T : o.tokens)
        for (auto& skew : o.skews)
          for (auto& ov : o.overlaps)
            for (int ch : o.chunks) {
              Shared S;
              S.o = o;
              S.cs.tokens = T;
              S.cs.skew = skew;
              S.cs.chunks = ch;
              S.cs.overlap = ov;
              S.cs.dispatch = disp;
              S.N = N;
              S.E = o.experts;
              S.El = o.experts / N;
              S.L = o.layers;
              S.H = o.hidden;
              S.I = o.inter;
              S.K = o.topk;
              S.mbs = ov == "dual" ? 2 : 1;
              if (T % S.mbs || T / S.mbs < ch) throw std::runtime_error("tokens per GPU must split into micro-batches of >= chunks tokens");
              o.attn.check_tokens(T / S.mbs);
              if (skew.rfind("zipf:", 0) == 0) {
                S.cs.zipf_s = std::stod(skew.substr(5));
                // popularity order: a seeded permutation of the experts (rank r has weight 1/r^s)
                std::vector<int> order(S.E);
                std::iota(order.begin(), order.end(), 0);
                std::shuffle(order.begin(), order.end(), std::mt19937((uint32_t)o.seed * 7919u + 13u));
                S.logw_host.assign(S.E, 0.f);
                for (int r = 0; r < S.E; ++r) S.logw_host[order[r]] = (float)(-S.cs.zipf_s * std::log((double)(r + 1)));
              } else if (skew != "uniform") {
                throw std::runtime_error("--skew: uniform | zipf:S");
              }
              Barrier bar(N);
              S.bar = &bar;
              S.ranks = &ranks;
              CheckOut co;
              const auto t0 = std::chrono::steady_clock::now();
              std::vector<std::thread> th;
              for (int g = 0; g < N; ++g) th.emplace_back(rank_thread, std::ref(S), std::ref(ranks[g]), &co);
              for (auto& t : th) t.join();
              std::vector<double> row;
              cases_json.push_back(case_json(S, co, &row));
              char name[160];
              std::snprintf(name, sizeof name, "%-4s T=%-5d %-8s %-6s c%d L%d", disp.c_str(), T, skew.c_str(), ov.c_str(),
                            ch, o.layers);
              table.push_back({std::string(name) + (co.pass ? "  ok  " : "  FAIL"), row});
              failures += co.pass ? 0 : 1;
              const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
              std::fprintf(stderr, "%s  total %9.1f us  err %.2e  %s  (%.1f s)\n", name, row[0], co.out_err,
                           co.pass ? "ok" : "FAIL", secs);
              for (auto& R : ranks) teardown(R);
              write_json();
            }
    // table
    std::printf("epsim-ep-layer: %d GPUs (%s), %d experts (%d per GPU), top-%d, hidden %d, inter %d; times in us\n", N,
                prop.name, o.experts, o.experts / N, o.topk, o.hidden, o.inter);
    std::printf("%-46s %10s", "case", "total");
    for (int p = 0; p < kPhases; ++p) std::printf(" %9.9s", kPhaseName[p]);
    std::printf("\n");
    for (auto& t : table) {
      std::printf("%-46s", t.first.c_str());
      for (double v : t.second) std::printf(" %9.1f", v);
      std::printf("\n");
    }
    std::printf("%zu cases, %d failed checks; wrote %s\n", table.size(), failures, o.out.c_str());
    for (auto& R : ranks) {
      cudaSetDevice(R.g);
      cublasDestroy(R.blas);
    }
    for (auto& c : comms) ncclCommDestroy(c);
    return failures ? 1 : 0;
  } catch (std::exception& e) {
    std::fprintf(stderr, "epsim-ep-layer: error: %s\n", e.what());
    return 2;
  }
}
