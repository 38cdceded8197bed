// epsim-bench: GEMM suites through cuBLAS / cuBLASLt: single GEMM sweep, grouped expert GEMM,
// expert MLP (BF16 and FP8), dense MLP.
//
// Layout everywhere: row-major activations X[M, K], weights W[N, K] (K contiguous, as stored by
// checkpoints), output C[M, N] = X W^T. In cuBLAS's column-major terms that is
// C^T (N x M, ld N) = op_T(W) (N x K) * op_N(X^T) (K x M): the "TN" call.
#include <cublasLt.h>
#include <cublas_v2.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>

#include "common.h"
#include "moe_kernels.h"

namespace epsim::bench {
namespace {

const char* cublas_err(cublasStatus_t s) {
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
#define CB(call)                                                                 \
  do {                                                                           \
    cublasStatus_t s_ = (call);                                                  \
    if (s_ != CUBLAS_STATUS_SUCCESS) fail(#call, __FILE__, __LINE__, cublas_err(s_)); \
  } while (0)

constexpr int kHidden = 7168;      // model dimension
constexpr int kInter = 2048;       // expert MLP hidden
constexpr int kDenseInter = 18432; // dense-layer MLP hidden
constexpr double kTolBf16 = 1e-2;  // single bf16 GEMM vs float64 reference
constexpr double kTolBf16Chain = 2e-2;
constexpr double kTolFp8 = 6e-2;   // e4m3 activations re-quantised between the GEMMs

struct Blas {
  cublasHandle_t h = nullptr;
  cublasLtHandle_t lt = nullptr;
  DevBuf<char> ws;
  cudaStream_t s = nullptr;
  Blas() {
    CK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    CB(cublasCreate(&h));
    CB(cublasLtCreate(&lt));
    ws.alloc(64ull << 20);
    CB(cublasSetStream(h, s));
    CB(cublasSetWorkspace(h, ws.get(), ws.bytes()));
  }
  ~Blas() {
    cublasLtDestroy(lt);
    cublasDestroy(h);
    cudaStreamDestroy(s);
  }
};

// C[M,N] = X[M,K] W[N,K]^T, bf16 in/out, fp32 accumulate.
void gemm_tn(Blas& b, const bf16* X, const bf16* W, bf16* C, int M, int N, int K) {
  const float one = 1.f, zero = 0.f;
  CB(cublasGemmEx(b.h, CUBLAS_OP_T, CUBLAS_OP_N, N, M, K, &one, W, CUDA_R_16BF, K, X,
                  CUDA_R_16BF, K, &zero, C, CUDA_R_16BF, N, CUBLAS_COMPUTE_32F,
                  CUBLAS_GEMM_DEFAULT));
}

// ------------------------------------------------------------------ grouped GEMM over experts
// Per-expert problems C_e[c_e, N] = X_e[c_e, K] W_e[N, K]^T with X, C expert-contiguous.
struct Grouped {
  std::vector<int> counts, offsets;  // offsets: exclusive prefix (rows)
  int N = 0, K = 0;
  // cublasGemmGroupedBatchedEx arguments: one group per distinct count
  std::vector<cublasOperation_t> ta, tb;
  std::vector<int> m, n, k, lda, ldb, ldc, gsize;
  std::vector<float> alpha, beta;
  std::vector<int> order;  // experts in group order
  DevBuf<const void*> pa, pb;
  DevBuf<void*> pc;

  void plan(const std::vector<int>& c, int N_, int K_) {
    counts = c;
    N = N_;
    K = K_;
    offsets.assign(c.size() + 1, 0);
    for (size_t e = 0; e < c.size(); ++e) offsets[e + 1] = offsets[e] + c[e];
    std::map<int, std::vector<int>> by;
    for (size_t e = 0; e < c.size(); ++e)
      if (c[e] > 0) by[c[e]].push_back((int)e);
    ta.clear(); tb.clear(); m.clear(); n.clear(); k.clear(); lda.clear(); ldb.clear();
    ldc.clear(); gsize.clear(); alpha.clear(); beta.clear(); order.clear();
    for (auto& [cnt, es] : by) {
      ta.push_back(CUBLAS_OP_T);
      tb.push_back(CUBLAS_OP_N);
      m.push_back(N);
      n.push_back(cnt);
      k.push_back(K);
      lda.push_back(K);
      ldb.push_back(K);
      ldc.push_back(N);
      gsize.push_back((int)es.size());
      alpha.push_back(1.f);
      beta.push_back(0.f);
      for (int e : es) order.push_back(e);
    }
    pa.alloc(order.size());
    pb.alloc(order.size());
    pc.alloc(order.size());
  }
  // Bind pointers (device arrays) for one buffer set.
  void bind(const bf16* X, const bf16* W, bf16* C) {
    std::vector<const void*> a, bb;
    std::vector<void*> cc;
    for (int e : order) {
      a.push_back(W + (size_t)e * N * K);
      bb.push_back(X + (size_t)offsets[e] * K);
      cc.push_back(C + (size_t)offsets[e] * N);
    }
    CK(cudaMemcpy(pa.get(), a.data(), a.size() * sizeof(void*), cudaMemcpyHostToDevice));
    CK(cudaMemcpy(pb.get(), bb.data(), bb.size() * sizeof(void*), cudaMemcpyHostToDevice));
    CK(cudaMemcpy(pc.get(), cc.data(), cc.size() * sizeof(void*), cudaMemcpyHostToDevice));
  }
  void run_grouped(Blas& b) {
    if (order.empty()) return;
    CB(cublasGemmGroupedBatchedEx(b.h, ta.data(), tb.data(), m.data(), n.data(), k.data(),
                                  alpha.data(), pa.get(), CUDA_R_16BF, lda.data(), pb.get(),
                                  CUDA_R_16BF, ldb.data(), beta.data(), pc.get(), CUDA_R_16BF,
                                  ldc.data(), (int)gsize.size(), gsize.data(),
                                  CUBLAS_COMPUTE_32F));
  }
  void run_loop(Blas& b, const bf16* X, const bf16* W, bf16* C) {
    for (size_t e = 0; e < counts.size(); ++e)
      if (counts[e] > 0)
        gemm_tn(b, X + (size_t)offsets[e] * K, W + (size_t)e * N * K, C + (size_t)offsets[e] * N,
                counts[e], N, K);
  }
  void run_strided(Blas& b, const bf16* X, const bf16* W, bf16* C) {  // balanced only
    const float one = 1.f, zero = 0.f;
    int c = counts[0];
    CB(cublasGemmStridedBatchedEx(b.h, CUBLAS_OP_T, CUBLAS_OP_N, N, c, K, &one, W, CUDA_R_16BF, K,
                                  (long long)N * K, X, CUDA_R_16BF, K, (long long)c * K, &zero, C,
                                  CUDA_R_16BF, N, (long long)c * N, (int)counts.size(),
                                  CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
  }
  int total() const { return offsets.back(); }
};

// ------------------------------------------------------------------ FP8 via cuBLASLt
struct LtFp8 {
  // Ways to call cuBLASLt, tried in this order until one runs (some library builds reject some):
  //   0: per-tensor scales through A/B scale pointers, in place (C == D), fast accumulation
  //   1: scales folded into alpha (same maths for per-tensor scales), in place, fast accumulation
  //   2: scales folded into alpha, separate C buffer, fast accumulation
  //   3: scales folded into alpha, separate C buffer, full accumulation
  static constexpr const char* kModes[4] = {"scale pointers, in-place, fast-accum",
                                            "alpha-folded scales, in-place, fast-accum",
                                            "alpha-folded scales, separate C, fast-accum",
                                            "alpha-folded scales, separate C, full-accum"};
  struct Plan {
    cublasLtMatmulDesc_t op = nullptr;
    cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
    cublasLtMatmulAlgo_t algos[8];  // heuristic order; the first that runs is moved first
    int nalgo = 0;
  };
  std::map<std::tuple<int, int, int>, Plan> plans;
  Blas* blas = nullptr;
  int mode = 0;
  DevBuf<bf16> cscratch;
  ~LtFp8() { clear(); }
  void clear() {
    for (auto& kv : plans) {
      cublasLtMatmulDescDestroy(kv.second.op);
      cublasLtMatrixLayoutDestroy(kv.second.a);
      cublasLtMatrixLayoutDestroy(kv.second.b);
      cublasLtMatrixLayoutDestroy(kv.second.c);
    }
    plans.clear();
  }
  Plan& plan(int M, int N, int K, const float* sa, const float* sb) {
    auto key = std::make_tuple(M, N, K);
    auto it = plans.find(key);
    if (it != plans.end()) return it->second;
    Plan p;
    CB(cublasLtMatmulDescCreate(&p.op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    cublasOperation_t t = CUBLAS_OP_T, nn = CUBLAS_OP_N;
    CB(cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_TRANSA, &t, sizeof t));
    CB(cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_TRANSB, &nn, sizeof nn));
    int8_t fast = mode < 3 ? 1 : 0;
    CB(cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_FAST_ACCUM, &fast, sizeof fast));
    CB(cublasLtMatrixLayoutCreate(&p.a, CUDA_R_8F_E4M3, K, N, K));
    CB(cublasLtMatrixLayoutCreate(&p.b, CUDA_R_8F_E4M3, K, M, K));
    CB(cublasLtMatrixLayoutCreate(&p.c, CUDA_R_16BF, N, M, N));
    if (mode == 0) {  // A is the weight (scale sb), B the activations (scale sa)
      CB(cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &sb, sizeof sb));
      CB(cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &sa, sizeof sa));
    }
    cublasLtMatmulPreference_t pref;
    CB(cublasLtMatmulPreferenceCreate(&pref));
    size_t wsz = blas->ws.bytes();
    CB(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &wsz,
                                            sizeof wsz));
    cublasLtMatmulHeuristicResult_t res[8]{};
    int found = 0;
    cublasStatus_t hs = cublasLtMatmulAlgoGetHeuristic(blas->lt, p.op, p.a, p.b, p.c, p.c, pref, 8, res, &found);
    cublasLtMatmulPreferenceDestroy(pref);
    if (hs == CUBLAS_STATUS_SUCCESS)
      for (int i = 0; i < found; ++i)
        if (res[i].state == CUBLAS_STATUS_SUCCESS) p.algos[p.nalgo++] = res[i].algo;
    return plans.emplace(key, p).first->second;
  }
  // C[M,N] (bf16) = (sa*sb) X8[M,K] W8[N,K]^T; sa/sb on the device, ha/hb the same on the host.
  void run(const fp8* X, const fp8* W, bf16* C, int M, int N, int K, const float* sa, const float* sb,
           float ha, float hb) {
    for (;;) {
      Plan& p = plan(M, N, K, sa, sb);
      if (mode == 0) {
        CB(cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &sb, sizeof sb));
        CB(cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &sa, sizeof sa));
      }
      const float alpha = mode == 0 ? 1.f : ha * hb, zero = 0.f;
      bf16* cin = C;
      if (mode >= 2) {
        if (cscratch.size() < (size_t)M * N) cscratch.alloc((size_t)M * N);
        cin = cscratch.get();
      }
      cublasStatus_t st = CUBLAS_STATUS_NOT_SUPPORTED;
      for (int i = 0; i < p.nalgo; ++i) {
        st = cublasLtMatmul(blas->lt, p.op, &alpha, W, p.a, X, p.b, &zero, cin, p.c, C, p.c, &p.algos[i],
                            blas->ws.get(), blas->ws.bytes(), blas->s);
        if (st == CUBLAS_STATUS_SUCCESS) {
          if (i) {
            cublasLtMatmulAlgo_t tmp = p.algos[0];
            p.algos[0] = p.algos[i];
            p.algos[i] = tmp;
          }
          return;
        }
        if (st != CUBLAS_STATUS_NOT_SUPPORTED) break;
      }
      if (st != CUBLAS_STATUS_NOT_SUPPORTED || mode == 3)
        fail("cublasLtMatmul(fp8)", __FILE__, __LINE__,
             std::string(cublas_err(st)) + " for m=" + std::to_string(M) + " n=" + std::to_string(N) + " k=" +
                 std::to_string(K) + " in every mode");
      log("fp8: cublasLtMatmul %s in mode '%s' (m=%d n=%d k=%d, %d algorithms); trying '%s'\n", cublas_err(st),
          kModes[mode], M, N, K, p.nalgo, kModes[mode + 1]);
      ++mode;
      clear();
    }
  }
};

