// libepsim_ops.so: C entry points over layer_kernels.h and moe_kernels.h for the whole-layer
// program (kernels/epsim_layer.py, through ctypes). Each returns 0, or -1 with the message in
// epsim_last_error(). Pointers are device pointers; `stream` is a cudaStream_t.
#include <cstdint>
#include <string>

#include "layer_kernels.h"
#include "moe_kernels.h"

using namespace epsim::bench;

namespace {
std::string g_err;
template <class F>
int guard(F&& f) {
  try {
    f();
    return 0;
  } catch (const std::exception& e) {
    g_err = e.what();
    return -1;
  }
}
cudaStream_t S(void* s) { return static_cast<cudaStream_t>(s); }
template <class T>
T* P(void* p) { return static_cast<T*>(p); }
}  // namespace

extern "C" {

const char* epsim_last_error() { return g_err.c_str(); }

int epsim_fp8_probe(void* stream, int* mode, int* x_layout, int* w_layout) {
  return guard([&] {
    const Fp8Config& c = fp8_probe(S(stream));
    *mode = c.mode;
    *x_layout = c.x_layout;
    *w_layout = c.w_layout;
  });
}
const char* epsim_fp8_note() { return fp8_probe(nullptr).note.c_str(); }

int epsim_gemm_bf16(int mode, int M, int N, int K, void* A, void* B, void* C, int out_f32, float beta, void* stream) {
  return guard([&] {
    gemm_bf16(static_cast<GemmMode>(mode), M, N, K, P<bf16>(A), P<bf16>(B), C, out_f32 != 0, beta, S(stream));
  });
}
int epsim_gemm_fp8(int M, int N, int K, void* X, void* xs, void* W, void* ws, void* C, void* stream) {
  return guard([&] {
    gemm_fp8_block(M, N, K, P<fp8>(X), P<float>(xs), P<fp8>(W), P<float>(ws), P<bf16>(C), S(stream));
  });
}
int epsim_rmsnorm(void* x, long long ldx, void* w, void* y, void* rstd, int T, int H, float eps, void* stream) {
  return guard([&] { rmsnorm_fwd_strided(P<bf16>(x), ldx, P<bf16>(w), P<bf16>(y), P<float>(rstd), T, H, eps, S(stream)); });
}
int epsim_rmsnorm_bwd(void* dy, void* x, long long ldx, void* w, void* rstd, void* dx, void* dw, int T, int H,
                      void* stream) {
  return guard([&] {
    rmsnorm_bwd_strided(P<bf16>(dy), P<bf16>(x), ldx, P<bf16>(w), P<float>(rstd), P<bf16>(dx), P<float>(dw), T, H,
                        S(stream));
  });
}
int epsim_rope(void* x, int T, int heads, long long row_stride, int head_stride, int offset, int rd, int pos0,
               int pos_step, float sign, void* stream) {
  return guard([&] { rope(P<bf16>(x), T, heads, row_stride, head_stride, offset, rd, pos0, pos_step, sign, S(stream)); });
}
int epsim_mla_rope(void* q, void* kvb, void* kva, void* k, int T, int H, int pos0, int pos_step, void* stream) {
  return guard([&] { mla_rope_assemble(P<bf16>(q), P<bf16>(kvb), P<bf16>(kva), P<bf16>(k), T, H, pos0, pos_step, S(stream)); });
}
int epsim_mla_rope_bwd(void* dq, void* dk, void* dv, void* dkvb, void* dkva, int T, int H, int pos0, int pos_step,
                       void* stream) {
  return guard([&] {
    mla_rope_assemble_bwd(P<bf16>(dq), P<bf16>(dk), P<bf16>(dv), P<bf16>(dkvb), P<bf16>(dkva), T, H, pos0, pos_step,
                          S(stream));
  });
}
int epsim_swiglu(void* h, void* a, long long rows, int inter, void* stream) {
  return guard([&] { silu_mul_bf16(P<bf16>(h), P<bf16>(a), rows, inter, S(stream)); });
}
int epsim_swiglu_bwd(void* da, void* h, void* dh, long long rows, int inter, void* stream) {
  return guard([&] { swiglu_bwd(P<bf16>(da), P<bf16>(h), P<bf16>(dh), rows, inter, S(stream)); });
}
int epsim_quant_act(void* x, long long ldx, int rows, int K, void* q, void* scales, void* offsets, int groups,
                    void* stream) {
  return guard([&] { quant_act(P<bf16>(x), ldx, rows, K, P<fp8>(q), P<float>(scales), P<int>(offsets), groups, S(stream)); });
}
int epsim_residual_add(void* a, void* b, void* out, long long n, void* stream) {
  return guard([&] { residual_add(P<bf16>(a), P<bf16>(b), P<bf16>(out), n, S(stream)); });
}
int epsim_gate_topk(void* logits, int T, int E, int groups, int topk_groups, int topk, void* ids, void* w,
                    void* stream) {
  return guard([&] { group_topk(P<float>(logits), T, E, groups, topk_groups, topk, P<int>(ids), P<float>(w), S(stream)); });
}
int epsim_map_local(void* ids, long long n, int local, void* stream) {
  return guard([&] { map_local(P<int>(ids), n, local, S(stream)); });
}
int epsim_permute(void* x, void* ids, int T, int topk, int experts, int hidden, void* offsets, void* cursor, void* dest,
                  void* out, void* stream) {
  return guard([&] {
    permute_tokens_atomic(P<bf16>(x), P<int>(ids), T, topk, experts, hidden, P<int>(offsets), P<int>(cursor),
                          P<int>(dest), P<bf16>(out), S(stream));
  });
}
int epsim_unpermute(void* y, void* dest, void* w, int T, int topk, int hidden, void* out, void* stream) {
  return guard([&] { unpermute_combine(P<bf16>(y), P<int>(dest), P<float>(w), T, topk, hidden, P<bf16>(out), S(stream)); });
}
int epsim_unpermute_bwd(void* dout, void* y, void* dest, void* w, int T, int topk, int hidden, void* dy, void* dw,
                        void* stream) {
  return guard([&] {
    unpermute_bwd(P<bf16>(dout), P<bf16>(y), P<int>(dest), P<float>(w), T, topk, hidden, P<bf16>(dy), P<float>(dw),
                  S(stream));
  });
}
int epsim_router_topk_bwd(void* dw, void* ids, void* logits, int T, int topk, int E, void* dlogits, void* stream) {
  return guard([&] { router_topk_bwd(P<float>(dw), P<int>(ids), P<float>(logits), T, topk, E, P<bf16>(dlogits), S(stream)); });
}
int epsim_spin(void* stream, double us) {
  return guard([&] { gpu_spin(S(stream), us); });
}
int epsim_empty_kernel(void* stream) {
  return guard([&] { empty_kernel(S(stream)); });
}

}  // extern "C"
