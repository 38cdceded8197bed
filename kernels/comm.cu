// epsim-bench: ceilings and communication: HBM copy, P2P copy, NCCL all-to-all on 2 GPUs, and the
// project's own NVLink peer-pointer dispatch (each GPU writes its tokens straight into the peer's
// receive buffer, then signals the peer through a counter in the peer's memory).
#include <algorithm>
#include <array>
#include <cmath>
#include <numeric>
#include <cstdlib>
#include <random>
#include <sstream>

#include "common.h"
#include <cuda.h>
#ifdef EPSIM_HAVE_NCCL
#include <nccl.h>
#endif

namespace epsim::bench {
namespace {

__global__ void count_diff_kernel(const uint4* a, const uint4* b, size_t n, unsigned long long* bad) {
  unsigned long long c = 0;
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    uint4 x = a[i], y = b[i];
    c += (x.x != y.x || x.y != y.y || x.z != y.z || x.w != y.w) ? 1 : 0;
  }
  if (c) atomicAdd(bad, c);
}

// Number of differing 16-byte words (bytes % 16 == 0); runs on the current device, which must
// be able to read both pointers.
long long count_diff(const void* a, const void* b, size_t bytes) {
  DevBuf<unsigned long long> bad(1);
  CK(cudaMemset(bad.get(), 0, 8));
  count_diff_kernel<<<sm_count() * 8, 256>>>(static_cast<const uint4*>(a), static_cast<const uint4*>(b),
                                              bytes / 16, bad.get());
  CK_LAST();
  unsigned long long h = 0;
  CK(cudaMemcpy(&h, bad.get(), 8, cudaMemcpyDeviceToHost));
  return (long long)h;
}

__global__ void copy_kernel(const uint4* __restrict__ src, uint4* __restrict__ dst, size_t n) {
  size_t stride = (size_t)gridDim.x * blockDim.x;
  size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
  for (; i + 3 * stride < n; i += 4 * stride) {
    uint4 a = src[i], b = src[i + stride], c = src[i + 2 * stride], d = src[i + 3 * stride];
    dst[i] = a; dst[i + stride] = b; dst[i + 2 * stride] = c; dst[i + 3 * stride] = d;
  }
  for (; i < n; i += stride) dst[i] = src[i];
}

Check exact(long long bad, size_t words, const std::string& note) {
  Check c;
  c.rel_err = words ? (double)bad / (double)words : 0;
  c.threshold = 0;
  c.done = true;
  c.pass = bad == 0;
  c.note = note;
  return c;
}

Result make_res(const char* kernel, const char* variant,
                std::vector<std::pair<std::string, long long>> shape, const Timing& t, double bytes,
                Check c) {
  Result r;
  r.kernel = kernel;
  r.variant = variant;
  r.shape = std::move(shape);
  r.us_median = t.med; r.us_min = t.min; r.us_max = t.max; r.iters = t.iters;
  r.bytes = bytes;
  r.check = std::move(c);
  return r;
}

std::vector<size_t> pow4_sizes(size_t lo, size_t hi) {
  std::vector<size_t> v;
  for (size_t s = lo; s <= hi; s *= 4) v.push_back(s);
  return v;
}

// Pipelined timing: one event pair around R back-to-back repetitions (after a GPU spin that keeps
// the host's launches ahead), divided by R; median/min/max over 5 such batches. time_it's event
// between repetitions costs ~2.7 us per repetition on this machine (copies and kernels alike) and
// stops a PDL launch from overlapping the previous kernel; this measures the steady rate of
// back-to-back operations instead. `per_rep_us` (from time_it) sizes R; `spin_per_rep_us` is the
// GPU spin queued ahead per repetition (enough for the host to enqueue them all).
Timing time_pipelined(cudaStream_t s, const std::function<void()>& fn, double per_rep_us,
                      double spin_per_rep_us = 20.0) {
  const int reps = (int)std::clamp(20000.0 / std::max(per_rep_us, 1.0), 10.0, 40.0);
  const int batches = 5;
  std::vector<double> v;
  cudaEvent_t a, b;
  CK(cudaEventCreate(&a));
  CK(cudaEventCreate(&b));
  for (int k = 0; k < batches; ++k) {
    CK(cudaDeviceSynchronize());
    gpu_spin(s, std::min(20000.0, 200.0 + reps * spin_per_rep_us));
    CK(cudaEventRecord(a, s));
    for (int i = 0; i < reps; ++i) fn();
    CK(cudaEventRecord(b, s));
    CK(cudaEventSynchronize(b));
    float ms = 0;
    CK(cudaEventElapsedTime(&ms, a, b));
    v.push_back(ms * 1000.0 / reps);
  }
  CK(cudaEventDestroy(a));
  CK(cudaEventDestroy(b));
  std::sort(v.begin(), v.end());
  Timing t;
  t.iters = batches * reps;
  t.min = v.front();
  t.max = v.back();
  t.med = v[batches / 2];
  return t;
}

// ---------------------------------------------------------------- HBM copy
void bench_hbm(Report& rep, const Options& opt) {
  CK(cudaSetDevice(0));
  cudaStream_t s;
  CK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  std::vector<size_t> sizes = opt.quick ? std::vector<size_t>{1ull << 30}
                                        : std::vector<size_t>{1ull << 20, 16ull << 20, 64ull << 20,
                                                              256ull << 20, 1ull << 30, 4ull << 30};
  for (size_t bytes : sizes) {
    int rot = rotation_count(2 * bytes, 8);
    std::vector<DevBuf<bf16>> A(rot), B(rot);
    for (int r = 0; r < rot; ++r) {
      A[r].alloc(bytes / 2);
      B[r].alloc(bytes / 2);
      fill_random(A[r].get(), bytes / 2, 8000 + r, 0.25f, 1.f);
    }
    for (int own = 0; own < 2; ++own) {
      auto run = [&](int i) {
        int r = i % rot;
        if (own)
          copy_kernel<<<sm_count() * 8, 512, 0, s>>>(reinterpret_cast<const uint4*>(A[r].get()),
                                                     reinterpret_cast<uint4*>(B[r].get()), bytes / 16);
        else
          CK(cudaMemcpyAsync(B[r].get(), A[r].get(), bytes, cudaMemcpyDeviceToDevice, s));
      };
      poison(B[0].get(), bytes / 2, s);
      run(0);
      CK(cudaStreamSynchronize(s));
      Check c = exact(count_diff(A[0].get(), B[0].get(), bytes), bytes / 16, "exact; bytes = read + write");
      auto t = time_it(s, run, opt);
      rep.add(make_res("hbm_copy", own ? "own_kernel" : "cudaMemcpy", {{"bytes", (long long)bytes}}, t,
                       2.0 * bytes, c));
    }
  }
  CK(cudaStreamDestroy(s));
}

// ---------------------------------------------------------------- multi-GPU set-up
// The first n visible GPUs (n >= 2, at most kMaxGpus), every pair peer-enabled, one non-blocking
// stream and one event per GPU. `--gpus N` picks n (default: every visible GPU, capped).
constexpr int kMaxGpus = 8;

struct Group {
  int n = 0;
  cudaStream_t s[kMaxGpus];
  cudaEvent_t ev[kMaxGpus];
  bool ok = false;
  std::string why;
  explicit Group(int want) {
    int count = 0;
    CK(cudaGetDeviceCount(&count));
    n = want > 0 ? want : std::min(count, kMaxGpus);
    if (n < 2 || n > count || n > kMaxGpus) {
      why = "need 2.." + std::to_string(kMaxGpus) + " GPUs" +
            (want > 0 ? ", --gpus " + std::to_string(want) : std::string()) + ", found " + std::to_string(count);
      return;
    }
    for (int a = 0; a < n; ++a)
      for (int b = 0; b < n; ++b) {
        if (a == b) continue;
        int can = 0;
        CK(cudaDeviceCanAccessPeer(&can, a, b));
        if (!can) {
          why = "GPU " + std::to_string(a) + " cannot access GPU " + std::to_string(b);
          return;
        }
      }
    for (int d = 0; d < n; ++d) {
      CK(cudaSetDevice(d));
      for (int p = 0; p < n; ++p) {
        if (p == d) continue;
        cudaError_t e = cudaDeviceEnablePeerAccess(p, 0);
        if (e == cudaErrorPeerAccessAlreadyEnabled) (void)cudaGetLastError();
        else CK(e);
      }
      CK(cudaStreamCreateWithFlags(&s[d], cudaStreamNonBlocking));
      CK(cudaEventCreateWithFlags(&ev[d], cudaEventDisableTiming));
    }
    CK(cudaSetDevice(0));
    ok = true;
  }
  ~Group() {
    if (!ok) return;
    for (int d = 0; d < n; ++d) {
      cudaSetDevice(d);
      cudaStreamDestroy(s[d]);
      cudaEventDestroy(ev[d]);
    }
    cudaSetDevice(0);
  }
  // Every other GPU's stream waits for what s[0] has queued so far; join: s[0] waits for all.
  // Both leave device 0 current.
  void fork() {
    CK(cudaSetDevice(0));
    CK(cudaEventRecord(ev[0], s[0]));
    for (int d = 1; d < n; ++d) {
      CK(cudaSetDevice(d));
      CK(cudaStreamWaitEvent(s[d], ev[0], 0));
    }
    CK(cudaSetDevice(0));
  }
  void join() {
    for (int d = 1; d < n; ++d) {
      CK(cudaSetDevice(d));
      CK(cudaEventRecord(ev[d], s[d]));
      CK(cudaSetDevice(0));
      CK(cudaStreamWaitEvent(s[0], ev[d], 0));
    }
    CK(cudaSetDevice(0));
  }
  void sync_all() {
    for (int d = 0; d < n; ++d) {
      CK(cudaSetDevice(d));
      CK(cudaStreamSynchronize(s[d]));
    }
    CK(cudaSetDevice(0));
  }
};

// ---------------------------------------------------------------- P2P copy (copy engines)
// Always GPU0 <-> GPU1 (the link ceiling), whatever the group size. Timed with time_it: CUDA
// events between back-to-back copies on GPU0's stream; bytes = per direction.
void bench_p2p(Group& P, Report& rep, const Options& opt) {
  std::vector<size_t> sizes = opt.quick ? std::vector<size_t>{16ull << 20, 1ull << 30}
                                        : pow4_sizes(4096, 1ull << 30);
  // also the byte counts of the peer-dispatch rows near the 16 MiB target (7168-wide bf16 rows)
  if (!opt.quick)
    for (size_t rows : {1171, 2048, 4682}) sizes.push_back(rows * 7168 * 2);
  for (size_t bytes : sizes) {
    DevBuf<bf16> src[2], dst[2];
    for (int d = 0; d < 2; ++d) {
      CK(cudaSetDevice(d));
      src[d].alloc(bytes / 2);
      dst[d].alloc(bytes / 2);
      fill_random(src[d].get(), bytes / 2, 9000 + d, 0.25f, 1.f);
      poison(dst[d].get(), bytes / 2);
      CK(cudaDeviceSynchronize());
    }
    CK(cudaSetDevice(0));
    for (int bidir = 0; bidir < 2; ++bidir) {
      auto run = [&](int) {
        if (bidir) {
          CK(cudaEventRecord(P.ev[0], P.s[0]));
          CK(cudaSetDevice(1));
          CK(cudaStreamWaitEvent(P.s[1], P.ev[0], 0));
          CK(cudaSetDevice(0));
        }
        CK(cudaMemcpyPeerAsync(dst[1].get(), 1, src[0].get(), 0, bytes, P.s[0]));
        if (bidir) {
          CK(cudaSetDevice(1));
          CK(cudaMemcpyPeerAsync(dst[0].get(), 0, src[1].get(), 1, bytes, P.s[1]));
          CK(cudaEventRecord(P.ev[1], P.s[1]));
          CK(cudaSetDevice(0));
          CK(cudaStreamWaitEvent(P.s[0], P.ev[1], 0));
        }
      };
      run(0);
      P.sync_all();
      CK(cudaSetDevice(1));
      long long bad = count_diff(dst[1].get(), src[0].get(), bytes);
      if (bidir) bad += count_diff(dst[0].get(), src[1].get(), bytes);
      CK(cudaSetDevice(0));
      auto t = time_it(P.s[0], run, opt);
      P.sync_all();
      rep.add(make_res("p2p_copy", bidir ? "ce_bidir" : "ce_0to1",
                       {{"bytes", (long long)bytes}, {"gpus", 2}}, t, (bidir ? 2.0 : 1.0) * bytes,
                       exact(bad, bytes / 16 * (bidir ? 2 : 1),
                             bidir ? "exact; bytes = both directions" : "exact; one direction")));
      if (!bidir) {
        auto tp = time_pipelined(P.s[0], [&] { run(0); }, t.med);
        P.sync_all();
        rep.add(make_res("p2p_copy", "ce_0to1_pipelined", {{"bytes", (long long)bytes}, {"gpus", 2}}, tp,
                         (double)bytes, exact(bad, bytes / 16, "exact; one direction; pipelined timing")));
      }
    }
  }
}

// ---------------------------------------------------------------- NCCL all-to-all
// n ranks in one process (ncclCommInitAll), grouped ncclSend/ncclRecv: rank r sends chunk p of its
// buffer to rank p (self included) and receives rank p's chunk r. bytes = one rank's send buffer
// (algbw), chunk = bytes / n rounded down to 16 bytes.
#ifdef EPSIM_HAVE_NCCL
void bench_nccl(Group& P, Report& rep, const Options& opt) {
  const int n = P.n;
  std::vector<ncclComm_t> comm(n);
  std::vector<int> devs(n);
  std::iota(devs.begin(), devs.end(), 0);
  if (ncclCommInitAll(comm.data(), n, devs.data()) != ncclSuccess) fail("ncclCommInitAll", __FILE__, __LINE__, "");
  std::vector<size_t> sizes = opt.quick ? std::vector<size_t>{4096, 64ull << 20}
                                        : pow4_sizes(4096, 1ull << 30);
  for (size_t want : sizes) {
    const size_t chunk = want / n / 16 * 16;
    const size_t bytes = chunk * n;
    std::vector<DevBuf<bf16>> sb(n), rb(n);
    for (int d = 0; d < n; ++d) {
      CK(cudaSetDevice(d));
      sb[d].alloc(bytes / 2);
      rb[d].alloc(bytes / 2);
      fill_random(sb[d].get(), bytes / 2, 9100 + d, 0.25f, 1.f);
      poison(rb[d].get(), bytes / 2);
      CK(cudaDeviceSynchronize());
    }
    CK(cudaSetDevice(0));
    auto run = [&](int) {
      P.fork();
      ncclResult_t e = ncclGroupStart();
      for (int r = 0; r < n && e == ncclSuccess; ++r)
        for (int p = 0; p < n && e == ncclSuccess; ++p) {
          e = ncclSend(reinterpret_cast<char*>(sb[r].get()) + p * chunk, chunk, ncclInt8, p, comm[r], P.s[r]);
          if (e == ncclSuccess)
            e = ncclRecv(reinterpret_cast<char*>(rb[r].get()) + p * chunk, chunk, ncclInt8, p, comm[r], P.s[r]);
        }
      ncclResult_t e2 = ncclGroupEnd();
      if (e != ncclSuccess || e2 != ncclSuccess)
        fail("nccl all-to-all", __FILE__, __LINE__, ncclGetErrorString(e != ncclSuccess ? e : e2));
      P.join();
    };
    run(0);
    P.sync_all();
    long long bad = 0;
    for (int r = 0; r < n; ++r) {
      CK(cudaSetDevice(r));
      for (int p = 0; p < n; ++p)
        bad += count_diff(reinterpret_cast<char*>(rb[r].get()) + p * chunk,
                          reinterpret_cast<char*>(sb[p].get()) + r * chunk, chunk);
    }
    CK(cudaSetDevice(0));
    auto t = time_it(P.s[0], run, opt);
    P.sync_all();
    rep.add(make_res("nccl_alltoall", "nccl", {{"bytes", (long long)bytes}, {"gpus", n}}, t, (double)bytes,
                     exact(bad, bytes / 16 * n, "exact; bytes = one rank's send buffer (algbw), self chunk included")));
  }
  for (int d = 0; d < n; ++d) ncclCommDestroy(comm[d]);
}
#endif

// ---------------------------------------------------------------- own peer-pointer dispatch
// Each source GPU gathers its token rows (out[row] = x[idx[row]]) and writes them straight into
// each destination GPU's receive buffer through the peer pointer; then each CTA signals once:
// bar.sync, one thread's system-scope fence, one release-add on the destination's counter for this
// // source. The destination knows the round's data has landed when each of its (local) per-source
// counters reaches the number of that source's CTAs that write to it. Two data paths:
//   simt: 256 threads per CTA, 16-byte loads/stores, U loads in flight per thread before the U
//         stores; the vectors of a destination are spread evenly over its CTAs.
//   tma:  one thread per CTA drives the bulk copy engine: half-rows (7 KB) global -> shared
//         (mbarrier), shared -> peer global (bulk group), S shared-memory stages.
// CTA b works for destination k = b % ndest (destinations are the other GPUs, in the order
// src+1, src+2, ...), as CTA j = b / ndest of that destination's nd(k) CTAs.
__device__ __forceinline__ unsigned long long ld_acquire_sys(const unsigned long long* p) {
  unsigned long long v;
  asm volatile("ld.acquire.sys.global.u64 %0, [%1];" : "=l"(v) : "l"(p) : "memory");
  return v;
}
__device__ __forceinline__ void red_release_sys(unsigned long long* p, unsigned long long v) {
  asm volatile("red.release.sys.global.add.u64 [%0], %1;" ::"l"(p), "l"(v) : "memory");
}
__device__ __forceinline__ void fence_acq_rel_sys() { asm volatile("fence.acq_rel.sys;" ::: "memory"); }

// A receiver's counters, one per source GPU (each source's CTAs add to their own, so a fast peer's
// next round cannot stand in for a slow one's), and the value each must reach this round (0 for
// sources that send nothing).
struct CounterWait {
  const unsigned long long* cnt = nullptr;  // kMaxGpus local counters; null: nothing to wait for
  unsigned long long target[kMaxGpus] = {};
};
__device__ __forceinline__ void wait_counters(const CounterWait& w) {
  if (!w.cnt) return;
  for (int i = 0; i < kMaxGpus; ++i)
    while (ld_acquire_sys(w.cnt + i) < w.target[i]) __nanosleep(20);
}

struct DispatchArgs {
  const uint4* x;                       // local rows
  const int* idx;                       // local: source row of each output row
  int rows, nvec;                       // rows per destination, 16-byte vectors per row
  int ndest;                            // 1 .. kMaxGpus-1
  uint4* out[kMaxGpus - 1];             // destination k's receive slot for this source (peer pointer)
  unsigned long long* sig[kMaxGpus - 1];// destination k's counter for this source (peer pointer)
  unsigned long long* done;             // local count of CTAs finished (only used when wait.cnt != null)
  unsigned long long done_target;       // its value once this round's last CTA has counted itself
  CounterWait wait;                     // what the last CTA waits for (cnt null: nothing)
};

__device__ __forceinline__ void pick_dest(const DispatchArgs& a, int& k, int& j, int& nd, uint4*& out,
                                          unsigned long long*& sig) {
  k = blockIdx.x % a.ndest;
  j = blockIdx.x / a.ndest;
  nd = (gridDim.x - k + a.ndest - 1) / a.ndest;
  out = a.out[0];
  sig = a.sig[0];
#pragma unroll
  for (int i = 1; i < kMaxGpus - 1; ++i)
    if (i == k) { out = a.out[i]; sig = a.sig[i]; }
}

// Called by one thread of the CTA after everything the CTA wrote is ordered before it (bar.sync
// for SIMT stores, bulk wait_group 0 + proxy fence for the copy engine's).
__device__ __forceinline__ void signal_and_maybe_wait(const DispatchArgs& a, unsigned long long* sig) {
  fence_acq_rel_sys();
  red_release_sys(sig, 1ull);
  if (a.wait.cnt) {
    unsigned long long prev = atomicAdd(a.done, 1ull);
    if (prev + 1 == a.done_target) wait_counters(a.wait);  // the grid's last CTA: wait for what comes in
  }
}

// Launched as a programmatic dependent (PDL) of the previous kernel on the stream, a grid starts
// while that kernel drains: it reads its first rows, then griddepcontrol.wait (the previous
// kernel has completed and its memory is visible) before its first remote store or signal.
// Without the launch attribute griddepcontrol.wait returns at once.
__device__ __forceinline__ void pdl_launch_dependents() { asm volatile("griddepcontrol.launch_dependents;" ::: "memory"); }
__device__ __forceinline__ void pdl_wait() { asm volatile("griddepcontrol.wait;" ::: "memory"); }

template <int U>
__global__ void __launch_bounds__(256) dispatch_simt_kernel(DispatchArgs a) {
  pdl_launch_dependents();
  int k, j, nd;
  uint4* out;
  unsigned long long* sig;
  pick_dest(a, k, j, nd, out, sig);
  const unsigned total = (unsigned)a.rows * (unsigned)a.nvec;  // < 2^32 (checked by the caller)
  const unsigned stride = (unsigned)nd * blockDim.x;
  bool waited = false;
  for (unsigned v = (unsigned)j * blockDim.x + threadIdx.x; v < total; v += U * stride) {
    uint4 val[U];
#pragma unroll
    for (int u = 0; u < U; ++u) {
      unsigned w = v + u * stride;
      if (w < total) {
        unsigned row = w / (unsigned)a.nvec, col = w - row * (unsigned)a.nvec;
        val[u] = __ldg(a.x + (long long)__ldg(a.idx + row) * a.nvec + col);
      }
    }
    if (!waited) {
      pdl_wait();
      waited = true;
    }
#pragma unroll
    for (int u = 0; u < U; ++u) {
      unsigned w = v + u * stride;
      if (w < total) out[w] = val[u];
    }
  }
  if (!waited) pdl_wait();
  __syncthreads();
  if (threadIdx.x == 0) signal_and_maybe_wait(a, sig);
}

__device__ __forceinline__ uint32_t smem_u32(const void* p) { return (uint32_t)__cvta_generic_to_shared(p); }

// Pieces of 1/Q row (nvec a multiple of Q, piece = nvec/Q vectors); S stages of one piece each.
template <int S, int Q>
__global__ void __launch_bounds__(32) dispatch_tma_kernel(DispatchArgs a) {
  extern __shared__ __align__(128) unsigned char buf[];
  __shared__ __align__(8) unsigned long long bar[S];
  pdl_launch_dependents();
  if (threadIdx.x != 0) return;
  int k, j, nd;
  uint4* out;
  unsigned long long* sig;
  pick_dest(a, k, j, nd, out, sig);
  const int pv = a.nvec / Q;                 // vectors per piece
  const uint32_t pbytes = (uint32_t)pv * 16;
  const long long items = (long long)Q * a.rows;
  // item m of this CTA: piece (j + m * nd) -> row p / Q, part p % Q
  auto count = (items - j + nd - 1) / nd;
  if (j >= items) count = 0;
  for (int s = 0; s < S; ++s)
    asm volatile("mbarrier.init.shared::cta.b64 [%0], 1;" ::"r"(smem_u32(&bar[s])) : "memory");
  asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
  auto load = [&](long long m) {
    const int s = (int)(m % S);
    const long long p = j + m * nd;
    const int row = (int)(p / Q), part = (int)(p % Q);
    const uint4* src = a.x + (long long)__ldg(a.idx + row) * a.nvec + part * pv;
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(smem_u32(&bar[s])), "r"(pbytes)
                 : "memory");
    asm volatile(
        "cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];" ::"r"(
            smem_u32(buf + (size_t)s * pbytes)),
        "l"(src), "r"(pbytes), "r"(smem_u32(&bar[s]))
        : "memory");
  };
  for (long long m = 0; m < S && m < count; ++m) load(m);
  pdl_wait();  // the previous kernel on the stream has completed: now store and signal
  for (long long m = 0; m < count; ++m) {
    const int s = (int)(m % S);
    const uint32_t parity = (uint32_t)((m / S) & 1);
    asm volatile(
        "{\n .reg .pred p;\n WAIT_%=:\n mbarrier.try_wait.parity.shared::cta.b64 p, [%0], %1;\n @!p bra WAIT_%=;\n}" ::"r"(
            smem_u32(&bar[s])),
        "r"(parity)
        : "memory");
    const long long p = j + m * nd;
    uint4* dst = out + (p / Q) * a.nvec + (p % Q) * pv;
    asm volatile("cp.async.bulk.global.shared::cta.bulk_group [%0], [%1], %2;" ::"l"(dst),
                 "r"(smem_u32(buf + (size_t)s * pbytes)), "r"(pbytes)
                 : "memory");
    asm volatile("cp.async.bulk.commit_group;" ::: "memory");
    // refill the stage the previous piece's store has finished reading
    if (m >= 1 && m - 1 + S < count) {
      asm volatile("cp.async.bulk.wait_group.read 1;" ::: "memory");
      load(m - 1 + S);
    }
  }
  asm volatile("cp.async.bulk.wait_group 0;" ::: "memory");   // the bulk writes are complete
  asm volatile("fence.proxy.async.global;" ::: "memory");      // ... and ordered before generic ops
  signal_and_maybe_wait(a, sig);
}

