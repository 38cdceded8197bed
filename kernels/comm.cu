// epsim-bench: ceilings and communication: HBM copy, P2P copy, NCCL all-to-all on 2 GPUs, and the
// project's own NVLink peer-pointer dispatch (each GPU writes its tokens straight into the peer's
// receive buffer, then signals the peer through a counter in the peer's memory).
#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "common.h"
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

// ---------------------------------------------------------------- two-GPU set-up
struct Pair {
  cudaStream_t s[2];
  cudaEvent_t ev[2];
  bool ok = false;
  Pair() {
    int n = 0;
    CK(cudaGetDeviceCount(&n));
    if (n < 2) return;
    int a = 0, b = 0;
    CK(cudaDeviceCanAccessPeer(&a, 0, 1));
    CK(cudaDeviceCanAccessPeer(&b, 1, 0));
    if (!a || !b) return;
    for (int d = 0; d < 2; ++d) {
      CK(cudaSetDevice(d));
      cudaError_t e = cudaDeviceEnablePeerAccess(1 - d, 0);
      if (e == cudaErrorPeerAccessAlreadyEnabled) (void)cudaGetLastError();
      else CK(e);
      CK(cudaStreamCreateWithFlags(&s[d], cudaStreamNonBlocking));
      CK(cudaEventCreateWithFlags(&ev[d], cudaEventDisableTiming));
    }
    CK(cudaSetDevice(0));
    ok = true;
  }
  ~Pair() {
    if (!ok) return;
    for (int d = 0; d < 2; ++d) {
      cudaSetDevice(d);
      cudaStreamDestroy(s[d]);
      cudaEventDestroy(ev[d]);
    }
    cudaSetDevice(0);
  }
  // s[1] waits for what s[0] has queued so far (and the other way round).
  // Both leave device 0 current.
  void fork() {
    CK(cudaSetDevice(0));
    CK(cudaEventRecord(ev[0], s[0]));
    CK(cudaSetDevice(1));
    CK(cudaStreamWaitEvent(s[1], ev[0], 0));
    CK(cudaSetDevice(0));
  }
  void join() {
    CK(cudaSetDevice(1));
    CK(cudaEventRecord(ev[1], s[1]));
    CK(cudaSetDevice(0));
    CK(cudaStreamWaitEvent(s[0], ev[1], 0));
  }
};

// ---------------------------------------------------------------- P2P copy (copy engines)
void bench_p2p(Pair& P, Report& rep, const Options& opt) {
  std::vector<size_t> sizes = opt.quick ? std::vector<size_t>{16ull << 20, 1ull << 30}
                                        : pow4_sizes(4096, 1ull << 30);
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
        if (bidir) P.fork();
        CK(cudaMemcpyPeerAsync(dst[1].get(), 1, src[0].get(), 0, bytes, P.s[0]));
        if (bidir) {
          CK(cudaSetDevice(1));
          CK(cudaMemcpyPeerAsync(dst[0].get(), 0, src[1].get(), 1, bytes, P.s[1]));
          P.join();
        }
      };
      run(0);
      CK(cudaStreamSynchronize(P.s[0]));
      CK(cudaSetDevice(1));
      long long bad = count_diff(dst[1].get(), src[0].get(), bytes);
      if (bidir) bad += count_diff(dst[0].get(), src[1].get(), bytes);
      CK(cudaSetDevice(0));
      auto t = time_it(P.s[0], run, opt);
      rep.add(make_res("p2p_copy", bidir ? "ce_bidir" : "ce_0to1",
                       {{"bytes", (long long)bytes}, {"gpus", 2}}, t, (bidir ? 2.0 : 1.0) * bytes,
                       exact(bad, bytes / 16 * (bidir ? 2 : 1),
                             bidir ? "exact; bytes = both directions" : "exact; one direction")));
    }
  }
}

