// Each family's config.json, written here from the keys its published checkpoints carry (values of
// DeepSeek-V3, DeepSeek-V2, Qwen3-235B-A22B, Qwen2-57B-A14B, Mixtral-8x22B, Llama-4-Maverick-17B-128E
// and gpt-oss-120b; keys without effect on the cost left out except a few that must be reported).
#include <doctest/doctest.h>

#include <functional>

#include "tests/models/error_of.h"
#include "models/hf_config.h"
#include "models/layer_ops.h"
#include "models/memory_model.h"

using namespace epsim;
using nlohmann::json;

namespace {
using epsim::testing::error_of;

const HfKeyUse* key_use(const MoeModelSpec& m, const std::string& key) {
  for (const HfKeyUse& k : m.hf_import->keys)
    if (k.key == key) return &k;
  return nullptr;
}

Parallelism ep_of(int experts_per_gpu, int tp = 1) {
  Parallelism p;
  p.attention_tp = tp;
  p.experts_per_gpu = experts_per_gpu;
  return p;
}
Workload prefill(std::int64_t tokens, std::int64_t seq) {
  Workload w;
  w.tokens_per_gpu = tokens;
  w.seq_len = seq;
  return w;
}
Workload decode(std::int64_t batch, std::int64_t kv, int mtp_tokens = 0) {
  Workload w;
  w.mode = Mode::Decode;
  w.batch_per_gpu = batch;
  w.kv_len = kv;
  w.mtp_tokens = mtp_tokens;
  return w;
}
MemoryReport memory(const MoeModelSpec& m, const Parallelism& p, const Workload& w) {
  return estimate_memory(LayerOps(m, p.attention_tp), p, w, GpuSpec::preset("h100-sxm"));
}

const json kDeepSeekV3 = json::parse(R"({
  "architectures": ["DeepseekV3ForCausalLM"], "model_type": "deepseek_v3", "hidden_size": 7168,
  "intermediate_size": 18432, "moe_intermediate_size": 2048, "num_hidden_layers": 61, "first_k_dense_replace": 3,
  "moe_layer_freq": 1, "n_routed_experts": 256, "n_shared_experts": 1, "num_experts_per_tok": 8, "n_group": 8,
  "topk_group": 4, "topk_method": "noaux_tc", "scoring_func": "sigmoid", "norm_topk_prob": true,
  "routed_scaling_factor": 2.5, "num_attention_heads": 128, "num_key_value_heads": 128, "q_lora_rank": 1536,
  "kv_lora_rank": 512, "qk_nope_head_dim": 128, "qk_rope_head_dim": 64, "v_head_dim": 128,
  "num_nextn_predict_layers": 1, "vocab_size": 129280, "rope_theta": 10000, "max_position_embeddings": 163840,
  "quantization_config": {"activation_scheme": "dynamic", "fmt": "e4m3", "quant_method": "fp8", "weight_block_size": [128, 128]},
  "torch_dtype": "bfloat16", "my_future_routing_knob": 3})");
}  // namespace

