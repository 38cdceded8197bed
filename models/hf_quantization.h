// A Hugging Face config.json's quantization_config, mapped to the weight format the precision
// section defaults to (precision.weights: bf16 | fp8). One function, so that the precision section
// (models/precision.h) takes its default from here.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace epsim {

struct HfQuantization {
  std::string weights = "bf16";  // bf16 | fp8
  std::string note;              // what the file asked for and how it maps, for the import report
};

// `q`: the quantization_config object (null or absent: BF16 weights).
HfQuantization weights_from_quantization_config(const nlohmann::json& q);

}  // namespace epsim
