#include <doctest/doctest.h>

#include <functional>

#include "tests/models/error_of.h"
#include "models/cost_model.h"
#include "models/layer_ops.h"
#include "models/memory_model.h"
#include "models/moe_model.h"
#include "models/precision.h"

using namespace epsim;
using nlohmann::json;

namespace {
using epsim::testing::error_of;

Parallelism ep256() {
  Parallelism par;
  par.attention_tp = 1;
  par.ep = 256;
  par.experts_per_gpu = 1;
  return par;
}
}  // namespace

TEST_CASE("dispatch bytes per token: bf16 2 x hidden, fp8 hidden + one FP32 scale per 128 channels") {
  Precision p;
  CHECK(p.dispatch_bytes_per_token(7168).count() == 14336);
  CHECK(p.combine_bytes_per_token(7168).count() == 14336);
  p.dispatch = NumberFormat::Fp8;
  CHECK(p.dispatch_bytes_per_token(7168).count() == 7392);  // 7168 + 56 x 4
  CHECK(p.combine_bytes_per_token(7168).count() == 14336);  // the combine stays bf16
  CHECK(p.dispatch_bytes_per_token(4096).count() == 4224);  // 4096 + 32 x 4
  CHECK(p.dispatch_bytes_per_token(200).count() == 208);    // a partial last group has its own scale: 200 + 2 x 4
}

TEST_CASE("fp8 weights: one byte a weight plus one FP32 scale per 128 x 128 block") {
  CHECK(Precision::matrix_bytes(NumberFormat::Bf16, 7168, 2048).count() == 29360128);  // 2 x 7168 x 2048
  CHECK(Precision::matrix_bytes(NumberFormat::Fp8, 7168, 2048).count() == 14683648);   // 7168 x 2048 + 56 x 16 x 4
  CHECK(Precision::matrix_bytes(NumberFormat::Fp8, 7168, 576).count() == 4129888);     // + 56 x 5 x 4 (576 = 4.5 blocks)
}

TEST_CASE("deepseek-v3 preset: fp8 linear layers, weights and dispatch; bf16 attention core, LM head, combine, KV") {
  const Precision p = MoeModelSpec::preset("deepseek-v3").precision;
  CHECK(p.weights == NumberFormat::Fp8);
  CHECK(p.attention_proj == NumberFormat::Fp8);
  CHECK(p.routed_experts == NumberFormat::Fp8);
  CHECK(p.shared_expert == NumberFormat::Fp8);
  CHECK(p.dense_mlp == NumberFormat::Fp8);
  CHECK(p.dispatch == NumberFormat::Fp8);
  CHECK(p.attention_core == NumberFormat::Bf16);
  CHECK(p.lm_head == NumberFormat::Bf16);
  CHECK(p.combine == NumberFormat::Bf16);
  CHECK(p.kv_cache == NumberFormat::Bf16);
  CHECK_FALSE(MoeModelSpec::preset("seed").precision.any_fp8());
}

TEST_CASE("fp8 weight memory of deepseek-v3 at EP 256, with block scales") {
  const MoeModelSpec m = MoeModelSpec::preset("deepseek-v3");
  const LayerOps ops(m, 1);
  const MemoryReport r = estimate_memory(ops, ep256(), Workload{}, GpuSpec::preset("h100-seed"));
  // One expert: gate, up and down, 7168 x 2048 each: 3 x 14683648.
  CHECK(r.expert_weights.count() == 58LL * 3 * 14683648);
  // MLA, per layer (weights + scales): q_a 7168x1536 (11010048 + 2688), q_b 1536x24576 (37748736 +
  // 9216), kv_a 7168x576 (4128768 + 1120), kv_b 512x32768 (16777216 + 4096), o 16384x7168
  // (117440512 + 28672) = 187151072 bytes.
  CHECK(ops.attention_weight_bytes().count() == 187151072);
  CHECK(r.attention_weights.count() == 61LL * 187151072);
  // Dense MLP 3 x 7168 x 18432: 3 x (132120576 + 56 x 144 x 4).
  CHECK(r.dense_weights.count() == 3LL * 3 * (132120576 + 32256));
  // Router (bf16) in 58 layers, embedding and LM head in bf16 (2 x 129280 x 7168 x 2).
  CHECK(r.other_weights.count() == 58LL * 7168 * 256 * 2 + 2LL * 129280 * 7168 * 2);
  // The same model in bf16: exactly twice the weight elements, no scales.
  MoeModelSpec bf = m;
  bf.precision = Precision::all_bf16();
  const MemoryReport rb = estimate_memory(LayerOps(bf, 1), ep256(), Workload{}, GpuSpec::preset("h100-seed"));
  CHECK(rb.expert_weights.count() == 58LL * 3 * 7168 * 2048 * 2);
  CHECK(rb.attention_weights.count() == 61LL * LayerOps(bf, 1).attention_proj_params() * 2);
}

TEST_CASE("fp8 KV cache halves the bytes per token") {
  MoeModelSpec m = MoeModelSpec::preset("deepseek-v3");
  CHECK(LayerOps(m, 1).kv_bytes_per_token().count() == 1152);  // (512 + 64) x 2
  m.precision.kv_cache = NumberFormat::Fp8;
  CHECK(LayerOps(m, 1).kv_bytes_per_token().count() == 576);
}

