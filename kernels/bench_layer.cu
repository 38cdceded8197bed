// epsim-bench suites of issue 14: every op class of a decoder layer.
//   gemm_grid  BF16 GEMMs forward (gemm_bf16, variant cublas), input gradient (gemm_bf16_dgrad),
//              weight gradient (gemm_bf16_wgrad) and block-scaled FP8 (gemm_fp8_block) over the
//              linear layers' (n, k) of the fitted model shape (DeepSeek-V3: MLA ranks, experts,
//              shared expert, router, LM head) and M = 1..16384 rows;
//   layer_ops  own kernels: rmsnorm, rmsnorm_bwd, rope, mla_rope, swiglu, swiglu_bwd, quant_act,
//              residual_add, unpermute_bwd, router_topk_bwd;
//   gap        kernel_gap: back-to-back dependent kernels on one stream, per kernel.
// Shapes recorded for backward GEMMs are the forward's (m, n, k): the same weights, FLOPs 2mnk.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "common.h"
#include "layer_kernels.h"
#include "moe_kernels.h"

namespace epsim::bench {
namespace {

constexpr double kTolBf16 = 1e-2, kTolFp8 = 2e-2, kTolElem = 1e-2;

std::vector<double> host_bf16(const bf16* p, size_t n) {
  auto f = to_host_f32(p, n);
  return std::vector<double>(f.begin(), f.end());
}

Check mk(double err, double thr, long long bad, const std::string& note = "") {
  Check c;
  c.rel_err = bad ? INFINITY : err;
  c.threshold = thr;
  c.done = true;
  c.pass = bad == 0 && std::isfinite(err) && err <= thr;
  c.note = note;
  if (bad) c.note += (c.note.empty() ? "" : "; ") + std::to_string(bad) + " non-finite outputs";
  return c;
}

void add(Report& rep, const char* kernel, const char* variant, std::vector<std::pair<std::string, long long>> shape,
         const Timing& t, double flops, double bytes, Check c) {
  Result r;
  r.kernel = kernel;
  r.variant = variant;
  r.shape = std::move(shape);
  r.us_median = t.med;
  r.us_min = t.min;
  r.us_max = t.max;
  r.iters = t.iters;
  r.flops = flops;
  r.bytes = bytes;
  r.check = std::move(c);
  rep.add(std::move(r));
}

// ---------------------------------------------------------------- GEMM references (float64)
// C(i, j) for sampled rows rs[i] and columns cs[j]: sum_k A(r, k) B(k, c), A(r, k) = A[r*sar + k*sak],
// B(k, c) = B[k*sbk + c*sbn].
__global__ void ref_strided_kernel(const bf16* A, long long sar, long long sak, const bf16* B, long long sbk,
                                   long long sbn, const int* rs, int nr, const int* cs, int nc, int K, double* out) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= nr * nc) return;
  const long long r = rs[i / nc], c = cs[i % nc];
  double acc = 0;
  for (int k = 0; k < K; ++k)
    acc += (double)__bfloat162float(A[r * sar + k * sak]) * (double)__bfloat162float(B[k * sbk + c * sbn]);
  out[i] = acc;
}

__host__ __device__ size_t xs_index(int layout, int M, int K, int m, int kb) {
  return layout == 0 ? (size_t)kb * M + m : (size_t)m * (K / 128) + kb;
}
__host__ __device__ size_t ws_index(int mode, int layout, int N, int K, int n, int kb) {
  const int KB = K / 128, NB = (N + 127) / 128;
  if (mode == 1) return xs_index(layout, N, K, n, kb);
  return layout == 0 ? (size_t)(n / 128) * ((KB + 3) / 4 * 4) + kb : (size_t)kb * NB + n / 128;
}

__global__ void ref_fp8_kernel(const fp8* X, const float* xs, const fp8* W, const float* ws, int M, int N, int K,
                               int mode, int xl, int wl, const int* rs, int nr, const int* cs, int nc, double* out) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= nr * nc) return;
  const int r = rs[i / nc], c = cs[i % nc];
  double acc = 0;
  for (int kb = 0; kb < K / 128; ++kb) {
    double part = 0;
    for (int k = kb * 128; k < kb * 128 + 128; ++k)
      part += (double)(float)X[(size_t)r * K + k] * (double)(float)W[(size_t)c * K + k];
    const double sx = mode == 2 ? 1.0 : xs[xs_index(xl, M, K, r, kb)];
    const double sw = mode == 2 ? 1.0 : ws[ws_index(mode, wl, N, K, c, kb)];
    acc += part * sx * sw;
  }
  out[i] = acc;
}

std::vector<int> spread(int n, int cap) {
  std::vector<int> v;
  if (n <= cap) {
    v.resize(n);
    std::iota(v.begin(), v.end(), 0);
    return v;
  }
  for (int i = 0; i < cap; ++i) v.push_back((int)((long long)i * (n - 1) / (cap - 1)));
  return v;
}

double compare(const std::vector<double>& ref, const std::vector<double>& got) {
  double num = 0, den = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    const double e = got[i] - ref[i];
    num += e * e;
    den += ref[i] * ref[i];
  }
  return den > 0 ? std::sqrt(num / den) : INFINITY;
}

std::vector<double> pick(const bf16* C, int ldc, const std::vector<int>& rs, const std::vector<int>& cs) {
  std::vector<double> out;
  for (int r : rs) {
    auto row = to_host_f32(C + (size_t)r * ldc, ldc);
    for (int c : cs) out.push_back(row[c]);
  }
  return out;
}

struct GemmShape {
  const char* what;
  int n, k;
};