// ------------------------------------------------------------------ token distributions
std::vector<int> balanced_counts(int E, int T) { return std::vector<int>(E, T); }
// Skewed: weights 1/(e+1)^0.8 normalised to E*T tokens (largest-remainder rounding).
std::vector<int> skewed_counts(int E, int T) {
  std::vector<double> w(E);
  double sum = 0;
  for (int e = 0; e < E; ++e) sum += w[e] = std::pow(e + 1.0, -0.8);
  long long total = (long long)E * T, got = 0;
  std::vector<int> c(E);
  std::vector<std::pair<double, int>> rem;
  for (int e = 0; e < E; ++e) {
    double x = w[e] / sum * (double)total;
    c[e] = (int)std::floor(x);
    got += c[e];
    rem.push_back({x - c[e], e});
  }
  std::sort(rem.rbegin(), rem.rend());
  for (long long i = 0; got < total; ++i, ++got) c[rem[(size_t)i % rem.size()].second]++;
  return c;
}

std::vector<int> row_experts(const std::vector<int>& offsets, const std::vector<int>& rows) {
  std::vector<int> r;
  for (int row : rows) {
    int e = (int)(std::upper_bound(offsets.begin(), offsets.end(), row) - offsets.begin()) - 1;
    r.push_back(e);
  }
  return r;
}