// After the CTA's barrier: counts the 16-bit lanes still holding the poison pattern in the CTA's
// share of the slots in slot_mask (slot_vecs 16-byte vectors each) into *bad. `go` (set to 1 by
// the waiting thread before the barrier) is read so that the barrier orders the scan after the wait.
__device__ void count_poison(int go, const uint4* recv, long long slot_vecs, unsigned slot_mask, int nslots,
                             unsigned long long* bad) {
  unsigned long long c = go ? 0 : 1;
  for (int sl = 0; sl < nslots; ++sl) {
    if (!(slot_mask >> sl & 1)) continue;
    const uint4* p = recv + sl * slot_vecs;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < slot_vecs;
         i += (long long)gridDim.x * blockDim.x) {
      uint4 v = p[i];
      unsigned w[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
      for (int q = 0; q < 4; ++q) c += ((w[q] & 0xffffu) == 0x7fffu) + ((w[q] >> 16) == 0x7fffu);
    }
  }
  if (c) atomicAdd(bad, c);
}

// Receiver-side check of the signal: thread 0 of every CTA waits for the counters (acquire), then
// the CTA counts 16-bit lanes still holding the poison pattern in its share of the listed slots.
// Run once, right after the sources start: data that the signal claims has landed must be there.
__global__ void wait_scan_kernel(CounterWait w, const uint4* recv, long long slot_vecs, unsigned slot_mask, int nslots,
                                 unsigned long long* bad) {
  __shared__ int go;
  if (threadIdx.x == 0) {
    wait_counters(w);
    go = 1;
  }
  __syncthreads();
  count_poison(go, recv, slot_vecs, slot_mask, nslots, bad);
}
__global__ void wait_kernel(CounterWait w) { wait_counters(w); }
// Full compare of one received slot with the source's rows: recv[r] == x[idx[r]] (x and idx on
// the source GPU, read through peer pointers). Counts differing 16-byte vectors.
__global__ void compare_rows_kernel(const uint4* recv, const uint4* x, const int* idx, int rows, int nvec,
                                    unsigned long long* bad) {
  unsigned long long c = 0;
  const long long total = (long long)rows * nvec;
  for (long long v = blockIdx.x * (long long)blockDim.x + threadIdx.x; v < total;
       v += (long long)gridDim.x * blockDim.x) {
    long long row = v / nvec, col = v % nvec;
    uint4 a = recv[v], b = x[(long long)idx[row] * nvec + col];
    c += (a.x != b.x || a.y != b.y || a.z != b.z || a.w != b.w) ? 1 : 0;
  }
  if (c) atomicAdd(bad, c);
}