TEST_CASE("DeepSeek-V3: MLA, 3 dense layers, 256 experts top-8 in 8 groups of which 4, FP8, one MTP layer") {
  const MoeModelSpec m = read_hf_config(kDeepSeekV3, "v3.json");
  CHECK(m.name == "deepseek_v3");
  CHECK(m.layers == 61);
  CHECK(m.dense_layers == 3);
  CHECK(m.moe_layers() == 58);
  CHECK(m.routed_experts == 256);
  CHECK(m.shared_experts == 1);
  CHECK(m.top_k == 8);
  CHECK(m.groups == 8);
  CHECK(m.topk_groups == 4);
  CHECK(m.attention == AttentionKind::Mla);
  CHECK(m.qk_head_dim() == 192);
  CHECK(m.v_dim() == 128);
  CHECK(m.mtp_layers == 1);
  CHECK(m.precision.weights == NumberFormat::Fp8);
  CHECK(m.precision.dispatch == NumberFormat::Fp8);
  // Every key is accounted for: used, or ignored with a reason; an unknown key is reported.
  REQUIRE(m.hf_import);
  CHECK(m.hf_import->keys.size() == kDeepSeekV3.size());
  CHECK(key_use(m, "num_nextn_predict_layers")->used);
  CHECK(key_use(m, "quantization_config")->used);
  CHECK(key_use(m, "quantization_config")->note.rfind("the precision section's defaults: weights fp8", 0) == 0);
  CHECK_FALSE(key_use(m, "my_future_routing_knob")->used);
  CHECK(key_use(m, "my_future_routing_knob")->line() == "ignored  my_future_routing_knob = 3: not read by epsim");
  CHECK(key_use(m, "num_key_value_heads")->line() ==
        "ignored  num_key_value_heads = 128: MLA caches one compressed latent per token (kv_lora_rank + qk_rope_head_dim), not per-head K and V");
  CHECK(key_use(m, "rope_theta")->note == "positional encoding does not change costs");
  CHECK(m.hf_import->to_json()["ignored"].contains("my_future_routing_knob"));

  // Memory per GPU at EP 256 (one expert each), decode of 64 sequences at 4096 with one MTP draft,
  // TP 1: the MTP layer is a 62nd attention and a 59th MoE layer. fp8 weights carry one FP32 scale
  // per 128 x 128 block.
  const MemoryReport r = memory(m, ep_of(1), decode(64, 4096, 1));
  const std::int64_t expert = 3 * (7168LL * 2048 + 56 * 16 * 4);  // 14683648 bytes
  CHECK(r.expert_weights.count() == 59 * expert);
  CHECK(r.shared_weights.count() == 59 * expert);
  CHECK(r.attention_weights.count() == 62LL * 187151072);  // MLA per layer: precision_test's hand sum
  CHECK(r.dense_weights.count() == 3LL * 3 * (7168LL * 18432 + 56 * 144 * 4));
  // Gates of 59 MoE layers (bf16), embedding and LM head (bf16), the MTP projection 14336 x 7168 (fp8).
  CHECK(r.other_weights.count() == 59LL * 7168 * 256 * 2 + 2LL * 129280 * 7168 * 2 + (14336LL * 7168 + 112 * 56 * 4));
  // KV: (512 + 64) x 2 bytes per token and layer, 62 layers, 64 x 4096 tokens.
  CHECK(r.kv_cache.count() == 64LL * 4096 * 62 * 1152);
  // Without drafting the MTP module is not loaded.
  CHECK(memory(m, ep_of(1), decode(64, 4096)).kv_cache.count() == 64LL * 4096 * 61 * 1152);
}

TEST_CASE("DeepSeek-V2: 1 dense layer, 160 experts top-6, 2 shared, group-limited 8 / 3, BF16") {
  const json cfg = json::parse(R"({"model_type": "deepseek_v2", "hidden_size": 5120, "intermediate_size": 12288,
    "moe_intermediate_size": 1536, "num_hidden_layers": 60, "first_k_dense_replace": 1, "moe_layer_freq": 1,
    "n_routed_experts": 160, "n_shared_experts": 2, "num_experts_per_tok": 6, "n_group": 8, "topk_group": 3,
    "topk_method": "group_limited_greedy", "num_attention_heads": 128, "num_key_value_heads": 128, "q_lora_rank": 1536,
    "kv_lora_rank": 512, "qk_nope_head_dim": 128, "qk_rope_head_dim": 64, "v_head_dim": 128, "vocab_size": 102400})");
  const MoeModelSpec m = read_hf_config(cfg, "v2.json");
  CHECK(m.layers == 60);
  CHECK(m.moe_layers() == 59);
  CHECK(m.routed_experts == 160);
  CHECK(m.top_k == 6);
  CHECK(m.shared_experts == 2);
  CHECK(m.groups == 8);
  CHECK(m.topk_groups == 3);
  CHECK(m.attention == AttentionKind::Mla);
  CHECK_FALSE(m.precision.any_fp8());
  // EP 32: 5 experts a GPU; prefill 4096 tokens in one sequence, TP 1, bf16.
  const MemoryReport r = memory(m, ep_of(5), prefill(4096, 4096));
  CHECK(r.expert_weights.count() == 59LL * 5 * 3 * 5120 * 1536 * 2);
  CHECK(r.shared_weights.count() == 59LL * 2 * 3 * 5120 * 1536 * 2);
  CHECK(r.dense_weights.count() == 1LL * 3 * 5120 * 12288 * 2);
  CHECK(r.kv_cache.count() == 4096LL * 60 * (512 + 64) * 2);
  // topk_method greedy (DeepSeek-V2-Lite): no group limit whatever n_group says.
  json lite = cfg;
  lite["topk_method"] = "greedy";
  const MoeModelSpec l = read_hf_config(lite, "v2.json");
  CHECK(l.groups == 1);
  CHECK(key_use(l, "n_group")->note == "topk_method greedy: no group limit");
}

