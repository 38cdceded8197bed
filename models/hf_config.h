// A Hugging Face config.json read into a MoeModelSpec, with a record of every key: used (and what
// it set) or ignored (and why). Families covered, by the keys they publish:
//   DeepSeek-V2/V3/R1 (deepseek_v2, deepseek_v3): n_routed_experts, n_shared_experts, n_group,
//     topk_group, topk_method, first_k_dense_replace, moe_layer_freq (MoE where layer >= k and
//     layer % freq == 0), MLA ranks (q_lora_rank, kv_lora_rank, qk_nope/qk_rope/v_head_dim),
//     num_nextn_predict_layers (MTP), quantization_config (FP8 blocks)
//   Qwen2-MoE, Qwen3-MoE (qwen2_moe, qwen3_moe): num_experts, moe_intermediate_size,
//     shared_expert_intermediate_size (Qwen2: shared experts = it / moe_intermediate_size),
//     decoder_sparse_step ((layer + 1) % step == 0), mlp_only_layers, num_key_value_heads, head_dim,
//     use_sliding_window / sliding_window / max_window_layers (window on layers >= max_window_layers)
//   Mixtral (mixtral): num_local_experts, intermediate_size (the experts'), sliding_window (all layers)
//   Llama 4 (llama4 with text_config, llama4_text): num_local_experts, intermediate_size (experts and
//     the one shared expert of every MoE layer), intermediate_size_mlp (dense layers), moe_layers or
//     interleave_moe_layer_step (MoE layers step - 1, 2 step - 1, ...), attention_chunk_size on the
//     RoPE layers (no_rope_layers / no_rope_layer_interval, or layer_types)
//   gpt-oss (gpt_oss): num_local_experts, experts_per_token, intermediate_size (the experts'),
//     sliding_window on the layer_types "sliding_attention" layers, quantization_config (MXFP4)
// Any other key is reported as ignored: "not read by epsim".
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "models/moe_model.h"

namespace epsim {

struct HfKeyUse {
  std::string key;   // path in the file: "num_local_experts", "text_config.head_dim"
  bool used = false;
  std::string value; // the value as written (JSON text, shortened)
  std::string note;  // used: what it set; ignored: why
  std::string line() const;  // "used     num_local_experts = 8 -> model.routed_experts"
};

struct HfImport {
  std::string file;
  std::string model_type;
  std::vector<HfKeyUse> keys;  // used keys first, then ignored, each in key order
  int used() const;
  int ignored() const { return static_cast<int>(keys.size()) - used(); }
  nlohmann::json to_json() const;  // {"file", "model_type", "used": {key: note}, "ignored": {key: why}}
};

// Throws ConfigError("<path>:<key>", value, rule) for a missing required key or a bad value.
MoeModelSpec read_hf_config(const nlohmann::json& cfg, const std::string& path);

}  // namespace epsim