template <class T>
DevBuf<T> to_dev(const std::vector<T>& v) {
  DevBuf<T> d(v.size());
  CK(cudaMemcpy(d.get(), v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice));
  return d;
}
std::vector<double> to_host(const DevBuf<double>& d) {
  std::vector<double> h(d.size());
  CK(cudaMemcpy(h.data(), d.get(), d.bytes(), cudaMemcpyDeviceToHost));
  return h;
}
// Gather the sampled rows of a device [M, N] output.
std::vector<float> gather_rows(const bf16* C, const std::vector<int>& rows, int N) {
  std::vector<float> out;
  out.reserve(rows.size() * N);
  for (int r : rows) {
    auto v = to_host_f32(C + (size_t)r * N, N);
    out.insert(out.end(), v.begin(), v.end());
  }
  return out;
}

Check make_check(double err, double thr, long long nonfinite, const std::string& note = "") {
  Check c;
  c.rel_err = err;
  c.threshold = thr;
  c.done = true;
  c.pass = nonfinite == 0 && std::isfinite(err) && err <= thr;
  c.note = note;
  if (nonfinite) c.note += (c.note.empty() ? "" : "; ") + std::to_string(nonfinite) + " non-finite outputs";
  return c;
}

// Check a single/grouped GEMM output against the float64 reference on sampled rows.
Check check_gemm(const bf16* X, const bf16* W, const bf16* C, long long M, int N, int K,
                 const std::vector<int>& offsets, uint64_t seed) {
  long long bad = count_nonfinite(C, (size_t)M * N);
  auto rows = sample_rows((int)M, 48, seed);
  auto rexp = row_experts(offsets, rows);
  auto drows = to_dev(rows);
  auto dexp = to_dev(rexp);
  DevBuf<double> ref(rows.size() * N);
  ref_gemm_rows_exp(X, K, W, (long long)N * K, drows.get(), dexp.get(), (int)rows.size(), N, K,
                    ref.get());
  CK(cudaDeviceSynchronize());
  return make_check(rel_err(to_host(ref), gather_rows(C, rows, N)), kTolBf16, bad);
}