TEST_CASE("Qwen3-MoE: grouped-query attention with head_dim read, not hidden / heads; every layer MoE") {
  const json cfg = json::parse(R"({"model_type": "qwen3_moe", "hidden_size": 4096, "intermediate_size": 12288,
    "moe_intermediate_size": 1536, "num_hidden_layers": 94, "decoder_sparse_step": 1, "mlp_only_layers": [],
    "num_experts": 128, "num_experts_per_tok": 8, "norm_topk_prob": true, "num_attention_heads": 64,
    "num_key_value_heads": 4, "head_dim": 128, "sliding_window": null, "use_sliding_window": false,
    "max_window_layers": 94, "vocab_size": 151936, "tie_word_embeddings": false})");
  const MoeModelSpec m = read_hf_config(cfg, "qwen3.json");
  CHECK(m.layers == 94);
  CHECK(m.moe_layers() == 94);
  CHECK(m.dense_layers == 0);
  CHECK(m.moe_layer_ids.empty());
  CHECK(m.routed_experts == 128);
  CHECK(m.top_k == 8);
  CHECK(m.shared_experts == 0);
  CHECK(m.kv_head_count() == 4);
  CHECK(m.head_dim == 128);  // 4096 / 64 would be 64
  CHECK(m.attention_window == 0);
  CHECK(key_use(m, "sliding_window")->line() == "ignored  sliding_window = null: no local attention");
  // EP 64: 2 experts a GPU; prefill 4096 tokens as 2 sequences of 2048. q 4096 x 8192, k and v
  // 4096 x 512 each, o 8192 x 4096; KV 2 x 4 heads x 128 x 2 bytes = 2048 bytes a token and layer.
  const MemoryReport r = memory(m, ep_of(2), prefill(4096, 2048));
  CHECK(r.expert_weights.count() == 94LL * 2 * 3 * 4096 * 1536 * 2);
  CHECK(r.attention_weights.count() == 94LL * (4096 * 8192 + 2 * 4096 * 512 + 8192 * 4096) * 2);
  CHECK(r.kv_cache.count() == 4096LL * 94 * 2048);
  // TP 8 in a node: 4 kv heads cannot split 8 ways; each GPU keeps one, for 8 x its tokens.
  CHECK(LayerOps(m, 8).kv_bytes_per_token().count() == 8 * 1 * 2 * 128 * 2);
}

