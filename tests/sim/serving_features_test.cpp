// Decode with multi-token prediction, prefill with a prefix cache, and attention data parallel
// beside tensor parallel, on the 4-GPU system of step_test.cpp with every time worked out by hand.
#include <doctest/doctest.h>

#include "models/cost_model.h"
#include "sim/simulation.h"

using namespace epsim;
using nlohmann::json;

namespace {
// 2 nodes x 2 GPUs, one expert per GPU, 2 layers (1 dense, 1 MoE), top-2 of 4, MHA 8 x 128.
json tiny() {
  return json{{"model", {{"layers", 2}, {"dense_layers", 1}, {"hidden", 1024}, {"dense_intermediate", 2048},
                         {"expert_intermediate", 512}, {"routed_experts", 4}, {"top_k", 2}, {"heads", 8},
                         {"head_dim", 128}, {"vocab", 1000}}},
              {"cluster", {{"nodes", 2}, {"gpus_per_node", 2}}}};
}

// One dispatch or combine of T tokens per GPU under uniform routing: each source sends T x 2 / 4
// = T/2 distinct tokens of 2 KiB to each expert's GPU; a NIC carries two such flows, 2048 x T bytes
// at 50 GB/s = 40.96 ns per token, + 3 us of cross-rail latency.
Time all_to_all(std::int64_t T) { return Time::ps(40960 * T) + Time::us(3); }
}  // namespace

TEST_CASE("decode with one MTP draft: the model verifies 2 tokens per sequence, the MTP layer drafts 1") {
  json sc = tiny();
  sc["workload"] = {{"mode", "decode"}, {"batch_per_gpu", 32}, {"kv_len", 512}, {"mtp_tokens", 1}, {"mtp_acceptance", 0.5}};
  Simulation sim(Scenario::from_json(sc));
  const StepResult& r = sim.run();
  const NominalCostModel cost(sim.scenario().gpu);
  const LayerOps ops(sim.scenario().model, 1);
  auto t = [&](const OpWork& w) { return cost.time(w); };
  // The model's layers at 64 tokens (32 sequences x 2 queries), each GPU computing 2 x 64 routed pairs.
  const Time attention = t(ops.attention_proj(64)) + t(ops.attention_core_decode(32, 512, 2));
  const Time model = attention + t(ops.dense_mlp(64)) + attention + t(ops.gate(64)) + t(ops.shared_expert(64)) +
                     all_to_all(64) + t(ops.expert_mlp(128, 1)) + all_to_all(64) + t(ops.lm_head(64));
  // The MTP pass at 32 tokens: projection, its MoE decoder layer, the shared LM head.
  const Time mtp = t(ops.mtp_projection(32)) + t(ops.attention_proj(32)) + t(ops.attention_core_decode(32, 512, 1)) +
                   t(ops.gate(32)) + t(ops.shared_expert(32)) + all_to_all(32) + t(ops.expert_mlp(64, 1)) + all_to_all(32) +
                   t(ops.lm_head(32));
  CHECK(r.step_time == model + mtp);
  REQUIRE(r.layers.size() == 3);
  CHECK(r.layers[2].mtp);
  CHECK(r.layers[2].expert_tokens_max == 64);
  CHECK(r.layers[1].expert_tokens_max == 128);
  // Throughput counts 1 + 0.5 accepted tokens per sequence.
  CHECK(r.tokens_per_s_per_gpu() == doctest::Approx(48.0 / r.step_time.to_seconds()));
  // Memory: the MTP module's layer adds a layer of KV cache (32 x 512 tokens x 2 x 8 x 128 x 2 B).
  sc["workload"]["mtp_tokens"] = 0;
  Simulation plain(Scenario::from_json(sc));
  CHECK(sim.result().memory.kv_cache - plain.run().memory.kv_cache == Bytes(32LL * 512 * 4096));
}

TEST_CASE("prefill with half of each sequence cached: cached tokens skip the layers but stay in the attention") {
  json sc = tiny();
  sc["workload"] = {{"tokens_per_gpu", 256}, {"seq_len", 128}, {"prefix_hit", 0.5}};
  Simulation sim(Scenario::from_json(sc));
  const StepResult& r = sim.run();
  const NominalCostModel cost(sim.scenario().gpu);
  const LayerOps ops(sim.scenario().model, 1);
  auto t = [&](const OpWork& w) { return cost.time(w); };
  // 2 sequences of 128 tokens, 64 cached each: 128 computed tokens per GPU; the LM head sees one
  // token per sequence.
  const Time attention = t(ops.attention_proj(128)) + t(ops.attention_core_prefill(2, 128, 64));
  CHECK(r.step_time == attention + t(ops.dense_mlp(128)) + attention + t(ops.gate(128)) + t(ops.shared_expert(128)) +
                           all_to_all(128) + t(ops.expert_mlp(256, 1)) + all_to_all(128) + t(ops.lm_head(2)));
  CHECK(r.tokens_per_s_per_gpu() == doctest::Approx(256.0 / r.step_time.to_seconds()));
  CHECK(r.computed_tokens_per_s_per_gpu() == doctest::Approx(128.0 / r.step_time.to_seconds()));
  // The KV cache holds every token of the sequences: 256 x 2 layers x 2 x 8 x 128 x 2 B.
  CHECK(r.memory.kv_cache == Bytes(256LL * 2 * 4096));
}

TEST_CASE("attention data parallel against TP 2: the gather and scatter around attention, memory and throughput") {
  json sc = tiny();
  sc["workload"] = {{"tokens_per_gpu", 256}};
  Simulation dp(Scenario::from_json(sc));
  sc["parallelism"] = {{"attention_tp", 2}};
  Simulation tp(Scenario::from_json(sc));
  const StepResult& a = dp.run();
  const StepResult& b = tp.run();
  // DP: every GPU serves its own tokens, no collective around attention.
  CHECK(a.layers[0].tp_comm == Time::zero());
  CHECK(a.layers[1].tp_comm == Time::zero());
  // TP 2: each GPU exchanges its 256 tokens of 2 KiB with its node peer (524,288 B at 450 GB/s =
  // 1165.084 ns to the picosecond, + 2 x 0.5 us through the NVSwitch) before attention
  // (except at layer 0, whose input every GPU embeds) and after it.
  const Time exchange = Time::ps(1165084) + Time::us(1);
  CHECK(b.layers[0].tp_comm == exchange);
  CHECK(b.layers[1].tp_comm == exchange + exchange);
  // Memory: attention and dense weights halve, the MHA KV cache per GPU stays (half the heads of
  // twice the tokens).
  CHECK(b.memory.attention_weights * 2 == a.memory.attention_weights);
  CHECK(b.memory.kv_cache == a.memory.kv_cache);
  // Same tokens per GPU, so throughput per GPU differs only by the step time.
  CHECK(a.tokens_per_s_per_gpu() * a.step_time.to_seconds() == doctest::Approx(b.tokens_per_s_per_gpu() * b.step_time.to_seconds()));
}
