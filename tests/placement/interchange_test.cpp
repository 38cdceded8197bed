#include <doctest/doctest.h>

#include "models/errors.h"
#include "placement/interchange.h"

using namespace epsim;
using nlohmann::json;

namespace {
// 3 experts on an EP group of 2 GPUs (2 slots each: one redundant replica), 5 layers of which
// 1 and 3 are MoE: layer 0 dense first, then interleaved, as Llama 4 Maverick.
MoeModelSpec interleaved() {
  MoeModelSpec m;
  m.layers = 5;
  m.dense_layers = 1;
  m.moe_layer_ids = {1, 3};
  m.routed_experts = 3;
  m.top_k = 1;
  return m;
}
const Placement kTwoLayers("eplb", {1, 3}, {LayerPlacement(3, 2, {0, 1, 2, 0}), LayerPlacement(3, 2, {2, 2, 1, 0})});

std::string error_of(const json& doc, const MoeModelSpec& m) {
  try {
    placement_from_json(doc, "p.json", m, 2);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "no error";
}
}  // namespace

TEST_CASE("interchange: EPLB's phy2log / log2phy / logcnt, and errors name the entry") {
  const MoeModelSpec m = interleaved();
  const json j = placement_to_json(kTwoLayers, m);
  CHECK(j["phy2log"] == json::parse("[[0, 1, 2, 0], [2, 2, 1, 0]]"));
  CHECK(j["logcnt"] == json::parse("[[2, 1, 1], [1, 1, 2]]"));
  CHECK(j["log2phy"] == json::parse("[[[0, 3], [1, -1], [2, -1]], [[3, -1], [2, -1], [0, 1]]]"));
  const Placement back = placement_from_json(j, "p.json", m, 2);
  CHECK(back.tables() == kTwoLayers.tables());
  CHECK(back.strategy() == "eplb");
  CHECK(back.layer(3).phy2log() == std::vector<int>{2, 2, 1, 0});
  CHECK(back.layer(2).phy2log() == std::vector<int>{0, 1, 2, 0});  // a dense layer gets the first table
  CHECK(error_of(json::parse(R"({"phy2log": [[0, 1, 2, 7]]})"), m) == "p.json:phy2log[0][3] = 7: must be an expert in [0, 3) or -1 (empty)");
  CHECK(error_of(json::parse(R"({"phy2log": [[0, 1, 2]]})"), m) == "p.json:phy2log[0] = 3 slots: must be a multiple of ep = 2");
  CHECK(error_of(json::parse(R"({"phy2log": [[0, 1, 1, 0]]})"), m) == "p.json:phy2log[0] = (expert 2 absent): every expert needs a slot");
  CHECK(error_of(json::parse(R"({"phy2log": [[0, 1, 2, 0]], "logcnt": [[1, 1, 1]]})"), m) ==
        "p.json:logcnt[0] = [1,1,1]: must count each expert's slots in phy2log");
  CHECK(error_of(json::parse(R"({"phy2log": [[0, 1, 2, 0], [0, 1, 2, 0], [0, 1, 2, 0]]})"), m) ==
        "p.json:phy2log = 3 rows: must have one row or one per MoE layer (2)");
  CHECK(error_of(json::parse(R"({"experts": [0]})"), m).rfind("p.json = {\"experts\":[0]}: must be a placement", 0) == 0);
}

TEST_CASE("interchange: every framework format round-trips to the identical placement") {
  const MoeModelSpec m = interleaved();
  for (const std::string& name : interchange_format_names()) {
    CAPTURE(name);
    const json j = placement_to_json(kTwoLayers, m, interchange_format(name, "--format"));
    const Placement back = placement_from_json(json::parse(j.dump()), "p.json", m, 2);
    CHECK(back.tables() == kTwoLayers.tables());
    for (int l = 0; l < m.layers; ++l) CHECK(back.layer(l) == kTwoLayers.layer(l));
  }
  // SGLang: one row per model layer; the dense layers 0, 2, 4 carry its trivial map p -> p mod E.
  const json sg = placement_to_json(kTwoLayers, m, InterchangeFormat::sglang);
  CHECK(sg == json::parse(R"({"physical_to_logical_map": [[0, 1, 2, 0], [0, 1, 2, 0], [0, 1, 2, 0], [2, 2, 1, 0], [0, 1, 2, 0]]})"));
  // vLLM's EplbState tensors: MoE layers only.
  const json vl = placement_to_json(kTwoLayers, m, InterchangeFormat::vllm);
  CHECK(vl["physical_to_logical_map"] == json::parse("[[0, 1, 2, 0], [2, 2, 1, 0]]"));
  CHECK(vl["logical_replica_count"] == json::parse("[[2, 1, 1], [1, 1, 2]]"));
  CHECK(vl["logical_to_physical_map"][1] == json::parse("[[3, -1], [2, -1], [0, 1]]"));
  // vLLM Ascend: per MoE layer, per device, the experts of its local slots.
  const json va = placement_to_json(kTwoLayers, m, InterchangeFormat::vllm_ascend);
  CHECK(va["moe_layer_count"] == 2);
  CHECK(va["layer_list"][1] == json::parse(R"({"layer_id": 1, "device_count": 2, "device_list": [
        {"device_id": 0, "device_expert": [2, 2]}, {"device_id": 1, "device_expert": [1, 0]}]})"));
  // Their own checks: vLLM's replica counts must agree with the map; Ascend devices must be ep.
  json bad = vl;
  bad["logical_replica_count"][0][0] = 1;
  CHECK(error_of(bad, m) == "p.json:logical_replica_count[0] = [1,1,1]: must count each expert's slots in physical_to_logical_map");
  bad = va;
  bad["layer_list"][0]["device_list"].erase(1);
  CHECK(error_of(bad, m) == "p.json:layer_list[0].device_list = 1 devices: must list ep = 2 devices");
  // A physical_to_logical_map of neither L nor M rows.
  CHECK(error_of(json::parse(R"({"physical_to_logical_map": [[0, 1, 2, 0], [0, 1, 2, 0], [0, 1, 2, 0]]})"), m) ==
        "p.json:physical_to_logical_map = 3 rows: must have one row or one per MoE layer (2)");
}