// ---------------------------------------------------------------- copy-engine peer dispatch
// The same dispatch with the copy engine as data path: after the permute each destination's rows
// are contiguous, so each source issues one cudaMemcpyAsync per destination (device-to-device,
// destination = the peer's receive slot through its UVA peer pointer; `split` > 1 cuts it at row
// boundaries over that many streams, i.e. copy engines), then signals with a stream-ordered 32-bit
// write of the round's sequence number into its own flag word on the destination:
//   memop:  cuStreamWriteValue32(stream, peer flag, seq, CU_STREAM_WRITE_VALUE_DEFAULT). It runs
//           after the copy in stream order, and the default flag puts a memory fence before the
//           write ("similar semantics to __threadfence_system() but scoped to the stream", cuda.h):
//           the copy's writes to the peer are performed before the flag write, so the flag cannot
//           be seen before the data. (CU_STREAM_WRITE_VALUE_NO_MEMORY_BARRIER would drop exactly
//           this guarantee.) The receiver's stream waits with cuStreamWaitValue32(GEQ) on its own
//           memory; work after the wait then reads the rows.
//   kernel: a 1-thread kernel after the copy in stream order does st.release.sys of seq into the
//           peer flag (the kernel starts only once the copy has completed, and stream order makes
//           the copy's writes visible to it; the system-scope release orders them before the flag
//           for every observer); the receiver spins on its own flag with ld.acquire.sys.
// Flags: uint32 per (source, part) on each destination, index src * kCeMaxSplit + part; values
// only grow (one sequence number per round for every flag), compared cyclically.
constexpr int kCeMaxSplit = 4;
constexpr int kCeMaxFlags = (kMaxGpus - 1) * kCeMaxSplit;
struct CeFlags {
  unsigned* sig[kCeMaxFlags];          // peer flags to set to seq (in order, after the copies)
  int nsig;
  const unsigned* wait[kCeMaxFlags];   // local flags that must reach seq
  int nwait;
  unsigned seq;
};
__device__ __forceinline__ unsigned ld_acquire_sys_u32(const unsigned* p) {
  unsigned v;
  asm volatile("ld.acquire.sys.global.u32 %0, [%1];" : "=r"(v) : "l"(p) : "memory");
  return v;
}
__device__ __forceinline__ void st_release_sys_u32(unsigned* p, unsigned v) {
  asm volatile("st.release.sys.global.u32 [%0], %1;" ::"l"(p), "r"(v) : "memory");
}
__device__ __forceinline__ void ce_wait_flags(const CeFlags& f) {
  for (int i = 0; i < f.nwait; ++i)
    while ((int)(ld_acquire_sys_u32(f.wait[i]) - f.seq) < 0) __nanosleep(20);
}
__global__ void ce_signal_wait_kernel(CeFlags f) {
  for (int i = 0; i < f.nsig; ++i) st_release_sys_u32(f.sig[i], f.seq);
  ce_wait_flags(f);
}
// Check: thread 0 of every CTA waits for the listed flags (none when the stream already waited
// with cuStreamWaitValue32), then the CTA counts poisoned 16-bit lanes in its share of the slots.
__global__ void ce_wait_scan_kernel(CeFlags f, const uint4* recv, long long slot_vecs, unsigned slot_mask,
                                    int nslots, unsigned long long* bad) {
  __shared__ int go;
  if (threadIdx.x == 0) {
    ce_wait_flags(f);
    go = 1;
  }
  __syncthreads();
  count_poison(go, recv, slot_vecs, slot_mask, nslots, bad);
}
// The permute's output for the copy-engine path (untimed): xp[r] = x[idx[r]].
__global__ void gather_rows_kernel(const uint4* x, const int* idx, int rows, int nvec, uint4* xp) {
  const long long total = (long long)rows * nvec;
  for (long long v = blockIdx.x * (long long)blockDim.x + threadIdx.x; v < total;
       v += (long long)gridDim.x * blockDim.x)
    xp[v] = x[(long long)idx[v / nvec] * nvec + v % nvec];
}