// The fitted model shape's linear layers (DeepSeek-V3: hidden 7168, MLA q_lora 1536, kv_lora 512,
// 128 heads of 128 nope + 64 rope query/key dims and 128 value dims, expert/shared hidden 2048,
// 256 experts, vocabulary 129280).
const std::vector<GemmShape>& fit_shapes() {
  static const std::vector<GemmShape> s = {
      {"q_a_proj", 1536, 7168}, {"q_b_proj", 24576, 1536}, {"kv_a_proj", 576, 7168}, {"kv_b_proj", 32768, 512},
      {"o_proj", 7168, 16384},  {"expert_up", 4096, 7168}, {"expert_down", 7168, 2048}, {"router", 256, 7168},
      {"lm_head", 129280, 7168}};
  return s;
}

void bench_gemm_grid(Report& rep, const Options& opt) {
  cudaStream_t s;
  CK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  const Fp8Config& f8 = fp8_probe(s);
  const char* fp8_variant = f8.mode == 0 || f8.mode == 3 ? "cublaslt_block" : f8.mode == 1 ? "cublaslt_vec128"
                            : f8.mode == 4 ? "cublaslt_block_transposed_out" : "cublaslt_tensor_fallback";
  std::vector<int> ms = opt.quick ? std::vector<int>{16, 1024}
                                  : std::vector<int>{1, 16, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384};
  ms = env_int_list("EPSIM_GRID_M", ms);
  Options o = opt;
  o.time_budget_ms = opt.time_budget_ms * 0.4;  // ~400 points: keep the suite near a minute
  for (const GemmShape& g : fit_shapes()) {
    const int N = g.n, K = g.k;
    for (int M : ms) {
      if (g.n > 100000 && M > 4096) continue;  // LM head: prefill chunks beyond 4096 rows add minutes, nothing new
      const size_t foot = ((size_t)M * K + (size_t)N * K + (size_t)M * N) * 2;
      const int rot = rotation_count(foot, 4);
      std::vector<DevBuf<bf16>> X(rot), W(rot), Y(rot);
      for (int r = 0; r < rot; ++r) {
        X[r].alloc((size_t)M * K);
        W[r].alloc((size_t)N * K);
        Y[r].alloc((size_t)M * N);
        fill_random(X[r].get(), X[r].size(), 31 + r + M, 0.25f, 1.f, s);
        fill_random(W[r].get(), W[r].size(), 41 + r + N, 0.25f / std::sqrt((float)K), 1.f / std::sqrt((float)K), s);
        fill_random(Y[r].get(), Y[r].size(), 51 + r + M, 0.25f, 1.f, s);
      }
      const std::vector<std::pair<std::string, long long>> shape = {{"m", M}, {"n", N}, {"k", K}};
      const double flops = 2.0 * M * N * K;
      auto rows = spread(M, 8), cols = spread(N, 512);
      // forward: Y = X W^T
      {
        DevBuf<bf16> C((size_t)M * N);
        poison(C.get(), C.size(), s);
        gemm_bf16(GemmMode::NT, M, N, K, X[0].get(), W[0].get(), C.get(), false, 0.f, s);
        CK(cudaStreamSynchronize(s));
        auto dr = to_device(rows), dc = to_device(cols);
        DevBuf<double> ref(rows.size() * cols.size());
        ref_strided_kernel<<<(unsigned)ceil_div(ref.size(), 128), 128, 0, s>>>(
            X[0].get(), K, 1, W[0].get(), 1, K, dr.get(), (int)rows.size(), dc.get(), (int)cols.size(), K, ref.get());
        CK_LAST();
        CK(cudaStreamSynchronize(s));
        Check c = mk(compare(to_host(ref.get(), ref.size()), pick(C.get(), N, rows, cols)), kTolBf16,
                     count_nonfinite(C.get(), C.size()));
        auto t = time_it(s, [&](int i) { int r = i % rot; gemm_bf16(GemmMode::NT, M, N, K, X[r].get(), W[r].get(), Y[r].get(), false, 0.f, s); }, o);
        add(rep, "gemm_bf16", "cublas", shape, t, flops, (double)foot, c);
      }
      if (M >= 256 && g.n < 100000) {
        // input gradient: dX[M, K] = dY[M, N] W[N, K]
        DevBuf<bf16> dX((size_t)M * K);
        poison(dX.get(), dX.size(), s);
        gemm_bf16(GemmMode::NN, M, K, N, Y[0].get(), W[0].get(), dX.get(), false, 0.f, s);
        CK(cudaStreamSynchronize(s));
        auto kcols = spread(K, 512);
        auto dr = to_device(rows), dc = to_device(kcols);
        DevBuf<double> ref(rows.size() * kcols.size());
        ref_strided_kernel<<<(unsigned)ceil_div(ref.size(), 128), 128, 0, s>>>(
            Y[0].get(), N, 1, W[0].get(), K, 1, dr.get(), (int)rows.size(), dc.get(), (int)kcols.size(), N, ref.get());
        CK_LAST();
        CK(cudaStreamSynchronize(s));
        Check c = mk(compare(to_host(ref.get(), ref.size()), pick(dX.get(), K, rows, kcols)), kTolBf16,
                     count_nonfinite(dX.get(), dX.size()));
        std::vector<DevBuf<bf16>> dXs(rot);
        for (auto& b : dXs) b.alloc((size_t)M * K);
        auto t = time_it(s, [&](int i) { int r = i % rot; gemm_bf16(GemmMode::NN, M, K, N, Y[r].get(), W[r].get(), dXs[r].get(), false, 0.f, s); }, o);
        add(rep, "gemm_bf16_dgrad", "cublas", shape, t, flops, (double)foot, c);
        // weight gradient: dW[N, K] = dY[M, N]^T X[M, K]
        DevBuf<bf16> dW((size_t)N * K);
        poison(dW.get(), dW.size(), s);
        gemm_bf16(GemmMode::TN, N, K, M, Y[0].get(), X[0].get(), dW.get(), false, 0.f, s);
        CK(cudaStreamSynchronize(s));
        auto nrows = spread(N, 8);
        auto dr2 = to_device(nrows);
        DevBuf<double> ref2(nrows.size() * kcols.size());
        ref_strided_kernel<<<(unsigned)ceil_div(ref2.size(), 128), 128, 0, s>>>(
            Y[0].get(), 1, N, X[0].get(), K, 1, dr2.get(), (int)nrows.size(), dc.get(), (int)kcols.size(), M, ref2.get());
        CK_LAST();
        CK(cudaStreamSynchronize(s));
        Check c2 = mk(compare(to_host(ref2.get(), ref2.size()), pick(dW.get(), K, nrows, kcols)), kTolBf16,
                      count_nonfinite(dW.get(), dW.size()));
        std::vector<DevBuf<bf16>> dWs(rot);
        for (auto& b : dWs) b.alloc((size_t)N * K);
        auto t2 = time_it(s, [&](int i) { int r = i % rot; gemm_bf16(GemmMode::TN, N, K, M, Y[r].get(), X[r].get(), dWs[r].get(), false, 0.f, s); }, o);
        add(rep, "gemm_bf16_wgrad", "cublas", shape, t2, flops, (double)foot, c2);
      }
      if (K % 128 == 0 && N % 16 == 0) {
        // block-scaled FP8 forward (the fp8 rows' M is at least 16: the library's alignment)
        const int Mf = std::max(M, 16);
        const size_t foot8 = (size_t)Mf * K + (size_t)N * K + (size_t)Mf * N * 2;
        const int rot8 = rotation_count(foot8, 4);
        std::vector<DevBuf<fp8>> X8(rot8), W8(rot8);
        std::vector<DevBuf<float>> xs(rot8), wsc(rot8);
        std::vector<DevBuf<bf16>> C8(rot8);
        for (int r = 0; r < rot8; ++r) {
          X8[r].alloc((size_t)Mf * K);
          W8[r].alloc((size_t)N * K);
          C8[r].alloc((size_t)Mf * N);
          xs[r].alloc(std::max<size_t>(fp8_x_scales(Mf, K), 1));
          wsc[r].alloc(std::max<size_t>(fp8_w_scales(N, K), 1) + 64);
          fill_random(X8[r].get(), X8[r].size(), 61 + r, 0.5f, 8.f, s);
          fill_random(W8[r].get(), W8[r].size(), 71 + r, 0.5f, 8.f, s);
          fill_random(xs[r].get(), xs[r].size(), 81 + r, 0.5f / 64, 1.f / 64, s);
          fill_random(wsc[r].get(), wsc[r].size(), 91 + r, 0.5f / (8 * std::sqrt((float)K)), 1.f / (8 * std::sqrt((float)K)), s);
        }
        // scales must be positive: random signs would flip whole blocks (harmless for timing, but
        // the reference mirrors them exactly either way); keep them as drawn.
        poison(C8[0].get(), C8[0].size(), s);
        gemm_fp8_block(Mf, N, K, X8[0].get(), xs[0].get(), W8[0].get(), wsc[0].get(), C8[0].get(), s);
        CK(cudaStreamSynchronize(s));
        auto rows8 = spread(Mf, 8);
        auto dr = to_device(rows8), dc = to_device(cols);
        DevBuf<double> ref(rows8.size() * cols.size());
        ref_fp8_kernel<<<(unsigned)ceil_div(ref.size(), 128), 128, 0, s>>>(
            X8[0].get(), xs[0].get(), W8[0].get(), wsc[0].get(), Mf, N, K, f8.mode, f8.x_layout, f8.w_layout,
            dr.get(), (int)rows8.size(), dc.get(), (int)cols.size(), ref.get());
        CK_LAST();
        CK(cudaStreamSynchronize(s));
        std::vector<double> got8;
        if (f8.mode == 4) {  // D in column order: C^T in memory
          auto all = to_host_f32(C8[0].get(), C8[0].size());
          for (int r : rows8)
            for (int c : cols) got8.push_back(all[(size_t)c * Mf + r]);
        } else {
          got8 = pick(C8[0].get(), N, rows8, cols);
        }
        Check c = mk(compare(to_host(ref.get(), ref.size()), got8), kTolFp8, count_nonfinite(C8[0].get(), C8[0].size()),
                     std::string("fp8 probe: ") + f8.note);
        auto t = time_it(s, [&](int i) { int r = i % rot8; gemm_fp8_block(Mf, N, K, X8[r].get(), xs[r].get(), W8[r].get(), wsc[r].get(), C8[r].get(), s); }, o);
        add(rep, "gemm_fp8_block", fp8_variant, {{"m", Mf}, {"n", N}, {"k", K}}, t, 2.0 * Mf * N * K,
            (double)foot8 + (double)(fp8_x_scales(Mf, K) + fp8_w_scales(N, K)) * 4, c);
      }
    }
  }
  CK(cudaStreamDestroy(s));
}

