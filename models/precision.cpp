#include "models/precision.h"

namespace epsim {

const char* to_string(NumberFormat f) { return f == NumberFormat::Fp8 ? "fp8" : "bf16"; }

namespace {
std::int64_t ceil_div(std::int64_t a, std::int64_t b) { return (a + b - 1) / b; }

NumberFormat format_named(const std::string& s) { return s == "fp8" ? NumberFormat::Fp8 : NumberFormat::Bf16; }

// The keys of the section, each with the field it sets; combine admits bf16 only.
struct Field {
  const char* key;
  NumberFormat Precision::*field;
};
constexpr Field kFields[] = {
    {"weights", &Precision::weights},       {"attention_proj", &Precision::attention_proj},
    {"attention_core", &Precision::attention_core}, {"routed_experts", &Precision::routed_experts},
    {"shared_expert", &Precision::shared_expert},   {"dense_mlp", &Precision::dense_mlp},
    {"lm_head", &Precision::lm_head},       {"dispatch", &Precision::dispatch},
    {"combine", &Precision::combine},       {"kv_cache", &Precision::kv_cache},
};
}  // namespace

Precision Precision::deepseek_fp8() {
  Precision p;
  p.weights = p.attention_proj = p.routed_experts = p.shared_expert = p.dense_mlp = NumberFormat::Fp8;
  p.dispatch = NumberFormat::Fp8;
  return p;
}

Bytes Precision::token_bytes(NumberFormat f, std::int64_t hidden) {
  if (f == NumberFormat::Bf16) return Bytes(2 * hidden);
  return Bytes(hidden + ceil_div(hidden, kScaleBlock) * kScaleBytes);
}

Bytes Precision::matrix_bytes(NumberFormat f, std::int64_t rows, std::int64_t cols) {
  if (f == NumberFormat::Bf16) return Bytes(2 * rows * cols);
  return Bytes(rows * cols + ceil_div(rows, kScaleBlock) * ceil_div(cols, kScaleBlock) * kScaleBytes);
}

Bytes Precision::lm_head_weight_bytes(std::int64_t rows, std::int64_t cols) const {
  const bool fp8 = weights == NumberFormat::Fp8 && lm_head == NumberFormat::Fp8;
  return matrix_bytes(fp8 ? NumberFormat::Fp8 : NumberFormat::Bf16, rows, cols);
}

bool Precision::any_fp8() const {
  for (const Field& f : kFields)
    if (this->*f.field == NumberFormat::Fp8) return true;
  return false;
}

nlohmann::json Precision::to_json() const {
  nlohmann::json j = nlohmann::json::object();
  for (const Field& f : kFields) j[f.key] = to_string(this->*f.field);
  return j;
}

const Schema& Precision::schema() {
  static const Schema s{"precision", {
      {"weights", "string", nullptr, "", "bf16 | fp8: storage of the decoder layers' linear weights (attention projections, experts, dense MLP); fp8 = e4m3 with one FP32 scale per 128 x 128 block (memory and the bytes a GEMM reads). Router, embedding and LM head stay bf16 (the LM head is fp8 only when lm_head is fp8 too) (default: model preset; seed bf16, deepseek-v3 fp8)"},
      {"attention_proj", "string", nullptr, "", "bf16 | fp8: GEMM precision of the attention projections (q/k/v/o, MLA's low-rank ones) (default: model preset; seed bf16, deepseek-v3 fp8)"},
      {"attention_core", "string", nullptr, "", "bf16 | fp8: precision of the attention core (scores, softmax, weighted values) (default: bf16 for every preset)"},
      {"routed_experts", "string", nullptr, "", "bf16 | fp8: GEMM precision of the routed experts' MLPs (default: model preset; seed bf16, deepseek-v3 fp8)"},
      {"shared_expert", "string", nullptr, "", "bf16 | fp8: GEMM precision of the shared expert (default: model preset; seed bf16, deepseek-v3 fp8)"},
      {"dense_mlp", "string", nullptr, "", "bf16 | fp8: GEMM precision of the dense layers' MLP (default: model preset; seed bf16, deepseek-v3 fp8)"},
      {"lm_head", "string", nullptr, "", "bf16 | fp8: GEMM precision of the LM head (default: bf16 for every preset, as DeepSeek-V3 runs it)"},
      {"dispatch", "string", nullptr, "", "bf16 | fp8: tokens the dispatch carries; fp8 = hidden bytes + one FP32 scale per 128 channels (7168 -> 7392 bytes a token, against 14336 in bf16) (default: model preset; seed bf16, deepseek-v3 fp8)"},
      {"combine", "string", nullptr, "", "bf16: expert outputs the combine carries (2 x hidden bytes a token; the only format)"},
      {"kv_cache", "string", nullptr, "", "bf16 | fp8: KV-cache elements (memory and the bytes decode attention reads) (default: bf16 for every preset)"},
  }};
  return s;
}

Precision Precision::from_json(const nlohmann::json& j, const std::string& path, const Precision& defaults) {
  const nlohmann::json obj = j.is_null() ? nlohmann::json::object() : j;
  ConfigObject c(obj, path, schema());
  Precision p = defaults;
  for (const Field& f : kFields) {
    if (!c.has(f.key)) continue;
    const bool bf16_only = std::string(f.key) == "combine";
    p.*f.field = format_named(c.choice(f.key, bf16_only ? std::vector<std::string>{"bf16"} : std::vector<std::string>{"bf16", "fp8"}));
  }
  return p;
}

Precision Precision::from_quantization_config(const nlohmann::json& cfg, const std::string& path) {
  auto it = cfg.find("quantization_config");
  if (it == cfg.end() || it->is_null()) return all_bf16();
  if (!it->is_object()) throw ConfigError(path + ":quantization_config", json_text(*it), "must be a JSON object");
  auto m = it->find("quant_method");
  if (m == it->end() || !m->is_string())
    throw ConfigError(path + ":quantization_config.quant_method", m == it->end() ? "(missing)" : json_text(*m), "must be a string (fp8, fbgemm_fp8 and mxfp4 are understood)");
  const std::string method = m->get<std::string>();
  // Llama 4 Maverick's FP8 checkpoint: per-channel FP8 weights and FP8 GEMMs (priced with 128 x 128 block scales).
  if (method == "fbgemm_fp8") return deepseek_fp8();
  // gpt-oss: MXFP4 experts (4-bit values, one 8-bit scale per 32: 4.25 bits a weight) that Hopper
  // dequantizes into BF16 GEMMs. No 4-bit format here: the weights are stored as fp8, the nearest,
  // about 1.9x their real bytes; the GEMMs stay bf16.
  if (method == "mxfp4") {
    Precision p;
    p.weights = NumberFormat::Fp8;
    return p;
  }
  if (method != "fp8")
    throw ConfigError(path + ":quantization_config.quant_method", json_text(*m),
                      "only fp8 (block-scaled, DeepSeek-V3, Qwen3 FP8), fbgemm_fp8 (Llama 4) and mxfp4 (gpt-oss) are understood; set the precision section instead");
  auto b = it->find("weight_block_size");
  if (b != it->end() && *b != nlohmann::json::array({kScaleBlock, kScaleBlock}))
    throw ConfigError(path + ":quantization_config.weight_block_size", json_text(*b), "must be [128, 128] (the block the byte model uses)");
  return deepseek_fp8();
}

}  // namespace epsim
