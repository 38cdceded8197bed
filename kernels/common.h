// epsim-bench: shared helpers (error checks, random data, timing, results, JSON).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp8.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <cstdio>
#include <functional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace epsim::bench {

// ---------------------------------------------------------------------------------------------
// Error handling: every CUDA / library call is checked; failures throw (main catches and exits).
[[noreturn]] void fail(const char* what, const char* file, int line, const std::string& msg);

#define CK(call)                                                                             \
  do {                                                                                       \
    cudaError_t e_ = (call);                                                                 \
    if (e_ != cudaSuccess) ::epsim::bench::fail(#call, __FILE__, __LINE__, cudaGetErrorString(e_)); \
  } while (0)
#define CK_LAST() CK(cudaGetLastError())

// ---------------------------------------------------------------------------------------------
// Results
struct Check {
  double rel_err = -1;     // ||out - ref|| / ||ref|| (or a mismatch fraction where noted)
  double threshold = 0;
  bool pass = false;
  bool done = false;       // false: no check was made for this row (never happens for kernels)
  std::string note;
};

struct Result {
  std::string kernel;
  std::string variant;                                  // implementation, e.g. "cublas_grouped"
  std::vector<std::pair<std::string, long long>> shape; // named integer fields
  double us_median = 0, us_min = 0, us_max = 0;
  double flops = 0, bytes = 0;
  Check check;
  int iters = 0;
  double tflops() const { return us_median > 0 ? flops / (us_median * 1e-6) / 1e12 : 0; }
  double gbps() const { return us_median > 0 ? bytes / (us_median * 1e-6) / 1e9 : 0; }
  long long get(const std::string& key, long long dflt = -1) const {
    for (auto& kv : shape) if (kv.first == key) return kv.second;
    return dflt;
  }
};

struct Options {
  bool quick = false;           // small grids (smoke test)
  std::vector<std::string> only;// suites to run (empty = all)
  int max_iters = 100;          // timing repetitions (upper bound)
  double time_budget_ms = 150;  // target GPU time per measured point
  int gpus = 0;                 // communication suites: GPUs to use (0: every visible GPU, <= 8)
  bool want(const std::string& suite) const;
};

class Report {
 public:
  void add(Result r);
  std::vector<Result>& rows() { return rows_; }
  const Result* find(const std::string& kernel, const std::string& variant,
                     const std::vector<std::pair<std::string, long long>>& shape) const;
  int failures() const;

 private:
  std::vector<Result> rows_;
};

// ---------------------------------------------------------------------------------------------
// Device buffers (RAII) and data
template <class T>
class DevBuf {
 public:
  DevBuf() = default;
  explicit DevBuf(size_t n) { alloc(n); }
  ~DevBuf() { release(); }
  DevBuf(const DevBuf&) = delete;
  DevBuf& operator=(const DevBuf&) = delete;
  DevBuf(DevBuf&& o) noexcept : p_(o.p_), n_(o.n_) { o.p_ = nullptr; o.n_ = 0; }
  DevBuf& operator=(DevBuf&& o) noexcept {
    if (this != &o) { release(); p_ = o.p_; n_ = o.n_; o.p_ = nullptr; o.n_ = 0; }
    return *this;
  }
  void alloc(size_t n) {
    release();
    n_ = n;
    if (n) CK(cudaMalloc(reinterpret_cast<void**>(&p_), n * sizeof(T)));
  }
  void release() {
    if (p_) cudaFree(p_);
    p_ = nullptr;
    n_ = 0;
  }
  T* get() const { return p_; }
  size_t size() const { return n_; }
  size_t bytes() const { return n_ * sizeof(T); }

 private:
  T* p_ = nullptr;
  size_t n_ = 0;
};

// A host vector's copy on the device, and n elements of device memory copied to the host.
template <class T>
DevBuf<T> to_device(const std::vector<T>& v) {
  DevBuf<T> d(v.size());
  if (!v.empty()) CK(cudaMemcpy(d.get(), v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice));
  return d;
}
template <class T>
std::vector<T> to_host(const T* p, size_t n) {
  std::vector<T> h(n);
  if (n) CK(cudaMemcpy(h.data(), p, n * sizeof(T), cudaMemcpyDeviceToHost));
  return h;
}

using bf16 = __nv_bfloat16;
using fp8 = __nv_fp8_e4m3;

// Uniform random values in +-[lo, hi] (never zero: |x| >= lo), deterministic from seed.
void fill_random(bf16* p, size_t n, uint64_t seed, float lo, float hi, cudaStream_t s = 0);
void fill_random(float* p, size_t n, uint64_t seed, float lo, float hi, cudaStream_t s = 0);
void fill_random(fp8* p, size_t n, uint64_t seed, float lo, float hi, cudaStream_t s = 0);
// Poison with NaN (bf16 0x7fff / float NaN) so unwritten outputs are caught.
void poison(bf16* p, size_t n, cudaStream_t s = 0);
void poison(float* p, size_t n, cudaStream_t s = 0);
// Number of non-finite elements (NaN/Inf) in the first n elements.
long long count_nonfinite(const bf16* p, size_t n);
long long count_nonfinite(const float* p, size_t n);

std::vector<float> to_host_f32(const bf16* p, size_t n);
std::vector<float> to_host_f32(const float* p, size_t n);

// Reference GEMM in double on the device: C[r, n] = sum_k A[row(r), k] * B[n, k] (row-major,
// "NT": both operands have K contiguous), for the rows listed in `rows` (device int array of
// length nrows). A and B are bf16 or fp8 (decoded), scaled by sa*sb.
void ref_gemm_rows(const bf16* A, const bf16* B, const int* rows, int nrows, int N, int K,
                   double* C, cudaStream_t s = 0);
void ref_gemm_rows(const fp8* A, const fp8* B, const int* rows, int nrows, int N, int K,
                   double sa, double sb, double* C, cudaStream_t s = 0);
// General form: A rows at A + rows[i]*lda; B for row i at B + rexp[i]*bstride (rexp may be null).
void ref_gemm_rows_exp(const bf16* A, long long lda, const bf16* B, long long bstride,
                       const int* rows, const int* rexp, int nrows, int N, int K, double* C);
void ref_gemm_rows_exp(const double* A, long long lda, const bf16* B, long long bstride,
                       const int* rows, const int* rexp, int nrows, int N, int K, double* C);
void ref_gemm_rows_exp(const fp8* A, long long lda, const fp8* B, long long bstride,
                       const int* rows, const int* rexp, int nrows, int N, int K, double scale,
                       double* C);
void ref_gemm_rows_exp(const double* A, long long lda, const fp8* B, long long bstride,
                       const int* rows, const int* rexp, int nrows, int N, int K, double scale,
                       double* C);

// ||x - ref|| / ||ref|| over host vectors.
double rel_err(const std::vector<double>& ref, const std::vector<float>& x);

// Rows to check for an M-row output: all rows if M <= cap, else a spread sample (deterministic).
std::vector<int> sample_rows(int M, int cap, uint64_t seed);

// ---------------------------------------------------------------------------------------------
// Timing. `fn(i)` enqueues one repetition on `stream` using rotation slot i; it must not sync.
// A spin kernel is queued first so that host launch gaps do not enter the GPU-side times.
struct Timing {
  double med = 0, min = 0, max = 0;
  int iters = 0;
};
// `spin_per_iter_us`: GPU spin queued ahead per repetition (raise it when enqueuing one repetition
// takes the host longer than ~15 us, e.g. several stream operations on several GPUs).
Timing time_it(cudaStream_t stream, const std::function<void(int)>& fn, const Options& opt,
               int max_iters = -1, double spin_per_iter_us = 15.0);
// Spin on the GPU for about `us` microseconds (used to keep the launch queue ahead).
void gpu_spin(cudaStream_t s, double us);
// Rotation count so that `footprint` bytes times the count exceed ~4x the L2 size.
int rotation_count(size_t footprint_bytes, int cap = 8);

// Suites (one per source file)
void suite_hbm(Report& rep, const Options& opt);
void suite_gemm(Report& rep, const Options& opt);
void suite_moe(Report& rep, const Options& opt);
void suite_attention(Report& rep, const Options& opt);
void suite_comm(Report& rep, const Options& opt);
void suite_layer(Report& rep, const Options& opt);  // issue 14: gap, layer_ops, gemm_grid

// Small utilities
inline long long ceil_div(long long a, long long b) { return (a + b - 1) / b; }
int sm_count();
size_t l2_bytes();
void log(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
// Development knobs: the comma-separated integers of environment variable `name`, or `fallback`
// when it is unset.
std::vector<int> env_int_list(const char* name, std::vector<int> fallback);

}  // namespace epsim::bench
