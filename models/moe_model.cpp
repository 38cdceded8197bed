#include "models/moe_model.h"

#include <algorithm>
#include <stdexcept>

#include "models/hf_config.h"
#include "models/limits.h"

namespace epsim {

int MoeModelSpec::moe_layers() const {
  return moe_layer_ids.empty() ? layers - dense_layers : static_cast<int>(moe_layer_ids.size());
}

bool MoeModelSpec::is_moe(int layer) const {
  if (moe_layer_ids.empty()) return layer >= dense_layers;
  return std::binary_search(moe_layer_ids.begin(), moe_layer_ids.end(), layer);
}

int MoeModelSpec::moe_index(int layer) const {
  if (moe_layer_ids.empty()) return layer >= dense_layers ? layer - dense_layers : -1;
  const auto it = std::lower_bound(moe_layer_ids.begin(), moe_layer_ids.end(), layer);
  return it != moe_layer_ids.end() && *it == layer ? static_cast<int>(it - moe_layer_ids.begin()) : -1;
}

int MoeModelSpec::moe_layer(int index) const {
  return moe_layer_ids.empty() ? dense_layers + index : moe_layer_ids.at(static_cast<std::size_t>(index));
}

std::vector<int> MoeModelSpec::moe_layer_list() const {
  if (!moe_layer_ids.empty()) return moe_layer_ids;
  std::vector<int> out;
  for (int l = dense_layers; l < layers; ++l) out.push_back(l);
  return out;
}

int MoeModelSpec::window_of(int layer) const {
  if (attention_window <= 0) return 0;
  if (window_layer_ids.empty()) return attention_window;
  return std::binary_search(window_layer_ids.begin(), window_layer_ids.end(), layer) ? attention_window : 0;
}

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
      {"hf_config", "string", nullptr, "path",
       "a Hugging Face config.json used instead of the preset: DeepSeek-V2/V3/R1, Qwen2-MoE, Qwen3-MoE, Mixtral, Llama 4 "
       "and gpt-oss keys (README: \"Models from config.json\"); the run prints which keys it used and which it ignored, "
       "report.json records them under model.hf_config; the keys below override it"},
      {"layers", "integer", nullptr, "", "transformer layers (default: preset, 61)"},
      {"dense_layers", "integer", nullptr, "", "leading layers with a dense MLP (default: preset, 3)"},
      {"moe_layer_ids", "array", nullptr, "",
       "the MoE layers' indexes, ascending, when they are not simply every layer from dense_layers on (Llama 4 Maverick: "
       "1, 3, 5, ...); the other layers have a dense MLP (default: preset or config.json: every layer from dense_layers on)"},
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
      {"head_dim", "integer", nullptr, "", "MHA and GQA head dimension (default: preset, 128; config.json: head_dim, else hidden / heads)"},
      {"kv_heads", "integer", nullptr, "", "MHA and GQA: key/value heads, dividing heads; fewer than heads is grouped-query attention (default: heads, MHA; config.json: num_key_value_heads)"},
      {"attention_window", "integer", nullptr, "tokens",
       "local attention: a query of a windowed layer attends to at most this many tokens (KV cache and attention cost "
       "shrink accordingly); 0 = none (default: preset 0; config.json: sliding_window or attention_chunk_size)"},
      {"window_kind", "string", nullptr, "",
       "sliding: the last attention_window tokens | chunked: the tokens of the query's own chunk of attention_window "
       "(Llama 4) (default: sliding)"},
      {"window_layers", "array", nullptr, "",
       "indexes of the layers that use attention_window, ascending (default: every layer; config.json: layer_types, "
       "max_window_layers or no_rope_layers)"},
      {"mtp_layers", "integer", nullptr, "",
       "multi-token-prediction modules the checkpoint carries (num_nextn_predict_layers), each one more MoE decoder layer "
       "and its projection: with workload.mtp_tokens > 0 they are stored (at least one) and draft (default: preset 0; "
       "config.json: num_nextn_predict_layers)"},
      {"vocab", "integer", nullptr, "", "vocabulary size; 0 = no LM head (default: preset, 129280)"},
  }};
  return s;
}

MoeModelSpec MoeModelSpec::from_hf_config(const nlohmann::json& cfg, const std::string& path) {
  return read_hf_config(cfg, path);
}