// ---------------------------------------------------------------- own kernels
struct ElemCase {
  std::vector<int> tokens;
};

std::vector<int> token_grid(const Options& opt) {
  return opt.quick ? std::vector<int>{16, 4096} : std::vector<int>{16, 64, 256, 1024, 4096, 16384};
}

void bench_norm(Report& rep, const Options& opt, cudaStream_t s) {
  for (int H : {512, 1536, 7168})
    for (int T : token_grid(opt)) {
      const size_t n = (size_t)T * H;
      const int rot = rotation_count(n * 4, 8);
      std::vector<DevBuf<bf16>> X(rot), Y(rot), DY(rot), DX(rot);
      std::vector<DevBuf<float>> R(rot), DW(rot);
      DevBuf<bf16> w(H);
      fill_random(w.get(), H, 5, 0.5f, 1.5f, s);
      for (int r = 0; r < rot; ++r) {
        X[r].alloc(n); Y[r].alloc(n); DY[r].alloc(n); DX[r].alloc(n); R[r].alloc(T); DW[r].alloc(H);
        fill_random(X[r].get(), n, 100 + r + T, 0.25f, 1.f, s);
        fill_random(DY[r].get(), n, 200 + r + T, 0.25f, 1.f, s);
      }
      CK(cudaMemsetAsync(DW[0].get(), 0, H * 4, s));
      poison(Y[0].get(), n, s);
      poison(DX[0].get(), n, s);
      rmsnorm_fwd(X[0].get(), w.get(), Y[0].get(), R[0].get(), T, H, 1e-6f, s);
      rmsnorm_bwd(DY[0].get(), X[0].get(), w.get(), R[0].get(), DX[0].get(), DW[0].get(), T, H, s);
      CK(cudaStreamSynchronize(s));
      auto hw = host_bf16(w.get(), H);
      std::vector<double> ry, gy, rdx, gdx;
      std::vector<double> rdw(H, 0.0);
      auto rows = spread(T, 16);
      const bool full = T <= 1024;  // dw needs every row
      auto hx = full ? host_bf16(X[0].get(), n) : std::vector<double>();
      auto hdy = full ? host_bf16(DY[0].get(), n) : std::vector<double>();
      std::vector<int> all(T);
      std::iota(all.begin(), all.end(), 0);
      for (int t : full ? all : rows) {
        auto x = full ? std::vector<double>(hx.begin() + (size_t)t * H, hx.begin() + (size_t)(t + 1) * H)
                      : host_bf16(X[0].get() + (size_t)t * H, H);
        auto dy = full ? std::vector<double>(hdy.begin() + (size_t)t * H, hdy.begin() + (size_t)(t + 1) * H)
                       : host_bf16(DY[0].get() + (size_t)t * H, H);
        double ss = 0, dot = 0;
        for (int h = 0; h < H; ++h) ss += x[h] * x[h];
        const double r = 1.0 / std::sqrt(ss / H + 1e-6);
        for (int h = 0; h < H; ++h) dot += hw[h] * dy[h] * x[h];
        for (int h = 0; h < H; ++h) rdw[h] += dy[h] * x[h] * r;
        if (std::find(rows.begin(), rows.end(), t) == rows.end()) continue;
        auto y = host_bf16(Y[0].get() + (size_t)t * H, H);
        auto dx = host_bf16(DX[0].get() + (size_t)t * H, H);
        for (int h = 0; h < H; ++h) {
          ry.push_back(x[h] * r * hw[h]);
          gy.push_back(y[h]);
          rdx.push_back(r * hw[h] * dy[h] - x[h] * r * r * r * dot / H);
          gdx.push_back(dx[h]);
        }
      }
      Check cf = mk(compare(ry, gy), kTolElem, count_nonfinite(Y[0].get(), n));
      double dwerr = 0;
      if (full) {
        auto gdw = to_host(DW[0].get(), H);
        dwerr = compare(rdw, std::vector<double>(gdw.begin(), gdw.end()));
      }
      Check cb = mk(std::max(compare(rdx, gdx), dwerr), kTolElem, count_nonfinite(DX[0].get(), n),
                    full ? "dx and dw checked" : "dx checked (dw checked at T <= 1024)");
      auto tf = time_it(s, [&](int i) { int r = i % rot; rmsnorm_fwd(X[r].get(), w.get(), Y[r].get(), R[r].get(), T, H, 1e-6f, s); }, opt);
      add(rep, "rmsnorm", "own", {{"tokens", T}, {"hidden", H}}, tf, 4.0 * n, (double)n * 4 + H * 2 + T * 4, cf);
      auto tb = time_it(s, [&](int i) { int r = i % rot; rmsnorm_bwd(DY[r].get(), X[r].get(), w.get(), R[r].get(), DX[r].get(), DW[r].get(), T, H, s); }, opt);
      add(rep, "rmsnorm_bwd", "own", {{"tokens", T}, {"hidden", H}}, tb, 8.0 * n, (double)n * 6 + H * 6 + T * 4, cb);
    }
}