TEST_CASE("Qwen2-MoE: shared experts from shared_expert_intermediate_size; sparse step and mlp_only_layers") {
  const json cfg = json::parse(R"({"model_type": "qwen2_moe", "hidden_size": 3584, "intermediate_size": 18944,
    "moe_intermediate_size": 2560, "shared_expert_intermediate_size": 20480, "num_hidden_layers": 28,
    "decoder_sparse_step": 1, "num_experts": 64, "num_experts_per_tok": 8, "norm_topk_prob": false,
    "num_attention_heads": 28, "num_key_value_heads": 4, "sliding_window": 65536, "use_sliding_window": false,
    "max_window_layers": 28, "vocab_size": 151936})");
  const MoeModelSpec m = read_hf_config(cfg, "qwen2.json");
  CHECK(m.layers == 28);
  CHECK(m.moe_layers() == 28);
  CHECK(m.routed_experts == 64);
  CHECK(m.top_k == 8);
  CHECK(m.shared_experts == 8);  // 20480 / 2560
  CHECK(m.kv_head_count() == 4);
  CHECK(m.head_dim == 128);      // no head_dim key: 3584 / 28
  CHECK(m.attention_window == 0);  // use_sliding_window false
  // EP 64, one expert a GPU, decode of 32 sequences at 8192.
  const MemoryReport r = memory(m, ep_of(1), decode(32, 8192));
  CHECK(r.expert_weights.count() == 28LL * 3 * 3584 * 2560 * 2);
  CHECK(r.shared_weights.count() == 28LL * 8 * 3 * 3584 * 2560 * 2);
  CHECK(r.kv_cache.count() == 32LL * 8192 * 28 * (2 * 4 * 128 * 2));
  // A sparse step of 2 with layers 0 and 1 MLP-only: MoE on 3, 5, ..., 27 ((layer + 1) % 2 == 0).
  json sparse = cfg;
  sparse["decoder_sparse_step"] = 2;
  sparse["mlp_only_layers"] = {0, 1};
  const MoeModelSpec s = read_hf_config(sparse, "qwen2.json");
  CHECK(s.moe_layers() == 13);
  CHECK(s.dense_layers == 3);
  CHECK(s.is_moe(5));
  CHECK_FALSE(s.is_moe(4));
  CHECK(s.moe_index(27) == 12);
  CHECK(memory(s, ep_of(1), decode(32, 8192)).dense_weights.count() == 15LL * 3 * 3584 * 18944 * 2);
  json odd = cfg;
  odd["shared_expert_intermediate_size"] = 5000;
  CHECK(error_of([&] { read_hf_config(odd, "qwen2.json"); }) ==
        "qwen2.json:shared_expert_intermediate_size = 5000: must be a multiple of moe_intermediate_size = 2560 (epsim counts a shared MLP in routed-expert units)");
}

TEST_CASE("Mixtral: num_local_experts, experts sized by intermediate_size, no dense layer, GQA 48 / 8") {
  const json cfg = json::parse(R"({"model_type": "mixtral", "hidden_size": 6144, "intermediate_size": 16384,
    "num_hidden_layers": 56, "num_local_experts": 8, "num_experts_per_tok": 2, "num_attention_heads": 48,
    "num_key_value_heads": 8, "sliding_window": null, "vocab_size": 32000, "router_aux_loss_coef": 0.001})");
  const MoeModelSpec m = read_hf_config(cfg, "mixtral.json");
  CHECK(m.layers == 56);
  CHECK(m.moe_layers() == 56);
  CHECK(m.routed_experts == 8);
  CHECK(m.top_k == 2);
  CHECK(m.shared_experts == 0);
  CHECK(m.expert_intermediate == 16384);
  CHECK(m.kv_head_count() == 8);
  CHECK(m.head_dim == 128);
  // EP 8: one expert a GPU; prefill 8192 tokens in 2 sequences.
  const MemoryReport r = memory(m, ep_of(1), prefill(8192, 4096));
  CHECK(r.expert_weights.count() == 56LL * 3 * 6144 * 16384 * 2);
  CHECK(r.dense_weights.count() == 0);
  CHECK(r.kv_cache.count() == 8192LL * 56 * (2 * 8 * 128 * 2));
  // Mixtral 8x7B v0.1 style: a sliding window on every layer.
  json windowed = cfg;
  windowed["sliding_window"] = 4096;
  const MoeModelSpec w = read_hf_config(windowed, "mixtral.json");
  CHECK(w.attention_window == 4096);
  CHECK(w.window_layer_ids.empty());  // every layer
  CHECK(w.window_of(55) == 4096);
  CHECK(memory(w, ep_of(1), decode(4, 16384)).kv_cache.count() == 4LL * 4096 * 56 * 4096);
}