// ------------------------------------------------------------------ suite pieces
void bench_gemm_sweep(Blas& b, Report& rep, const Options& opt) {
  struct NK { int n, k; };
  std::vector<NK> nks = {{4096, kHidden}, {kHidden, kInter}, {256, kHidden},
                         {2 * kDenseInter, kHidden}, {kHidden, kDenseInter}};
  std::vector<int> ms = opt.quick ? std::vector<int>{1, 128, 4096}
                                  : std::vector<int>{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024,
                                                     2048, 4096, 8192, 16384, 32768};
  for (auto nk : nks) {
    for (int M : ms) {
      if (M > 16384 && nk.n != 4096 && nk.n != kHidden) continue;
      if (M > 16384 && nk.k == kDenseInter) continue;
      size_t foot = ((size_t)M * nk.k + (size_t)nk.n * nk.k + (size_t)M * nk.n) * sizeof(bf16);
      int rot = rotation_count(foot);
      std::vector<DevBuf<bf16>> X(rot), W(rot), C(rot);
      for (int r = 0; r < rot; ++r) {
        X[r].alloc((size_t)M * nk.k);
        W[r].alloc((size_t)nk.n * nk.k);
        C[r].alloc((size_t)M * nk.n);
        fill_random(X[r].get(), X[r].size(), 11 + r + M, 0.25f, 1.f);
        fill_random(W[r].get(), W[r].size(), 7 + r + nk.n, 0.25f / std::sqrt((float)nk.k),
                    1.f / std::sqrt((float)nk.k));
      }
      poison(C[0].get(), C[0].size());
      gemm_tn(b, X[0].get(), W[0].get(), C[0].get(), M, nk.n, nk.k);
      CK(cudaStreamSynchronize(b.s));
      Check chk = check_gemm(X[0].get(), W[0].get(), C[0].get(), M, nk.n, nk.k, {0, M}, M + nk.n);
      auto t = time_it(b.s, [&](int i) {
        int r = i % rot;
        gemm_tn(b, X[r].get(), W[r].get(), C[r].get(), M, nk.n, nk.k);
      }, opt);
      Result res;
      res.kernel = "gemm_bf16";
      res.variant = "cublas";
      res.shape = {{"m", M}, {"n", nk.n}, {"k", nk.k}};
      res.us_median = t.med; res.us_min = t.min; res.us_max = t.max; res.iters = t.iters;
      res.flops = 2.0 * M * nk.n * nk.k;
      res.bytes = (double)foot;
      res.check = chk;
      rep.add(res);
    }
  }
}

struct ExpertSet {  // one rotation slot of expert-MLP buffers
  DevBuf<bf16> X, W1, W2, H, A, Y;
};

