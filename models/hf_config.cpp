#include "models/hf_config.h"

#include <algorithm>
#include <map>
#include <optional>


namespace epsim {

std::string HfKeyUse::line() const {
  return (used ? "used     " : "ignored  ") + key + " = " + value + (used ? " -> " : ": ") + note;
}

int HfImport::used() const {
  return static_cast<int>(std::count_if(keys.begin(), keys.end(), [](const HfKeyUse& k) { return k.used; }));
}

nlohmann::json HfImport::to_json() const {
  nlohmann::json used_keys = nlohmann::json::object(), ignored_keys = nlohmann::json::object();
  for (const HfKeyUse& k : keys) (k.used ? used_keys : ignored_keys)[k.key] = k.value + (k.used ? " -> " : ": ") + k.note;
  return {{"file", file}, {"model_type", model_type}, {"used", used_keys}, {"ignored", ignored_keys}};
}

namespace {

// Keys every family writes that do not change what epsim simulates, and why.
const std::map<std::string, std::string>& ignored_reasons() {
  static const std::map<std::string, std::string> reasons = {
      {"architectures", "class names only"},
      {"auto_map", "class names only"},
      {"_name_or_path", "provenance only"},
      {"transformers_version", "provenance only"},
      {"torch_dtype", "weights take their format from quantization_config (else BF16), activations are BF16"},
      {"dtype", "weights take their format from quantization_config (else BF16), activations are BF16"},
      {"bos_token_id", "tokenizer detail"},
      {"eos_token_id", "tokenizer detail"},
      {"pad_token_id", "tokenizer detail"},
      {"max_position_embeddings", "the context length comes from workload (seq_len, kv_len)"},
      {"rope_theta", "positional encoding does not change costs"},
      {"rope_scaling", "positional encoding does not change costs"},
      {"rope_parameters", "positional encoding does not change costs"},
      {"rms_norm_eps", "numerics only"},
      {"initializer_range", "training initialisation only"},
      {"hidden_act", "every MLP is priced as a gated (SwiGLU-style) MLP: three hidden x intermediate GEMMs"},
      {"attention_bias", "biases are not priced (well under 0.1% of a layer's FLOPs and bytes)"},
      {"attention_dropout", "training regularisation only"},
      {"use_cache", "inference switch, not architecture"},
      {"tie_word_embeddings", "the embedding and the LM head are counted as two matrices"},
      {"norm_topk_prob", "renormalising the top-k weights changes neither the chosen experts nor their cost"},
      {"scoring_func", "the gate's scoring function changes neither the chosen experts' count nor their cost"},
      {"routed_scaling_factor", "output scaling only"},
      {"aux_loss_alpha", "training loss only"},
      {"seq_aux", "training loss only"},
      {"router_aux_loss_coef", "training loss only"},
      {"output_router_logits", "training output only"},
      {"router_jitter_noise", "training noise only"},
      {"ep_size", "the deployment's expert parallelism is parallelism.ep"},
      {"pretraining_tp", "training layout only"},
      {"use_qk_norm", "norms are not priced"},
      {"qk_layernorm", "norms are not priced"},
      {"swiglu_limit", "activation clamp: no cost"},
      {"initial_context_length", "the context length comes from workload"},
      {"attn_temperature_tuning", "attention scaling: no cost"},
      {"floor_scale", "attention scaling: no cost"},
      {"attn_scale", "attention scaling: no cost"},
      {"shared_expert_gate", "a one-column gate: no measurable cost"},
      {"vision_config", "the vision encoder is not simulated"},
      {"boi_token_index", "multimodal token id"},
      {"eoi_token_index", "multimodal token id"},
      {"image_token_index", "multimodal token id"},
  };
  return reasons;
}

// One object of the file (the top level, or Llama 4's text_config), read key by key; every key
// it holds ends up in the import record, used or ignored.
class HfReader {
 public:
  HfReader(const nlohmann::json& obj, std::string file, std::string prefix, std::map<std::string, HfKeyUse>& record)
      : obj_(obj), file_(std::move(file)), prefix_(std::move(prefix)), record_(record) {}

