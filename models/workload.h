// What one simulated step processes on each GPU.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "models/config.h"

namespace epsim {

enum class Mode { Prefill, Decode, Training };

struct Workload {
  Mode mode = Mode::Prefill;
  std::int64_t tokens_per_gpu = 4096;  // prefill and training: tokens each GPU holds in the step
  std::int64_t seq_len = 4096;         // prefill: tokens per sequence (tokens_per_gpu / seq_len sequences)
  std::int64_t batch_per_gpu = 128;    // decode: sequences per GPU
  std::int64_t kv_len = 4096;          // decode: KV-cache length of each sequence

  // Tokens entering each layer on one GPU.
  std::int64_t tokens() const { return mode == Mode::Decode ? batch_per_gpu : tokens_per_gpu; }
  std::int64_t sequences() const { return mode == Mode::Decode ? batch_per_gpu : tokens_per_gpu / seq_len; }

  static const Schema& schema();
  static Workload from_json(const nlohmann::json& j, const std::string& path);
};

}  // namespace epsim
