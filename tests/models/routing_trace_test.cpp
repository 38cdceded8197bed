#include <doctest/doctest.h>

#include <fstream>
#include <functional>
#include <numeric>
#include <sstream>

#include "tests/models/error_of.h"
#include "models/gate_model.h"

using namespace epsim;
using nlohmann::json;

namespace {

const std::string traces = std::string(EPSIM_SOURCE_DIR) + "/scenarios/traces/";

// small-2node.json's model: 8 layers (1 dense), 16 experts, top-4.
MoeModelSpec small() {
  MoeModelSpec m;
  m.layers = 8;
  m.dense_layers = 1;
  m.routed_experts = 16;
  m.top_k = 4;
  return m;
}

GateModel trace_gate(const std::string& file) {
  return GateModel(RoutingSpec::from_json(json{{"distribution", "trace"}, {"trace", traces + file}}, "routing"), small());
}

using epsim::testing::error_of;

const TraceShape shape{16, 4, 1, {}};

std::string json_error(const json& j) {
  return error_of([&] { RoutingTrace::from_json(j, "t.json", shape); });
}

std::string csv_error(const std::string& text) {
  return error_of([&] {
    std::istringstream in(text);
    RoutingTrace::from_csv(in, "t.csv", shape);
  });
}

std::vector<std::int64_t> row(const json& j) { return j.get<std::vector<std::int64_t>>(); }

}  // namespace

TEST_CASE("a JSON trace is replayed exactly when its totals match the step") {
  const json file = read_json_file(traces + "small-2node-skewed.json");
  const GateModel gate = trace_gate("small-2node-skewed.json");
  // Entry 0 (layer 1): per-expert loads of 16 GPUs x 2048 tokens x top-4 = 131,072 selections.
  const RoutingSample r = gate.sample(1, 0, 16, 2048);
  CHECK(r.expert_load() == row(file["layers"][0]["load"]));
  for (int s = 0; s < 16; ++s) {
    std::int64_t sum = 0;
    for (int e = 0; e < 16; ++e) {
      const std::int64_t share = row(file["layers"][0]["load"])[static_cast<std::size_t>(e)] / 16;
      REQUIRE(r.at(s, e) >= share);
      REQUIRE(r.at(s, e) <= share + 1);  // dealt evenly
      sum += r.at(s, e);
    }
    REQUIRE(sum == 2048 * 4);
  }
  // Entry 1 (layer 2): per-source rows, GPU s replays row s mod 2.
  const RoutingSample r2 = gate.sample(2, 0, 16, 2048);
  for (int s = 0; s < 16; ++s)
    for (int e = 0; e < 16; ++e)
      REQUIRE(r2.at(s, e) == row(file["layers"][1]["sources"][static_cast<std::size_t>(s % 2)])[static_cast<std::size_t>(e)]);
  // Layer 3 wraps around to entry 0; every micro-batch and step replays the same loads.
  GateModel later = trace_gate("small-2node-skewed.json");
  later.begin_step(5);
  CHECK(later.sample(3, 1, 16, 2048).counts == r.counts);
  // The expected probabilities are the file's shares x top-4: expert 5 has 30,327 / 32,768.
  CHECK(gate.selection_probabilities(1)[5] == doctest::Approx(30327.0 / 32768));
}

TEST_CASE("a trace is scaled to another token count, capped at one selection per token") {
  const GateModel gate = trace_gate("small-2node-skewed.json");
  const json file = read_json_file(traces + "small-2node-skewed.json");
  const auto L = row(file["layers"][0]["load"]);
  const RoutingSample r = gate.sample(1, 0, 16, 1024);  // half the tokens
  const auto load = r.expert_load();
  CHECK(std::accumulate(load.begin(), load.end(), std::int64_t{0}) == 16 * 1024 * 4);
  for (std::size_t e = 0; e < 16; ++e) CHECK(std::abs(2 * load[e] - L[e]) <= 1);
  // One source of 8 tokens: expert 5's share (30327 / 131072 x 32 = 7.4) fits under the cap of 8.
  const RoutingSample tiny = gate.sample(1, 0, 1, 8);
  CHECK(tiny.at(0, 5) == 7);
  // Largest remainder by hand: shares 3.07 1.40 1.01 2.04 0.85 7.40 1.17 1.56 0.90 2.44 1.28 0.95
  // 4.25 0.81 1.77 1.09 floor to 25; the 7 largest fractions (.95 .90 .85 .81 .77 .56 .44) get one.
  CHECK(tiny.expert_load() == std::vector<std::int64_t>{3, 1, 1, 2, 1, 7, 1, 2, 1, 3, 1, 1, 4, 1, 2, 1});
}