double rope_ref(double a, double b, int pos, int i, int rd, bool first) {
  const double inv = std::pow(10000.0, -2.0 * i / rd);
  const double c = std::cos(pos * inv), sn = std::sin(pos * inv);
  return first ? a * c - b * sn : a * sn + b * c;
}

void bench_rope(Report& rep, const Options& opt, cudaStream_t s) {
  struct Cfg { int heads, head_stride, offset, rd; };
  // MLA queries (128 heads, rope on dims 128..191 of 192), MHA/GQA heads (rotary 128).
  for (Cfg c : {Cfg{128, 192, 128, 64}, Cfg{64, 128, 0, 128}, Cfg{8, 128, 0, 128}})
    for (int T : token_grid(opt)) {
      const long long row = (long long)c.heads * c.head_stride;
      const size_t n = (size_t)T * row;
      const int rot = rotation_count(n * 2, 8);
      std::vector<DevBuf<bf16>> X(rot);
      for (int r = 0; r < rot; ++r) {
        X[r].alloc(n);
        fill_random(X[r].get(), n, 300 + r + T, 0.25f, 1.f, s);
      }
      CK(cudaStreamSynchronize(s));  // the fills ran on s; the host copies below do not wait for it
      auto rows = spread(T, 8);
      std::vector<std::vector<double>> before;
      for (int t : rows) before.push_back(host_bf16(X[0].get() + (size_t)t * row, row));
      rope(X[0].get(), T, c.heads, row, c.head_stride, c.offset, c.rd, 0, 1, 1.f, s);
      CK(cudaStreamSynchronize(s));
      std::vector<double> ref, got;
      for (size_t j = 0; j < rows.size(); ++j) {
        auto after = host_bf16(X[0].get() + (size_t)rows[j] * row, row);
        for (int h = 0; h < c.heads; ++h)
          for (int i = 0; i < c.rd / 2; ++i) {
            const size_t p = (size_t)h * c.head_stride + c.offset + i, q = p + c.rd / 2;
            ref.push_back(rope_ref(before[j][p], before[j][q], rows[j], i, c.rd, true));
            ref.push_back(rope_ref(before[j][p], before[j][q], rows[j], i, c.rd, false));
            got.push_back(after[p]);
            got.push_back(after[q]);
          }
      }
      Check ck = mk(compare(ref, got), kTolElem, count_nonfinite(X[0].get(), n));
      auto t = time_it(s, [&](int i) { rope(X[i % rot].get(), T, c.heads, row, c.head_stride, c.offset, c.rd, 0, 1, 1.f, s); }, opt);
      const double moved = (double)T * c.heads * c.rd * 2 * 2;  // rotated elements read and written
      add(rep, "rope", "own", {{"tokens", T}, {"heads", c.heads}, {"head_dim", c.head_stride}, {"rope_dim", c.rd}}, t,
          6.0 * T * c.heads * c.rd / 2, moved, ck);
    }
  // MLA: q rope in place + k assembled from kv_b's k_nope and the shared, rotated k_pe.
  for (int T : token_grid(opt)) {
    const int H = 128;
    DevBuf<bf16> q((size_t)T * H * 192), kvb((size_t)T * H * 256), kva((size_t)T * 576), k((size_t)T * H * 192);
    fill_random(q.get(), q.size(), 7, 0.25f, 1.f, s);
    fill_random(kvb.get(), kvb.size(), 8, 0.25f, 1.f, s);
    fill_random(kva.get(), kva.size(), 9, 0.25f, 1.f, s);
    poison(k.get(), k.size(), s);
    CK(cudaStreamSynchronize(s));  // the fills ran on s; the host copies below do not wait for it
    const int t0 = T - 1;
    auto kvb_row = host_bf16(kvb.get() + (size_t)t0 * H * 256, (size_t)H * 256);
    auto kva_row = host_bf16(kva.get() + (size_t)t0 * 576, 576);
    mla_rope_assemble(q.get(), kvb.get(), kva.get(), k.get(), T, H, 0, 1, s);
    CK(cudaStreamSynchronize(s));
    auto krow = host_bf16(k.get() + (size_t)t0 * H * 192, (size_t)H * 192);
    std::vector<double> ref, got;
    for (int h = 0; h < H; ++h) {
      for (int d = 0; d < 128; ++d) { ref.push_back(kvb_row[h * 256 + d]); got.push_back(krow[h * 192 + d]); }
      for (int i = 0; i < 32; ++i) {
        ref.push_back(rope_ref(kva_row[512 + i], kva_row[544 + i], t0, i, 64, true));
        ref.push_back(rope_ref(kva_row[512 + i], kva_row[544 + i], t0, i, 64, false));
        got.push_back(krow[h * 192 + 128 + i]);
        got.push_back(krow[h * 192 + 160 + i]);
      }
    }
    Check ck = mk(compare(ref, got), kTolElem, count_nonfinite(k.get(), k.size()), "k assembled for the last token; q's rope as in rope rows");
    auto t = time_it(s, [&](int) { mla_rope_assemble(q.get(), kvb.get(), kva.get(), k.get(), T, H, 0, 1, s); }, opt);
    const double moved = (double)T * H * (64 * 2 + 128 * 2 + 192 * 2) + (double)T * 64 * 2;
    add(rep, "mla_rope", "own", {{"tokens", T}, {"heads", H}}, t, 6.0 * T * H * 32, moved, ck);
  }
}