// ---------------------------------------------------------------- NCCL all-to-all
#ifdef EPSIM_HAVE_NCCL
void bench_nccl(Pair& P, Report& rep, const Options& opt) {
  ncclComm_t comm[2];
  int devs[2] = {0, 1};
  if (ncclCommInitAll(comm, 2, devs) != ncclSuccess) fail("ncclCommInitAll", __FILE__, __LINE__, "");
  std::vector<size_t> sizes = opt.quick ? std::vector<size_t>{4096, 64ull << 20}
                                        : pow4_sizes(4096, 1ull << 30);
  for (size_t bytes : sizes) {  // bytes = each rank's send buffer (bytes/2 to each rank)
    const size_t chunk = bytes / 2;
    DevBuf<bf16> sb[2], rb[2];
    for (int d = 0; d < 2; ++d) {
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
      for (int r = 0; r < 2 && e == ncclSuccess; ++r)
        for (int p = 0; p < 2 && e == ncclSuccess; ++p) {
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
    for (int d = 0; d < 2; ++d) CK(cudaStreamSynchronize(P.s[d]));
    long long bad = 0;
    for (int r = 0; r < 2; ++r) {
      CK(cudaSetDevice(r));
      for (int p = 0; p < 2; ++p)
        bad += count_diff(reinterpret_cast<char*>(rb[r].get()) + p * chunk,
                          reinterpret_cast<char*>(sb[p].get()) + r * chunk, chunk);
    }
    CK(cudaSetDevice(0));
    auto t = time_it(P.s[0], run, opt);
    rep.add(make_res("nccl_alltoall", "nccl", {{"bytes", (long long)bytes}, {"gpus", 2}}, t, (double)bytes,
                     exact(bad, bytes / 16 * 2, "exact; bytes = one rank's send buffer (algbw)")));
  }
  for (int d = 0; d < 2; ++d) ncclCommDestroy(comm[d]);
}
#endif

// ---------------------------------------------------------------- own peer-pointer dispatch
// out_peer[row] = x[idx[row]] with 16-byte loads and remote stores through the peer pointer; then
// every thread fences (system scope), and thread 0 of each block adds 1 to the peer's counter.
__device__ __forceinline__ unsigned long long ld_acquire_sys(const unsigned long long* p) {
  unsigned long long v;
  asm volatile("ld.acquire.sys.global.u64 %0, [%1];" : "=l"(v) : "l"(p) : "memory");
  return v;
}

// After signalling, block 0 waits until counter wa reaches ta and wb (may be null) reaches tb, so
// the kernel ends only when the data this GPU waits for has landed (all blocks are co-resident:
// the grid is at most 2 blocks per SM).
__global__ void __launch_bounds__(256) dispatch_kernel(const uint4* __restrict__ x,
                                                       const int* __restrict__ idx, int rows, int nvec,
                                                       uint4* __restrict__ peer_out,
                                                       unsigned long long* peer_counter,
                                                       const unsigned long long* wa, unsigned long long ta,
                                                       const unsigned long long* wb, unsigned long long tb) {
  // The rows*nvec 16-byte vectors are spread evenly over every thread of the grid (no tail of
  // whole rows): vector v is column v % nvec of destination row v / nvec, read from source row
  // idx[v / nvec]. Four loads are in flight per thread before the four remote stores.
  const unsigned total = (unsigned)rows * (unsigned)nvec;  // < 2^32 (checked by the caller)
  const unsigned stride = gridDim.x * blockDim.x;
  for (unsigned v = blockIdx.x * blockDim.x + threadIdx.x; v < total; v += 4 * stride) {
    uint4 val[4];
#pragma unroll
    for (int u = 0; u < 4; ++u) {
      unsigned w = v + u * stride;
      if (w < total) {
        unsigned row = w / (unsigned)nvec, col = w - row * (unsigned)nvec;
        val[u] = __ldg(x + (long long)__ldg(idx + row) * nvec + col);
      }
    }
#pragma unroll
    for (int u = 0; u < 4; ++u) {
      unsigned w = v + u * stride;
      if (w < total) peer_out[w] = val[u];
    }
  }
  __threadfence_system();
  __syncthreads();
  if (threadIdx.x == 0) {
    atomicAdd_system(peer_counter, 1ull);
    if (blockIdx.x == 0) {
      if (wa)
        while (ld_acquire_sys(wa) < ta) __nanosleep(32);
      if (wb)
        while (ld_acquire_sys(wb) < tb) __nanosleep(32);
    }
  }
}

// Wait until counter a reaches ta and counter b (may be null; may be the peer's) reaches tb.
__global__ void wait_kernel(const unsigned long long* a, unsigned long long ta,
                            const unsigned long long* b, unsigned long long tb) {
  while (ld_acquire_sys(a) < ta) __nanosleep(64);
  if (b)
    while (ld_acquire_sys(b) < tb) __nanosleep(64);
}
// Two-GPU barrier: bump the peer's counter, wait for ours.
__global__ void barrier_kernel(unsigned long long* peer, const unsigned long long* mine,
                               unsigned long long target) {
  atomicAdd_system(peer, 1ull);
  __threadfence_system();
  while (ld_acquire_sys(mine) < target) __nanosleep(32);
}

void bench_dispatch(Pair& P, Report& rep, const Options& opt) {
  const int H = 7168, nvec = H / 8;
  std::vector<int> Ts = opt.quick ? std::vector<int>{2048} : std::vector<int>{1, 16, 128, 512, 1171, 2048, 4682, 8192, 32768, 75000};
  DevBuf<unsigned long long> cnt[2], bar[2];
  for (int d = 0; d < 2; ++d) {
    CK(cudaSetDevice(d));
    cnt[d].alloc(1);
    bar[d].alloc(1);
    CK(cudaMemset(cnt[d].get(), 0, 8));
    CK(cudaMemset(bar[d].get(), 0, 8));
    CK(cudaDeviceSynchronize());
  }
  unsigned long long epoch_cnt[2] = {0, 0}, epoch_bar = 0;
  const int sms = sm_count();
  for (int T : Ts) {
    DevBuf<bf16> x[2], recv[2];
    DevBuf<int> idx[2];
    for (int d = 0; d < 2; ++d) {
      CK(cudaSetDevice(d));
      x[d].alloc((size_t)T * H);
      recv[d].alloc((size_t)T * H);
      fill_random(x[d].get(), x[d].size(), 9200 + d + T, 0.25f, 1.f);
      std::vector<int> perm(T);
      std::iota(perm.begin(), perm.end(), 0);
      std::shuffle(perm.begin(), perm.end(), std::mt19937(T + d));
      idx[d].alloc(T);
      CK(cudaMemcpy(idx[d].get(), perm.data(), T * sizeof(int), cudaMemcpyHostToDevice));
      CK(cudaDeviceSynchronize());
    }
    const double bytes = (double)T * H * 2;  // per direction
    for (int bidir = 1; bidir >= 0; --bidir) {
      for (int nb : {2 * sms, 32}) {  // 256 threads per block
        if (nb == 32 && bytes < (16 << 20)) continue;
        const int blocks = std::min(nb, T);
        auto one = [&](cudaEvent_t* start, cudaEvent_t* stop) {
          ++epoch_bar;
          for (int d = 0; d < 2; ++d) {
            CK(cudaSetDevice(d));
            barrier_kernel<<<1, 1, 0, P.s[d]>>>(bar[1 - d].get(), bar[d].get(), epoch_bar);
            CK_LAST();
          }
          CK(cudaSetDevice(0));
          if (start) CK(cudaEventRecord(*start, P.s[0]));
          // Targets after this round: each dispatching GPU adds `blocks` to its peer's counter.
          epoch_cnt[1] += blocks;
          if (bidir) epoch_cnt[0] += blocks;
          // GPU0 (whose events time the round) ends when what it sent has landed on GPU1 (GPU1's
          // counter, read through the peer pointer) and, bidir, what GPU1 sent has landed on it.
          CK(cudaSetDevice(0));
          dispatch_kernel<<<blocks, 256, 0, P.s[0]>>>(reinterpret_cast<const uint4*>(x[0].get()), idx[0].get(), T,
                                                      nvec, reinterpret_cast<uint4*>(recv[1].get()), cnt[1].get(),
                                                      cnt[1].get(), epoch_cnt[1],
                                                      bidir ? cnt[0].get() : nullptr, epoch_cnt[0]);
          CK_LAST();
          CK(cudaSetDevice(1));
          if (bidir)
            dispatch_kernel<<<blocks, 256, 0, P.s[1]>>>(reinterpret_cast<const uint4*>(x[1].get()), idx[1].get(), T,
                                                        nvec, reinterpret_cast<uint4*>(recv[0].get()), cnt[0].get(),
                                                        cnt[1].get(), epoch_cnt[1], nullptr, 0);
          else
            wait_kernel<<<1, 1, 0, P.s[1]>>>(cnt[1].get(), epoch_cnt[1], nullptr, 0);
          CK_LAST();
          CK(cudaSetDevice(0));
          if (stop) CK(cudaEventRecord(*stop, P.s[0]));
        };
        // check
        for (int d = 0; d < 2; ++d) {
          CK(cudaSetDevice(d));
          poison(recv[d].get(), recv[d].size());
          CK(cudaDeviceSynchronize());
        }
        one(nullptr, nullptr);
        for (int d = 0; d < 2; ++d) {
          CK(cudaSetDevice(d));
          CK(cudaStreamSynchronize(P.s[d]));
        }
        long long bad = 0;
        for (int d = 0; d < (bidir ? 2 : 1); ++d) {  // rows sent by d, received on 1-d
          CK(cudaSetDevice(1 - d));
          std::vector<int> perm(T);
          CK(cudaMemcpy(perm.data(), idx[d].get(), T * sizeof(int), cudaMemcpyDeviceToHost));
          // compare a gathered copy of x[d] (made on 1-d through the peer pointer) with recv[1-d]
          DevBuf<bf16> g((size_t)T * H);
          for (int r = 0; r < T; r += std::max(1, T / 64))
            CK(cudaMemcpy(g.get() + (size_t)r * H, x[d].get() + (size_t)perm[r] * H, H * 2, cudaMemcpyDefault));
          for (int r = 0; r < T; r += std::max(1, T / 64))
            bad += count_diff(g.get() + (size_t)r * H, recv[1 - d].get() + (size_t)r * H, H * 2);
          bad += count_nonfinite(recv[1 - d].get(), recv[1 - d].size());
        }
        CK(cudaSetDevice(0));
        // time
        for (int i = 0; i < 3; ++i) one(nullptr, nullptr);
        int iters = opt.quick ? 10 : std::clamp<int>((int)(opt.time_budget_ms * 1000 / (bytes / 300e3 + 20)), 10, opt.max_iters);
        std::vector<cudaEvent_t> a(iters), b(iters);
        for (int i = 0; i < iters; ++i) {
          CK(cudaEventCreate(&a[i]));
          CK(cudaEventCreate(&b[i]));
          one(&a[i], &b[i]);
        }
        for (int d = 0; d < 2; ++d) {
          CK(cudaSetDevice(d));
          CK(cudaStreamSynchronize(P.s[d]));
        }
        CK(cudaSetDevice(0));
        std::vector<double> ts;
        for (int i = 0; i < iters; ++i) {
          float ms;
          CK(cudaEventElapsedTime(&ms, a[i], b[i]));
          ts.push_back(ms * 1e3);
          CK(cudaEventDestroy(a[i]));
          CK(cudaEventDestroy(b[i]));
        }
        std::sort(ts.begin(), ts.end());
        Timing t;
        t.iters = iters;
        t.min = ts.front();
        t.max = ts.back();
        t.med = iters % 2 ? ts[iters / 2] : 0.5 * (ts[iters / 2 - 1] + ts[iters / 2]);
        rep.add(make_res("peer_dispatch", bidir ? "own_bidir" : "own_0to1",
                         {{"tokens", T}, {"hidden", H}, {"bytes", (long long)bytes}, {"gpus", 2}, {"blocks", blocks}},
                         t, bytes,
                         exact(bad, (size_t)T * H * 2 / 16, "exact on sampled rows + no NaN; bytes = per direction")));
      }
    }
  }
}

}  // namespace

void suite_hbm(Report& rep, const Options& opt) {
  if (opt.want("hbm")) bench_hbm(rep, opt);
}

void suite_comm(Report& rep, const Options& opt) {
  bool two = opt.want("p2p") || opt.want("nccl") || opt.want("dispatch");
  if (!two) return;
  Pair P;
  if (!P.ok) {
    log("comm: fewer than 2 peer-capable GPUs; skipping p2p_copy, nccl_alltoall, peer_dispatch\n");
    return;
  }
  if (opt.want("p2p")) bench_p2p(P, rep, opt);
#ifdef EPSIM_HAVE_NCCL
  if (opt.want("nccl")) bench_nccl(P, rep, opt);
#else
  log("comm: built without NCCL; skipping nccl_alltoall\n");
#endif
  if (opt.want("dispatch")) bench_dispatch(P, rep, opt);
}

}  // namespace epsim::bench
