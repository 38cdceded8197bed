// Overlap schedules as data (sim/overlap_schedule.h): the shipped descriptions reproduce the
// built-in schedules they replaced, byte for byte; a user's description runs; bad ones are refused
// naming the JSON path.
#include <doctest/doctest.h>

#include <fstream>

#include "models/errors.h"
#include "sim/report.h"
#include "sim/simulation.h"

using namespace epsim;
using nlohmann::json;

namespace {
json report_of(const json& doc) {
  Simulation sim(Scenario::from_json(doc));
  sim.run();
  return report_json(sim);
}

json shipped(const std::string& name) { return read_json_file(std::string(EPSIM_SOURCE_DIR) + "/scenarios/schedules/" + name + ".json"); }

// A small MoE step (2 nodes x 8 GPUs, 16 experts, 4 layers).
json small(const json& overlap) {
  return json{{"model", {{"preset", "seed"}, {"layers", 4}, {"dense_layers", 1}, {"routed_experts", 16}, {"top_k", 4}}},
              {"cluster", {{"nodes", 2}, {"gpus_per_node", 8}}},
              {"workload", {{"tokens_per_gpu", 2048}, {"seq_len", 1024}}},
              {"schedule", {{"overlap", overlap}, {"comm_sms", 24}}}};
}
}  // namespace

TEST_CASE("the shipped serial, dual-microbatch and decode-5stage descriptions reproduce the built-in schedules' reports") {
  // tests/sim/golden/schedule-*.json: the report each built-in schedule made (commit ccd0ecc; regenerated
  // when issue 14 made every op its own task, so that they pin the op inventory too) for a
  // scenario exercising it (serial: nccl rounds, per-expert GEMMs, 2 chunks; dual: training with
  // attention TP 2; decode-5stage: decode with the peer kernel on the flow network).
  for (const std::string name : {"serial", "dual-microbatch", "decode-5stage"}) {
    const json golden = read_json_file(std::string(EPSIM_SOURCE_DIR) + "/tests/sim/golden/schedule-" + name + ".json");
    CHECK(golden["scenario"]["schedule"]["overlap"] == name);
    const json report = report_of(golden["scenario"]);
    INFO(name);
    CHECK(report["step_time_ms"] == golden["report"]["step_time_ms"]);
    CHECK(report == golden["report"]);
  }
}

TEST_CASE("a description written inline runs exactly as the shipped file it copies, but for its name") {
  json mine = shipped("dual-microbatch");
  mine["name"] = "mine";
  const json a = report_of(small("dual-microbatch"));
  json b = report_of(small(mine));
  CHECK(a["step_time_ms"] == b["step_time_ms"]);
  Simulation sim(Scenario::from_json(small(mine)));
  CHECK(sim.scenario().schedule.overlap == "mine");
  CHECK(sim.scenario().schedule.micro_batches() == 2);
  CHECK(a == b);
}

TEST_CASE("a user's schedule: the combine of micro-batch 0 before the dispatch of micro-batch 1 on the communication stream") {
  // D0 C0 D1 C1 instead of dual-microbatch's D0 D1 C0 C1: micro-batch 1's dispatch now waits behind
  // micro-batch 0's whole MoE block on the stream, so less of it hides.
  json mine = shipped("dual-microbatch");
  mine["name"] = "d0-c0-d1-c1";
  mine["forward"] = json::array({
      {{"compute", {"moe_out@0", "attention@0", "moe_in@0", "shared@0", "dense@0"}}, {"comm", {"counts@0"}}},
      {{"compute", {"moe_out@1", "attention@1", "moe_in@1", "shared@1", "dense@1"}}, {"comm", {"counts@1", "dispatch@0"}}},
      {{"compute", {"experts@0"}}, {"comm", {"combine@0", "dispatch@1"}}},
      {{"compute", {"experts@1"}}, {"comm", {"combine@1"}}}});
  Simulation custom(Scenario::from_json(small(mine)));
  Simulation dual(Scenario::from_json(small("dual-microbatch")));
  const Time t_custom = custom.run().step_time, t_dual = dual.run().step_time;
  CHECK(t_custom > t_dual);
  // The communication stream ran in the listed order: layer 1's collectives D0 C0 D1 C1.
  std::vector<std::pair<Phase, int>> order;
  for (const Task& t : custom.graph().tasks())
    if (t.kind == TaskKind::Collective && t.layer == 1 && t.phase != Phase::TpComm) order.emplace_back(t.phase, t.micro_batch);
  CHECK(order == std::vector<std::pair<Phase, int>>{{Phase::Dispatch, 0}, {Phase::Combine, 0}, {Phase::Dispatch, 1}, {Phase::Combine, 1}});
}

TEST_CASE("a schedule description is checked: every item once, in an order its data allows, on the right stream") {
  auto refused = [](const json& forward, const std::string& message) {
    json d = {{"name", "bad"}, {"micro_batches", 1}, {"forward", forward}};
    CHECK_THROWS_WITH_AS(Scenario::from_json(small(d)), message.c_str(), ConfigError);
  };
  const json full = json::array({{{"compute", {"moe_out@0", "attention@0", "moe_in@0", "shared@0", "dense@0"}}, {"comm", {"counts@0", "dispatch@0"}}},
                                 {{"compute", {"experts@0"}}, {"comm", {"combine@0"}}}});
  json d = full;
  d[1]["comm"] = json::array();
  refused(d, "schedule.overlap.forward = (stages): micro-batch 0 lacks combine");
  d = full;
  d[0]["compute"][1] = "moe_in@0";
  d[0]["compute"][2] = "attention@0";
  refused(d, "schedule.overlap.forward[0].compute[1] = \"moe_in@0\": must come after attention@0, whose output it needs");
  d = full;
  d[1]["compute"] = json::array({"combine@0"});
  refused(d, "schedule.overlap.forward[1].compute[0] = \"combine@0\": is a collective: list it under comm");
  d = full;
  d[0]["compute"][0] = "attention@1";
  refused(d, "schedule.overlap.forward[0].compute[0] = \"attention@1\": micro-batch must be in [0, 1)");
  d = full;
  d[0]["compute"][0] = "softmax@0";
  refused(d, "schedule.overlap.forward[0].compute[0] = \"softmax@0\": unknown op (known: moe_out, attention, moe_in, shared, dense, counts, dispatch, experts, combine)");
  d = full;
  d[0]["compute"].push_back("dense@0");
  refused(d, "schedule.overlap.forward[0].compute[5] = \"dense@0\": listed twice in one layer");
  CHECK_THROWS_WITH_AS(Scenario::from_json(small("gpipe")),
                       "schedule.overlap = \"gpipe\": must be one of serial, dual-microbatch, decode-5stage, dual-interleaved, an existing description file (.json) or a description object",
                       ConfigError);
  // Training needs backward stages.
  json train = small(json{{"name", "fwd-only"}, {"forward", full}});
  train["workload"]["mode"] = "training";
  CHECK_THROWS_WITH_AS(Scenario::from_json(train), "schedule.overlap = \"fwd-only\": the description has no backward stages, which workload.mode = training needs", ConfigError);
}
