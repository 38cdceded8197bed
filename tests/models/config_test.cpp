#include <doctest/doctest.h>

#include <functional>

#include "models/gpu_spec.h"
#include "models/moe_model.h"

using namespace epsim;
using nlohmann::json;

static std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "(no error)";
}

TEST_CASE("unknown keys, wrong types and impossible values name path, value and rule") {
  CHECK(error_of([] { MoeModelSpec::from_json(json{{"layerz", 3}}, "model"); }).rfind("model.layerz = 3: unknown key", 0) == 0);
  CHECK(error_of([] { MoeModelSpec::from_json(json{{"top_k", 300}}, "model"); }) ==
        "model.top_k = 300: must be in [1, routed_experts = 256]");
  CHECK(error_of([] { MoeModelSpec::from_json(json{{"hidden", "big"}}, "model"); }) == "model.hidden = \"big\": must be an integer");
  CHECK(error_of([] { MoeModelSpec::from_json(json{{"hidden", 0}}, "model"); }) == "model.hidden = 0: must be >= 1");
  CHECK(error_of([] { GpuSpec::from_json(json{{"mfu", 1.5}}, "gpu"); }) == "gpu.mfu = 1.5: must be in (0, 1]");
  CHECK(error_of([] { GpuSpec::from_json(json{{"preset", "a100"}}, "gpu"); }).rfind("gpu.preset = \"a100\": unknown GPU preset", 0) == 0);
}

TEST_CASE("Hugging Face config.json import") {
  const json cfg = {{"hidden_size", 7168}, {"num_hidden_layers", 61}, {"first_k_dense_replace", 3},
                    {"intermediate_size", 18432}, {"moe_intermediate_size", 2048}, {"n_routed_experts", 256},
                    {"n_shared_experts", 1}, {"num_experts_per_tok", 8}, {"n_group", 8}, {"topk_group", 4},
                    {"num_attention_heads", 128}, {"q_lora_rank", 1536}, {"kv_lora_rank", 512},
                    {"qk_nope_head_dim", 128}, {"qk_rope_head_dim", 64}, {"v_head_dim", 128}, {"vocab_size", 129280}};
  const MoeModelSpec m = MoeModelSpec::from_hf_config(cfg, "config.json");
  const MoeModelSpec ref = MoeModelSpec::preset("deepseek-v3");
  CHECK(m.attention == AttentionKind::Mla);
  CHECK(m.layers == ref.layers);
  CHECK(m.groups == 8);
  CHECK(m.topk_groups == 4);
  CHECK(m.q_lora_rank == ref.q_lora_rank);
  json bad = cfg;
  bad.erase("n_routed_experts");
  CHECK(error_of([&] { MoeModelSpec::from_hf_config(bad, "config.json"); }) ==
        "config.json:n_routed_experts = (missing): a MoE config.json names its routed experts in n_routed_experts, num_experts or num_local_experts");
}
