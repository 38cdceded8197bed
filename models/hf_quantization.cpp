#include "models/hf_quantization.h"

#include <fmt/format.h>

namespace epsim {

namespace {
std::string text(const nlohmann::json& q, const char* key) {
  const auto it = q.find(key);
  return it != q.end() && it->is_string() ? it->get<std::string>() : std::string();
}
}  // namespace

HfQuantization weights_from_quantization_config(const nlohmann::json& q) {
  if (!q.is_object()) return {"bf16", "no quantization: BF16 weights"};
  const std::string method = text(q, "quant_method");
  // DeepSeek-V3/R1, Qwen3-*-FP8: {"quant_method": "fp8", "fmt": "e4m3", "weight_block_size": [128, 128]}.
  if (method == "fp8") {
    const auto b = q.find("weight_block_size");
    const std::string block = b != q.end() && b->is_array() ? b->dump() : "per-tensor";
    const std::string fmt = text(q, "fmt");
    return {"fp8", fmt::format("fp8 {} weights, blocks {}: precision.weights = fp8{}", fmt.empty() ? "e4m3" : fmt, block,
                               block == "[128,128]" ? "" : " (priced as 128x128 blocks)")};
  }
  // Llama 4 Maverick FP8 (per-channel FP8 weights, FBGEMM kernels).
  if (method == "fbgemm_fp8") return {"fp8", "fbgemm_fp8 (per-channel FP8 weights): precision.weights = fp8 (priced as 128x128 blocks)"};
  if (method == "compressed-tensors" || method == "modelopt") {
    const std::string dumped = q.dump();
    if (dumped.find("\"num_bits\":8") != std::string::npos || dumped.find("FP8") != std::string::npos)
      return {"fp8", method + " with 8-bit float weights: precision.weights = fp8"};
    return {"bf16", method + " scheme other than FP8: not modelled, weights priced at BF16"};
  }
  // gpt-oss: MXFP4 experts (4-bit values + one 8-bit scale per 32: 4.25 bits per weight).
  if (method == "mxfp4")
    return {"fp8", "mxfp4 (4.25 bits per weight) has no format here: priced as fp8, so expert weights take ~1.9x their real bytes"};
  return {"bf16", "quant_method " + (method.empty() ? std::string("(none)") : "\"" + method + "\"") +
                      " not modelled: weights priced at BF16"};
}

}  // namespace epsim
