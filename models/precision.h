// The number format each part of a layer runs in, and the bytes that follow from it.
//
// Formats: bf16 (2 bytes an element) and fp8 (e4m3, 1 byte an element, block-scaled as DeepSeek-V3
// and its serving stacks run it: weights carry one FP32 scale per 128 x 128 block, activations one
// FP32 scale per 128 channels of a token). A `Precision` says, per op class, the format its GEMMs
// compute in, the storage format of the decoder layers' linear weights, the formats of the dispatch
// and combine payloads and of the KV cache. The model preset gives the defaults (seed: all bf16;
// deepseek-v3: fp8 linear layers and weights, bf16 attention core, LM head and combine, fp8
// dispatch), a config.json's `quantization_config` (quant_method fp8) gives deepseek-v3's, and the
// scenario's `precision` section overrides any of them.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "models/config.h"
#include "models/units.h"

namespace epsim {

enum class NumberFormat : std::uint8_t { Bf16, Fp8 };
const char* to_string(NumberFormat f);  // "bf16", "fp8"

struct Precision {
  static constexpr std::int64_t kScaleBlock = 128;  // channels (activations) or rows/columns (weights) per FP32 scale
  static constexpr std::int64_t kScaleBytes = 4;    // one FP32 scale

  NumberFormat weights = NumberFormat::Bf16;         // storage of the decoder layers' linear weights
  NumberFormat attention_proj = NumberFormat::Bf16;  // GEMM precision per op class
  NumberFormat attention_core = NumberFormat::Bf16;
  NumberFormat routed_experts = NumberFormat::Bf16;
  NumberFormat shared_expert = NumberFormat::Bf16;
  NumberFormat dense_mlp = NumberFormat::Bf16;
  NumberFormat lm_head = NumberFormat::Bf16;
  NumberFormat dispatch = NumberFormat::Bf16;        // the tokens the dispatch carries
  NumberFormat combine = NumberFormat::Bf16;         // the expert outputs the combine carries (bf16 only)
  NumberFormat kv_cache = NumberFormat::Bf16;

  static Precision all_bf16() { return {}; }
  // DeepSeek-V3 as its report and checkpoint run it: fp8 linear layers (block-scaled weights, fp8
  // GEMMs), bf16 attention core, LM head and router, fp8 dispatch, bf16 combine, bf16 KV cache.
  static Precision deepseek_fp8();

  // Bytes of one element in format f (bf16 2, fp8 1), scales not included.
  static std::int64_t element_bytes(NumberFormat f) { return f == NumberFormat::Fp8 ? 1 : 2; }
  // One token of `hidden` channels in format f: bf16 2 x hidden; fp8 hidden + ceil(hidden / 128) x 4
  // (one FP32 scale per 128 channels; 7168 -> 7392).
  static Bytes token_bytes(NumberFormat f, std::int64_t hidden);
  // A rows x cols weight matrix in format f: bf16 2 x rows x cols; fp8 rows x cols +
  // ceil(rows / 128) x ceil(cols / 128) x 4 (one FP32 scale per 128 x 128 block).
  static Bytes matrix_bytes(NumberFormat f, std::int64_t rows, std::int64_t cols);

  Bytes dispatch_bytes_per_token(std::int64_t hidden) const { return token_bytes(dispatch, hidden); }
  Bytes combine_bytes_per_token(std::int64_t hidden) const { return token_bytes(combine, hidden); }
  // A decoder layer's linear weight (attention projections, experts, dense MLP) as stored.
  Bytes weight_bytes(std::int64_t rows, std::int64_t cols) const { return matrix_bytes(weights, rows, cols); }
  // The LM head's weight: fp8 only when both the weights and the LM head GEMM are fp8 (DeepSeek-V3
  // ships it in bf16 beside fp8 layers).
  Bytes lm_head_weight_bytes(std::int64_t rows, std::int64_t cols) const;
  // `elements` of KV cache (per-token scales of an fp8 cache are left out: < 1% of an entry).
  Bytes kv_bytes(std::int64_t elements) const { return Bytes(elements * element_bytes(kv_cache)); }
  bool any_fp8() const;

  nlohmann::json to_json() const;  // {"weights": "bf16", ...}, every key
  static const Schema& schema();
  // Reads the `precision` section over `defaults` (the model's).
  static Precision from_json(const nlohmann::json& j, const std::string& path, const Precision& defaults);
  // A Hugging Face config.json's `quantization_config` (absent or null: bf16; quant_method fp8 or
  // fbgemm_fp8: deepseek_fp8(); mxfp4: fp8 weights, bf16 GEMMs); `path` names the file in errors.
  static Precision from_quantization_config(const nlohmann::json& cfg, const std::string& path);
};

}  // namespace epsim