namespace {
// A JSON array of layer indexes, strictly ascending, each in [0, layers).
std::vector<int> layer_list(const ConfigObject& c, const char* key, int layers) {
  const nlohmann::json& v = c.raw(key);
  if (!v.is_array()) c.fail(key, "must be an array of layer indexes");
  std::vector<int> out;
  for (const auto& e : v) {
    if (!e.is_number_integer() || e.get<std::int64_t>() < 0 || e.get<std::int64_t>() >= layers)
      c.fail(key, "every entry must be a layer index in [0, layers = " + std::to_string(layers) + ")");
    if (!out.empty() && e.get<int>() <= out.back()) c.fail(key, "must be strictly ascending");
    out.push_back(e.get<int>());
  }
  return out;
}
}  // namespace

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
  auto set_int = [&](const char* key, auto& field, std::int64_t min, std::int64_t max) {
    if (c.has(key)) field = c.integer_in<std::remove_reference_t<decltype(field)>>(key, min, max);
  };
  set_int("layers", m.layers, 1, limits::kLayers);
  if (c.has("layers")) {  // a shorter model keeps the per-layer patterns of its first layers
    auto below = [&](std::vector<int>& ids) { std::erase_if(ids, [&](int l) { return l >= m.layers; }); };
    below(m.moe_layer_ids);
    if (!m.window_layer_ids.empty()) {
      below(m.window_layer_ids);
      if (m.window_layer_ids.empty()) m.attention_window = 0;  // none of the windowed layers is left
    }
    if (!m.moe_layer_ids.empty()) m.dense_layers = m.moe_layer_ids.front();
  }
  set_int("dense_layers", m.dense_layers, 0, limits::kLayers);
  if (c.has("dense_layers") && !c.has("moe_layer_ids")) m.moe_layer_ids.clear();
  if (c.has("moe_layer_ids")) {
    m.moe_layer_ids = layer_list(c, "moe_layer_ids", m.layers);
    if (m.moe_layer_ids.empty()) c.fail("moe_layer_ids", "must name at least one MoE layer");
    if (c.has("dense_layers") && m.dense_layers != m.moe_layer_ids.front())
      c.fail("dense_layers", "must equal the first of model.moe_layer_ids (" + std::to_string(m.moe_layer_ids.front()) + ")");
    m.dense_layers = m.moe_layer_ids.front();
    // Every layer from the first MoE one on: the default shape, kept as such.
    if (m.moe_layer_ids.back() == m.layers - 1 && static_cast<int>(m.moe_layer_ids.size()) == m.layers - m.dense_layers)
      m.moe_layer_ids.clear();
  }
  set_int("hidden", m.hidden, 1, limits::kHidden);
  set_int("dense_intermediate", m.dense_intermediate, 1, limits::kIntermediate);
  set_int("expert_intermediate", m.expert_intermediate, 1, limits::kIntermediate);
  set_int("routed_experts", m.routed_experts, 1, limits::kExperts);
  set_int("shared_experts", m.shared_experts, 0, limits::kExperts);
  set_int("top_k", m.top_k, 1, limits::kExperts);
  set_int("groups", m.groups, 1, limits::kExperts);
  set_int("topk_groups", m.topk_groups, 1, limits::kExperts);
  set_int("heads", m.heads, 1, limits::kHeads);
  set_int("kv_heads", m.kv_heads, 1, limits::kHeads);
  set_int("head_dim", m.head_dim, 1, limits::kHeadDim);
  set_int("attention_window", m.attention_window, 0, limits::kKvLen);
  if (c.has("window_kind")) m.chunked_window = c.choice("window_kind", {"sliding", "chunked"}) == "chunked";
  if (c.has("window_layers")) m.window_layer_ids = layer_list(c, "window_layers", m.layers);
  set_int("mtp_layers", m.mtp_layers, 0, limits::kLayers);
  set_int("vocab", m.vocab, 0, limits::kVocab);
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
  if (!moe_layer_ids.empty() && (moe_layer_ids.back() >= layers || moe_layer_ids.front() != dense_layers))
    bad("moe_layer_ids", moe_layer_ids.back(), "must lie in [0, layers) and start at dense_layers");
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
    bad("kv_heads", kv_heads, "must divide heads = " + std::to_string(heads) + "");
  if (attention_window < 0) bad("attention_window", attention_window, "must be >= 0");
  if (mtp_layers < 0) bad("mtp_layers", mtp_layers, "must be >= 0");
  // The size bounds (models/limits.h), whatever the source: the scenario's keys are checked as they
  // are read, a config.json's here.
  auto at_most = [&](const char* key, std::int64_t v, std::int64_t max) {
    if (v > max) bad(key, v, "must be <= " + std::to_string(max) + " (scenarios/README.md, Limits)");
  };
  at_most("layers", layers, limits::kLayers);
  at_most("hidden", hidden, limits::kHidden);
  at_most("dense_intermediate", dense_intermediate, limits::kIntermediate);
  at_most("expert_intermediate", expert_intermediate, limits::kIntermediate);
  at_most("routed_experts", routed_experts, limits::kExperts);
  at_most("shared_experts", shared_experts, limits::kExperts);
  at_most("heads", heads, limits::kHeads);
  at_most("kv_heads", kv_heads, limits::kHeads);
  at_most("head_dim", head_dim, limits::kHeadDim);
  at_most("q_lora_rank", q_lora_rank, limits::kHidden);
  at_most("kv_lora_rank", kv_lora_rank, limits::kHidden);
  at_most("qk_nope_head_dim", qk_nope_head_dim, limits::kHeadDim);
  at_most("qk_rope_head_dim", qk_rope_head_dim, limits::kHeadDim);
  at_most("v_head_dim", v_head_dim, limits::kHeadDim);
  at_most("attention_window", attention_window, limits::kKvLen);
  at_most("mtp_layers", mtp_layers, limits::kLayers);
  at_most("vocab", vocab, limits::kVocab);
}

}  // namespace epsim