TEST_CASE("a CSV trace with per-source rows is replayed exactly") {
  const GateModel gate = trace_gate("small-2node-skewed.csv");
  const json file = read_json_file(traces + "small-2node-skewed.json");
  // The CSV's layer 1 source 0 is the JSON's layer 2 source 0; its layer 2 source 0 the JSON's source 1.
  const RoutingSample r1 = gate.sample(1, 0, 2, 2048), r2 = gate.sample(2, 0, 4, 2048);
  for (int e = 0; e < 16; ++e) {
    CHECK(r1.at(0, e) == row(file["layers"][1]["sources"][0])[static_cast<std::size_t>(e)]);
    CHECK(r2.at(0, e) == row(file["layers"][1]["sources"][1])[static_cast<std::size_t>(e)]);
    CHECK(r2.at(2, e) == r2.at(0, e));  // source 2 replays row 0
  }
  CHECK(r1.at(1, 12) == 1432);  // row 1 of layer 1 is row 0 rotated: its hottest expert is 12
}

TEST_CASE("capacity factor on a trace: drops by hand") {
  // 4 experts, top-1, one source of 12 tokens with loads 6, 2, 2, 2: mean 3.
  std::istringstream in("layer,expert,tokens\n1,0,6\n1,1,2\n1,2,2\n1,3,2\n");
  (void)in;
  MoeModelSpec m = small();
  m.routed_experts = 4;
  m.top_k = 1;
  const std::string file = "/tmp/epsim_capacity_trace.csv";
  {
    std::ofstream out(file);
    out << "layer,expert,tokens\n1,0,6\n1,1,2\n1,2,2\n1,3,2\n";
  }
  auto gate = [&](double factor) {
    return GateModel(RoutingSpec::from_json(json{{"distribution", "trace"}, {"trace", file}, {"capacity_factor", factor}}, "routing"), m);
  };
  RoutingSample r = gate(1.0).sample(1, 0, 1, 12);
  CHECK(r.counts == std::vector<std::int64_t>{3, 2, 2, 2});  // capacity ceil(1.0 x 3) = 3
  CHECK(r.dropped == 3);
  r = gate(1.5).sample(1, 0, 1, 12);
  CHECK(r.counts == std::vector<std::int64_t>{5, 2, 2, 2});  // capacity ceil(4.5) = 5
  CHECK(r.dropped == 1);
  CHECK(gate(2.0).sample(1, 0, 1, 12).dropped == 0);
}

TEST_CASE("bad JSON traces name the file's JSON path, the value and the rule") {
  const json load = json::array({100, 0, 0, 0, 5, 5, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0});
  CHECK(json_error({{"experts", 16}, {"layers", {{{"load", load}}}}}) == "(no error)");
  CHECK(json_error({{"experts", 8}, {"layers", {{{"load", load}}}}}) == "t.json:experts = 8: must equal model.routed_experts = 16");
  CHECK(json_error({{"experts", 16}, {"layers", json::array()}}) ==
        "t.json:layers = []: must be a non-empty array, one entry per MoE layer");
  CHECK(json_error({{"experts", 16}, {"layers", {{{"load", {1, 2, 3}}}}}}) ==
        "t.json:layers[0].load = [1,2,3]: must have 16 entries (model.routed_experts), has 3");
  json neg = load;
  neg[3] = -4;
  CHECK(json_error({{"experts", 16}, {"layers", {{{"load", load}}, {{"load", neg}}}}}) ==
        "t.json:layers[1].load[3] = -4: must be an integer in [0, 1099511627776]");
  json few = json::array({100, 0, 0, 0, 5, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0});
  CHECK(json_error({{"experts", 16}, {"layers", {{{"load", few}}}}}) ==
        "t.json:layers[0].load = [100,0,0,0,5,5,0,0,0,0,0,0,0,0,0,0]: must have at least top_k = 4 nonzero entries "
        "(a token selects top_k distinct experts), has 3");
  CHECK(json_error({{"experts", 16}, {"layers", {{{"layer", 2}, {"load", load}}}}}) ==
        "t.json:layers[0].layer = 2: entry 0 is MoE layer 1 (dense_layers + 0)");
  CHECK(json_error({{"experts", 16}, {"layers", {{{"load", load}, {"sources", {load}}}}}}).rfind(
            "t.json:layers[0] = ", 0) == 0);
  CHECK(json_error({{"experts", 16}, {"layers", {{{"loads", load}}}}}) ==
        "t.json:layers[0].loads = [100,0,0,0,5,5,5,0,0,0,0,0,0,0,0,0]: unknown key (known here: layer, load, sources, micro_batches)");
  CHECK(json_error({{"experts", 16}, {"layers", {{{"sources", {load, {1}}}}}}}) ==
        "t.json:layers[0].sources[1] = [1]: must have 16 entries (model.routed_experts), has 1");
}