void bench_grouped(Blas& b, Report& rep, const Options& opt) {
  // GEMM1 of the expert MLP (7168 -> 2*2048) over E experts; three implementations.
  std::vector<std::pair<int, int>> cfg;  // (E, T)
  std::vector<int> Es = opt.quick ? std::vector<int>{8} : std::vector<int>{1, 8, 32};
  std::vector<int> Ts = opt.quick ? std::vector<int>{16, 1024}
                                  : std::vector<int>{1, 4, 16, 64, 128, 256, 512, 1024, 2048,
                                                     4096, 8192, 16384};
  for (int E : Es)
    for (int T : Ts)
      if ((long long)E * T <= 65536) cfg.push_back({E, T});
  const int N = 2 * kInter, K = kHidden;
  for (auto ec : cfg) {
    const int E = ec.first, T = ec.second;
    for (int skew = 0; skew < (E > 1 ? 2 : 1); ++skew) {
      if (skew && (T < 64 || T > 4096)) continue;
      auto counts = skew ? skewed_counts(E, T) : balanced_counts(E, T);
      Grouped g;
      g.plan(counts, N, K);
      long long M = g.total();
      size_t foot = ((size_t)M * K + (size_t)E * N * K + (size_t)M * N) * sizeof(bf16);
      int rot = rotation_count(foot, 4);
      std::vector<DevBuf<bf16>> X(rot), W(rot), C(rot);
      for (int r = 0; r < rot; ++r) {
        X[r].alloc((size_t)M * K);
        W[r].alloc((size_t)E * N * K);
        C[r].alloc((size_t)M * N);
        fill_random(X[r].get(), X[r].size(), 100 + r + T, 0.25f, 1.f);
        fill_random(W[r].get(), W[r].size(), 200 + r + E, 0.25f / std::sqrt((float)K),
                    1.f / std::sqrt((float)K));
      }
      std::vector<Grouped> gs(rot);
      for (int r = 0; r < rot; ++r) {
        gs[r].plan(counts, N, K);
        gs[r].bind(X[r].get(), W[r].get(), C[r].get());
      }
      int maxc = *std::max_element(counts.begin(), counts.end());
      std::vector<std::string> variants = {"cublas_grouped", "cublas_loop"};
      if (!skew) variants.push_back("cublas_strided");
      for (auto& v : variants) try {
        auto run = [&](int r) {
          if (v == "cublas_grouped") gs[r].run_grouped(b);
          else if (v == "cublas_loop") gs[r].run_loop(b, X[r].get(), W[r].get(), C[r].get());
          else gs[r].run_strided(b, X[r].get(), W[r].get(), C[r].get());
        };
        poison(C[0].get(), C[0].size());
        run(0);
        CK(cudaStreamSynchronize(b.s));
        Check chk = check_gemm(X[0].get(), W[0].get(), C[0].get(), M, N, K, g.offsets, E * 31 + T);
        auto t = time_it(b.s, [&](int i) { run(i % rot); }, opt);
        Result res;
        res.kernel = "grouped_gemm_bf16";
        res.variant = v;
        res.shape = {{"experts", E}, {"tokens_per_expert", T}, {"tokens", M},
                     {"max_tokens", maxc}, {"balanced", skew ? 0 : 1}, {"n", N}, {"k", K}};
        res.us_median = t.med; res.us_min = t.min; res.us_max = t.max; res.iters = t.iters;
        res.flops = 2.0 * M * N * K;
        res.bytes = (double)foot;
        res.check = chk;
        rep.add(res);
      } catch (const std::exception& e) {
        log("grouped_gemm_bf16 %s E=%d T=%d not run: %s\n", v.c_str(), E, T, e.what());
      }
      // The single GEMM of the same total shape (M = E*T), for the quality ratio.
      if (!skew && E > 1 && T >= 1024) {
        auto t = time_it(b.s, [&](int i) {
          int r = i % rot;
          gemm_tn(b, X[r].get(), W[r].get(), C[r].get(), (int)M, N, K);
        }, opt);
        poison(C[0].get(), C[0].size());
        gemm_tn(b, X[0].get(), W[0].get(), C[0].get(), (int)M, N, K);
        CK(cudaStreamSynchronize(b.s));
        Result res;
        res.kernel = "gemm_bf16";
        res.variant = "cublas_adjacent";  // timed right after the grouped variants, for their ratio
        res.shape = {{"m", M}, {"n", N}, {"k", K}};
        res.us_median = t.med; res.us_min = t.min; res.us_max = t.max; res.iters = t.iters;
        res.flops = 2.0 * M * N * K;
        res.bytes = ((double)M * K + (double)N * K + (double)M * N) * 2;
        res.check = check_gemm(X[0].get(), W[0].get(), C[0].get(), M, N, K, {0, (int)M}, M);
        rep.add(res);
      }
    }
  }
}

