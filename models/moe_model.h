// The Mixture-of-Experts architecture being simulated.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "models/config.h"
#include "models/precision.h"

namespace epsim {

enum class AttentionKind { Mha, Mla, None };  // None: the layer is its MoE block alone

struct HfImport;  // models/hf_config.h: which config.json keys were used and which ignored

struct MoeModelSpec {
  std::string name;
  int layers = 61;
  int dense_layers = 3;             // the first layers have a dense MLP instead of experts
  // Which layers are MoE: empty = every layer from dense_layers on (the default shape); else exactly
  // these layer indexes, ascending (Llama 4 Maverick's every other layer, Qwen's mlp_only_layers).
  // dense_layers then counts the leading dense layers (the first MoE layer's index).
  std::vector<int> moe_layer_ids;
  std::int64_t hidden = 7168;
  std::int64_t dense_intermediate = 18432;
  std::int64_t expert_intermediate = 2048;
  int routed_experts = 256;
  int shared_experts = 1;
  int top_k = 8;
  int groups = 1;                   // expert groups (n_group); 1 = no group limit
  int topk_groups = 1;              // groups a token may use (topk_group)
  AttentionKind attention = AttentionKind::Mha;
  int heads = 128;
  int head_dim = 128;               // MHA and GQA
  int kv_heads = 0;                 // MHA and GQA: key/value heads (0 or == heads: MHA; fewer: grouped-query)
  int q_lora_rank = 0;              // MLA (0: queries projected directly)
  int kv_lora_rank = 512;           // MLA
  int qk_nope_head_dim = 128;       // MLA
  int qk_rope_head_dim = 64;        // MLA
  int v_head_dim = 128;             // MLA
  // Local attention: layers in window_layer_ids (every layer when empty) attend to at most
  // attention_window tokens: the last ones (sliding) or those of the query's own chunk of
  // attention_window tokens (chunked, Llama 4). 0: every layer attends to the whole context.
  int attention_window = 0;
  bool chunked_window = false;
  std::vector<int> window_layer_ids;
  int mtp_layers = 0;               // multi-token-prediction modules (one MoE decoder layer each) the checkpoint carries
  std::int64_t vocab = 129280;       // 0: no LM head
  int bytes_per_param = 2;          // BF16 activations (and weights where `precision` keeps them bf16)
  // Number formats per op class, weights, dispatch, combine and KV cache: the preset's (or the
  // config.json's quantization_config), overridden by the scenario's `precision` section.
  Precision precision;
  std::shared_ptr<const HfImport> hf_import;  // set when read from a config.json (model.hf_config)

  int moe_layers() const;
  bool is_moe(int layer) const;
  // Position of MoE layer `layer` among the MoE layers (0 = first); -1 for a dense layer.
  int moe_index(int layer) const;
  int moe_layer(int index) const;     // the layer of the index-th MoE layer
  std::vector<int> moe_layer_list() const;  // every MoE layer, ascending
  int first_moe_layer() const { return moe_layer_ids.empty() ? dense_layers : moe_layer_ids.front(); }
  int dense_layer_count() const { return layers - moe_layers(); }
  // Tokens of context a query of `layer` attends to at most (0: unlimited).
  int window_of(int layer) const;
  std::int64_t qk_head_dim() const;   // per-head query/key width
  std::int64_t v_dim() const;         // per-head value width
  int kv_head_count() const { return kv_heads > 0 ? kv_heads : heads; }  // MHA and GQA

  static const Schema& schema();
  static std::vector<std::string> preset_names();
  static MoeModelSpec preset(const std::string& name);  // throws std::out_of_range
  // A Hugging Face config.json (models/hf_config.h); `path` names the file in errors.
  static MoeModelSpec from_hf_config(const nlohmann::json& cfg, const std::string& path);
  static MoeModelSpec from_json(const nlohmann::json& j, const std::string& path);
  void validate(const std::string& path) const;
};

}  // namespace epsim
