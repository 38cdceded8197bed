#include "models/op_family.h"

#include <algorithm>
#include <set>

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
  } else if (linears().count(base)) {
    q.family = suffix == ".dgrad" ? "gemm_bf16_dgrad" : suffix == ".wgrad" ? "gemm_bf16_wgrad"
               : precision == "fp8" && base != "router" ? "gemm_fp8_block" : "gemm_bf16";
    q.series = {{"n", get(shape, "n")}, {"k", get(shape, "k")}};
    q.x = get(shape, "m");
    q.calls = static_cast<int>(std::max(1.0, get(shape, "experts", 1)));
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
