// epsim-bench: shared helpers.
#include "common.h"

#include <algorithm>
#include <cmath>
#include <cstdarg>
#include <cstdlib>
#include <numeric>
#include <sstream>
#include <string>

namespace epsim::bench {

void fail(const char* what, const char* file, int line, const std::string& msg) {
  char buf[1024];
  std::snprintf(buf, sizeof buf, "%s:%d: %s failed: %s", file, line, what, msg.c_str());
  throw std::runtime_error(buf);
}

void log(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  std::vfprintf(stderr, fmt, ap);
  va_end(ap);
  std::fflush(stderr);
}

bool Options::want(const std::string& suite) const {
  return only.empty() || std::find(only.begin(), only.end(), suite) != only.end();
}

void Report::add(Result r) {
  std::string sh;
  for (auto& kv : r.shape) sh += kv.first + "=" + std::to_string(kv.second) + " ";
  log("%-18s %-16s %-52s %10.2f us %8.1f TF %8.1f GB/s  err=%.2e %s\n", r.kernel.c_str(),
      r.variant.c_str(), sh.c_str(), r.us_median, r.tflops(), r.gbps(), r.check.rel_err,
      r.check.pass ? "ok" : "FAIL");
  rows_.push_back(std::move(r));
}

const Result* Report::find(const std::string& kernel, const std::string& variant,
                           const std::vector<std::pair<std::string, long long>>& shape) const {
  for (auto& r : rows_) {
    if (r.kernel != kernel || (!variant.empty() && r.variant != variant)) continue;
    bool ok = true;
    for (auto& kv : shape) ok = ok && r.get(kv.first, -999) == kv.second;
    if (ok) return &r;
  }
  return nullptr;
}

int Report::failures() const {
  int n = 0;
  for (auto& r : rows_) n += r.check.pass ? 0 : 1;
  return n;
}

// ---------------------------------------------------------------------------------------------
namespace {

__device__ __forceinline__ uint64_t splitmix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

__device__ __forceinline__ float rand_val(uint64_t seed, size_t i, float lo, float hi) {
  uint64_t h = splitmix(seed * 0x100000001b3ull + i);
  float u = (h >> 40) * (1.0f / 16777216.0f);  // [0,1)
  float mag = lo + (hi - lo) * u;
  return (h & 1) ? -mag : mag;
}

template <class T>
__device__ __forceinline__ T from_f(float v);
template <>
__device__ __forceinline__ bf16 from_f<bf16>(float v) { return __float2bfloat16(v); }
template <>
__device__ __forceinline__ float from_f<float>(float v) { return v; }
template <>
__device__ __forceinline__ fp8 from_f<fp8>(float v) { return fp8(v); }

template <class T>
__global__ void fill_kernel(T* p, size_t n, uint64_t seed, float lo, float hi) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
       i += (size_t)gridDim.x * blockDim.x)
    p[i] = from_f<T>(rand_val(seed, i, lo, hi));
}

__global__ void poison_bf16(bf16* p, size_t n) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
       i += (size_t)gridDim.x * blockDim.x)
    p[i] = __ushort_as_bfloat16(0x7fff);
}
__global__ void poison_f32(float* p, size_t n) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
       i += (size_t)gridDim.x * blockDim.x)
    p[i] = __int_as_float(0x7fffffff);
}

__device__ __forceinline__ float to_f(bf16 v) { return __bfloat162float(v); }
__device__ __forceinline__ float to_f(float v) { return v; }

template <class T>
__global__ void nonfinite_kernel(const T* p, size_t n, unsigned long long* cnt) {
  unsigned long long c = 0;
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
       i += (size_t)gridDim.x * blockDim.x)
    c += isfinite(to_f(p[i])) ? 0 : 1;
  if (c) atomicAdd(cnt, c);
}

__device__ __forceinline__ double to_d(bf16 v) { return (double)__bfloat162float(v); }
__device__ __forceinline__ double to_d(fp8 v) { return (double)float(v); }
__device__ __forceinline__ double to_d(double v) { return v; }

// One warp per output element; rows[] selects A rows, rexp[] (optional) selects the B matrix.
template <class TA, class TB>
__global__ void ref_gemm_kernel(const TA* A, long long lda, const TB* B, long long bstride,
                                const int* rows, const int* rexp, int nrows, int N, int K,
                                double scale, double* C) {
  long long w = (blockIdx.x * (long long)blockDim.x + threadIdx.x) / 32;
  int lane = threadIdx.x & 31;
  if (w >= (long long)nrows * N) return;
  int i = (int)(w / N), n = (int)(w % N);
  const TA* a = A + (long long)rows[i] * lda;
  const TB* b = B + (rexp ? (long long)rexp[i] * bstride : 0) + (long long)n * K;
  double acc = 0;
  for (int k = lane; k < K; k += 32) acc += to_d(a[k]) * to_d(b[k]);
  for (int o = 16; o; o >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, o);
  if (lane == 0) C[w] = acc * scale;
}