void bench_swiglu(Report& rep, const Options& opt, cudaStream_t s) {
  std::vector<int> rows_grid = opt.quick ? std::vector<int>{128, 32768} : std::vector<int>{16, 128, 1024, 8192, 32768, 131072};
  for (int I : {512, 2048})
    for (int R : rows_grid) {
      const size_t nh = (size_t)R * 2 * I, na = (size_t)R * I;
      const int rot = rotation_count((nh * 2 + na * 2) * 2, 8);
      std::vector<DevBuf<bf16>> Hb(rot), A(rot), dA(rot), dH(rot);
      for (int r = 0; r < rot; ++r) {
        Hb[r].alloc(nh); A[r].alloc(na); dA[r].alloc(na); dH[r].alloc(nh);
        fill_random(Hb[r].get(), nh, 400 + r + R, 0.25f, 2.f, s);
        fill_random(dA[r].get(), na, 500 + r + R, 0.25f, 1.f, s);
      }
      poison(A[0].get(), na, s);
      poison(dH[0].get(), nh, s);
      silu_mul_bf16(Hb[0].get(), A[0].get(), R, I, s);
      swiglu_bwd(dA[0].get(), Hb[0].get(), dH[0].get(), R, I, s);
      CK(cudaStreamSynchronize(s));
      std::vector<double> ra, ga, rd, gd;
      for (int r : spread(R, 8)) {
        auto h = host_bf16(Hb[0].get() + (size_t)r * 2 * I, 2 * I);
        auto a = host_bf16(A[0].get() + (size_t)r * I, I);
        auto da = host_bf16(dA[0].get() + (size_t)r * I, I);
        auto dh = host_bf16(dH[0].get() + (size_t)r * 2 * I, 2 * I);
        for (int j = 0; j < I; ++j) {
          const double g = h[j], u = h[I + j], sg = 1.0 / (1.0 + std::exp(-g));
          ra.push_back(g * sg * u);
          ga.push_back(a[j]);
          rd.push_back(da[j] * u * sg * (1 + g * (1 - sg)));
          gd.push_back(dh[j]);
          rd.push_back(da[j] * g * sg);
          gd.push_back(dh[I + j]);
        }
      }
      Check cf = mk(compare(ra, ga), kTolElem, count_nonfinite(A[0].get(), na));
      Check cb = mk(compare(rd, gd), kTolElem, count_nonfinite(dH[0].get(), nh));
      auto tf = time_it(s, [&](int i) { int r = i % rot; silu_mul_bf16(Hb[r].get(), A[r].get(), R, I, s); }, opt);
      add(rep, "swiglu", "own", {{"rows", R}, {"inter", I}}, tf, 4.0 * na, (double)(nh + na) * 2, cf);
      auto tb = time_it(s, [&](int i) { int r = i % rot; swiglu_bwd(dA[r].get(), Hb[r].get(), dH[r].get(), R, I, s); }, opt);
      add(rep, "swiglu_bwd", "own", {{"rows", R}, {"inter", I}}, tb, 10.0 * na, (double)(2 * nh + na) * 2, cb);
    }
}

