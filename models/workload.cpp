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
      {"mtp_tokens", "integer", 0, "tokens", "decode: draft tokens per sequence from multi-token prediction (DeepSeek-V3's MTP module: its projection, one MoE decoder layer and the shared LM head, run once per draft over one token per sequence); the main model verifies them with the new token, so each layer sees batch_per_gpu x (1 + mtp_tokens) tokens; 0 = no MTP"},
      {"mtp_acceptance", "number", 0.85, "", "decode: probability that a draft token is accepted given the drafts before it were (DeepSeek-V3 reports 0.85-0.90 for its one draft); tokens per sequence per step = 1 + a + a^2 + ... + a^mtp_tokens, which throughput counts"},
      {"prefix_hit", "number", 0.0, "", "prefill: fraction of each sequence's tokens already in the prefix cache, in [0, 1): the first floor(seq_len x prefix_hit) tokens skip projections, gate, experts and MLPs, but stay in the attention's KV (the new tokens attend to them) and in the KV-cache memory; throughput is reported per input token and per computed token"},
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
  w.mtp_tokens = c.integer_in<int>("mtp_tokens", 0, 16);
  if (w.mtp_tokens > 0 && w.mode != Mode::Decode) c.fail("mtp_tokens", "multi-token prediction drafts decode tokens: needs workload.mode = decode");
  w.mtp_acceptance = c.number("mtp_acceptance");
  if (!(w.mtp_acceptance >= 0.0 && w.mtp_acceptance <= 1.0)) c.fail("mtp_acceptance", "must be in [0, 1]");
  w.prefix_hit = c.number("prefix_hit");
  if (!(w.prefix_hit >= 0.0 && w.prefix_hit < 1.0)) c.fail("prefix_hit", "must be in [0, 1) (every sequence computes at least one token)");
  if (w.prefix_hit > 0.0 && w.mode != Mode::Prefill) c.fail("prefix_hit", "a prefix cache skips prefill work: needs workload.mode = prefill");
  return w;
}

double Workload::output_tokens() const {
  if (mode == Mode::Prefill) return static_cast<double>(tokens_per_gpu);
  if (mode == Mode::Training) return static_cast<double>(tokens_per_gpu);
  double per_sequence = 1.0, accepted = 1.0;  // accepted: probability that drafts 1..i were all accepted
  for (int i = 1; i <= mtp_tokens; ++i) {
    accepted *= mtp_acceptance;
    per_sequence += accepted;
  }
  return static_cast<double>(batch_per_gpu) * per_sequence;
}

}  // namespace epsim
