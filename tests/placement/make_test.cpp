#include <doctest/doctest.h>

#include <cstdio>
#include <fstream>

#include "models/errors.h"
#include "placement/interchange.h"
#include "placement/placement.h"
#include "sim/report.h"

using namespace epsim;

namespace {
struct Setup {
  MoeModelSpec model;
  Cluster cluster;
  GateModel gate;
  Setup(MoeModelSpec m, ClusterSpec c) : model(m), cluster(c), gate(RoutingSpec{}, model) {}
  PlacementInputs inputs(int ep) { return PlacementInputs{model, ep, cluster, gate, 256, Time::zero()}; }
};

MoeModelSpec twelve_experts() {
  MoeModelSpec m;
  m.layers = 3;
  m.dense_layers = 1;
  m.routed_experts = 12;
  m.top_k = 2;
  m.groups = 4;
  m.topk_groups = 2;
  return m;
}

ClusterSpec two_nodes_of_four() {
  ClusterSpec c;
  c.nodes = 2;
  c.gpus_per_node = 4;
  return c;
}
}  // namespace

TEST_CASE("make: load statistics drive eplb (the published example end to end) and files round-trip") {
  Setup s(twelve_experts(), two_nodes_of_four());
  const std::string stats = "placement_make_test_loads.json", file = "placement_make_test_placement.json";
  write_file(stats, R"({"load": [[90, 132, 40, 61, 104, 165, 39, 4, 73, 56, 183, 86],
                                 [20, 107, 104, 64, 19, 197, 187, 157, 172, 86, 16, 27]]})");
  PlacementSpec spec;
  spec.strategy = "eplb";
  spec.redundant_slots = 4;
  spec.load_stats = stats;
  const Placement p = Placement::make(spec, s.inputs(8));
  REQUIRE(p.tables().size() == 2);
  CHECK(p.layer(1).phy2log() == std::vector<int>{5, 6, 5, 7, 8, 4, 3, 4, 10, 9, 10, 2, 0, 1, 11, 1});
  CHECK(p.layer(2).phy2log() == std::vector<int>{7, 10, 6, 8, 6, 11, 8, 9, 2, 4, 5, 1, 5, 0, 3, 1});
  CHECK(p.layer(1).slots_per_gpu() == 2);
  // Written in EPLB's layout and read back through placement.strategy = file.
  write_file(file, placement_to_json(p, s.model).dump());
  PlacementSpec from_file;
  from_file.strategy = "file";
  from_file.file = file;
  CHECK(Placement::make(from_file, s.inputs(8)).tables() == p.tables());
  // 12 + 5 slots do not divide over 8 GPUs.
  spec.redundant_slots = 5;
  CHECK_THROWS_WITH_AS(Placement::make(spec, s.inputs(8)),
                       "placement.redundant_slots = 5: routed_experts (12) + redundant_slots must be a multiple of ep = 8",
                       ConfigError);
  std::remove(stats.c_str());
  std::remove(file.c_str());
}

TEST_CASE("make: every strategy gives each expert a slot; scenario keys are checked") {
  Setup s(twelve_experts(), two_nodes_of_four());
  for (const std::string name : {"contiguous", "round_robin", "random", "colocated", "topology_aware", "eplb"}) {
    PlacementSpec spec;
    spec.strategy = name;
    const Placement p = Placement::make(spec, s.inputs(4));  // two EP groups of 4 GPUs, 3 experts each
    CHECK(p.uniform());  // uniform routing: the same table for every layer
    for (int e = 0; e < 12; ++e) CHECK(p.layer(1).replica_count(e) == 1);
    CHECK(p.strategy() == name);
  }
  // Without the cluster only contiguous, random and precomputed placements can be made.
  PlacementSpec ta;
  ta.strategy = "topology_aware";
  CHECK_THROWS_AS(Placement::make(ta, 12, 4), ConfigError);
  ta.resolved = std::make_shared<const Placement>(Placement::contiguous(12, 4));
  CHECK(Placement::make(ta, 12, 4).strategy() == "contiguous");
  auto error_of = [](const char* text) {
    try {
      PlacementSpec::from_json(nlohmann::json::parse(text), "placement");
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK(error_of(R"({"strategy": "best"})") ==
        "placement.strategy = \"best\": must be one of: contiguous, round_robin, random, colocated, topology_aware, eplb, file");
  CHECK(error_of(R"({"strategy": "round_robin", "redundant_slots": 8})") ==
        "placement.redundant_slots = 8: only the eplb strategy adds redundant slots");
  CHECK(error_of(R"({"strategy": "file"})") == "placement.file = \"\": strategy \"file\" needs a placement file");
}