__global__ void spin_kernel(unsigned long long ns) {
  unsigned long long t0, t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t0));
  do {
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  } while (t - t0 < ns);
}

int grid_for(size_t n) { return (int)std::min<size_t>(std::max<size_t>(ceil_div(n, 256), 1), 132 * 16); }

}  // namespace

void fill_random(bf16* p, size_t n, uint64_t seed, float lo, float hi, cudaStream_t s) {
  fill_kernel<<<grid_for(n), 256, 0, s>>>(p, n, seed, lo, hi);
  CK_LAST();
  // On the legacy stream, finish before returning: benchmarks run on non-blocking streams.
  if (s == 0) CK(cudaDeviceSynchronize());
}
void fill_random(float* p, size_t n, uint64_t seed, float lo, float hi, cudaStream_t s) {
  fill_kernel<<<grid_for(n), 256, 0, s>>>(p, n, seed, lo, hi);
  CK_LAST();
  // On the legacy stream, finish before returning: benchmarks run on non-blocking streams.
  if (s == 0) CK(cudaDeviceSynchronize());
}
void fill_random(fp8* p, size_t n, uint64_t seed, float lo, float hi, cudaStream_t s) {
  fill_kernel<<<grid_for(n), 256, 0, s>>>(p, n, seed, lo, hi);
  CK_LAST();
  // On the legacy stream, finish before returning: benchmarks run on non-blocking streams.
  if (s == 0) CK(cudaDeviceSynchronize());
}
void poison(bf16* p, size_t n, cudaStream_t s) {
  poison_bf16<<<grid_for(n), 256, 0, s>>>(p, n);
  CK_LAST();
  // On the legacy stream, finish before returning: benchmarks run on non-blocking streams.
  if (s == 0) CK(cudaDeviceSynchronize());
}
void poison(float* p, size_t n, cudaStream_t s) {
  poison_f32<<<grid_for(n), 256, 0, s>>>(p, n);
  CK_LAST();
  // On the legacy stream, finish before returning: benchmarks run on non-blocking streams.
  if (s == 0) CK(cudaDeviceSynchronize());
}

template <class T>
static long long nonfinite_impl(const T* p, size_t n) {
  DevBuf<unsigned long long> c(1);
  CK(cudaMemset(c.get(), 0, 8));
  nonfinite_kernel<<<grid_for(n), 256>>>(p, n, c.get());
  CK_LAST();
  unsigned long long h = 0;
  CK(cudaMemcpy(&h, c.get(), 8, cudaMemcpyDeviceToHost));
  return (long long)h;
}
long long count_nonfinite(const bf16* p, size_t n) { return nonfinite_impl(p, n); }
long long count_nonfinite(const float* p, size_t n) { return nonfinite_impl(p, n); }

std::vector<float> to_host_f32(const bf16* p, size_t n) {
  std::vector<bf16> h(n);
  CK(cudaMemcpy(h.data(), p, n * sizeof(bf16), cudaMemcpyDeviceToHost));
  std::vector<float> out(n);
  for (size_t i = 0; i < n; ++i) out[i] = __bfloat162float(h[i]);
  return out;
}
std::vector<float> to_host_f32(const float* p, size_t n) {
  std::vector<float> h(n);
  CK(cudaMemcpy(h.data(), p, n * sizeof(float), cudaMemcpyDeviceToHost));
  return h;
}

template <class TA, class TB>
static void ref_launch(const TA* A, long long lda, const TB* B, long long bstride, const int* rows,
                       const int* rexp, int nrows, int N, int K, double scale, double* C,
                       cudaStream_t s) {
  long long warps = (long long)nrows * N;
  ref_gemm_kernel<<<(unsigned)ceil_div(warps * 32, 256), 256, 0, s>>>(A, lda, B, bstride, rows,
                                                                      rexp, nrows, N, K, scale, C);
  CK_LAST();
}

void ref_gemm_rows(const bf16* A, const bf16* B, const int* rows, int nrows, int N, int K,
                   double* C, cudaStream_t s) {
  ref_launch(A, K, B, 0, rows, nullptr, nrows, N, K, 1.0, C, s);
}
void ref_gemm_rows(const fp8* A, const fp8* B, const int* rows, int nrows, int N, int K, double sa,
                   double sb, double* C, cudaStream_t s) {
  ref_launch(A, K, B, 0, rows, nullptr, nrows, N, K, sa * sb, C, s);
}
// Per-row expert selection variants (used by the expert MLP checks).
void ref_gemm_rows_exp(const bf16* A, long long lda, const bf16* B, long long bstride,
                       const int* rows, const int* rexp, int nrows, int N, int K, double* C) {
  ref_launch(A, lda, B, bstride, rows, rexp, nrows, N, K, 1.0, C, 0);
}
void ref_gemm_rows_exp(const double* A, long long lda, const bf16* B, long long bstride,
                       const int* rows, const int* rexp, int nrows, int N, int K, double* C) {
  ref_launch(A, lda, B, bstride, rows, rexp, nrows, N, K, 1.0, C, 0);
}
void ref_gemm_rows_exp(const fp8* A, long long lda, const fp8* B, long long bstride,
                       const int* rows, const int* rexp, int nrows, int N, int K, double scale,
                       double* C) {
  ref_launch(A, lda, B, bstride, rows, rexp, nrows, N, K, scale, C, 0);
}
void ref_gemm_rows_exp(const double* A, long long lda, const fp8* B, long long bstride,
                       const int* rows, const int* rexp, int nrows, int N, int K, double scale,
                       double* C) {
  ref_launch(A, lda, B, bstride, rows, rexp, nrows, N, K, scale, C, 0);
}

