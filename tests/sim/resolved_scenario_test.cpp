#include <doctest/doctest.h>

#include <algorithm>

#include "sim/report.h"
#include "sim/resolved_scenario.h"
#include "sim/scenario.h"
#include "sim/simulation.h"

using namespace epsim;
using nlohmann::json;

// 2 nodes x 2 GPUs, one expert per GPU, 2 layers (1 dense, 1 MoE), 256 tokens per GPU.
static json tiny() {
  return json{{"model", {{"layers", 2}, {"dense_layers", 1}, {"routed_experts", 4}, {"top_k", 2}}},
              {"cluster", {{"nodes", 2}, {"gpus_per_node", 2}}},
              {"workload", {{"tokens_per_gpu", 256}}}};
}

static std::string report_of(const json& doc) {
  Simulation sim(Scenario::from_json(doc));
  sim.run();
  return report_json(sim).dump(2);
}

TEST_CASE("the resolved scenario names every declared key and keeps what the document gives") {
  const json r = resolved_scenario(tiny());
  for (const Schema* schema : Scenario::all_schemas()) {
    const json& section = schema->section.empty() ? r : r.at(schema->section);
    for (const KeyDoc& key : schema->keys) {
      const std::string path = schema->section.empty() ? key.key : schema->section + "." + key.key;
      const auto& left_out = unresolved_keys();
      if (std::find(left_out.begin(), left_out.end(), path) != left_out.end()) continue;
      if (path == "serving") continue;  // absent unless given (sim/serving/ resolves it: resolved_serving_scenario)
      // A key missing here has a null default and no value in fill_derived (sim/resolved_scenario.cpp):
      // fill it there (unresolved_keys() lists the alternatives left out).
      CHECK_MESSAGE(section.contains(key.key), path);
    }
  }
  CHECK(r["model"]["layers"] == 2);    // given
  CHECK(r["model"]["hidden"] == 7168); // the seed preset's
  CHECK(r["gpu"]["peak_tflops"] == 400.0);  // h100-seed
  CHECK(r["cluster"]["nvlink_gbps"] == 450.0);
  CHECK(r["workload"]["seq_len"] == 256);  // defaults to tokens_per_gpu
  CHECK(r["network"]["model"] == "analytical");  // schema default
}

TEST_CASE("a resolved scenario resolves to itself and simulates to the same report") {
  json gpus = tiny();
  gpus["cluster"].erase("nodes");
  gpus["cluster"]["gpus"] = 4;  // nodes derived from gpus
  json nccl = tiny();
  nccl["network"]["dispatch_impl"] = "nccl";  // comm_sms follows the implementation when not given
  json h200 = tiny();
  h200["gpu"] = {{"preset", "h200"}, {"mfu", 0.5}};
  json decode = tiny();
  decode["workload"] = {{"mode", "decode"}, {"batch_per_gpu", 16}};
  decode["schedule"] = {{"overlap", "decode-5stage"}};
  json dsv3 = tiny();  // MLA, fp8 weights and dispatch by default
  dsv3["model"].update({{"preset", "deepseek-v3"}, {"groups", 1}, {"topk_groups", 1}});
  json normal = tiny();  // the transfer engines' terms, calibrated
  normal["network"]["dispatch_impl"] = "normal";
  normal["cost_model"]["calibration"] = "h200-measured";
  json ll = tiny();
  ll["network"]["dispatch_impl"] = "low_latency";
  for (const json& doc : {tiny(), gpus, nccl, h200, decode, dsv3, normal, ll}) {
    const json r = resolved_scenario(doc);
    CHECK(resolved_scenario(r) == r);
    CHECK(report_of(r) == report_of(doc));
  }
  CHECK(resolved_scenario(nccl)["schedule"]["comm_sms"] == 64);
  CHECK(resolved_scenario(h200)["gpu"]["mfu"] == 0.5);
  CHECK(resolved_scenario(h200)["gpu"]["memory_gb"] == 141.0);
  CHECK(resolved_scenario(gpus)["cluster"]["nodes"] == 2);
  CHECK(resolved_scenario(dsv3)["precision"]["dispatch"] == "fp8");
  CHECK(resolved_scenario(dsv3)["model"]["attention"] == "mla");
  CHECK(resolved_scenario(tiny())["network"]["rdma_efficiency"] == 0.86);
  CHECK(resolved_scenario(normal)["network"]["nvlink_sm_round_us"].get<double>() == doctest::Approx(10.600483));
}

TEST_CASE("resolving checks the document as a run does") {
  json bad = tiny();
  bad["network"]["model"] = "fluid";
  CHECK_THROWS_AS(resolved_scenario(bad), ConfigError);
}
