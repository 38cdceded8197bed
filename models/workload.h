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
  // decode: draft tokens per sequence from multi-token prediction (0: none). The main model verifies
  // them with the new token (1 + mtp_tokens query tokens per sequence); the MTP module runs
  // mtp_tokens times to draft the next ones; draft i is accepted if drafts 1..i-1 were, each with
  // probability mtp_acceptance.
  int mtp_tokens = 0;
  double mtp_acceptance = 0.85;
  // prefill: fraction of each sequence's tokens found in the prefix cache (their KV is read, never
  // recomputed): the first prefix_tokens() tokens of each sequence skip every layer.
  double prefix_hit = 0.0;

  // Tokens entering each layer on one GPU: prefill the tokens not cached, decode one per sequence
  // plus its drafts.
  std::int64_t tokens() const {
    if (mode == Mode::Decode) return batch_per_gpu * (1 + mtp_tokens);
    if (mode == Mode::Prefill) return sequences() * (seq_len - prefix_tokens());
    return tokens_per_gpu;
  }
  std::int64_t sequences() const { return mode == Mode::Decode ? batch_per_gpu : tokens_per_gpu / seq_len; }
  // prefill: cached tokens at the start of each sequence (floor(seq_len x prefix_hit) < seq_len).
  std::int64_t prefix_tokens() const {
    return mode == Mode::Prefill ? static_cast<std::int64_t>(static_cast<double>(seq_len) * prefix_hit) : 0;
  }
  // Query tokens per sequence in a decode layer (1 + mtp_tokens); 1 otherwise.
  int queries_per_sequence() const { return mode == Mode::Decode ? 1 + mtp_tokens : 1; }
  // Tokens the step produces per GPU, as throughput counts them: prefill its input tokens (cached
  // ones included), decode per sequence 1 + the expected accepted drafts (a + a^2 + ... + a^d),
  // training its tokens.
  double output_tokens() const;

  static const Schema& schema();
  static Workload from_json(const nlohmann::json& j, const std::string& path);
};

}  // namespace epsim