TEST_CASE("grouped-query attention: k and v of kv_heads heads") {
  MoeModelSpec m = MoeModelSpec::preset("seed");
  m.hidden = 4096;
  m.heads = 32;
  m.head_dim = 128;
  m.kv_heads = 8;
  // q 4096 x 4096, k and v 4096 x 1024 each, o 4096 x 4096.
  CHECK(LayerOps(m, 1).attention_proj_params() == 4096LL * 4096 * 2 + 4096LL * 1024 * 2);
  CHECK(LayerOps(m, 1).kv_bytes_per_token().count() == 2 * 8 * 128 * 2);
  CHECK(LayerOps(m, 2).kv_bytes_per_token().count() == 2 * 8 * 128 * 2);  // 4 heads each, 2T tokens
  // TP 16 over 8 kv heads: each GPU keeps one head of its group's 16 T tokens.
  CHECK(LayerOps(m, 16).kv_bytes_per_token().count() == 16 * 2 * 128 * 2);
  m.kv_heads = 0;  // MHA
  CHECK(LayerOps(m, 1).attention_proj_params() == 4LL * 4096 * 4096);
  CHECK(error_of([] { MoeModelSpec::from_json(json{{"kv_heads", 3}}, "model"); }) == "model.kv_heads = 3: must divide heads = 128");
}

TEST_CASE("precision section: the model's defaults, overridden key by key; bad values name the path") {
  const Precision ds = MoeModelSpec::preset("deepseek-v3").precision;
  const Precision p = Precision::from_json(json{{"dispatch", "bf16"}, {"kv_cache", "fp8"}}, "precision", ds);
  CHECK(p.dispatch == NumberFormat::Bf16);
  CHECK(p.kv_cache == NumberFormat::Fp8);
  CHECK(p.routed_experts == NumberFormat::Fp8);  // untouched: the preset's
  CHECK(Precision::from_json(json(), "precision", ds).to_json() == ds.to_json());
  CHECK(error_of([] { Precision::from_json(json{{"weights", "int4"}}, "precision", {}); }) ==
        "precision.weights = \"int4\": must be one of: bf16, fp8");
  CHECK(error_of([] { Precision::from_json(json{{"combine", "fp8"}}, "precision", {}); }) ==
        "precision.combine = \"fp8\": must be one of: bf16");
  CHECK(error_of([] { Precision::from_json(json{{"gemms", "fp8"}}, "precision", {}); }).rfind("precision.gemms = \"fp8\": unknown key", 0) == 0);
}

TEST_CASE("a config.json's quantization_config gives the fp8 defaults") {
  const json fp8 = {{"quantization_config", {{"quant_method", "fp8"}, {"fmt", "e4m3"}, {"weight_block_size", {128, 128}}}}};
  CHECK(Precision::from_quantization_config(fp8, "c.json").to_json() == Precision::deepseek_fp8().to_json());
  CHECK_FALSE(Precision::from_quantization_config(json::object(), "c.json").any_fp8());
  const json awq = {{"quantization_config", {{"quant_method", "awq"}}}};
  CHECK(error_of([&] { Precision::from_quantization_config(awq, "c.json"); }) ==
        "c.json:quantization_config.quant_method = \"awq\": only fp8 (block-scaled, DeepSeek-V3, Qwen3 FP8), fbgemm_fp8 (Llama 4) and mxfp4 (gpt-oss) are understood; set the precision section instead");
  const json blocks = {{"quantization_config", {{"quant_method", "fp8"}, {"weight_block_size", {64, 64}}}}};
  CHECK(error_of([&] { Precision::from_quantization_config(blocks, "c.json"); }) ==
        "c.json:quantization_config.weight_block_size = [64,64]: must be [128, 128] (the block the byte model uses)");
}

TEST_CASE("nominal cost: fp8 GEMMs at the fp8 peak, the bf16 attention core keeps its price") {
  const GpuSpec g = GpuSpec::preset("h100-seed");  // 400 TFLOPS bf16, 800 fp8 (2x), at 60%
  CHECK(g.peak_fp8.to_tflops() == doctest::Approx(800));
  CHECK(GpuSpec::preset("h100-sxm").peak_fp8.to_tflops() == doctest::Approx(1979));
  CHECK(GpuSpec::from_json(json{{"peak_tflops", 500}}, "gpu").peak_fp8.to_tflops() == doctest::Approx(1000));
  CHECK(GpuSpec::from_json(json{{"peak_fp8_tflops", 1500}}, "gpu").peak_fp8.to_tflops() == doctest::Approx(1500));
  const NominalCostModel cost(g);
  MoeModelSpec bf = MoeModelSpec::preset("seed");
  MoeModelSpec fp = bf;
  fp.precision.attention_proj = fp.precision.routed_experts = NumberFormat::Fp8;
  // The expert MLP of 32768 tokens is compute-bound: 32768 x 88080384 FLOPs at 480 TFLOPS instead
  // of 240 (weights read are bf16 in both: precision.weights unchanged).
  const OpWork e_bf = LayerOps(bf, 1).expert_mlp(32768, 1), e_fp = LayerOps(fp, 1).expert_mlp(32768, 1);
  CHECK(e_fp.precision == NumberFormat::Fp8);
  CHECK(cost.time(e_bf) == Time::seconds(32768.0 * 88080384.0 / 240e12));
  CHECK(cost.time(e_fp) == Time::seconds(32768.0 * 88080384.0 / 480e12));
  // The attention core of the same model stays bf16 and keeps its time to the picosecond.
  const OpWork c_bf = LayerOps(bf, 2).attention_core_prefill(1, 4096), c_fp = LayerOps(fp, 2).attention_core_prefill(1, 4096);
  CHECK(c_fp.precision == NumberFormat::Bf16);
  CHECK(cost.time(c_fp) == cost.time(c_bf));
  CHECK(cost.time(LayerOps(fp, 2).attention_proj(4096)) < cost.time(LayerOps(bf, 2).attention_proj(4096)));
}