// Reference for the whole expert MLP (bf16 or fp8 inputs) on sampled rows:
// H = X W1^T (float64), A = silu(g) * u, Y = A W2^T.
template <class TI>
std::vector<double> ref_mlp(const TI* X, const TI* W1, const TI* W2, const std::vector<int>& rows,
                            const std::vector<int>& rexp, int inter, double s1, double s2,
                            double* hA_scale_unused = nullptr) {
  (void)hA_scale_unused;
  auto drows = to_dev(rows);
  auto dexp = to_dev(rexp);
  int n = (int)rows.size();
  DevBuf<double> H((size_t)n * 2 * inter);
  if constexpr (std::is_same_v<TI, bf16>)
    ref_gemm_rows_exp(X, kHidden, W1, 2LL * inter * kHidden, drows.get(), dexp.get(), n,
                      2 * inter, kHidden, H.get());
  else
    ref_gemm_rows_exp(X, kHidden, W1, 2LL * inter * kHidden, drows.get(), dexp.get(), n,
                      2 * inter, kHidden, s1, H.get());
  CK(cudaDeviceSynchronize());
  auto h = to_host(H);
  std::vector<double> a((size_t)n * inter);
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < inter; ++j) {
      double gt = h[(size_t)i * 2 * inter + j], up = h[(size_t)i * 2 * inter + inter + j];
      a[(size_t)i * inter + j] = gt / (1.0 + std::exp(-gt)) * up;
    }
  auto dA = to_dev(a);
  std::vector<int> ident(n);
  std::iota(ident.begin(), ident.end(), 0);
  auto did = to_dev(ident);
  DevBuf<double> Y((size_t)n * kHidden);
  if constexpr (std::is_same_v<TI, bf16>)
    ref_gemm_rows_exp(dA.get(), inter, W2, (long long)kHidden * inter, did.get(), dexp.get(), n,
                      kHidden, inter, Y.get());
  else
    ref_gemm_rows_exp(dA.get(), inter, W2, (long long)kHidden * inter, did.get(), dexp.get(), n,
                      kHidden, inter, s2, Y.get());
  CK(cudaDeviceSynchronize());
  return to_host(Y);
}

