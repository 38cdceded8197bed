#include "models/workload.h"

#include "models/limits.h"

namespace epsim {

const Schema& Workload::schema() {
  static const Schema s{"workload", {
      {"mode", "string", "prefill", "", "prefill | decode | training (forward + backward: backward GEMMs at twice the forward FLOPs, dispatch and combine reversed)"},
      {"tokens_per_gpu", "integer", 4096, "tokens", "prefill and training: tokens per GPU per step"},
      {"seq_len", "integer", nullptr, "tokens", "prefill: sequence length; must divide tokens_per_gpu (default: tokens_per_gpu)"},
      {"batch_per_gpu", "integer", 128, "sequences", "decode: sequences per GPU, one new token each"},
      {"kv_len", "integer", 4096, "tokens", "decode: KV-cache length per sequence"},
  }};
  return s;
}

Workload Workload::from_json(const nlohmann::json& j, const std::string& path) {
  const nlohmann::json obj = j.is_null() ? nlohmann::json::object() : j;
  ConfigObject c(obj, path, schema());
  Workload w;
  const std::string mode = c.choice("mode", {"prefill", "decode", "training"});
  w.mode = mode == "prefill" ? Mode::Prefill : mode == "decode" ? Mode::Decode : Mode::Training;
  w.tokens_per_gpu = c.integer_in<std::int64_t>("tokens_per_gpu", 1, limits::kTokensPerGpu);
  w.seq_len = c.has("seq_len") ? c.integer_in<std::int64_t>("seq_len", 1, limits::kTokensPerGpu) : w.tokens_per_gpu;
  if (w.tokens_per_gpu % w.seq_len != 0) c.fail("seq_len", "must divide tokens_per_gpu = " + std::to_string(w.tokens_per_gpu));
  w.batch_per_gpu = c.integer_in<std::int64_t>("batch_per_gpu", 1, limits::kTokensPerGpu);
  w.kv_len = c.integer_in<std::int64_t>("kv_len", 1, limits::kKvLen);
  return w;
}

}  // namespace epsim