  bool has(const std::string& key) const {
    const auto it = obj_.find(key);
    return it != obj_.end() && !it->is_null();
  }
  const nlohmann::json& at(const std::string& key) const { return obj_.at(key); }
  std::string where(const std::string& key) const { return file_ + ":" + prefix_ + key; }

  [[noreturn]] void fail(const std::string& key, const std::string& rule) const {
    throw ConfigError(where(key), obj_.contains(key) ? json_text(obj_.at(key)) : "(missing)", rule);
  }
  void use(const std::string& key, const std::string& note) { put(key, true, note); }
  // Records a present key as ignored (a null one too: "null" explains itself).
  void ignore(const std::string& key, const std::string& why) {
    if (obj_.contains(key)) put(key, false, why);
  }

  // A required non-negative integer, recorded as used.
  std::int64_t integer(const std::string& key, const std::string& note) {
    if (!has(key)) fail(key, "required key of a MoE config.json");
    return take(key, note);
  }
  std::int64_t integer_or(const std::string& key, std::int64_t fallback, const std::string& note) {
    if (!has(key)) {
      ignore(key, "null: default " + std::to_string(fallback));
      return fallback;
    }
    return take(key, note);
  }
  bool boolean(const std::string& key, const std::string& note) {
    if (!at(key).is_boolean()) fail(key, "must be true or false");
    use(key, note);
    return at(key).get<bool>();
  }
  std::string string_or(const std::string& key, const std::string& fallback) const {
    if (!has(key)) return fallback;
    if (!at(key).is_string()) fail(key, "must be a string");
    return at(key).get<std::string>();
  }
  // A list of layer indexes (any order, no repeats), each in [0, layers).
  std::vector<int> layers_of(const std::string& key, int layers, const std::string& note) {
    const nlohmann::json& v = at(key);
    if (!v.is_array()) fail(key, "must be an array of layer indexes");
    std::vector<int> out;
    for (const auto& e : v) {
      if (!e.is_number_integer() || e.get<std::int64_t>() < 0 || e.get<std::int64_t>() >= layers)
        fail(key, "every entry must be a layer index in [0, num_hidden_layers = " + std::to_string(layers) + ")");
      out.push_back(e.get<int>());
    }
    std::sort(out.begin(), out.end());
    if (std::adjacent_find(out.begin(), out.end()) != out.end()) fail(key, "must not repeat a layer");
    use(key, note);
    return out;
  }
  // Every key of this object not yet recorded: ignored, with the reason the table gives.
  void finish() {
    for (const auto& [k, v] : obj_.items()) {
      if (record_.count(prefix_ + k)) continue;
      const auto it = ignored_reasons().find(k);
      put(k, false, it != ignored_reasons().end() ? it->second : "not read by epsim");
    }
  }

 private:
  // Checked before any narrowing (issue 20): at most 2^24, which every int field holds; the
  // model's own bounds (models/limits.h) are MoeModelSpec::validate's.
  std::int64_t take(const std::string& key, const std::string& note) {
    const nlohmann::json& v = at(key);
    const bool in_range = v.is_number_integer() && (v.is_number_unsigned() ? v.get<std::uint64_t>() <= kMaxValue
                                                                           : v.get<std::int64_t>() >= 0 && v.get<std::int64_t>() <= kMaxValue);
    if (!in_range) fail(key, "must be an integer in [0, " + std::to_string(kMaxValue) + "]");
    use(key, note);
    return v.get<std::int64_t>();
  }
  static constexpr std::int64_t kMaxValue = std::int64_t{1} << 24;
  void put(const std::string& key, bool used, const std::string& note) {
    record_[prefix_ + key] = HfKeyUse{prefix_ + key, used, obj_.contains(key) ? json_text(obj_.at(key)) : "(absent)", note};
  }

