// Decode with multi-token prediction, prefill with a prefix cache, and attention data parallel
// beside tensor parallel, on the 4-GPU system of step_test.cpp with every time worked out by hand.
#include <doctest/doctest.h>

#include "models/cost_model.h"
#include "sim/simulation.h"
#include "tests/sim/op_sum.h"

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
  using test::blocks_time, test::experts_time;
  const Scenario& s = sim.scenario();
  const std::vector<Block> attention = {Block::AttnIn, Block::Attention, Block::AttnOut};
  const std::vector<Block> moe_in = {Block::AttnIn, Block::Attention, Block::AttnOut, Block::MoeIn, Block::Shared};
  // The model's layers at 64 tokens (32 sequences x 2 queries), each GPU computing 2 x 64 routed
  // pairs; every op at its roofline time + the 1 us kernel gap (tests/sim/op_sum.h).
  const LayerShape verify{Mode::Decode, 64, 32, 4096, 512, 64, 0, 2};
  const Time model = blocks_time(s, attention, verify) + blocks_time(s, {Block::Dense}, verify) + blocks_time(s, moe_in, verify) +
                     all_to_all(64) + experts_time(s, 128) + all_to_all(64) + blocks_time(s, {Block::MoeOut, Block::Head}, verify);
  // The MTP pass at 32 tokens: mtp_proj, its MoE decoder layer, final_norm and the shared LM head.
  const LayerShape draft{Mode::Decode, 32, 32, 4096, 512, 32, 0, 1};
  const Time mtp = blocks_time(s, {Block::MtpIn}, draft) + blocks_time(s, moe_in, draft) + all_to_all(32) + experts_time(s, 64) +
                   all_to_all(32) + blocks_time(s, {Block::MoeOut, Block::Head}, draft);
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
  using test::blocks_time, test::experts_time;
  const Scenario& s = sim.scenario();
  // 2 sequences of 128 tokens, 64 cached each: 128 computed tokens per GPU; the core's queries are
  // the 64 new tokens of each sequence, its keys all 128; the LM head sees one token per sequence.
  const LayerShape shape{Mode::Prefill, 128, 2, 128, 0, 2, 64, 1};
  const std::vector<Block> attention = {Block::AttnIn, Block::Attention, Block::AttnOut};
  CHECK(r.step_time == blocks_time(s, attention, shape) + blocks_time(s, {Block::Dense}, shape) + blocks_time(s, attention, shape) +
                           blocks_time(s, {Block::MoeIn, Block::Shared}, shape) + all_to_all(128) + experts_time(s, 256) +
                           all_to_all(128) + blocks_time(s, {Block::MoeOut, Block::Head}, shape));
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