void bench_quant(Report& rep, const Options& opt, cudaStream_t s) {
  fp8_probe(s);
  std::vector<int> rows_grid = opt.quick ? std::vector<int>{128, 32768} : std::vector<int>{16, 128, 1024, 8192, 32768, 131072};
  for (int K : {512, 2048, 7168, 16384})
    for (int R : rows_grid) {
      if ((long long)R * K > (1ll << 30)) continue;
      const size_t n = (size_t)R * K;
      const int rot = rotation_count(n * 3, 8);
      std::vector<DevBuf<bf16>> X(rot);
      std::vector<DevBuf<fp8>> Q(rot);
      std::vector<DevBuf<float>> S(rot);
      for (int r = 0; r < rot; ++r) {
        X[r].alloc(n); Q[r].alloc(n); S[r].alloc(fp8_x_scales(R, K));
        fill_random(X[r].get(), n, 600 + r + R, 0.25f, 4.f, s);
      }
      poison(S[0].get(), S[0].size(), s);
      quant_act(X[0].get(), K, R, K, Q[0].get(), S[0].get(), nullptr, 1, s);
      CK(cudaStreamSynchronize(s));
      // dequantised values against the input (e4m3: 3 mantissa bits, relative error <= 1/16 per element)
      auto hs = to_host(S[0].get(), S[0].size());
      std::vector<double> ref, got;
      for (int r : spread(R, 8)) {
        auto x = host_bf16(X[0].get() + (size_t)r * K, K);
        auto q = to_host(Q[0].get() + (size_t)r * K, K);
        for (int k = 0; k < K; ++k) {
          ref.push_back(x[k]);
          got.push_back((double)(float)q[k] * hs[fp8_x_scale_index(R, K, r, k / 128)]);
        }
      }
      long long bad = 0;
      for (float v : hs) bad += std::isfinite(v) ? 0 : 1;
      Check c = mk(compare(ref, got), 4e-2, bad, "dequantised against the bf16 input; e4m3 rounding");
      auto t = time_it(s, [&](int i) { int r = i % rot; quant_act(X[r].get(), K, R, K, Q[r].get(), S[r].get(), nullptr, 1, s); }, opt);
      add(rep, "quant_act", "own_1x128", {{"rows", R}, {"k", K}}, t, 3.0 * n, (double)n * 3 + (double)n / 128 * 4, c);
    }
}

void bench_residual(Report& rep, const Options& opt, cudaStream_t s) {
  for (int T : token_grid(opt)) {
    const int H = 7168;
    const size_t n = (size_t)T * H;
    const int rot = rotation_count(n * 6, 8);
    std::vector<DevBuf<bf16>> A(rot), B(rot), O(rot);
    for (int r = 0; r < rot; ++r) {
      A[r].alloc(n); B[r].alloc(n); O[r].alloc(n);
      fill_random(A[r].get(), n, 700 + r, 0.25f, 1.f, s);
      fill_random(B[r].get(), n, 800 + r, 0.25f, 1.f, s);
    }
    poison(O[0].get(), n, s);
    residual_add(A[0].get(), B[0].get(), O[0].get(), (long long)n, s);
    CK(cudaStreamSynchronize(s));
    std::vector<double> ref, got;
    for (int t : spread(T, 8)) {
      auto a = host_bf16(A[0].get() + (size_t)t * H, H), b = host_bf16(B[0].get() + (size_t)t * H, H);
      auto o = host_bf16(O[0].get() + (size_t)t * H, H);
      for (int h = 0; h < H; ++h) { ref.push_back(a[h] + b[h]); got.push_back(o[h]); }
    }
    Check c = mk(compare(ref, got), kTolElem, count_nonfinite(O[0].get(), n));
    auto t = time_it(s, [&](int i) { int r = i % rot; residual_add(A[r].get(), B[r].get(), O[r].get(), (long long)n, s); }, opt);
    add(rep, "residual_add", "own", {{"tokens", T}, {"hidden", H}}, t, (double)n, (double)n * 6, c);
  }
}