TEST_CASE("interchange: load statistics in EPLB's, SGLang's and vLLM's layouts") {
  const MoeModelSpec m = interleaved();
  const std::vector<std::vector<double>> loads = {{10, 20, 30}, {5, 0, 7.5}};
  for (const std::string& name : interchange_format_names()) {
    CAPTURE(name);
    const json j = load_stats_to_json(loads, m, interchange_format(name, "--format"));
    CHECK(load_stats_from_json(json::parse(j.dump()), "l.json", m) == loads);
  }
  CHECK(load_stats_to_json(loads, m, InterchangeFormat::sglang) ==
        json::parse(R"({"logical_count": [[0, 0, 0], [10, 20, 30], [0, 0, 0], [5, 0, 7.5], [0, 0, 0]]})"));
  // SGLang's recorder dumps steps x layers x experts: summed over the steps.
  const json steps = json::parse(R"({"logical_count": [[[0,0,0],[1,2,3],[0,0,0],[4,0,1],[0,0,0]],
                                                       [[0,0,0],[9,18,27],[0,0,0],[1,0,6],[0,0,0]]]})");
  CHECK(load_stats_from_json(steps, "l.json", m) == std::vector<std::vector<double>>{{10, 20, 30}, {5, 0, 7}});
  // vLLM's window of physical loads (4 slots), folded into experts by physical_to_logical_map:
  // layer 1 slots hold experts 0 1 2 0 -> expert 0 = 1 + 4, expert 1 = 2, expert 2 = 3, summed over 2 passes.
  const json window = json::parse(R"({"expert_load_window": [[[1, 2, 3, 4], [1, 1, 1, 1]], [[1, 2, 3, 4], [0, 0, 0, 0]]],
                                       "physical_to_logical_map": [[0, 1, 2, 0], [2, 2, 1, 0]]})");
  CHECK(load_stats_from_json(window, "l.json", m) == std::vector<std::vector<double>>{{10, 4, 6}, {1, 1, 2}});
  // One EPLB row applies to every MoE layer; errors name the entry.
  CHECK(load_stats_from_json(json::parse(R"({"load": [[1, 2, 3]]})"), "l.json", m) == std::vector<std::vector<double>>{{1, 2, 3}, {1, 2, 3}});
  CHECK_THROWS_WITH_AS(load_stats_from_json(json::parse("[[1, -2, 3]]"), "l.json", m), "l.json:load[0][1] = -2: must be a number >= 0", ConfigError);
  CHECK_THROWS_WITH_AS(load_stats_from_json(json::parse(R"({"logical_count": [[1, 2, 3]]})"), "l.json", m),
                       "l.json:logical_count = 1 rows: must have one row per layer (5)", ConfigError);
  CHECK_THROWS_WITH_AS(load_stats_from_json(json::parse(R"({"logical_count": [[0,0,0],[1,2,3],[0,0,0],[0,0,0],[0,0,0]]})"), "l.json", m),
                       "l.json:logical_count[3] = [0,0,0]: must not be all zero", ConfigError);
}