TEST_CASE("Llama 4 Maverick: text_config, MoE every other layer with a shared expert, chunked attention on 3 of 4 layers") {
  const json cfg = json::parse(R"({"architectures": ["Llama4ForConditionalGeneration"], "model_type": "llama4",
    "boi_token_index": 200080, "vision_config": {"hidden_size": 1408},
    "text_config": {"model_type": "llama4_text", "hidden_size": 5120, "intermediate_size": 8192,
      "intermediate_size_mlp": 16384, "num_hidden_layers": 48, "interleave_moe_layer_step": 2,
      "num_local_experts": 128, "num_experts_per_tok": 1, "num_attention_heads": 40, "num_key_value_heads": 8,
      "head_dim": 128, "attention_chunk_size": 8192, "no_rope_layers": [], "use_qk_norm": false,
      "vocab_size": 202048}})");
  const MoeModelSpec m = read_hf_config(cfg, "maverick.json");
  CHECK(m.name == "llama4_text");
  CHECK(m.layers == 48);
  CHECK(m.moe_layers() == 24);
  CHECK(m.dense_layers == 1);
  REQUIRE(m.moe_layer_ids.size() == 24);
  CHECK(m.moe_layer_ids.front() == 1);
  CHECK(m.moe_layer_ids.back() == 47);
  CHECK_FALSE(m.is_moe(2));
  CHECK(m.moe_index(3) == 1);
  CHECK(m.routed_experts == 128);
  CHECK(m.top_k == 1);
  CHECK(m.shared_experts == 1);
  CHECK(m.expert_intermediate == 8192);
  CHECK(m.dense_intermediate == 16384);
  CHECK(m.kv_head_count() == 8);
  CHECK(m.head_dim == 128);
  // Chunked attention of 8192 except on every 4th layer (3, 7, ...: NoPE, global).
  CHECK(m.attention_window == 8192);
  CHECK(m.chunked_window);
  CHECK(m.window_layer_ids.size() == 36);
  CHECK(m.window_of(3) == 0);
  CHECK(m.window_of(4) == 8192);
  CHECK(key_use(m, "text_config.num_local_experts")->used);
  CHECK(key_use(m, "vision_config")->note == "the vision encoder is not simulated");
  // EP 64: 2 experts a GPU; decode of 8 sequences at 32768: 12 global layers keep 32768 tokens a
  // sequence, 36 chunked ones at most 8192; 2 x 8 x 128 x 2 = 4096 bytes a token and layer.
  const MemoryReport r = memory(m, ep_of(2), decode(8, 32768));
  CHECK(r.expert_weights.count() == 24LL * 2 * 3 * 5120 * 8192 * 2);
  CHECK(r.shared_weights.count() == 24LL * 3 * 5120 * 8192 * 2);
  CHECK(r.dense_weights.count() == 24LL * 3 * 5120 * 16384 * 2);
  CHECK(r.kv_cache.count() == 8LL * (12 * 32768 + 36 * 8192) * 4096);
  // The chunked layers' decode attention reads a chunk at most.
  const LayerOps ops(m, 1);
  CHECK(ops.attention_core_decode(8, 32768, 1, m.window_of(4)).bytes.count() == 8LL * 8192 * 4096);
}

