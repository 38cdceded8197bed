#include "models/op_family.h"

#include <algorithm>
#include <set>
#include <utility>

namespace epsim {

namespace {

double get(const std::map<std::string, std::int64_t>& s, const std::string& k, double dflt = 0) {
  auto it = s.find(k);
  return it == s.end() ? dflt : static_cast<double>(it->second);
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

const std::set<std::string>& norms() {
  static const std::set<std::string> n = {"attn_norm", "q_a_norm", "kv_a_norm", "ffn_norm", "final_norm"};
  return n;
}
const std::set<std::string>& linears() {
  static const std::set<std::string> n = {"q_proj",    "q_b_proj",    "kv_proj",  "kv_b_proj", "o_proj",
                                          "router",    "shared_up",   "shared_down", "dense_up", "dense_down",
                                          "lm_head",   "expert_up",   "expert_down"};
  return n;
}

// One kernel of a composite op: its family, series, size and own counts.
FamilyQuery part(const char* family, std::map<std::string, double> series, double x, double flops, double bytes, int calls = 1) {
  FamilyQuery p;
  p.family = family;
  p.series = std::move(series);
  p.x = x;
  p.flops = flops;
  p.bytes = bytes;
  p.calls = calls;
  return p;
}

// MLA decode's kv_b_proj, absorbed (kernels/attn_torch.py mla_absorb): per head a [m, k] x [k, n]
// product, one batched bf16 GEMM over the heads; weights and activations read once, out written.
FamilyQuery absorb_product(double m, double heads, double n, double k) {
  return part("mla_absorb", {{"n", n}, {"k", k}}, m, 2.0 * m * heads * n * k, 2.0 * (m * heads * k + heads * k * n + m * heads * n));
}

void mla_absorb(FamilyQuery& q, const std::map<std::string, std::int64_t>& shape) {
  const double m = get(shape, "m"), heads = get(shape, "heads"), r = get(shape, "kv_lora");
  if (get(shape, "n") > 0) {  // one of the two products (the measured layer times them apart)
    q = absorb_product(m, heads, get(shape, "n"), get(shape, "k"));
    q.flops = q.bytes = -1;  // the op's own counts
    return;
  }
  q = absorb_product(m, heads, r, get(shape, "head_dim_qk"));            // q_nope x W_UK
  q.more.push_back(absorb_product(m, heads, get(shape, "head_dim_v"), r));  // latent out x W_UV
}

// A copy of tokens x segments x width bf16 elements into the KV cache (read and written).
FamilyQuery append(double tokens, double segments, double width, int calls = 1) {
  return part("kv_append", {{"segments", segments}, {"width", width}}, tokens, 0.0, 4.0 * tokens * segments * width * calls, calls);
}

// Decode RoPE with the KV append (kernels/epsim_layer.py): rotations by the rope family, each
// copy into the cache by kv_append.
void decode_rope(FamilyQuery& q, const std::map<std::string, std::int64_t>& shape) {
  const double t = get(shape, "tokens"), heads = get(shape, "heads");
  if (get(shape, "kv_lora") > 0) {  // MLA absorbed: q's rope dims, k_pe, q_pe placed, latent and k_pe appended
    const double rd = get(shape, "rope_dim"), r = get(shape, "kv_lora");
    q = part("rope", {{"heads", heads}, {"head_dim", get(shape, "head_dim_qk")}, {"rope_dim", rd}}, t, 3.0 * t * heads * rd,
             4.0 * t * heads * rd);
    q.more = {part("rope", {{"heads", 1}, {"head_dim", r + rd}, {"rope_dim", rd}}, t, 3.0 * t * rd, 4.0 * t * rd),
              append(t, heads, rd), append(t, 1, r), append(t, 1, rd)};
    return;
  }
  const double kv = get(shape, "kv_heads"), d = get(shape, "head_dim");  // q, then k; then k and v appended
  q = part("rope", {{"heads", (heads + kv) / 2}, {"head_dim", d}, {"rope_dim", d}}, t, 3.0 * t * (heads + kv) * d,
           4.0 * t * (heads + kv) * d, 2);
  q.more = {append(t, kv, d, 2)};
}

}  // namespace

FamilyQuery family_for_op(const std::string& name, const std::string& precision,
                          const std::map<std::string, std::int64_t>& shape, double flops, double bytes) {
  FamilyQuery q;
  (void)flops;
  std::string base = name, suffix;
  for (const char* s : {".dgrad", ".wgrad", ".bwd"})
    if (ends_with(name, s)) {
      suffix = s;
      base = name.substr(0, name.size() - suffix.size());
    }
  const double tokens = get(shape, "tokens", get(shape, "m"));
  if (base.rfind("quant_act", 0) == 0) {
    q.family = "quant_act";
    q.series = {{"k", get(shape, "k")}};
    q.x = get(shape, "rows");
  } else if (norms().count(base)) {
    q.family = suffix.empty() ? "rmsnorm" : "rmsnorm_bwd";
    q.series = {{"hidden", get(shape, "hidden")}};
    q.x = tokens;
  } else if (base == "kv_b_proj" && suffix.empty() && get(shape, "kv_lora") > 0) {
    mla_absorb(q, shape);
  } else if (linears().count(base)) {
    q.family = suffix == ".dgrad" ? "gemm_bf16_dgrad" : suffix == ".wgrad" ? "gemm_bf16_wgrad"
               : precision == "fp8" && base != "router" ? "gemm_fp8_block" : "gemm_bf16";
    q.series = {{"n", get(shape, "n")}, {"k", get(shape, "k")}};
    q.x = get(shape, "m");
    q.calls = static_cast<int>(std::max(1.0, get(shape, "experts", 1)));
  } else if (base == "rope" && suffix.empty() && get(shape, "kv_len") > 0) {
    decode_rope(q, shape);
  } else if (base == "rope") {
    if (shape.count("kv_heads")) {  // two kernels: the queries, then the keys
      q.family = "rope";
      q.series = {{"heads", (get(shape, "heads") + get(shape, "kv_heads")) / 2}, {"head_dim", get(shape, "head_dim")},
                  {"rope_dim", get(shape, "head_dim")}};
      q.calls = 2;
    } else {
      q.family = "mla_rope";
      q.series = {{"heads", get(shape, "heads")}};
    }
    q.x = tokens;
  } else if (base == "attn_core") {
    const std::map<std::string, double> heads = {{"heads", get(shape, "heads")}, {"kv_heads", get(shape, "kv_heads")},
                                                 {"head_dim_qk", get(shape, "head_dim_qk")},
                                                 {"head_dim_v", get(shape, "head_dim_v")}};
    q.series = heads;
    if (suffix == ".bwd") {
      q.family = "attention_bwd";
      q.x = get(shape, "seq");
    } else if (get(shape, "kv_len") > 0 && get(shape, "kv_lora") > 0) {
      q.family = "attention_decode_mla";
      q.series = {{"heads", get(shape, "heads")}};
      q.x = bytes;
    } else if (get(shape, "kv_len") > 0) {
      q.family = "attention_decode_gqa";
      q.x = bytes;
    } else {
      q.family = "attention_fwd";
      q.x = get(shape, "seq");
    }
  } else if (base == "attn_residual" || base == "ffn_residual") {
    q.family = "residual_add";
    q.series = {{"hidden", get(shape, "hidden")}};
    q.x = tokens;
    if (base == "ffn_residual" && suffix.empty()) q.calls = 2;  // moe + shared, then + the residual
  } else if (base == "router_topk") {
    q.family = suffix.empty() ? "router_topk" : "router_topk_bwd";
    q.x = tokens;
  } else if (base == "permute") {
    q.family = suffix.empty() ? "permute" : "unpermute_combine";  // its backward is the combine with unit weights
    q.x = tokens;
  } else if (base == "unpermute") {
    q.family = suffix.empty() ? "unpermute_combine" : "unpermute_bwd";
    q.x = tokens;
  } else if (base == "swiglu" || base == "shared_swiglu" || base == "dense_swiglu") {
    q.family = suffix.empty() ? "swiglu" : "swiglu_bwd";
    q.series = {{"inter", get(shape, "inter")}};
    q.x = get(shape, "rows");
  }
  return q;
}

}  // namespace epsim