  const nlohmann::json& obj_;
  std::string file_, prefix_;
  std::map<std::string, HfKeyUse>& record_;
};

// The MoE layers: Llama 4's moe_layers / interleave_moe_layer_step, else DeepSeek's
// first_k_dense_replace and moe_layer_freq combined with Qwen's decoder_sparse_step and mlp_only_layers.
std::vector<int> moe_layers_of(HfReader& r, int L) {
  if (r.has("moe_layers")) {
    r.ignore("interleave_moe_layer_step", "moe_layers lists the MoE layers");
    return r.layers_of("moe_layers", L, "model.moe_layer_ids");
  }
  if (r.has("interleave_moe_layer_step")) {
    const auto step = r.integer("interleave_moe_layer_step", "MoE layers step - 1, 2 step - 1, ... (model.moe_layer_ids)");
    if (step < 1) r.fail("interleave_moe_layer_step", "must be >= 1");
    std::vector<int> out;
    for (int l = static_cast<int>(step) - 1; l < L; l += static_cast<int>(step)) out.push_back(l);
    return out;
  }
  const auto k = r.integer_or("first_k_dense_replace", 0, "the first k layers are dense (model.dense_layers)");
  const auto freq = r.integer_or("moe_layer_freq", 1, "MoE where layer >= first_k_dense_replace and layer % freq == 0");
  const auto step = r.integer_or("decoder_sparse_step", 1, "MoE where (layer + 1) % step == 0");
  if (freq < 1) r.fail("moe_layer_freq", "must be >= 1");
  if (step < 1) r.fail("decoder_sparse_step", "must be >= 1");
  std::vector<int> dense_only;
  if (r.has("mlp_only_layers")) dense_only = r.layers_of("mlp_only_layers", L, "these layers have a dense MLP");
  std::vector<int> out;
  for (int l = static_cast<int>(k); l < L; ++l)
    if (l % freq == 0 && (l + 1) % step == 0 && !std::binary_search(dense_only.begin(), dense_only.end(), l)) out.push_back(l);
  return out;
}

// Layers that use the local-attention window (empty: every layer), the window and its kind.
void windows_of(HfReader& r, MoeModelSpec& m) {
  const int L = m.layers;
  auto typed = [&](const std::string& kind, const std::string& note) {  // layer_types: one string per layer
    const nlohmann::json& t = r.at("layer_types");
    if (!t.is_array() || t.size() != static_cast<std::size_t>(L))
      r.fail("layer_types", "must list one attention type per layer (" + std::to_string(L) + ")");
    std::vector<int> out;
    for (int l = 0; l < L; ++l)
      if (t[static_cast<std::size_t>(l)] == kind) out.push_back(l);
    r.use("layer_types", note);
    return out;
  };
  std::vector<int> windowed;
  if (r.has("attention_chunk_size")) {  // Llama 4: chunked attention on the RoPE layers
    m.attention_window = static_cast<int>(r.integer("attention_chunk_size", "model.attention_window (window_kind chunked)"));
    m.chunked_window = true;
    if (r.has("layer_types")) {
      windowed = typed("chunked_attention", "the \"chunked_attention\" layers use the window (model.window_layers)");
      r.ignore("no_rope_layers", "layer_types names the chunked layers");
      r.ignore("no_rope_layer_interval", "layer_types names the chunked layers");
    } else if (r.has("no_rope_layers") && !r.at("no_rope_layers").empty()) {
      const nlohmann::json& n = r.at("no_rope_layers");
      if (!n.is_array() || n.size() != static_cast<std::size_t>(L)) r.fail("no_rope_layers", "must hold one 0/1 flag per layer");
      for (int l = 0; l < L; ++l)
        if (n[static_cast<std::size_t>(l)] == 1) windowed.push_back(l);
      r.use("no_rope_layers", "layers flagged 1 (RoPE) use the chunked window (model.window_layers)");
      r.ignore("no_rope_layer_interval", "no_rope_layers lists the layers");
    } else {
      r.ignore("no_rope_layers", "empty: every no_rope_layer_interval-th layer (default 4) attends globally");
      const auto every = r.integer_or("no_rope_layer_interval", 4, "every interval-th layer attends globally, the others use the chunked window");
      if (every < 1) r.fail("no_rope_layer_interval", "must be >= 1");
      for (int l = 0; l < L; ++l)
        if ((l + 1) % every != 0) windowed.push_back(l);
    }
  } else if (r.has("sliding_window")) {
    if (r.has("use_sliding_window") && !r.boolean("use_sliding_window", "false: every layer attends to the whole context")) {
      r.ignore("sliding_window", "use_sliding_window is false");
      r.ignore("max_window_layers", "use_sliding_window is false");
      r.ignore("layer_types", "use_sliding_window is false");
      return;
    }
    m.attention_window = static_cast<int>(r.integer("sliding_window", "model.attention_window (window_kind sliding)"));
    if (r.has("layer_types")) {
      windowed = typed("sliding_attention", "the \"sliding_attention\" layers use the window (model.window_layers)");
      r.ignore("max_window_layers", "layer_types names the sliding layers");
    } else if (r.has("max_window_layers")) {  // Qwen: the first max_window_layers attend globally
      const auto full = r.integer("max_window_layers", "layers from this index on use the sliding window (model.window_layers)");
      for (int l = static_cast<int>(full); l < L; ++l) windowed.push_back(l);
    } else {
      for (int l = 0; l < L; ++l) windowed.push_back(l);  // Mixtral: every layer
    }
  } else {
    r.ignore("sliding_window", "no local attention");
    r.ignore("attention_chunk_size", "no local attention");
    r.ignore("use_sliding_window", "no sliding_window given");
    r.ignore("max_window_layers", "no sliding_window given");
    if (r.has("layer_types")) {
      const nlohmann::json& t = r.at("layer_types");
      const bool all_full = t.is_array() && std::all_of(t.begin(), t.end(), [](const nlohmann::json& x) { return x == "full_attention"; });
      if (!all_full) r.fail("layer_types", "names windowed layers but the file gives no sliding_window or attention_chunk_size");
      r.use("layer_types", "every layer attends to the whole context");
    }
    return;
  }
  if (windowed.empty()) m.attention_window = 0;
  if (static_cast<int>(windowed.size()) < L) m.window_layer_ids = windowed;
}

void attention_of(HfReader& r, MoeModelSpec& m) {
  if (r.has("kv_lora_rank")) {  // DeepSeek MLA
    m.attention = AttentionKind::Mla;
    m.q_lora_rank = static_cast<int>(r.integer_or("q_lora_rank", 0, "MLA query rank (0: queries projected directly)"));
    m.kv_lora_rank = static_cast<int>(r.integer("kv_lora_rank", "MLA compressed KV rank"));
    m.qk_nope_head_dim = static_cast<int>(r.integer("qk_nope_head_dim", "MLA per-head query/key width without RoPE"));
    m.qk_rope_head_dim = static_cast<int>(r.integer("qk_rope_head_dim", "MLA per-head RoPE width"));
    m.v_head_dim = static_cast<int>(r.integer("v_head_dim", "MLA per-head value width"));
    r.ignore("num_key_value_heads", "MLA caches one compressed latent per token (kv_lora_rank + qk_rope_head_dim), not per-head K and V");
    r.ignore("head_dim", "MLA: per-head widths come from qk_nope_head_dim, qk_rope_head_dim and v_head_dim");
    return;
  }
  m.attention = AttentionKind::Mha;
  if (r.has("q_lora_rank")) r.ignore("q_lora_rank", "no kv_lora_rank: not MLA");
  m.kv_heads = static_cast<int>(r.has("num_key_value_heads")
                                    ? r.integer("num_key_value_heads", "model.kv_heads (grouped-query attention)")
                                    : m.heads);
  if (r.has("head_dim")) {
    m.head_dim = static_cast<int>(r.integer("head_dim", "model.head_dim"));
  } else {
    if (m.hidden % m.heads != 0) r.fail("num_attention_heads", "must divide hidden_size when the file gives no head_dim");
    m.head_dim = static_cast<int>(m.hidden / m.heads);
  }
}

}  // namespace

MoeModelSpec read_hf_config(const nlohmann::json& cfg, const std::string& path) {
  if (!cfg.is_object()) throw ConfigError(path, json_text(cfg), "must be a JSON object");
  std::map<std::string, HfKeyUse> record;
  const bool nested = cfg.contains("text_config") && cfg["text_config"].is_object();
  HfReader top(cfg, path, "", record);
  HfReader r(nested ? cfg["text_config"] : cfg, path, nested ? "text_config." : "", record);
  auto import = std::make_shared<HfImport>();
  import->file = path;

  MoeModelSpec m;
  const std::string type = r.string_or("model_type", top.string_or("model_type", ""));
  const bool llama4 = type.rfind("llama4", 0) == 0;
  import->model_type = type;
  m.name = type.empty() ? "hf-config" : type;
  if (nested) {
    top.use("text_config", "the language model (its keys below)");
    top.ignore("model_type", "text_config.model_type names the language model");
  }
  if (r.has("model_type")) r.use("model_type", "model name" + std::string(llama4 ? "; Llama 4's MoE layers add one shared expert of intermediate_size (model.shared_experts = 1)" : ""));

  m.hidden = r.integer("hidden_size", "model.hidden");
  m.layers = static_cast<int>(r.integer("num_hidden_layers", "model.layers"));
  m.heads = static_cast<int>(r.integer("num_attention_heads", "model.heads"));
  if (m.layers < 1 || m.heads < 1 || m.hidden < 1) r.fail(m.layers < 1 ? "num_hidden_layers" : m.heads < 1 ? "num_attention_heads" : "hidden_size", "must be >= 1");

  // Routed experts and top-k: each family has its own key.
  const std::vector<std::string> expert_keys = {"n_routed_experts", "num_experts", "num_local_experts"};
  const auto ek = std::find_if(expert_keys.begin(), expert_keys.end(), [&](const std::string& k) { return r.has(k); });
  if (ek == expert_keys.end())
    throw ConfigError(r.where("n_routed_experts"), "(missing)",
                      "a MoE config.json names its routed experts in n_routed_experts, num_experts or num_local_experts");
  m.routed_experts = static_cast<int>(r.integer(*ek, "model.routed_experts"));
  for (const auto& k : expert_keys)
    if (k != *ek && r.has(k)) r.ignore(k, *ek + " gives the routed experts");
  const std::string topk_key = r.has("num_experts_per_tok") ? "num_experts_per_tok" : "experts_per_token";
  m.top_k = static_cast<int>(r.integer(topk_key, "model.top_k"));
  if (topk_key == "num_experts_per_tok" && r.has("experts_per_token")) {
    if (r.at("experts_per_token") != r.at("num_experts_per_tok")) r.fail("experts_per_token", "must equal num_experts_per_tok");
    r.use("experts_per_token", "same as num_experts_per_tok");
  }

  // Expert and dense MLP sizes: DeepSeek and Qwen size experts with moe_intermediate_size; Mixtral,
  // Llama 4 and gpt-oss with intermediate_size (Llama 4's dense layers: intermediate_size_mlp).
  if (r.has("moe_intermediate_size")) {
    m.expert_intermediate = r.integer("moe_intermediate_size", "model.expert_intermediate");
    m.dense_intermediate = r.integer_or("intermediate_size", m.expert_intermediate, "model.dense_intermediate (dense layers' MLP)");
  } else {
    m.expert_intermediate = r.integer("intermediate_size", "model.expert_intermediate (this family sizes its experts with intermediate_size)");
    m.dense_intermediate = r.has("intermediate_size_mlp") ? r.integer("intermediate_size_mlp", "model.dense_intermediate (dense layers' MLP)")
                                                          : m.expert_intermediate;
  }
  if (m.expert_intermediate < 1) r.fail(r.has("moe_intermediate_size") ? "moe_intermediate_size" : "intermediate_size", "must be >= 1");

  // Shared experts, in units of one routed expert's MLP.
  if (r.has("n_shared_experts")) {
    m.shared_experts = static_cast<int>(r.integer("n_shared_experts", "model.shared_experts"));
  } else if (r.has("shared_expert_intermediate_size")) {
    const auto size = r.integer("shared_expert_intermediate_size", "model.shared_experts = this / moe_intermediate_size");
    if (size % m.expert_intermediate != 0)
      r.fail("shared_expert_intermediate_size", "must be a multiple of moe_intermediate_size = " + std::to_string(m.expert_intermediate) +
                                                    " (epsim counts a shared MLP in routed-expert units)");
    m.shared_experts = static_cast<int>(size / m.expert_intermediate);
  } else {
    m.shared_experts = llama4 ? 1 : 0;
  }

  // Group-limited routing (DeepSeek): topk_method greedy ignores the groups.
  m.groups = m.topk_groups = 1;
  const std::string method = r.string_or("topk_method", "");
  if (method == "greedy") {
    r.use("topk_method", "greedy: no group limit");
    r.ignore("n_group", "topk_method greedy: no group limit");
    r.ignore("topk_group", "topk_method greedy: no group limit");
  } else {
    if (r.has("topk_method")) r.use("topk_method", "group-limited routing over n_group groups");
    m.groups = static_cast<int>(r.integer_or("n_group", 1, "model.groups"));
    m.topk_groups = static_cast<int>(r.integer_or("topk_group", m.groups, "model.topk_groups"));
  }

  attention_of(r, m);

  const std::vector<int> moe = moe_layers_of(r, m.layers);
  if (moe.empty()) r.fail("num_hidden_layers", "the layer keys leave no MoE layer");
  const bool contiguous = moe.back() == m.layers - 1 && static_cast<int>(moe.size()) == m.layers - moe.front();
  m.dense_layers = moe.front();
  if (!contiguous) m.moe_layer_ids = moe;
  windows_of(r, m);

  // quantization_config: at the top (Llama 4 puts it beside text_config) or in the text config.
  HfReader& q = r.has("quantization_config") || !top.has("quantization_config") ? r : top;
  m.precision = Precision::from_quantization_config(&q == &r && nested ? cfg["text_config"] : cfg, path);
  if (q.has("quantization_config")) {
    const std::string quant = q.at("quantization_config").value("quant_method", std::string());
    std::string note = "the precision section's defaults: weights " + std::string(to_string(m.precision.weights)) +
                       ", expert GEMMs " + to_string(m.precision.routed_experts) + ", dispatch " + to_string(m.precision.dispatch);
    if (quant == "mxfp4") note += " (MXFP4, 4.25 bits a weight, has no format here: stored as fp8, ~1.9x its bytes)";
    q.use("quantization_config", note);
  }
  m.mtp_layers = static_cast<int>(r.integer_or("num_nextn_predict_layers", 0,
                                               "model.mtp_layers (the modules workload.mtp_tokens drafts with; stored only when it does)"));
  m.vocab = r.integer_or("vocab_size", 0, "model.vocab");

  r.finish();
  if (nested) top.finish();
  for (bool used : {true, false})
    for (auto& [k, u] : record)
      if (u.used == used) import->keys.push_back(u);
  m.hf_import = std::move(import);
  m.validate(path);
  return m;
}

}  // namespace epsim