void bench_moe_bwd(Report& rep, const Options& opt, cudaStream_t s) {
  const int H = 7168, K8 = 8, E = 256;
  for (int T : token_grid(opt)) {
    // unpermute backward: a random permutation of the T*8 rows
    const int R = T * K8;
    std::vector<int> perm(R);
    std::iota(perm.begin(), perm.end(), 0);
    uint64_t st = 12345 + T;
    for (int i = R - 1; i > 0; --i) {
      st = st * 6364136223846793005ull + 1442695040888963407ull;
      std::swap(perm[i], perm[(int)((st >> 33) % (uint64_t)(i + 1))]);
    }
    std::vector<float> w(R);
    for (int i = 0; i < R; ++i) w[i] = 0.05f + 0.1f * (float)((i * 37) % 11) / 11.f;
    auto dest = to_device(perm);
    auto dw_w = to_device(w);
    DevBuf<bf16> dout((size_t)T * H), y((size_t)R * H), dy((size_t)R * H);
    DevBuf<float> dwt(R);
    fill_random(dout.get(), dout.size(), 901, 0.25f, 1.f, s);
    fill_random(y.get(), y.size(), 902, 0.25f, 1.f, s);
    poison(dy.get(), dy.size(), s);
    unpermute_bwd(dout.get(), y.get(), dest.get(), dw_w.get(), T, K8, H, dy.get(), dwt.get(), s);
    CK(cudaStreamSynchronize(s));
    std::vector<double> ref, got, refw, gotw;
    auto hdw = to_host(dwt.get(), R);
    for (int t : spread(T, 4)) {
      auto g = host_bf16(dout.get() + (size_t)t * H, H);
      for (int j = 0; j < K8; ++j) {
        const int row = perm[t * K8 + j];
        auto yr = host_bf16(y.get() + (size_t)row * H, H);
        auto dr = host_bf16(dy.get() + (size_t)row * H, H);
        double dot = 0;
        for (int h = 0; h < H; ++h) {
          ref.push_back(w[t * K8 + j] * g[h]);
          got.push_back(dr[h]);
          dot += g[h] * yr[h];
        }
        refw.push_back(dot);
        gotw.push_back(hdw[t * K8 + j]);
      }
    }
    Check c = mk(std::max(compare(ref, got), compare(refw, gotw)), kTolElem, count_nonfinite(dy.get(), dy.size()));
    auto t = time_it(s, [&](int) { unpermute_bwd(dout.get(), y.get(), dest.get(), dw_w.get(), T, K8, H, dy.get(), dwt.get(), s); }, opt);
    add(rep, "unpermute_bwd", "own", {{"tokens", T}, {"topk", K8}, {"hidden", H}}, t, 4.0 * R * H,
        (double)T * H * 2 + (double)R * H * 4 + R * 12, c);

    // router top-k backward
    DevBuf<float> logits((size_t)T * E), gw((size_t)T * K8), wts((size_t)T * K8);
    DevBuf<int> ids((size_t)T * K8);
    DevBuf<bf16> dl((size_t)T * E);
    fill_random(logits.get(), logits.size(), 903, 0.25f, 3.f, s);
    fill_random(gw.get(), gw.size(), 904, 0.25f, 1.f, s);
    group_topk(logits.get(), T, E, 8, 4, K8, ids.get(), wts.get(), s);
    poison(dl.get(), dl.size(), s);
    router_topk_bwd(gw.get(), ids.get(), logits.get(), T, K8, E, dl.get(), s);
    CK(cudaStreamSynchronize(s));
    auto hl = to_host(logits.get(), logits.size());
    auto hi = to_host(ids.get(), ids.size());
    auto hg = to_host(gw.get(), gw.size());
    std::vector<double> r2, g2;
    for (int t : spread(T, 8)) {
      auto row = host_bf16(dl.get() + (size_t)t * E, E);
      std::vector<double> ref_row(E, 0.0);
      double S = 0, gwsum = 0;
      for (int j = 0; j < K8; ++j) S += 1.0 / (1.0 + std::exp(-(double)hl[(size_t)t * E + hi[t * K8 + j]]));
      for (int j = 0; j < K8; ++j) {
        const double sj = 1.0 / (1.0 + std::exp(-(double)hl[(size_t)t * E + hi[t * K8 + j]]));
        gwsum += hg[t * K8 + j] * sj / S;
      }
      for (int j = 0; j < K8; ++j) {
        const double sj = 1.0 / (1.0 + std::exp(-(double)hl[(size_t)t * E + hi[t * K8 + j]]));
        ref_row[hi[t * K8 + j]] = (hg[t * K8 + j] - gwsum) / S * sj * (1 - sj);
      }
      for (int e = 0; e < E; ++e) { r2.push_back(ref_row[e]); g2.push_back(row[e]); }
    }
    Check c2 = mk(compare(r2, g2), kTolElem, count_nonfinite(dl.get(), dl.size()));
    // the router's top-k alone (the layer's router_topk op: group top-k, then the local expert map)
    {
      DevBuf<int> loc((size_t)T * K8);
      auto ids_before = to_host(ids.get(), ids.size());
      group_topk(logits.get(), T, E, 8, 4, K8, ids.get(), wts.get(), s);
      map_local(loc.get(), (long long)T * K8, 8, s);
      CK(cudaStreamSynchronize(s));
      auto ids_after = to_host(ids.get(), ids.size());
      auto hloc = to_host(loc.get(), loc.size());
      long long bad = 0;
      for (size_t i = 0; i < ids_after.size(); ++i) bad += (ids_after[i] != ids_before[i]) + (hloc[i] != (int)(i % 8));
      Check c3 = mk((double)bad / ids_after.size(), 0, 0, "same ids as the checked run above; local map i % 8");
      auto t3 = time_it(s, [&](int) {
        group_topk(logits.get(), T, E, 8, 4, K8, ids.get(), wts.get(), s);
        map_local(loc.get(), (long long)T * K8, 8, s);
      }, opt);
      add(rep, "router_topk", "own", {{"tokens", T}, {"experts", E}, {"topk", K8}}, t3, 20.0 * T * E,
          (double)T * E * 4 + (double)T * K8 * 12, c3);
    }
    auto t2 = time_it(s, [&](int) { router_topk_bwd(gw.get(), ids.get(), logits.get(), T, K8, E, dl.get(), s); }, opt);
    add(rep, "router_topk_bwd", "own", {{"tokens", T}, {"experts", E}, {"topk", K8}}, t2, 20.0 * T * K8,
        (double)T * E * 2 + (double)T * K8 * 12, c2);
  }
}