void bench_expert_mlp(Blas& b, Report& rep, const Options& opt, bool fp8_variant) {
  std::vector<std::pair<int, int>> cfg;
  std::vector<int> Es = opt.quick ? std::vector<int>{8} : std::vector<int>{1, 8, 32};
  // One expert per GPU (E = 1) goes to 262144 tokens: the seed's prefill gives each expert
  // 32768 and a skewed gate several times that; several experts stop at 65536 tokens in all.
  std::vector<int> Ts = opt.quick ? std::vector<int>{16, 1024}
                                  : std::vector<int>{1, 4, 16, 64, 128, 256, 512, 1024, 2048,
                                                     4096, 8192, 16384, 32768, 65536, 131072, 262144};
  Ts = env_int_list("EPSIM_MLP_TOKENS", Ts);
  for (int E : Es)
    for (int T : Ts)
      if (T > 0 && (long long)E * T <= (E == 1 ? 262144 : 65536)) cfg.push_back({E, T});
  const int N1 = 2 * kInter, K1 = kHidden, N2 = kHidden, K2 = kInter;
  LtFp8 lt;
  lt.blas = &b;
  DevBuf<float> scales(3);  // x, w1, w2 (fp8)
  const float sx = 1.f / 8, sw1 = 1.f / (8 * std::sqrt((float)K1)), sw2 = 1.f / (8 * std::sqrt((float)K2));
  const float s_act = 1.f / 64;  // per-tensor scale of the re-quantised activations
  {
    float h[4] = {sx, sw1, sw2, s_act};
    scales.alloc(4);
    CK(cudaMemcpy(scales.get(), h, sizeof h, cudaMemcpyHostToDevice));
  }
  for (auto ec : cfg) {
    const int E = ec.first, T = ec.second;
    auto counts = balanced_counts(E, T);
    std::vector<int> offsets(E + 1, 0);
    for (int e = 0; e < E; ++e) offsets[e + 1] = offsets[e] + counts[e];
    long long M = offsets[E];
    size_t el = fp8_variant ? 1 : 2;
    size_t foot = (size_t)M * K1 * el + (size_t)E * (N1 * K1 + N2 * K2) * el + (size_t)M * N1 * 2 +
                  (size_t)M * K2 * el + (size_t)M * N2 * 2;
    int rot = rotation_count(foot, 4);
    Result res;
    res.kernel = fp8_variant ? "expert_mlp_fp8" : "expert_mlp_bf16";
    res.shape = {{"experts", E}, {"tokens_per_expert", T}, {"tokens", M}, {"hidden", kHidden},
                 {"inter", kInter}};
    res.flops = 2.0 * M * (double)(N1 * K1 + N2 * K2);
    res.bytes = (double)foot;
    auto rows = sample_rows((int)M, 24, E * 7 + T);
    auto rexp = row_experts(offsets, rows);
    if (!fp8_variant) {
      std::vector<ExpertSet> S(rot);
      std::vector<Grouped> g1(rot), g2(rot);
      for (int r = 0; r < rot; ++r) {
        S[r].X.alloc((size_t)M * K1);
        S[r].W1.alloc((size_t)E * N1 * K1);
        S[r].W2.alloc((size_t)E * N2 * K2);
        S[r].H.alloc((size_t)M * N1);
        S[r].A.alloc((size_t)M * K2);
        S[r].Y.alloc((size_t)M * N2);
        fill_random(S[r].X.get(), S[r].X.size(), 300 + r + T, 0.25f, 1.f);
        fill_random(S[r].W1.get(), S[r].W1.size(), 400 + r + E, 0.25f / std::sqrt((float)K1),
                    1.f / std::sqrt((float)K1));
        fill_random(S[r].W2.get(), S[r].W2.size(), 500 + r + E, 0.25f / std::sqrt((float)K2),
                    1.f / std::sqrt((float)K2));
        g1[r].plan(counts, N1, K1);
        g1[r].bind(S[r].X.get(), S[r].W1.get(), S[r].H.get());
        g2[r].plan(counts, N2, K2);
        g2[r].bind(S[r].A.get(), S[r].W2.get(), S[r].Y.get());
      }
      auto ref = ref_mlp<bf16>(S[0].X.get(), S[0].W1.get(), S[0].W2.get(), rows, rexp, kInter, 1, 1);
      for (std::string v : {"cublas_grouped", "cublas_loop"}) try {
        auto run = [&](int r) {
          ExpertSet& s = S[r];
          if (v == "cublas_grouped") g1[r].run_grouped(b);
          else g1[r].run_loop(b, s.X.get(), s.W1.get(), s.H.get());
          silu_mul_bf16(s.H.get(), s.A.get(), M, kInter, b.s);
          if (v == "cublas_grouped") g2[r].run_grouped(b);
          else g2[r].run_loop(b, s.A.get(), s.W2.get(), s.Y.get());
        };
        poison(S[0].Y.get(), S[0].Y.size());
        poison(S[0].A.get(), S[0].A.size());
        run(0);
        CK(cudaStreamSynchronize(b.s));
        long long bad = count_nonfinite(S[0].Y.get(), S[0].Y.size());
        res.check = make_check(rel_err(ref, gather_rows(S[0].Y.get(), rows, kHidden)),
                               kTolBf16Chain, bad);
        auto t = time_it(b.s, [&](int i) { run(i % rot); }, opt);
        res.variant = v;
        res.us_median = t.med; res.us_min = t.min; res.us_max = t.max; res.iters = t.iters;
        rep.add(res);
      } catch (const std::exception& e) {
        log("expert_mlp_bf16 %s E=%d T=%d not run: %s\n", v.c_str(), E, T, e.what());
      }
    } else {
      struct S8 { DevBuf<fp8> X, W1, W2, A; DevBuf<bf16> H, Y; };
      std::vector<S8> S(rot);
      for (int r = 0; r < rot; ++r) {
        S[r].X.alloc((size_t)M * K1);
        S[r].W1.alloc((size_t)E * N1 * K1);
        S[r].W2.alloc((size_t)E * N2 * K2);
        S[r].A.alloc((size_t)M * K2);
        S[r].H.alloc((size_t)M * N1);
        S[r].Y.alloc((size_t)M * N2);
        fill_random(S[r].X.get(), S[r].X.size(), 600 + r + T, 2.f, 8.f);
        fill_random(S[r].W1.get(), S[r].W1.size(), 700 + r + E, 2.f, 8.f);
        fill_random(S[r].W2.get(), S[r].W2.size(), 800 + r + E, 2.f, 8.f);
      }
      const float* dsx = scales.get();
      const float* dsw1 = scales.get() + 1;
      const float* dsw2 = scales.get() + 2;
      const float* dsa = scales.get() + 3;
      auto run = [&](int r) {
        S8& s = S[r];
        for (int e = 0; e < E; ++e)
          lt.run(s.X.get() + (size_t)offsets[e] * K1, s.W1.get() + (size_t)e * N1 * K1,
                 s.H.get() + (size_t)offsets[e] * N1, counts[e], N1, K1, dsx, dsw1, sx, sw1);
        silu_mul_fp8(s.H.get(), s.A.get(), M, kInter, 1.f / s_act, b.s);
        for (int e = 0; e < E; ++e)
          lt.run(s.A.get() + (size_t)offsets[e] * K2, s.W2.get() + (size_t)e * N2 * K2,
                 s.Y.get() + (size_t)offsets[e] * N2, counts[e], N2, K2, dsa, dsw2, s_act, sw2);
      };
      auto ref = ref_mlp<fp8>(S[0].X.get(), S[0].W1.get(), S[0].W2.get(), rows, rexp, kInter,
                              (double)sx * sw1, (double)sw2);
      poison(S[0].Y.get(), S[0].Y.size());
      run(0);
      CK(cudaStreamSynchronize(b.s));
      long long bad = count_nonfinite(S[0].Y.get(), S[0].Y.size());
      res.check = make_check(rel_err(ref, gather_rows(S[0].Y.get(), rows, kHidden)), kTolFp8, bad,
                             std::string("cuBLASLt mode: ") + LtFp8::kModes[lt.mode] + "; activations re-quantised to e4m3 (scale 1/64)");
      auto t = time_it(b.s, [&](int i) { run(i % rot); }, opt);
      res.variant = "cublaslt_loop";
      res.us_median = t.med; res.us_min = t.min; res.us_max = t.max; res.iters = t.iters;
      rep.add(res);
    }
  }
}

