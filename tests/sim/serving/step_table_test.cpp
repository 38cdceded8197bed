// Step tables: grid nodes are the step simulator's own figures; shapes between them interpolate
// within a measured error; the prefill shapes the workload states; the pruning pass's layer
// extrapolation.
#include <doctest/doctest.h>

#include <cmath>

#include "models/cost_model.h"
#include "sim/scenario.h"
#include "sim/serving/step_table.h"
#include "sim/simulation.h"

using namespace epsim;
using namespace epsim::serving;
using nlohmann::json;

namespace {

// 2 nodes x 8 GPUs, seed dimensions cut to 6 layers (1 dense) of 16 experts, top-4, EP 16.
json small() {
  return json{{"model", {{"preset", "seed"}, {"layers", 6}, {"dense_layers", 1}, {"routed_experts", 16}, {"top_k", 4}}},
              {"gpu", {{"preset", "h100-sxm"}}},
              {"cluster", {{"nodes", 2}, {"gpus_per_node", 8}}},
              {"parallelism", {{"attention_tp", 1}, {"ep", 16}}}};
}

double run_ms(json doc, const json& workload) {
  doc["workload"] = workload;
  Simulation sim(Scenario::from_json(doc));
  sim.run_steps(1);
  return sim.result().step_time.to_ms();
}

}  // namespace

TEST_CASE("step table: a grid node is the step simulator's step time; between nodes the bilinear mix") {
  StepTable t(small(), sequential_pricer());
  const double node = t.decode({16, 1024}).to_ms();
  CHECK(node == run_ms(small(), {{"mode", "decode"}, {"batch_per_gpu", 16}, {"kv_len", 1024}}));
  // b = 24 between 16 and 32, kv = 1536 between 1024 and 2048: the mean of the four corners.
  const double mid = t.decode({24, 1536}).to_ms();
  double corners = 0;
  for (int b : {16, 32})
    for (int kv : {1024, 2048}) corners += run_ms(small(), {{"mode", "decode"}, {"batch_per_gpu", b}, {"kv_len", kv}});
  CHECK(mid == doctest::Approx(corners / 4).epsilon(1e-9));  // to the picosecond the mix rounds to
  CHECK(t.nodes() == 4);
  // Prefill node (T = 2048, S = 512): 4 sequences of 512 tokens.
  CHECK(t.prefill({2048, 256.5}).to_ms() ==
        run_ms(small(), {{"mode", "prefill"}, {"tokens_per_gpu", 2048}, {"seq_len", 512}}));
  // Node (T = 256, S = 4096): one sequence of 256 new tokens after a cached prefix of 1920, whose
  // queries also see 1920 + 257 / 2 = 2048.5 keys on average.
  const double prefix = run_ms(small(), {{"mode", "prefill"}, {"tokens_per_gpu", 2176}, {"seq_len", 2176},
                                         {"prefix_hit", 1920.5 / 2176}});
  CHECK(t.prefill({256, 2048.5}).to_ms() == prefix);
}

TEST_CASE("step table: the interpolation error against exact runs is measured and small here") {
  StepTable t(small(), sequential_pricer());
  t.begin_run();
  for (int b : {3, 5, 12, 20, 40})
    for (double kv : {700.0, 1500.0, 3000.0}) (void)t.decode({b, kv});
  for (int T : {300, 900, 3000}) (void)t.prefill({T, 400.0});
  const std::vector<TableCheck> checks = t.check(6);
  REQUIRE(checks.size() == 6);
  int decode = 0;
  for (const TableCheck& c : checks) {
    CAPTURE(c.phase);
    CAPTURE(c.size);
    CAPTURE(c.keys);
    CHECK(c.exact_ms > 0);
    CHECK(std::abs(c.error()) < 0.03);
    decode += c.phase == "decode";
  }
  CHECK(decode == 3);
}

TEST_CASE("exact prefill shapes: one sequence after a cached prefix, or n sequences without") {
  // keys >= (T + 1) / 2: one sequence of T new tokens after round(keys - (T + 1) / 2) cached.
  auto [w1, s1] = StepTable::exact_prefill({100, 300.2}, 2);
  CHECK(s1.tokens == 100);
  CHECK(s1.keys == doctest::Approx(300.5));  // 250 cached + 101 / 2
  CHECK(w1["seq_len"] == 350);
  CHECK(std::floor(350 * w1["prefix_hit"].get<double>()) == 250);
  // keys below: sequences of S = round(2 keys - 1) tokens, round(T / S) of them.
  auto [w2, s2] = StepTable::exact_prefill({1000, 64.5}, 2);
  CHECK(w2["seq_len"] == 128);
  CHECK(s2.tokens == 1024);  // 8 sequences of 128
  CHECK(s2.keys == doctest::Approx(64.5));
}

TEST_CASE("layer extrapolation (the search's pruning pass): exact for identical layers under serial") {
  json doc = small();
  doc["model"]["layers"] = 12;
  StepTable full(doc, sequential_pricer());
  StepTable extrapolated(doc, sequential_pricer(), {StepPricing::Interpolated, true});
  const double a = full.decode({8, 1024}).to_ms();
  const double b = extrapolated.decode({8, 1024}).to_ms();
  CHECK(b == doctest::Approx(a).epsilon(1e-6));
  CHECK(extrapolated.runs() == 2);  // 2 and 4 MoE layers
  const double p = full.prefill({1024, 512.5}).to_ms(), q = extrapolated.prefill({1024, 512.5}).to_ms();
  CHECK(q == doctest::Approx(p).epsilon(1e-6));
}

TEST_CASE("uneven prefill: the mean shape plus the busiest rank's own work, at most the busiest on every GPU") {
  StepTable t(small(), sequential_pricer());
  // A rank's own work at 512 tokens per GPU in 4 sequences of 128 (keys (128 + 1) / 2): every
  // layer's attention projections and core, the dense MLP (1 layer), gate and shared expert (5 MoE
  // layers) and the LM head of 4 sequences, priced by the nominal H100 SXM roofline.
  const Scenario sc = Scenario::from_json(small());
  const NominalCostModel cost(sc.gpu);
  const LayerOps ops(sc.model, 1);
  auto c = [&](const OpWork& w) { return cost.time(w); };
  const Time layer = c(ops.attention_proj(512)) + c(ops.attention_core_prefill(4, 128, 0));
  const Time own = layer * 6.0 + c(ops.dense_mlp(512)) + (c(ops.gate(512)) + c(ops.shared_expert(512))) * 5.0 + c(ops.lm_head(4));
  CHECK(t.rank_work({512, 64.5}).to_us() == doctest::Approx(own.to_us()).epsilon(1e-9));
  // One rank of 16 with 512 tokens per GPU, the step's mean 32 per GPU.
  const PrefillShape busiest{512, 64.5}, mean{32, 64.5};
  const Time top = t.prefill(busiest), base = t.prefill(mean);
  const Time uneven = t.prefill(busiest, mean);
  CHECK(uneven == min(top, max(base, base + t.rank_work(busiest) - t.rank_work(mean))));
  CHECK(uneven < top);
  CHECK(uneven > base);
}
