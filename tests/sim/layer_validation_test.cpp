// epsim validate on whole-layer files (schema epsim-layer/1, the format of kernels/README.md): a
// hand-made file of one small MHA layer, its prediction worked out by hand for one op.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <string>
#include <tuple>

#include "models/errors.h"
#include "sim/layer_validation.h"

using namespace epsim;
using nlohmann::json;

namespace {
json tiny_model() {
  return {{"name", "tiny"},          {"hidden", 1024},      {"attention", "mha"}, {"heads", 8},
          {"kv_heads", 8},           {"head_dim", 128},     {"q_lora_rank", 0},   {"kv_lora_rank", 0},
          {"qk_nope_head_dim", 0},   {"qk_rope_head_dim", 0}, {"v_head_dim", 128}, {"routed_experts", 4},
          {"top_k", 2},              {"expert_intermediate", 512}, {"shared_experts", 1}, {"local_experts", 2}};
}

json layer_case(const std::string& label, const std::string& phase, const std::string& precision, double layer_us, json ops) {
  return {{"label", label},     {"model", tiny_model()}, {"phase", phase},   {"precision", precision},
          {"tokens", 256},      {"seq_len", 256},        {"batch", 1},       {"kv_len", 0},
          {"routed_rows", 512}, {"check", {{"rel_err", 1e-3}, {"threshold", 2e-2}, {"pass", true}, {"note", ""}}},
          {"layer_us", {{"median", layer_us}, {"min", layer_us}, {"max", layer_us}, {"iters", 10}}},
          {"ops_layer_us", layer_us * 1.05}, {"ops", ops}};
}

std::string write(const json& doc, const std::string& name) {
  const std::string path = std::string("/tmp/epsim-layer-validation-") + name + ".json";
  std::ofstream(path) << doc.dump();
  return path;
}

json file_of(json cases) {
  return {{"schema", "epsim-layer/1"},
          {"device", {{"name", "NVIDIA H100 80GB HBM3"}, {"cc", "9.0"}, {"sm_count", 132}}},
          {"card", "nvidia-h100-x1"},
          {"date", "2026-12-06"},
          {"git_commit", "test"},
          {"kernel_gap_us", 2.4},
          {"cases", cases}};
}

const std::vector<std::string> kNominal = {"cost_model.calibration="};  // nominal h100-sxm, whatever profiles ship
}  // namespace

TEST_CASE("validate a whole-layer file: per op by name, the total against the layer measured as one") {
  const json ops = json::array({{{"name", "attn_norm"}, {"us", 2.0}, {"kernels", 1}},
                                {{"name", "q_proj"}, {"us", 10.0}, {"kernels", 1}},
                                {{"name", "final_norm"}, {"us", 3.0}, {"kernels", 1}}});
  const json bad = layer_case("broken", "prefill", "bf16", 100.0, ops);
  json failed = bad;
  failed["check"]["pass"] = false;
  const std::string path = write(file_of({layer_case("tiny-prefill-bf16", "prefill", "bf16", 200.0, ops), failed}), "a");
  const LayerFileValidation v = validate_layer_file(path, kNominal);
  std::remove(path.c_str());
  CHECK(v.device == "NVIDIA H100 80GB HBM3");
  CHECK(v.cost_model == "nominal(h100-sxm)");
  REQUIRE(v.cases.size() == 1);  // the case whose check failed is left out
  const LayerCaseComparison& c = v.cases[0];
  // attn_norm of 256 x 1024 bf16: 1,048,576 B read and written + the 2 KiB weight at 3.35 TB/s x
  // 0.8, memory-bound: 0.392024 us, + the 1 us kernel gap.
  const OpComparison& norm = c.ops[0];
  CHECK(norm.op == "attn_norm");
  CHECK(norm.measured);
  CHECK(norm.predicted);
  CHECK(norm.predicted_us == doctest::Approx(1.0 + 1050624.0 / 2.68e12 * 1e6).epsilon(1e-6));  // to the picosecond
  CHECK(norm.error_pct() == doctest::Approx((norm.predicted_us - 2.0) / 2.0 * 100.0));
  // An op the simulator's layer lacks, and the layer program's ops the file did not measure.
  CHECK(c.ops[2].op == "final_norm");
  CHECK_FALSE(c.ops[2].predicted);
  int unmeasured = 0;
  double sum = 0;
  for (const auto& o : c.ops) {
    unmeasured += o.measured ? 0 : 1;
    sum += o.predicted_us;
  }
  // The MoE layer's 19 ops (tests/sim/step_test.cpp lists them), 2 of them measured here.
  CHECK(unmeasured == 17);
  CHECK(c.predicted_us == doctest::Approx(sum));
  CHECK(c.measured_us == 200.0);
  CHECK(c.error_pct() == doctest::Approx((c.predicted_us - 200.0) / 2.0));
  const ErrorSummary s = v.summary();
  CHECK(s.cases == 1);
  CHECK(s.median_abs_pct == doctest::Approx(std::abs(c.error_pct())));
  CHECK(to_json(v)["cases"][0]["ops"][0]["op"] == "attn_norm");
}

