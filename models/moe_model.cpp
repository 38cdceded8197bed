#include "models/moe_model.h"

#include <stdexcept>

namespace epsim {

std::int64_t MoeModelSpec::qk_head_dim() const {
  return attention == AttentionKind::Mha ? head_dim : qk_nope_head_dim + qk_rope_head_dim;
}
std::int64_t MoeModelSpec::v_dim() const { return attention == AttentionKind::Mha ? head_dim : v_head_dim; }

std::vector<std::string> MoeModelSpec::preset_names() { return {"seed", "deepseek-v3"}; }

MoeModelSpec MoeModelSpec::preset(const std::string& name) {
  MoeModelSpec m;
  m.name = name;
  if (name == "seed") return m;  // SEED.md: MHA 128 x 128, experts as DeepSeek-V3, no group limit stated
  if (name == "deepseek-v3") {
    m.attention = AttentionKind::Mla;
    m.q_lora_rank = 1536;
    m.kv_lora_rank = 512;
    m.qk_nope_head_dim = 128;
    m.qk_rope_head_dim = 64;
    m.v_head_dim = 128;
    m.groups = 8;
    m.topk_groups = 4;
    m.precision = Precision::deepseek_fp8();
    return m;
  }
  throw std::out_of_range(name);
}

const Schema& MoeModelSpec::schema() {
  static const Schema s{"model", {
      {"preset", "string", "seed", "", "seed (SEED.md, MHA) | deepseek-v3 (MLA, 8 groups / 4)"},
      {"hf_config", "string", nullptr, "path", "a Hugging Face config.json (DeepSeek-V3 keys) used instead of the preset"},
      {"layers", "integer", nullptr, "", "transformer layers (default: preset, 61)"},
      {"dense_layers", "integer", nullptr, "", "leading layers with a dense MLP (default: preset, 3)"},
      {"hidden", "integer", nullptr, "", "hidden (token) dimension (default: preset, 7168)"},
      {"dense_intermediate", "integer", nullptr, "", "dense-layer MLP hidden size (default: preset, 18432)"},
      {"expert_intermediate", "integer", nullptr, "", "expert MLP hidden size (default: preset, 2048)"},
      {"routed_experts", "integer", nullptr, "", "routed experts per MoE layer (default: preset, 256)"},
      {"shared_experts", "integer", nullptr, "", "shared experts per MoE layer, always taken (default: preset, 1)"},
      {"top_k", "integer", nullptr, "", "routed experts per token (default: preset, 8)"},
      {"groups", "integer", nullptr, "", "expert groups for group-limited routing (default: preset)"},
      {"topk_groups", "integer", nullptr, "", "groups one token may use (default: preset)"},
      {"attention", "string", nullptr, "", "mha | mla | none (no attention: the layer is its MoE block alone, as the measured EP layer of `epsim validate`) (default: preset)"},
      {"heads", "integer", nullptr, "", "attention heads (default: preset, 128)"},
      {"head_dim", "integer", nullptr, "", "MHA and GQA head dimension (default: preset, 128)"},
      {"kv_heads", "integer", nullptr, "", "MHA and GQA: key/value heads, dividing heads; fewer than heads is grouped-query attention (default: heads, MHA)"},
      {"vocab", "integer", nullptr, "", "vocabulary size; 0 = no LM head (default: preset, 129280)"},
  }};
  return s;
}

namespace {
int hf_int(const nlohmann::json& cfg, const std::string& path, const char* key, bool required, int fallback) {
  auto it = cfg.find(key);
  if (it == cfg.end() || it->is_null()) {
    if (required) throw ConfigError(path + ":" + key, "(missing)", "required key of a DeepSeek-V3-style config.json");
    return fallback;
  }
  if (!it->is_number_integer() || it->get<std::int64_t>() < 0)
    throw ConfigError(path + ":" + key, json_text(*it), "must be a non-negative integer");
  return static_cast<int>(it->get<std::int64_t>());
}
}  // namespace

MoeModelSpec MoeModelSpec::from_hf_config(const nlohmann::json& cfg, const std::string& path) {
  if (!cfg.is_object()) throw ConfigError(path, json_text(cfg), "must be a JSON object");
  MoeModelSpec m;
  m.name = cfg.value("model_type", std::string("hf-config"));
  m.hidden = hf_int(cfg, path, "hidden_size", true, 0);
  m.layers = hf_int(cfg, path, "num_hidden_layers", true, 0);
  m.dense_layers = hf_int(cfg, path, "first_k_dense_replace", false, 0);
  m.dense_intermediate = hf_int(cfg, path, "intermediate_size", true, 0);
  m.expert_intermediate = hf_int(cfg, path, "moe_intermediate_size", true, 0);
  m.routed_experts = hf_int(cfg, path, "n_routed_experts", true, 0);
  m.shared_experts = hf_int(cfg, path, "n_shared_experts", false, 0);
  m.top_k = hf_int(cfg, path, "num_experts_per_tok", true, 0);
  m.groups = hf_int(cfg, path, "n_group", false, 1);
  m.topk_groups = hf_int(cfg, path, "topk_group", false, m.groups);
  m.heads = hf_int(cfg, path, "num_attention_heads", true, 0);
  m.vocab = hf_int(cfg, path, "vocab_size", false, 129280);
  if (cfg.contains("kv_lora_rank") && !cfg["kv_lora_rank"].is_null()) {
    m.attention = AttentionKind::Mla;
    m.q_lora_rank = hf_int(cfg, path, "q_lora_rank", false, 0);
    m.kv_lora_rank = hf_int(cfg, path, "kv_lora_rank", true, 0);
    m.qk_nope_head_dim = hf_int(cfg, path, "qk_nope_head_dim", true, 0);
    m.qk_rope_head_dim = hf_int(cfg, path, "qk_rope_head_dim", true, 0);
    m.v_head_dim = hf_int(cfg, path, "v_head_dim", true, 0);
  } else {
    m.attention = AttentionKind::Mha;
    m.head_dim = static_cast<int>(m.hidden / std::max(1, m.heads));
  }
  m.precision = Precision::from_quantization_config(cfg, path);
  m.validate(path);
  return m;
}

MoeModelSpec MoeModelSpec::from_json(const nlohmann::json& j, const std::string& path) {
  const nlohmann::json obj = j.is_null() ? nlohmann::json::object() : j;
  ConfigObject c(obj, path, schema());
  MoeModelSpec m;
  if (c.has("hf_config")) {
    const std::string file = c.string("hf_config");
    m = from_hf_config(read_json_file(file), file);
  } else {
    try {
      m = preset(c.string("preset"));
    } catch (const std::out_of_range&) {
      c.fail("preset", "unknown model preset (known: seed, deepseek-v3)");
    }
  }
  auto set_int = [&](const char* key, auto& field, std::int64_t min) {
    if (c.has(key)) field = static_cast<std::remove_reference_t<decltype(field)>>(c.integer(key, min));
  };
  set_int("layers", m.layers, 1);
  set_int("dense_layers", m.dense_layers, 0);
  set_int("hidden", m.hidden, 1);
  set_int("dense_intermediate", m.dense_intermediate, 1);
  set_int("expert_intermediate", m.expert_intermediate, 1);
  set_int("routed_experts", m.routed_experts, 1);
  set_int("shared_experts", m.shared_experts, 0);
  set_int("top_k", m.top_k, 1);
  set_int("groups", m.groups, 1);
  set_int("topk_groups", m.topk_groups, 1);
  set_int("heads", m.heads, 1);
  set_int("head_dim", m.head_dim, 1);
  set_int("kv_heads", m.kv_heads, 1);
  set_int("vocab", m.vocab, 0);
  if (c.has("attention")) {
    const std::string a = c.choice("attention", {"mha", "mla", "none"});
    m.attention = a == "mha" ? AttentionKind::Mha : a == "mla" ? AttentionKind::Mla : AttentionKind::None;
  }
  m.validate(path);
  return m;
}

void MoeModelSpec::validate(const std::string& path) const {
  auto bad = [&](const std::string& key, std::int64_t v, const std::string& rule) {
    throw ConfigError(path + "." + key, std::to_string(v), rule);
  };
  if (layers < 1) bad("layers", layers, "must be >= 1");
  if (dense_layers < 0 || dense_layers > layers) bad("dense_layers", dense_layers, "must be in [0, layers]");
  if (hidden < 1) bad("hidden", hidden, "must be >= 1");
  if (routed_experts < 1) bad("routed_experts", routed_experts, "must be >= 1");
  if (top_k < 1 || top_k > routed_experts)
    bad("top_k", top_k, "must be in [1, routed_experts = " + std::to_string(routed_experts) + "]");
  if (groups < 1 || routed_experts % groups != 0)
    bad("groups", groups, "must divide routed_experts = " + std::to_string(routed_experts));
  if (topk_groups < 1 || topk_groups > groups) bad("topk_groups", topk_groups, "must be in [1, groups]");
  if (static_cast<std::int64_t>(topk_groups) * (routed_experts / groups) < top_k)
    bad("topk_groups", topk_groups, "topk_groups x experts per group must be >= top_k");
  if (heads < 1) bad("heads", heads, "must be >= 1");
  if (attention == AttentionKind::Mha && head_dim < 1) bad("head_dim", head_dim, "must be >= 1");
  if (kv_heads < 0 || (kv_heads > 0 && heads % kv_heads != 0))
    bad("kv_heads", kv_heads, "must divide heads = " + std::to_string(heads));
}

}  // namespace epsim
