// Which measured kernel family prices one op of a decoder layer, named as in common_names.md
// ("q_proj", "attn_core", "expert_up.wgrad", "quant_act.expert_up", ...), and where on the family's
// curves the op sits. Used by CalibratedCostModel::time_family and by `epsim calibrate
// --check-layer` (whole-layer measurements, kernels/epsim_layer.py).
//
//   norms (attn_norm, q_a_norm, kv_a_norm, ffn_norm, final_norm)   rmsnorm        series hidden, x tokens
//   <norm>.dgrad                                                    rmsnorm_bwd
//   linear layers (q_proj, q_b_proj, kv_proj, kv_b_proj, o_proj, router, shared_up, shared_down,
//   dense_up, dense_down, lm_head; expert_up / expert_down per local expert)
//                                  gemm_bf16 | gemm_fp8_block     series (n, k), x m (rows)
//   <linear>.dgrad / .wgrad        gemm_bf16_dgrad / gemm_bf16_wgrad, series the forward's (n, k)
//   rope (MHA/GQA; MLA)            rope series (heads, head_dim, rope_dim) | mla_rope series heads
//   rope in decode (shape kv_len)  + its KV append: kv_append series (segments, width), x batch, one
//                                  copy per cached tensor (MHA/GQA: k and v, kv_heads x head_dim each);
//                                  MLA absorbed (shape kv_lora): rope of q's rope dims and of k_pe,
//                                  then three kv_append copies (q_pe beside the absorbed q, the latent
//                                  and k_pe into the cache)
//   kv_b_proj, MLA decode absorbed (shape kv_lora, heads)  mla_absorb series (n, k), x m: the op of
//                                  one product (n, k given) or both (q_nope x W_UK: n kv_lora, k
//                                  head_dim_qk; latent out x W_UV: n head_dim_v, k kv_lora)
//   attn_core                      attention_fwd (prefill, x = seq) | attention_decode_gqa (x = bytes)
//                                  | MLA decode absorbed (shape kv_lora): attention_decode_mla (x = bytes)
//   attn_core.bwd                  attention_bwd, x = seq
//   attn_residual, ffn_residual (and .dgrad)   residual_add, x tokens
//   router_topk / .dgrad           router_topk / router_topk_bwd, x tokens
//   permute, unpermute, permute.dgrad          permute / unpermute_combine (log-log, scaled by bytes)
//   unpermute.dgrad                unpermute_bwd
//   swiglu, shared_swiglu (.dgrad) swiglu / swiglu_bwd, series inter, x rows
//   quant_act.<gemm>               quant_act, series k, x rows
// Among a family's series the two nearest to the op's (distance: sum of |ln(op / series)| over
// the series keys) are blended, ln efficiency and baseline weighted by inverse distance; an exact
// series match uses that series alone.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace epsim {

struct FamilyQuery {
  std::string family;                    // "" when no measured family prices the op
  std::map<std::string, double> series;  // the op's values of the series keys
  double x = 0;                          // size along the curve
  int calls = 1;                         // the op is this many calls of one shape (per-expert loops)
  // This part's own FLOPs and bytes, all calls together (< 0: the op's), where an op is several
  // kernels priced by different families or series (`more`).
  double flops = -1, bytes = -1;
  // The op's further kernels, each priced by its own family, series and counts: a decode RoPE's
  // rotations and its KV-cache append copies; MLA decode's absorbed kv_b_proj (q_nope x W_UK, then
  // the latent output x W_UV).
  std::vector<FamilyQuery> more;
};

// `precision`: "bf16" or "fp8" (the op's GEMM precision). `shape`: the op's named sizes (m n k
// experts tokens hidden heads kv_heads head_dim head_dim_qk head_dim_v rope_dim rows inter seq kv_len
// batch ...). flops, bytes: the whole op's counts (x for families sized by them).
FamilyQuery family_for_op(const std::string& name, const std::string& precision,
                          const std::map<std::string, std::int64_t>& shape, double flops, double bytes);

}  // namespace epsim