void bench_layer_ops(Report& rep, const Options& opt) {
  cudaStream_t s;
  CK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  bench_norm(rep, opt, s);
  bench_rope(rep, opt, s);
  bench_swiglu(rep, opt, s);
  bench_quant(rep, opt, s);
  bench_residual(rep, opt, s);
  bench_moe_bwd(rep, opt, s);
  CK(cudaStreamDestroy(s));
}

// ---------------------------------------------------------------- launch gap
// N dependent kernels back to back on one stream, one event pair around all of them (no event
// between kernels): time per kernel. Empty kernels: the launch and dependency gap itself; tiny
// copies (each reads what the previous wrote): the same plus a few hundred ns of work.
void bench_gap(Report& rep, const Options& opt) {
  cudaStream_t s;
  CK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  const int N = opt.quick ? 200 : 2000;
  DevBuf<float> a(256), b(256);
  CK(cudaMemsetAsync(a.get(), 0, 1024, s));
  CK(cudaMemsetAsync(b.get(), 0, 1024, s));
  cudaEvent_t between;
  CK(cudaEventCreate(&between));
  for (int variant = 0; variant < 3; ++variant) {
    auto launch_all = [&]() {
      for (int i = 0; i < N; ++i) {
        if (variant == 2) CK(cudaEventRecord(between, s));  // as the per-repetition timing does
        if (variant != 1) empty_kernel(s);
        else if (i % 2) tiny_copy(b.get(), a.get(), 256, s);
        else tiny_copy(a.get(), b.get(), 256, s);
      }
    };
    launch_all();  // warm-up
    CK(cudaStreamSynchronize(s));
    std::vector<double> per;
    cudaEvent_t e0, e1;
    CK(cudaEventCreate(&e0));
    CK(cudaEventCreate(&e1));
    for (int rep_i = 0; rep_i < 7; ++rep_i) {
      gpu_spin(s, 4000);  // the host enqueues N launches while the GPU spins
      CK(cudaEventRecord(e0, s));
      launch_all();
      CK(cudaEventRecord(e1, s));
      CK(cudaEventSynchronize(e1));
      float ms = 0;
      CK(cudaEventElapsedTime(&ms, e0, e1));
      per.push_back(ms * 1000.0 / N);
    }
    CK(cudaEventDestroy(e0));
    CK(cudaEventDestroy(e1));
    std::sort(per.begin(), per.end());
    Timing t;
    t.med = per[per.size() / 2];
    t.min = per.front();
    t.max = per.back();
    t.iters = (int)per.size();
    Check c;
    if (variant == 1) {
      // after the warm-up and 7 batches of N alternating +1 copies, a[0] holds (8 N) - 1 or so:
      // check it equals the count of copies that ended in a (every second kernel).
      auto ha = to_host(a.get(), 1), hb = to_host(b.get(), 1);
      const double want = 8.0 * N;  // each kernel adds 1 to the value it copies
      const double got = std::max(ha[0], hb[0]);
      c = mk(std::abs(got - want) / want, 0, 0, "value after 8N dependent +1 copies");
    } else {
      c = mk(0, 0, 0, variant == 0 ? "no output (empty kernels)" : "no output (empty kernels, an event recorded before each)");
    }
    add(rep, "kernel_gap", variant == 0 ? "empty_back_to_back" : variant == 1 ? "tiny_dependent" : "empty_event_between",
        {{"kernels", N}}, t, 0, variant == 1 ? 2048.0 : 0, c);
  }
  CK(cudaEventDestroy(between));
  CK(cudaStreamDestroy(s));
}

}  // namespace

void suite_layer(Report& rep, const Options& opt) {
  if (opt.want("gap")) bench_gap(rep, opt);
  if (opt.want("layer_ops")) bench_layer_ops(rep, opt);
  if (opt.want("gemm_grid")) bench_gemm_grid(rep, opt);
}

}  // namespace epsim::bench
