#include <doctest/doctest.h>

#include "models/errors.h"
#include "models/workload.h"

using namespace epsim;
using nlohmann::json;

TEST_CASE("MTP: each layer sees the new token and its drafts; throughput counts the accepted ones") {
  const Workload w = Workload::from_json({{"mode", "decode"}, {"batch_per_gpu", 64}, {"mtp_tokens", 2}, {"mtp_acceptance", 0.5}}, "workload");
  CHECK(w.tokens() == 192);  // 64 x (1 + 2)
  CHECK(w.queries_per_sequence() == 3);
  CHECK(w.output_tokens() == doctest::Approx(64 * 1.75));  // 1 + 0.5 + 0.25 per sequence
  const Workload plain = Workload::from_json({{"mode", "decode"}, {"batch_per_gpu", 64}}, "workload");
  CHECK(plain.tokens() == 64);
  CHECK(plain.output_tokens() == 64.0);
}

TEST_CASE("prefix cache: the cached head of each sequence skips the layers, throughput counts input tokens") {
  const Workload w = Workload::from_json({{"tokens_per_gpu", 4096}, {"seq_len", 1024}, {"prefix_hit", 0.3}}, "workload");
  CHECK(w.prefix_tokens() == 307);  // floor(1024 x 0.3)
  CHECK(w.tokens() == 4 * 717);
  CHECK(w.output_tokens() == 4096.0);
}

TEST_CASE("MTP and the prefix cache refuse the modes they do not apply to") {
  CHECK_THROWS_WITH_AS(Workload::from_json({{"mtp_tokens", 1}}, "workload"),
                       "workload.mtp_tokens = 1: multi-token prediction drafts decode tokens: needs workload.mode = decode", ConfigError);
  CHECK_THROWS_WITH_AS(Workload::from_json({{"mode", "decode"}, {"prefix_hit", 0.5}}, "workload"),
                       "workload.prefix_hit = 0.5: a prefix cache skips prefill work: needs workload.mode = prefill", ConfigError);
  CHECK_THROWS_AS(Workload::from_json({{"prefix_hit", 1.0}}, "workload"), ConfigError);
  CHECK_THROWS_AS(Workload::from_json({{"mode", "decode"}, {"mtp_tokens", 1}, {"mtp_acceptance", 1.5}}, "workload"), ConfigError);
}