TEST_CASE("gpt-oss: experts_per_token, alternating sliding layers of 128 tokens, MXFP4 priced as fp8 storage") {
  json types = json::array();
  for (int l = 0; l < 36; ++l) types.push_back(l % 2 == 0 ? "sliding_attention" : "full_attention");
  json cfg = json::parse(R"({"model_type": "gpt_oss", "hidden_size": 2880, "intermediate_size": 2880,
    "num_hidden_layers": 36, "num_local_experts": 128, "num_experts_per_tok": 4, "experts_per_token": 4,
    "num_attention_heads": 64, "num_key_value_heads": 8, "head_dim": 64, "sliding_window": 128,
    "vocab_size": 201088, "swiglu_limit": 7.0,
    "quantization_config": {"quant_method": "mxfp4", "modules_to_not_convert": ["model.layers.*.self_attn", "lm_head"]}})");
  cfg["layer_types"] = types;
  const MoeModelSpec m = read_hf_config(cfg, "gpt-oss.json");
  CHECK(m.layers == 36);
  CHECK(m.moe_layers() == 36);
  CHECK(m.routed_experts == 128);
  CHECK(m.top_k == 4);
  CHECK(m.kv_head_count() == 8);
  CHECK(m.head_dim == 64);  // 2880 / 64 would be 45
  CHECK(m.expert_intermediate == 2880);
  CHECK(m.attention_window == 128);
  CHECK_FALSE(m.chunked_window);
  CHECK(m.window_layer_ids.size() == 18);
  CHECK(m.window_of(0) == 128);
  CHECK(m.window_of(1) == 0);
  CHECK(m.precision.weights == NumberFormat::Fp8);
  CHECK(m.precision.routed_experts == NumberFormat::Bf16);
  CHECK(key_use(m, "experts_per_token")->used);
  // EP 32: 4 experts a GPU, fp8 storage (one FP32 scale per 128 x 128 block: ceil(2880/128) = 23);
  // decode of 16 sequences at 4096: 18 full layers keep 4096 tokens, 18 sliding ones 128;
  // 2 x 8 x 64 x 2 = 2048 bytes a token and layer.
  const MemoryReport r = memory(m, ep_of(4), decode(16, 4096));
  CHECK(r.expert_weights.count() == 36LL * 4 * 3 * (2880LL * 2880 + 23 * 23 * 4));
  CHECK(r.kv_cache.count() == 16LL * (18 * 4096 + 18 * 128) * 2048);
  // Prefill of one 1024-token sequence on a sliding layer: 128 x 129 / 2 + 896 x 128 (query, key) pairs.
  const LayerOps ops(m, 1);
  const double per_pair = 2.0 * 64 * (64 + 64);  // heads x 2 (qk + v) FLOPs
  CHECK(ops.attention_core_prefill(1, 1024, 0, 128).flops.count() == per_pair * (128.0 * 129 / 2 + 896.0 * 128));
  CHECK(ops.attention_core_prefill(1, 1024).flops.count() == per_pair * (1024.0 * 1025 / 2));
}

TEST_CASE("config.json errors name the file, the key, the value and the rule") {
  json cfg = kDeepSeekV3;
  cfg.erase("n_routed_experts");
  CHECK(error_of([&] { read_hf_config(cfg, "c.json"); }) ==
        "c.json:n_routed_experts = (missing): a MoE config.json names its routed experts in n_routed_experts, num_experts or num_local_experts");
  cfg = kDeepSeekV3;
  cfg.erase("hidden_size");
  CHECK(error_of([&] { read_hf_config(cfg, "c.json"); }) == "c.json:hidden_size = (missing): required key of a MoE config.json");
  cfg = kDeepSeekV3;
  cfg["num_experts_per_tok"] = -1;
  CHECK(error_of([&] { read_hf_config(cfg, "c.json"); }) == "c.json:num_experts_per_tok = -1: must be an integer in [0, 16777216]");
  cfg = kDeepSeekV3;
  cfg["quantization_config"]["quant_method"] = "awq";
  CHECK(error_of([&] { read_hf_config(cfg, "c.json"); }).rfind("c.json:quantization_config.quant_method = \"awq\": only fp8", 0) == 0);
}