double rel_err(const std::vector<double>& ref, const std::vector<float>& x) {
  double num = 0, den = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    double d = (double)x[i] - ref[i];
    if (!std::isfinite(x[i])) return INFINITY;
    num += d * d;
    den += ref[i] * ref[i];
  }
  return den > 0 ? std::sqrt(num / den) : (num > 0 ? INFINITY : 0.0);
}

std::vector<int> sample_rows(int M, int cap, uint64_t seed) {
  std::vector<int> r;
  if (M <= cap) {
    r.resize(M);
    std::iota(r.begin(), r.end(), 0);
    return r;
  }
  // first, last, and a strided sample with a seed-dependent offset
  r.push_back(0);
  r.push_back(M - 1);
  uint64_t x = seed * 2654435761ull + 12345;
  for (int i = 2; i < cap; ++i) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    r.push_back((int)((x >> 33) % (uint64_t)M));
  }
  std::sort(r.begin(), r.end());
  r.erase(std::unique(r.begin(), r.end()), r.end());
  return r;
}

void gpu_spin(cudaStream_t s, double us) {
  spin_kernel<<<1, 1, 0, s>>>((unsigned long long)(us * 1000.0));
  CK_LAST();
}

int sm_count() {
  static int n = 0;
  if (!n) {
    int dev;
    CK(cudaGetDevice(&dev));
    CK(cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, dev));
  }
  return n;
}

size_t l2_bytes() {
  static int n = 0;
  if (!n) {
    int dev;
    CK(cudaGetDevice(&dev));
    CK(cudaDeviceGetAttribute(&n, cudaDevAttrL2CacheSize, dev));
  }
  return (size_t)n;
}

std::vector<int> env_int_list(const char* name, std::vector<int> fallback) {
  const char* env = std::getenv(name);
  if (env == nullptr) return fallback;
  std::vector<int> out;
  std::stringstream ss(env);
  std::string item;
  while (std::getline(ss, item, ',')) out.push_back(std::atoi(item.c_str()));
  return out;
}

int rotation_count(size_t footprint, int cap) {
  size_t want = 4 * l2_bytes();
  if (footprint == 0) return 1;
  return (int)std::clamp<size_t>(ceil_div(want, footprint), 1, cap);
}

Timing time_it(cudaStream_t stream, const std::function<void(int)>& fn, const Options& opt,
               int max_iters, double spin_per_iter_us) {
  if (max_iters < 0) max_iters = opt.max_iters;
  cudaEvent_t a, b;
  CK(cudaEventCreate(&a));
  CK(cudaEventCreate(&b));
  // warm-up (also module loading, handle set-up, heuristics) and a first estimate
  fn(0);
  fn(1);
  CK(cudaStreamSynchronize(stream));
  CK_LAST();
  gpu_spin(stream, 200);
  CK(cudaEventRecord(a, stream));
  fn(2);
  CK(cudaEventRecord(b, stream));
  CK(cudaEventSynchronize(b));
  float est_ms = 0;
  CK(cudaEventElapsedTime(&est_ms, a, b));
  CK(cudaEventDestroy(a));
  CK(cudaEventDestroy(b));
  int iters = (int)std::clamp<double>(opt.time_budget_ms / std::max(est_ms, 1e-3f), 5, max_iters);
  if (opt.quick) iters = std::min(iters, 10);

  std::vector<cudaEvent_t> ev(iters + 1);
  for (auto& e : ev) CK(cudaEventCreate(&e));
  gpu_spin(stream, std::min(20000.0, 100.0 + iters * spin_per_iter_us));
  for (int i = 0; i < iters; ++i) {
    CK(cudaEventRecord(ev[i], stream));
    fn(i + 3);
  }
  CK(cudaEventRecord(ev[iters], stream));
  CK(cudaEventSynchronize(ev[iters]));
  CK_LAST();
  std::vector<double> t(iters);
  for (int i = 0; i < iters; ++i) {
    float ms = 0;
    CK(cudaEventElapsedTime(&ms, ev[i], ev[i + 1]));
    t[i] = ms * 1000.0;
  }
  for (auto& e : ev) CK(cudaEventDestroy(e));
  std::sort(t.begin(), t.end());
  Timing r;
  r.iters = iters;
  r.min = t.front();
  r.max = t.back();
  r.med = iters % 2 ? t[iters / 2] : 0.5 * (t[iters / 2 - 1] + t[iters / 2]);
  return r;
}

}  // namespace epsim::bench