void bench_dense_mlp(Blas& b, Report& rep, const Options& opt) {
  std::vector<int> Ts = opt.quick ? std::vector<int>{16, 4096}
                                  : std::vector<int>{1, 4, 16, 64, 256, 1024, 4096, 16384};
  const int N1 = 2 * kDenseInter, K1 = kHidden, N2 = kHidden, K2 = kDenseInter;
  for (int T : Ts) {
    size_t foot = ((size_t)T * K1 + (size_t)N1 * K1 + (size_t)N2 * K2 + (size_t)T * N1 +
                   (size_t)T * K2 + (size_t)T * N2) * 2;
    int rot = rotation_count(foot, 2);
    std::vector<ExpertSet> S(rot);
    for (int r = 0; r < rot; ++r) {
      S[r].X.alloc((size_t)T * K1);
      S[r].W1.alloc((size_t)N1 * K1);
      S[r].W2.alloc((size_t)N2 * K2);
      S[r].H.alloc((size_t)T * N1);
      S[r].A.alloc((size_t)T * K2);
      S[r].Y.alloc((size_t)T * N2);
      fill_random(S[r].X.get(), S[r].X.size(), 900 + r + T, 0.25f, 1.f);
      fill_random(S[r].W1.get(), S[r].W1.size(), 901 + r, 0.25f / std::sqrt((float)K1),
                  1.f / std::sqrt((float)K1));
      fill_random(S[r].W2.get(), S[r].W2.size(), 902 + r, 0.25f / std::sqrt((float)K2),
                  1.f / std::sqrt((float)K2));
    }
    auto run = [&](int r) {
      ExpertSet& s = S[r];
      gemm_tn(b, s.X.get(), s.W1.get(), s.H.get(), T, N1, K1);
      silu_mul_bf16(s.H.get(), s.A.get(), T, kDenseInter, b.s);
      gemm_tn(b, s.A.get(), s.W2.get(), s.Y.get(), T, N2, K2);
    };
    auto rows = sample_rows(T, 16, T);
    std::vector<int> rexp(rows.size(), 0);
    auto ref = ref_mlp<bf16>(S[0].X.get(), S[0].W1.get(), S[0].W2.get(), rows, rexp, kDenseInter, 1, 1);
    poison(S[0].Y.get(), S[0].Y.size());
    run(0);
    CK(cudaStreamSynchronize(b.s));
    long long bad = count_nonfinite(S[0].Y.get(), S[0].Y.size());
    Result res;
    res.kernel = "dense_mlp_bf16";
    res.variant = "cublas";
    res.shape = {{"tokens", T}, {"hidden", kHidden}, {"inter", kDenseInter}};
    res.check = make_check(rel_err(ref, gather_rows(S[0].Y.get(), rows, kHidden)), kTolBf16Chain, bad);
    auto t = time_it(b.s, [&](int i) { run(i % rot); }, opt);
    res.us_median = t.med; res.us_min = t.min; res.us_max = t.max; res.iters = t.iters;
    res.flops = 2.0 * T * ((double)N1 * K1 + (double)N2 * K2);
    res.bytes = (double)foot;
    rep.add(res);
  }
}

}  // namespace

void suite_gemm(Report& rep, const Options& opt) {
  Blas b;
  if (opt.want("gemm")) bench_gemm_sweep(b, rep, opt);
  if (opt.want("grouped")) bench_grouped(b, rep, opt);
  if (opt.want("expert_mlp")) {
    bench_expert_mlp(b, rep, opt, false);
    bench_expert_mlp(b, rep, opt, true);
  }
  if (opt.want("dense_mlp")) bench_dense_mlp(b, rep, opt);
}

}  // namespace epsim::bench