#define CU(x)                                                                          \
  do {                                                                                 \
    CUresult e_ = (x);                                                                 \
    if (e_ != CUDA_SUCCESS) {                                                          \
      const char* m_ = nullptr;                                                        \
      cuGetErrorString(e_, &m_);                                                       \
      fail(#x, __FILE__, __LINE__, m_ ? m_ : "unknown driver error");                  \
    }                                                                                  \
  } while (0)

struct CeCfg {
  bool memop = true;  // signal with cuStreamWriteValue32 / wait with cuStreamWaitValue32; else kernels
  int split = 1;      // streams (copies) per destination
};

struct DispatchCfg {
  bool tma = false;
  int unroll = 4;   // simt
  int stages = 3;   // tma
  int pieces = 2;   // tma: pieces per row (1: whole 14 KB rows, 2: halves)
  int blocks = 0;   // 0: per_sm * SMs
  int per_sm = 2;
  bool pdl = false; // launch as a programmatic dependent of the previous kernel on the stream
  bool sms_sweep = false;  // EPSIM_DISPATCH_SMS: reported as family peer_dispatch_sms with shape key sms
};

template <class K>
void launch_k(K kernel, int blocks, int threads, size_t smem, bool pdl, const DispatchArgs& a, cudaStream_t s) {
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = dim3(blocks);
  cfg.blockDim = dim3(threads);
  cfg.dynamicSmemBytes = smem;
  cfg.stream = s;
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr[0].val.programmaticStreamSerializationAllowed = 1;
  cfg.attrs = attr;
  cfg.numAttrs = pdl ? 1 : 0;
  CK(cudaLaunchKernelEx(&cfg, kernel, a));
}

void launch_dispatch(const DispatchCfg& c, int blocks, const DispatchArgs& a, cudaStream_t s) {
  if (c.tma) {
    const size_t smem = (size_t)c.stages * (a.nvec / c.pieces) * 16;
    const int key = c.stages * 10 + c.pieces;
    switch (key) {
      case 22: launch_k(dispatch_tma_kernel<2, 2>, blocks, 32, smem, c.pdl, a, s); break;
      case 32: launch_k(dispatch_tma_kernel<3, 2>, blocks, 32, smem, c.pdl, a, s); break;
      case 42: launch_k(dispatch_tma_kernel<4, 2>, blocks, 32, smem, c.pdl, a, s); break;
      case 21: launch_k(dispatch_tma_kernel<2, 1>, blocks, 32, smem, c.pdl, a, s); break;
      case 31: launch_k(dispatch_tma_kernel<3, 1>, blocks, 32, smem, c.pdl, a, s); break;
      case 41: launch_k(dispatch_tma_kernel<4, 1>, blocks, 32, smem, c.pdl, a, s); break;
      default: fail("dispatch", __FILE__, __LINE__, "tma stages must be 2..4 and pieces per row 1 or 2");
    }
  } else {
    switch (c.unroll) {
      case 1: launch_k(dispatch_simt_kernel<1>, blocks, 256, 0, c.pdl, a, s); break;
      case 2: launch_k(dispatch_simt_kernel<2>, blocks, 256, 0, c.pdl, a, s); break;
      case 4: launch_k(dispatch_simt_kernel<4>, blocks, 256, 0, c.pdl, a, s); break;
      case 8: launch_k(dispatch_simt_kernel<8>, blocks, 256, 0, c.pdl, a, s); break;
      default: fail("dispatch", __FILE__, __LINE__, "simt unroll must be 1, 2, 4 or 8");
    }
  }
}

// Modes: "0to1": GPU0 -> GPU1 only (the others idle; GPU1 waits on its counter). "alltoall":
// every GPU sends `rows` rows to every other GPU at once (at 2 GPUs: both directions).
// Timing (the same method as p2p_copy): time_it on GPU0's stream, CUDA events between back-to-back
// rounds. A round on GPU0 ends when its kernel ends: every CTA's stores are fenced and signalled
// and, in alltoall, GPU0's counter for each peer shows that peer's rows of this round have landed.
// Rounds need no barrier: a GPU's round r cannot end before every peer has signalled its round r
// (per-source counters: a fast peer's round r + 1 cannot stand in for a slow peer's round r).
// bytes = what one GPU sends in a round: rows x 2*hidden x (number of destinations).
void bench_dispatch(Group& P, Report& rep, const Options& opt) {
  const int n = P.n, H = 7168, nvec = H / 8;
  const int sms = sm_count();
  std::vector<int> Ts = opt.quick ? std::vector<int>{1171, 2048}
                                  : std::vector<int>{1, 16, 128, 512, 1171, 2048, 4682, 8192, 32768, 75000};
  // Configurations: the first is the 2026-11-29 shape (simt, 4 in flight, 2 CTAs per SM); 32 CTAs
  // is the SM budget a production dispatch overlapping GEMMs would get (>= 16 MiB only).
  std::vector<DispatchCfg> cfgs;
  // EPSIM_DISPATCH_CFGS (development knob): comma list of s<unroll>x<CTAs per SM>[p] |
  // t<stages>[f]x<CTAs per SM>[p] | s<unroll>b<CTAs>[p]; p = PDL launch, f = whole rows per bulk copy
  // (else halves). Default: simt u4 x2 CTAs/SM, the 2026-11-29 shape; 1 CTA/SM with 2 loads in
  // flight was the fastest simt shape in a sweep on nvidia-h200-x2 (see NOTES.md); b32: the SM
  // budget of a dispatch overlapping GEMMs (>= 16 MiB only).
  {
    const char* env = std::getenv("EPSIM_DISPATCH_CFGS");
    std::stringstream ss(env ? env : "s4x2,s2x1,s2x1p,s4x1p,s2x2p,t3x1p,t3x2p,s4b32");
    std::string item;
    while (std::getline(ss, item, ',')) {
      const size_t sep = item.find_first_of("xb", 1);
      if (item.size() < 4 || sep == std::string::npos) continue;
      DispatchCfg c;
      c.tma = item[0] == 't';
      (c.tma ? c.stages : c.unroll) = std::atoi(item.substr(1, sep - 1).c_str());
      if (c.tma && item.substr(1, sep - 1).find('f') != std::string::npos) c.pieces = 1;
      const int w = std::atoi(item.substr(sep + 1).c_str());
      if (item[sep] == 'b') { c.blocks = w; c.per_sm = 0; } else { c.per_sm = w; }
      c.pdl = item.back() == 'p';
      cfgs.push_back(c);
    }
  }
  Ts = env_int_list("EPSIM_DISPATCH_TOKENS", Ts);
  if (opt.quick && cfgs.size() > 3) cfgs.resize(3);
  // EPSIM_DISPATCH_SMS: throughput against the SMs the kernel runs on (issue 15): one simt u2 PDL
  // launch of N CTAs per listed N (one CTA per SM on an idle GPU), family peer_dispatch_sms, shape
  // key sms = N; `epsim calibrate` fits min(N x per-SM rate, ceiling) to it.
  for (int sms_n : env_int_list("EPSIM_DISPATCH_SMS", {})) {
    if (sms_n < 1 || sms_n > sms) continue;
    DispatchCfg c;
    c.unroll = 2;
    c.blocks = sms_n;
    c.per_sm = 0;
    c.pdl = true;
    c.sms_sweep = true;
    cfgs.push_back(c);
  }
  for (int d = 0; d < n; ++d) {
    CK(cudaSetDevice(d));
    for (auto k : {dispatch_tma_kernel<2, 1>, dispatch_tma_kernel<3, 1>, dispatch_tma_kernel<4, 1>})
      CK(cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, 4 * 14336));
  }
  std::vector<DevBuf<unsigned long long>> cnt(n), done(n), bad(n);
  for (int d = 0; d < n; ++d) {
    CK(cudaSetDevice(d));
    cnt[d].alloc(kMaxGpus);  // one counter per source
    done[d].alloc(1);
    bad[d].alloc(1);
    CK(cudaMemset(cnt[d].get(), 0, kMaxGpus * 8));
    CK(cudaMemset(done[d].get(), 0, 8));
    CK(cudaDeviceSynchronize());
  }
  // per receiver and source: the counter's value once the current round has landed
  using PerSource = std::array<unsigned long long, kMaxGpus>;
  std::vector<PerSource> cnt_epoch(n, PerSource{});
  std::vector<unsigned long long> done_epoch(n, 0);
  // copy-engine variants: EPSIM_DISPATCH_CE = comma list of m<split> (stream memop signal/wait) |
  // k<split> (1-thread kernels), or "none"
  std::vector<CeCfg> ce_cfgs;
  {
    const char* env = std::getenv("EPSIM_DISPATCH_CE");
    std::stringstream ss(env ? env : opt.quick ? "m1,k1" : "m1,m2,m4,k1");
    std::string item;
    while (std::getline(ss, item, ','))
      if (item.size() >= 2 && (item[0] == 'm' || item[0] == 'k')) {
        CeCfg c;
        c.memop = item[0] == 'm';
        c.split = std::clamp(std::atoi(item.c_str() + 1), 1, kCeMaxSplit);
        ce_cfgs.push_back(c);
      }
  }
  // hybrid variants: EPSIM_DISPATCH_HYBRID = comma list of the copy engine's share of each
  // destination's rows, in percent (the SMs send the rest at the same time), or "none"
  std::vector<int> hybrid_pcts;
  for (int pct : env_int_list("EPSIM_DISPATCH_HYBRID", opt.quick ? std::vector<int>{50} : std::vector<int>{50, 75}))
    if (pct > 0 && pct < 100) hybrid_pcts.push_back(pct);
  const bool need_ce = !ce_cfgs.empty() || !hybrid_pcts.empty();  // flags, lanes, permuted rows
  // cuStreamWaitValue32 on a flag a peer writes after its copy: with FLUSH, where the platform
  // offers it, the peer's earlier writes are visible to work after the wait; without it the
  // driver's documentation allows them to be reordered (the poison scan checks what happens).
  std::vector<unsigned> wait_value(n, CU_STREAM_WAIT_VALUE_GEQ);
  bool flush = true;
  for (int d = 0; d < n; ++d) {
    CUdevice dev;
    int can = 0;
    CU(cuDeviceGet(&dev, d));
    CU(cuDeviceGetAttribute(&can, CU_DEVICE_ATTRIBUTE_CAN_FLUSH_REMOTE_WRITES, dev));
    if (can) wait_value[d] |= CU_STREAM_WAIT_VALUE_FLUSH;
    flush = flush && can;
  }
  const std::string wait_note = flush ? "; waits flush remote writes (CU_STREAM_WAIT_VALUE_FLUSH)"
                                      : "; the platform offers no CU_STREAM_WAIT_VALUE_FLUSH: wait without it";
  std::vector<DevBuf<unsigned>> ce_flag(n);
  // extra streams (lanes 1..) per GPU for several copies at once, and events to fork/join them
  const int ce_lanes = (n - 1) * kCeMaxSplit;
  std::vector<std::vector<cudaStream_t>> ce_ls(n, std::vector<cudaStream_t>(ce_lanes));
  std::vector<std::vector<cudaEvent_t>> ce_ev(n, std::vector<cudaEvent_t>(ce_lanes));
  unsigned ce_seq = 0;
  if (need_ce)
    for (int d = 0; d < n; ++d) {
      CK(cudaSetDevice(d));
      ce_flag[d].alloc(kMaxGpus * kCeMaxSplit);
      CK(cudaMemset(ce_flag[d].get(), 0, kMaxGpus * kCeMaxSplit * sizeof(unsigned)));
      for (int l = 0; l < ce_lanes; ++l) {
        CK(cudaStreamCreateWithFlags(&ce_ls[d][l], cudaStreamNonBlocking));
        CK(cudaEventCreateWithFlags(&ce_ev[d][l], cudaEventDisableTiming));
      }
      CK(cudaDeviceSynchronize());
    }
  for (int T : Ts) {
    std::vector<DevBuf<bf16>> x(n), recv(n), xp(n);
    std::vector<DevBuf<int>> idx(n);
    const size_t slot = (size_t)T * H;  // elements per (source) slot
    for (int d = 0; d < n; ++d) {
      CK(cudaSetDevice(d));
      x[d].alloc(slot);
      recv[d].alloc(slot * n);  // slot s holds the rows from source s (own slot unused)
      fill_random(x[d].get(), x[d].size(), 9200 + d + T, 0.25f, 1.f);
      std::vector<int> perm(T);
      std::iota(perm.begin(), perm.end(), 0);
      std::shuffle(perm.begin(), perm.end(), std::mt19937(T + d));
      idx[d].alloc(T);
      CK(cudaMemcpy(idx[d].get(), perm.data(), T * sizeof(int), cudaMemcpyHostToDevice));
      if (need_ce) {  // the permuted rows the copy-engine and hybrid variants send (built untimed)
        xp[d].alloc(slot);
        gather_rows_kernel<<<sms * 4, 256>>>(reinterpret_cast<const uint4*>(x[d].get()), idx[d].get(), T, nvec,
                                             reinterpret_cast<uint4*>(xp[d].get()));
        CK_LAST();
      }
      CK(cudaDeviceSynchronize());
    }
    for (int all = 1; all >= 0; --all) {
      const int ndest = all ? n - 1 : 1;
      const double bytes = (double)T * H * 2 * ndest;  // sent by one GPU per round
      // Poison every receive buffer, run one checking round (receivers wait for the signals, then
      // scan for poison at once), then compare every received row with its source row. Adds the
      // poisoned lanes seen and the bad words to nbad, the words compared to words.
      auto check_round = [&](const std::function<void(bool)>& round, long long& nbad, long long& words) {
        for (int d = 0; d < n; ++d) {
          CK(cudaSetDevice(d));
          poison(recv[d].get(), recv[d].size());
          CK(cudaMemset(bad[d].get(), 0, 8));
          CK(cudaDeviceSynchronize());
        }
        round(true);
        P.sync_all();
        for (int g = 0; g < n; ++g) {
          CK(cudaSetDevice(g));
          unsigned long long h = 0;
          CK(cudaMemcpy(&h, bad[g].get(), 8, cudaMemcpyDeviceToHost));
          nbad += (long long)h;  // poisoned lanes seen after the signal
          CK(cudaMemset(bad[g].get(), 0, 8));
          for (int src = 0; src < n; ++src) {
            if (src == g || !(all || (src == 0 && g == 1))) continue;
            compare_rows_kernel<<<sms * 4, 256>>>(
                reinterpret_cast<const uint4*>(recv[g].get() + (size_t)src * slot),
                reinterpret_cast<const uint4*>(x[src].get()), idx[src].get(), T, nvec, bad[g].get());
            CK_LAST();
            words += (long long)T * nvec;
          }
          CK(cudaMemcpy(&h, bad[g].get(), 8, cudaMemcpyDeviceToHost));
          nbad += (long long)h;
        }
        CK(cudaSetDevice(0));
      };
      // Checks one family's round (check_round), times it per round (events between rounds, with
      // `spin_round` us of GPU spin queued ahead per round so that the host's enqueue stays ahead)
      // and back to back (`spin_pipe`), and reports both rows.
      using Shape = std::vector<std::pair<std::string, long long>>;
      auto measure = [&](const std::function<void(bool)>& round, double spin_round, double spin_pipe, const Shape& shape,
                         const std::string& variant, const std::string& note, const char* family = "peer_dispatch") {
        long long nbad = 0, words = 0;
        check_round(round, nbad, words);
        auto t = time_it(P.s[0], [&](int) { round(false); }, opt, -1, spin_round);
        P.sync_all();
        auto tp = time_pipelined(P.s[0], [&] { round(false); }, t.med, spin_pipe);
        P.sync_all();
        const Check chk = exact(nbad, (size_t)words, note);
        rep.add(make_res(family, variant.c_str(), shape, t, bytes, chk));
        rep.add(make_res(family, (variant + "_pipelined").c_str(), shape, tp, bytes, chk));
      };
      auto dest_of = [&](int src, int k) { return all ? (src + 1 + k) % n : 1; };
      // Signals per round on each receiver from each source, for `blocks` CTAs spread over the
      // destinations; a round moves every receiver's targets on by them.
      auto incoming_of = [&](int blocks) {
        std::vector<PerSource> in(n, PerSource{});
        for (int src = 0; src < (all ? n : 1); ++src)
          for (int k = 0; k < ndest; ++k) in[dest_of(src, k)][src] += (blocks - k + ndest - 1) / ndest;
        return in;
      };
      auto receives = [](const PerSource& in) {
        return std::any_of(in.begin(), in.end(), [](unsigned long long v) { return v > 0; });
      };
      auto next_round = [&](const std::vector<PerSource>& in) {
        for (int g = 0; g < n; ++g)
          for (int s = 0; s < kMaxGpus; ++s) cnt_epoch[g][s] += in[g][s];
      };
      auto waits_of = [&](int g) {
        CounterWait w;
        w.cnt = cnt[g].get();
        for (int s = 0; s < kMaxGpus; ++s) w.target[s] = cnt_epoch[g][s];
        return w;
      };
      // The SM kernel's arguments for source `src`: its first `rows` rows to every destination;
      // with `wait`, the grid's last CTA waits for what `incoming` says comes to `src` this round.
      auto sm_args = [&](int src, int rows, int blocks, bool wait, const PerSource& incoming) {
        DispatchArgs a{};
        a.x = reinterpret_cast<const uint4*>(x[src].get());
        a.idx = idx[src].get();
        a.rows = rows;
        a.nvec = nvec;
        a.ndest = ndest;
        for (int k = 0; k < ndest; ++k) {
          const int dst = dest_of(src, k);
          a.out[k] = reinterpret_cast<uint4*>(recv[dst].get() + (size_t)src * slot);
          a.sig[k] = cnt[dst].get() + src;
        }
        if (wait && receives(incoming)) {
          done_epoch[src] += blocks;
          a.done = done[src].get();
          a.done_target = done_epoch[src];
          a.wait = waits_of(src);
        }
        return a;
      };
      for (const DispatchCfg& c : cfgs) {
        if (!c.sms_sweep && c.blocks == 32 && (double)T * H * 2 < (16 << 20)) continue;
        const int want = c.blocks ? c.blocks : c.per_sm * sms;
        // at least one CTA per destination; no more CTAs than 16-byte vectors (simt) / pieces (tma)
        const int blocks = std::max(ndest, std::min(want, c.tma ? c.pieces * T * ndest : std::max(1, T * nvec / 256) * ndest));
        bool dup = false;  // small T: several configurations clamp to the same launch
        for (const DispatchCfg& o : cfgs) {
          if (&o == &c) break;
          const int ow = o.blocks ? o.blocks : o.per_sm * sms;
          const int ob = std::max(ndest, std::min(ow, o.tma ? o.pieces * T * ndest : std::max(1, T * nvec / 256) * ndest));
          if (o.sms_sweep == c.sms_sweep && o.tma == c.tma && o.pdl == c.pdl &&
              (o.tma ? o.stages == c.stages && o.pieces == c.pieces : o.unroll == c.unroll) && ob == blocks &&
              !(o.blocks == 32 && (double)T * H * 2 < (16 << 20)))
            dup = true;
        }
        if (dup) continue;
        const std::vector<PerSource> incoming = incoming_of(blocks);
        // One round. check: no in-kernel wait; every receiver runs wait_scan instead.
        auto round = [&](bool check) {
          next_round(incoming);
          for (int src = 0; src < (all ? n : 1); ++src) {
            CK(cudaSetDevice(src));
            launch_dispatch(c, blocks, sm_args(src, T, blocks, !check, incoming[src]), P.s[src]);
          }
          for (int g = 0; g < n; ++g) {
            if (!receives(incoming[g])) continue;
            CK(cudaSetDevice(g));
            if (check) {
              unsigned mask = 0;
              for (int src = 0; src < n; ++src)
                if (src != g && (all || src == 0)) mask |= 1u << src;
              wait_scan_kernel<<<sms, 512, 0, P.s[g]>>>(waits_of(g), reinterpret_cast<const uint4*>(recv[g].get()),
                                                         (long long)slot / 8, mask, n, bad[g].get());
              CK_LAST();
            } else if (!all) {
              wait_kernel<<<1, 1, 0, P.s[g]>>>(waits_of(g));
              CK_LAST();
            }
          }
          CK(cudaSetDevice(0));
        };
        Shape shape = {
            {"tokens", T}, {"hidden", H}, {"bytes", (long long)bytes},
            {"bytes_per_peer", (long long)T * H * 2}, {"gpus", all ? n : 2}, {"blocks", blocks}};
        if (c.tma) {
          shape.push_back({"stages", c.stages});
          shape.push_back({"pieces", c.pieces});
        } else {
          shape.push_back({"unroll", c.unroll});
        }
        shape.push_back({"pdl", c.pdl ? 1 : 0});
        if (c.sms_sweep) shape.push_back({"sms", blocks});
        measure(round, 15.0, 20.0, shape, std::string(c.tma ? "own_tma_" : "own_") + (all ? "alltoall" : "0to1"),
                "exact, every row; receivers scanned for poison right after the signal; "
                "bytes = sent by one GPU per round", c.sms_sweep ? "peer_dispatch_sms" : "peer_dispatch");
      }
      // ---- copy-engine variants (see CeFlags): same rounds, checks and timing
      for (size_t ci = 0; ci < ce_cfgs.size(); ++ci) {
        const CeCfg& c = ce_cfgs[ci];
        const int S = std::min(c.split, T);  // parts per destination (row boundaries)
        bool dup = false;
        for (size_t o = 0; o < ci; ++o)
          if (ce_cfgs[o].memop == c.memop && std::min(ce_cfgs[o].split, T) == S) dup = true;
        if (dup) continue;
        const int lanes = ndest * S;
        auto flag_at = [&](int dst, int src, int part) { return ce_flag[dst].get() + src * kCeMaxSplit + part; };
        // the flags GPU g waits on in a round (every part of every source that sends to it)
        auto waits_of = [&](int g, CeFlags& f) {
          f.nwait = 0;
          for (int src = 0; src < n; ++src)
            if (src != g && (all || (src == 0 && g == 1)))
              for (int part = 0; part < S; ++part) f.wait[f.nwait++] = flag_at(g, src, part);
        };
        auto round = [&](bool check) {
          const unsigned seq = ++ce_seq;
          for (int src = 0; src < (all ? n : 1); ++src) {
            CK(cudaSetDevice(src));
            cudaStream_t s0 = P.s[src];
            if (lanes > 1) {
              CK(cudaEventRecord(P.ev[src], s0));
              for (int l = 1; l < lanes; ++l) CK(cudaStreamWaitEvent(ce_ls[src][l - 1], P.ev[src], 0));
            }
            CeFlags last{};  // the 1-thread kernel that ends the round on s0 (kernel signalling)
            last.seq = seq;
            for (int k = 0; k < ndest; ++k)
              for (int part = 0; part < S; ++part) {
                const int l = k * S + part, dst = dest_of(src, k);
                cudaStream_t st = l ? ce_ls[src][l - 1] : s0;
                const size_t r0 = (size_t)T * part / S, r1 = (size_t)T * (part + 1) / S;
                CK(cudaMemcpyAsync(recv[dst].get() + (size_t)src * slot + r0 * H, xp[src].get() + r0 * H,
                                   (r1 - r0) * H * 2, cudaMemcpyDeviceToDevice, st));
                unsigned* flag = flag_at(dst, src, part);
                if (c.memop) {
                  CU(cuStreamWriteValue32(st, (CUdeviceptr)(uintptr_t)flag, seq, CU_STREAM_WRITE_VALUE_DEFAULT));
                } else if (lanes == 1) {
                  last.sig[last.nsig++] = flag;
                } else {
                  CeFlags f{};
                  f.seq = seq;
                  f.sig[f.nsig++] = flag;
                  ce_signal_wait_kernel<<<1, 1, 0, st>>>(f);
                  CK_LAST();
                }
              }
            if (lanes > 1)
              for (int l = 1; l < lanes; ++l) {
                CK(cudaEventRecord(ce_ev[src][l - 1], ce_ls[src][l - 1]));
                CK(cudaStreamWaitEvent(s0, ce_ev[src][l - 1], 0));
              }
            // a sender that also receives (alltoall) ends its round once every peer's rows are in
            if (!check && all) {
              if (c.memop) {
                CeFlags f{};
                waits_of(src, f);
                for (int i = 0; i < f.nwait; ++i)
                  CU(cuStreamWaitValue32(s0, (CUdeviceptr)(uintptr_t)f.wait[i], seq, wait_value[src]));
              } else {
                waits_of(src, last);
              }
            }
            if (!c.memop && (last.nsig || last.nwait)) {
              ce_signal_wait_kernel<<<1, 1, 0, s0>>>(last);
              CK_LAST();
            }
          }
          for (int g = 0; g < n; ++g) {
            CeFlags f{};
            f.seq = seq;
            waits_of(g, f);
            if (!f.nwait || (all && !check)) continue;  // alltoall senders waited above
            CK(cudaSetDevice(g));
            if (c.memop) {
              for (int i = 0; i < f.nwait; ++i)
                CU(cuStreamWaitValue32(P.s[g], (CUdeviceptr)(uintptr_t)f.wait[i], seq, wait_value[g]));
              f.nwait = 0;  // the stream has waited; the scan kernel starts after it
            }
            if (check) {
              unsigned mask = 0;
              for (int src = 0; src < n; ++src)
                if (src != g && (all || src == 0)) mask |= 1u << src;
              ce_wait_scan_kernel<<<sms, 512, 0, P.s[g]>>>(f, reinterpret_cast<const uint4*>(recv[g].get()),
                                                            (long long)slot / 8, mask, n, bad[g].get());
              CK_LAST();
            } else if (!c.memop) {
              ce_signal_wait_kernel<<<1, 1, 0, P.s[g]>>>(f);
              CK_LAST();
            }
          }
          CK(cudaSetDevice(0));
        };
        // enqueuing a round takes the host several us per stream operation on every GPU: queue a
        // longer GPU spin ahead so that the host stays ahead of the GPUs
        const double spin = 40.0 + 25.0 * lanes * n;
        const Shape shape = {
            {"tokens", T}, {"hidden", H}, {"bytes", (long long)bytes},
            {"bytes_per_peer", (long long)T * H * 2}, {"gpus", all ? n : 2}, {"split", S},
            {"signal", c.memop ? 0 : 1}};
        measure(round, spin, spin, shape, std::string("copyengine_") + (all ? "alltoall" : "0to1"),
                std::string("exact, every row; receivers scanned for poison right after the ") +
                    (c.memop ? "cuStreamWaitValue32 on the flag" : "flag (kernel spin)") +
                    "; bytes = sent by one GPU per round; source = the permuted rows (the "
                    "gather is not in the timed round)" + (c.memop ? wait_note : std::string()));
      }
      // ---- hybrid variants: both data paths at once on one link. Of each destination's rows the
      // first (100 - pct) % go through the SM kernel (simt, 2 loads in flight, 1 CTA per SM; the
      // gather inside), the rest through the copy engine on a second stream from the permuted rows
      // (as copyengine_*); the destination waits for both signals (its counter, its memop flag). A
      // copy engine alone streams at ~397 GB/s but starts slowly; SM stores start at once and stream
      // at ~370: together the link may fill sooner. Rounds end on GPU0's stream after its kernel,
      // the join of its copy stream and (all-to-all) its waits on the incoming flags.
      for (int pct : hybrid_pcts) {
        const int r_ce = (int)((long long)T * pct / 100), r_sm = T - r_ce;
        if (r_ce < 1 || r_sm < 1) continue;
        DispatchCfg c;
        c.unroll = 2;
        const int blocks = std::max(ndest, std::min(sms, std::max(1, r_sm * nvec / 256) * ndest));
        auto flag_at = [&](int dst, int src) { return ce_flag[dst].get() + src * kCeMaxSplit; };
        auto sends_to = [&](int src, int g) { return src != g && (all || (src == 0 && g == 1)); };
        const std::vector<PerSource> incoming = incoming_of(blocks);
        auto round = [&](bool check) {
          const unsigned seq = ++ce_seq;
          next_round(incoming);
          for (int src = 0; src < (all ? n : 1); ++src) {
            CK(cudaSetDevice(src));
            cudaStream_t s0 = P.s[src], s1 = ce_ls[src][0];
            CK(cudaEventRecord(P.ev[src], s0));
            CK(cudaStreamWaitEvent(s1, P.ev[src], 0));
            for (int k = 0; k < ndest; ++k) {
              const int dst = dest_of(src, k);
              CK(cudaMemcpyAsync(recv[dst].get() + (size_t)src * slot + (size_t)r_sm * H, xp[src].get() + (size_t)r_sm * H,
                                 (size_t)r_ce * H * 2, cudaMemcpyDeviceToDevice, s1));
              CU(cuStreamWriteValue32(s1, (CUdeviceptr)(uintptr_t)flag_at(dst, src), seq, CU_STREAM_WRITE_VALUE_DEFAULT));
            }
            // all-to-all: the last CTA waits for the peers' SM rows
            launch_dispatch(c, blocks, sm_args(src, r_sm, blocks, !check && all, incoming[src]), s0);
            CK(cudaEventRecord(ce_ev[src][0], s1));
            CK(cudaStreamWaitEvent(s0, ce_ev[src][0], 0));
            if (!check && all)
              for (int from = 0; from < n; ++from)
                if (sends_to(from, src))
                  CU(cuStreamWaitValue32(s0, (CUdeviceptr)(uintptr_t)flag_at(src, from), seq, wait_value[src]));
          }
          for (int g = 0; g < n; ++g) {
            if (!receives(incoming[g]) || (all && !check)) continue;  // alltoall senders waited above
            CK(cudaSetDevice(g));
            unsigned mask = 0;
            for (int from = 0; from < n; ++from)
              if (sends_to(from, g)) {
                mask |= 1u << from;
                CU(cuStreamWaitValue32(P.s[g], (CUdeviceptr)(uintptr_t)flag_at(g, from), seq, wait_value[g]));
              }
            if (check) {
              wait_scan_kernel<<<sms, 512, 0, P.s[g]>>>(waits_of(g), reinterpret_cast<const uint4*>(recv[g].get()),
                                                         (long long)slot / 8, mask, n, bad[g].get());
            } else {
              wait_kernel<<<1, 1, 0, P.s[g]>>>(waits_of(g));
            }
            CK_LAST();
          }
          CK(cudaSetDevice(0));
        };
        const double spin = 40.0 + 25.0 * 2 * n;
        const Shape shape = {
            {"tokens", T}, {"hidden", H}, {"bytes", (long long)bytes},
            {"bytes_per_peer", (long long)T * H * 2}, {"gpus", all ? n : 2}, {"blocks", blocks},
            {"unroll", c.unroll}, {"pdl", 0}, {"ce_pct", pct}};
        measure(round, spin, spin, shape, std::string("hybrid_") + (all ? "alltoall" : "0to1"),
                "exact, every row; receivers scanned for poison right after both signals (counter "
                "and memop flag); bytes = sent by one GPU per round; the copy engine's rows come "
                "from the permuted rows (built untimed), the SMs gather theirs" + wait_note);
      }
    }
  }
  if (need_ce)
    for (int d = 0; d < n; ++d) {
      CK(cudaSetDevice(d));
      CK(cudaDeviceSynchronize());
      for (int l = 0; l < ce_lanes; ++l) {
        CK(cudaStreamDestroy(ce_ls[d][l]));
        CK(cudaEventDestroy(ce_ev[d][l]));
      }
    }
  CK(cudaSetDevice(0));
}

}  // namespace

void suite_hbm(Report& rep, const Options& opt) {
  if (opt.want("hbm")) bench_hbm(rep, opt);
}

void suite_comm(Report& rep, const Options& opt) {
  bool two = opt.want("p2p") || opt.want("nccl") || opt.want("dispatch");
  if (!two) return;
  Group P(opt.gpus);
  if (!P.ok) {
    log("comm: %s; skipping p2p_copy, nccl_alltoall, peer_dispatch\n", P.why.c_str());
    return;
  }
  log("comm: %d GPUs\n", P.n);
  if (opt.want("p2p")) bench_p2p(P, rep, opt);
#ifdef EPSIM_HAVE_NCCL
  if (opt.want("nccl")) bench_nccl(P, rep, opt);
#else
  log("comm: built without NCCL; skipping nccl_alltoall\n");
#endif
  if (opt.want("dispatch")) bench_dispatch(P, rep, opt);
}

}  // namespace epsim::bench