TEST_CASE("bad CSV traces name the file and line, the value and the rule") {
  const std::string rows = "1,0,9\n1,1,9\n1,2,9\n1,3,9\n";
  CHECK(csv_error("layer,expert,tokens\n" + rows) == "(no error)");
  CHECK(csv_error("layer,tokens\n" + rows) ==
        "t.csv:line 1 = \"layer,tokens\": the header must be layer,expert,tokens or layer,source,expert,tokens");
  CHECK(csv_error("layer,expert,tokens\n" + rows + "1,4,x\n") == "t.csv:line 6 = \"x\": column tokens must be an integer in [0, 1099511627776]");
  CHECK(csv_error("layer,expert,tokens\n" + rows + "1,16,3\n") ==
        "t.csv:line 6 = \"1,16,3\": expert must be < model.routed_experts = 16");
  CHECK(csv_error("layer,expert,tokens\n" + rows + "1,3,3\n") == "t.csv:line 6 = \"1,3,3\": repeats an earlier row's layer, source and expert");
  CHECK(csv_error("layer,expert,tokens\n" + rows + "3,0,9\n") ==
        "t.csv:layer 3 = 3: layers must be consecutive from dense_layers = 1 (missing layer 2)");
  CHECK(csv_error("layer,expert,tokens\n# a comment\n\n1,0,9\n1,1,9\n1,2,9\n") ==
        "t.csv:layer 1 = 27 tokens: must have at least top_k = 4 nonzero entries (a token selects top_k distinct experts), has 3");
  CHECK(csv_error("layer,expert,tokens\n0,0,9\n") == "t.csv:line 2 = \"0,0,9\": layer must be a MoE layer (>= dense_layers = 1)");
  CHECK(csv_error("layer,expert,tokens\n1,0\n") == "t.csv:line 2 = \"1,0\": must have 3 columns like the header");
}

TEST_CASE("per-micro-batch rows: micro-batch m replays its own counts") {
  // 2 sources of 4 tokens, top-4 of 16 experts. Micro-batch 0 routes every token to experts 0-3,
  // micro-batch 1 to experts 4-7; the layer's rows (their sum) would give each half 2+2 of both.
  const auto first = [](int from) {
    json rows = json::array();
    for (int s = 0; s < 2; ++s) {
      json r = json::array();
      for (int e = 0; e < 16; ++e) r.push_back(e >= from && e < from + 4 ? 4 : 0);
      rows.push_back(r);
    }
    return rows;
  };
  json layer_rows = first(0);
  for (int s = 0; s < 2; ++s)
    for (int e = 4; e < 8; ++e) layer_rows[static_cast<std::size_t>(s)][static_cast<std::size_t>(e)] = 4;
  json doc{{"experts", 16}, {"layers", json::array({json{{"sources", layer_rows}, {"micro_batches", json::array({first(0), first(4)})}}})}};
  RoutingSpec spec = RoutingSpec::from_json(json{{"distribution", "trace"}, {"trace", "inline"}}, "routing");
  spec.trace_document = doc;
  const GateModel gate(spec, small());
  const RoutingSample mb0 = gate.sample(1, 0, 2, 4), mb1 = gate.sample(1, 1, 2, 4);
  for (int e = 0; e < 16; ++e) {
    CHECK(mb0.at(1, e) == (e < 4 ? 4 : 0));
    CHECK(mb1.at(1, e) == (e >= 4 && e < 8 ? 4 : 0));
  }
  doc["layers"][0]["micro_batches"] = json::array();
  CHECK(error_of([&] { (void)RoutingTrace::from_json(doc, "t.json", shape); }).find("t.json:layers[0].micro_batches") != std::string::npos);
}