TEST_CASE("whole-layer cases: train adds the backward ops, fp8 the quantisations, MLA must be DeepSeek-V3's") {
  const json no_ops = json::array();
  const std::string path = write(file_of({layer_case("t", "train", "bf16", 500.0, no_ops), layer_case("f", "prefill", "fp8", 100.0, no_ops)}), "b");
  const LayerFileValidation v = validate_layer_file(path, kNominal);
  REQUIRE(v.cases.size() == 2);
  auto has = [](const LayerCaseComparison& c, const std::string& op) {
    for (const auto& o : c.ops)
      if (o.op == op) return o.predicted && !o.measured;
    return false;
  };
  CHECK(has(v.cases[0], "attn_core.bwd"));
  CHECK(has(v.cases[0], "expert_up.wgrad"));
  CHECK(has(v.cases[0], "permute.dgrad"));
  CHECK(has(v.cases[1], "quant_act.expert_up"));  // no dispatch in the measured layer: the experts quantise
  CHECK(has(v.cases[1], "quant_act.kv_proj"));
  CHECK_FALSE(has(v.cases[1], "quant_dispatch"));
  json mla = file_of({layer_case("m", "prefill", "bf16", 100.0, no_ops)});
  mla["cases"][0]["model"]["attention"] = "mla";
  mla["cases"][0]["model"]["kv_lora_rank"] = 256;
  const std::string p2 = write(mla, "c");
  CHECK_THROWS_WITH_AS(validate_layer_file(p2, kNominal), doctest::Contains("model.q_lora_rank = 0: only DeepSeek-V3's MLA"), InputError);
  std::remove(path.c_str());
  std::remove(p2.c_str());
}

// The kernels helper's H100 whole layers (kernels/results/h100-2026-12-06{b,c}-layer.json, 42 cases
// each: DeepSeek-V3 MLA, the seed's MHA and a hidden-4096 GQA model with expert hidden 1536, whose
// GEMM shapes no bench series measured; prefill, decode, train; bf16, fp8), predicted by the
// simulator's layer program under h100-measured. These are the README's figures.
TEST_CASE("epsim validate: the measured H100 whole layers against the layer program under h100-measured") {
  const std::string dir = std::string(EPSIM_SOURCE_DIR) + "/kernels/results/";
  for (const auto& [file, median, max] : {std::tuple<const char*, double, double>{"h100-2026-12-06c-layer.json", 1.6017, 7.2025},
                                          {"h100-2026-12-06b-layer.json", 1.9408, 6.7954}}) {
    CAPTURE(file);
    const LayerFileValidation v = validate_layer_file(dir + file);
    CHECK(v.cost_model == "calibrated(h100-measured)");
    REQUIRE(v.cases.size() == 42);
    CHECK(v.summary().meets_target());
    CHECK(v.summary().median_abs_pct == doctest::Approx(median).epsilon(1e-3));
    CHECK(v.summary().max_abs_pct == doctest::Approx(max).epsilon(1e-3));
    // Nothing large missing: every measured op is one the simulator has, and the other way round.
    for (const auto& c : v.cases)
      for (const auto& o : c.ops) {
        CAPTURE(c.label);
        CAPTURE(o.op);
        CHECK((o.measured && o.predicted));
      }
  }
}

// The H200 whole layers of the same grid (kernels/results/h200-2026-12-06-layer.json), predicted
// under the shipped h200-measured, refitted with issue 14's families (README, "Validation on the
// H200"; before the refit: 6.64% / 51.05%).
TEST_CASE("epsim validate: the measured H200 whole layers against the layer program under h200-measured") {
  const LayerFileValidation v = validate_layer_file(std::string(EPSIM_SOURCE_DIR) + "/kernels/results/h200-2026-12-06-layer.json");
  CHECK(v.cost_model == "calibrated(h200-measured)");
  REQUIRE(v.cases.size() == 42);
  CHECK(v.summary().meets_target());
  CHECK(v.summary().median_abs_pct == doctest::Approx(1.4797).epsilon(1e-3));
  CHECK(v.summary().max_abs_pct == doctest::Approx(7.5449).epsilon(1e-3));
}
