// parallelism.slots_per_gpu: EP sizes that do not divide the expert count, extra slots filled with
// redundant experts by EPLB, memory counting every slot.
#include <doctest/doctest.h>

#include "models/errors.h"
#include "sim/simulation.h"

using namespace epsim;
using nlohmann::json;

namespace {
// 256 routed experts, top-8, on 9 nodes x 8 GPUs = EP 72 (72 does not divide 256); small widths so
// the test runs in milliseconds. One dense layer, one MoE layer.
json ep72() {
  return json{{"model", {{"layers", 2}, {"dense_layers", 1}, {"hidden", 256}, {"dense_intermediate", 512},
                         {"expert_intermediate", 128}, {"routed_experts", 256}, {"top_k", 8}, {"heads", 2},
                         {"head_dim", 64}, {"vocab", 0}}},
              {"cluster", {{"nodes", 9}, {"gpus_per_node", 8}}},
              {"parallelism", {{"ep", 72}, {"slots_per_gpu", 4}}},
              {"placement", {{"strategy", "eplb"}}},
              {"workload", {{"tokens_per_gpu", 64}}}};
}
}  // namespace

TEST_CASE("EP 72 with 256 routed experts in 4 slots per GPU: EPLB fills the 32 extra slots, every expert has a slot") {
  const Scenario sc = Scenario::from_json(ep72());
  CHECK(sc.parallelism.experts_per_gpu == 4);
  CHECK(sc.placement.redundant_slots == 32);  // 72 x 4 - 256
  Cluster cluster(sc.cluster);
  GateModel gate(sc.routing, sc.model);
  const Placement p = Placement::make(sc.placement, PlacementInputs{sc.model, 72, cluster, gate, 64, Time::zero()});
  const LayerPlacement& t = p.layer(1);
  REQUIRE(t.slots() == 288);
  CHECK(t.slots_per_gpu() == 4);
  int replicas = 0;
  for (int e = 0; e < 256; ++e) {
    CHECK(t.replica_count(e) >= 1);
    replicas += t.replica_count(e);
  }
  CHECK(replicas == 288);  // no slot left empty
  for (int s = 0; s < t.slots(); ++s) CHECK(t.expert_at(s) >= 0);

  Simulation sim(sc);
  const StepResult& r = sim.run();
  // Memory: 4 slots x 1 MoE layer x 3 x 256 x 128 parameters x 2 bytes = 786,432 bytes.
  CHECK(r.memory.expert_weights.count() == 786432);
  // Every (token, expert) pair is computed somewhere: 72 GPUs x 64 tokens x top-8 = 36,864, 512 per GPU on average.
  CHECK(r.layers[1].expert_tokens_mean == doctest::Approx(512.0));
  CHECK(r.step_time > Time::zero());
}

TEST_CASE("slots_per_gpu: too few slots, a strategy that cannot fill extra slots, a disagreeing redundant_slots") {
  json sc = ep72();
  sc["parallelism"]["slots_per_gpu"] = 3;  // 216 < 256
  CHECK_THROWS_WITH_AS(Scenario::from_json(sc),
                       "parallelism.slots_per_gpu = 3: ep x slots_per_gpu = 216 slots must hold the 256 routed experts",
                       ConfigError);
  sc = ep72();
  sc["placement"] = {{"strategy", "contiguous"}};
  CHECK_THROWS_AS(Scenario::from_json(sc), ConfigError);
  sc = ep72();
  sc["placement"]["redundant_slots"] = 16;
  CHECK_THROWS_AS(Scenario::from_json(sc), ConfigError);
  sc = ep72();
  sc["parallelism"].erase("slots_per_gpu");  // 72 does not divide 256 and no slots given
  CHECK_THROWS_AS(Scenario::from_json(sc), ConfigError);
  sc["parallelism"]["slots_per_gpu"] = 4;
  sc["placement"]["redundant_slots"] = 32;  // agrees: accepted
  CHECK(Scenario::from_json(sc).placement.redundant_slots == 32);
}
