// Replaying keyed transfers (sim/transfer_memo.h) on timelines worked out by hand: a replay lands
// exactly where solving lands, also when another flow cuts into it part-way (the replay is taken
// back into the solver), and a whole step gives the same report with replay on and off.
#include <doctest/doctest.h>

#include <vector>

#include "sim/analytical_network.h"
#include "sim/flow_network.h"
#include "sim/report.h"
#include "sim/simulation.h"
#include "sim/simulator.h"
#include "sim/transfer_memo.h"
#include "topology/cluster.h"

using namespace epsim;

namespace {

// Three links of 1 GB/s = 1 byte per ns, no latency.
std::vector<Link> three_links() {
  std::vector<Link> v;
  for (const char* name : {"l0", "l1", "l2"})
    v.push_back(Link{LinkKind::NicUp, Bandwidth::gb_per_s(1.0), Time::zero(), static_cast<int>(v.size()), name});
  return v;
}

Route route(std::vector<LinkId> ids) {
  Route r;
  for (LinkId id : ids) r.append(id, Time::zero());
  return r;
}

// K: f0 0->1 on link 0 (1000 B), f1 0->2 on links 0,1 (1000 B), f2 2->1 on link 2 (3000 B).
// Components: {f0, f1} (links 0, 1) and {f2} (link 2). Alone: f0 and f1 share link 0 at 0.5 B/ns
// and end at 2000 ns; f2 ends at 3000 ns. Endpoint 0 is done at 2000, endpoints 1 and 2 at 3000.
struct Endpoints {
  std::vector<Time> done = std::vector<Time>(3, Time::infinity());
  Time all = Time::infinity();
};

void start_k(Simulator& sim, Network& net, Time when, Endpoints& out) {
  sim.at(when, [&sim, &net, &out] {
    Transfer t;
    t.endpoints = 3;
    t.key = 42;
    t.fill = [](Transfer& f) {
      f.flows = {FlowSpec{route({0}), Bytes(1000)}, FlowSpec{route({0, 1}), Bytes(1000)}, FlowSpec{route({2}), Bytes(3000)}};
      f.src = {0, 0, 2};
      f.dst = {1, 2, 1};
    };
    t.on_endpoint_done = [&sim, &out](GpuId e) { out.done[static_cast<std::size_t>(e)] = sim.now(); };
    t.on_done = [&sim, &out] { out.all = sim.now(); };
    net.start(std::move(t));
  });
}

Time ns(std::int64_t n) { return Time::ps(n * 1000); }

}  // namespace

TEST_CASE("flow components: flows sharing a link, directly or through others, are one component") {
  const std::vector<FlowSpec> flows = {FlowSpec{route({0}), Bytes(1)}, FlowSpec{route({2}), Bytes(1)},
                                       FlowSpec{route({0, 1}), Bytes(1)}, FlowSpec{route({1, 3}), Bytes(1)},
                                       FlowSpec{Route{}, Bytes(5)}, FlowSpec{route({2}), Bytes(0)}};
  std::int32_t count = 0;
  const auto c = flow_components(flows, 4, count);
  CHECK(count == 3);
  CHECK(c == std::vector<std::int32_t>{0, 1, 0, 0, 2, 2});  // no bandwidth: the linkless component
}

TEST_CASE("the memo forgets its oldest record first; keys are never 0 and mix every value") {
  TransferMemo memo(2);
  memo.store(1, MemoRecord{});
  memo.store(2, MemoRecord{});
  memo.store(3, MemoRecord{});
  CHECK(memo.find(1) == nullptr);
  CHECK(memo.find(2) != nullptr);
  CHECK(memo.find(3) != nullptr);
  CHECK(memo.stats().stored == 3);
  CHECK(KeyHasher().add(1).add(2).key() != KeyHasher().add(2).add(1).key());
  CHECK(KeyHasher().add(std::vector<std::int64_t>{1, 2}).key() == KeyHasher().add(std::vector<std::int64_t>{1, 2}).key());
  CHECK(KeyHasher().key() != 0);
}

TEST_CASE("flow network: a keyed transfer seen before is replayed at the same offsets") {
  const auto ls = three_links();
  Simulator sim;
  FlowNetwork net(sim, ls);
  Endpoints first, again;
  start_k(sim, net, Time::zero(), first);
  start_k(sim, net, ns(10000), again);
  sim.run();
  CHECK(first.done == std::vector<Time>{ns(2000), ns(3000), ns(3000)});
  CHECK(first.all == ns(3000));
  CHECK(again.done == std::vector<Time>{ns(12000), ns(13000), ns(13000)});
  CHECK(again.all == ns(13000));
  CHECK(net.replay_stats().hits == 1);
  CHECK(net.replay_stats().replayed == 2);
  CHECK(net.counters()[0].bytes == Bytes(4000));
  CHECK(net.counters()[0].busy == ns(4000));
  CHECK(net.counters()[2].busy == ns(6000));
  CHECK(net.counters()[0].peak_flows == 2);
}

TEST_CASE("flow network: a flow cutting into a replay takes it back into the solver, exactly") {
  // K again at 10000; U (1000 B on link 0) at 11000. At 11000 f0 and f1 have 500 B left; three
  // flows share link 0 at 1/3 B/ns: f0 and f1 end at 12500, U has 500 B left and ends alone at
  // 13000. f2 on link 2 is untouched: 13000.
  const auto ls = three_links();
  for (bool replay : {true, false}) {
    CAPTURE(replay);
    Simulator sim;
    FlowNetwork net(sim, ls, replay);
    Endpoints first, again;
    Time u_done = Time::infinity();
    start_k(sim, net, Time::zero(), first);
    start_k(sim, net, ns(10000), again);
    sim.at(ns(11000), [&] {
      Transfer u;
      u.flows.push_back(FlowSpec{route({0}), Bytes(1000)});
      u.on_done = [&] { u_done = sim.now(); };
      net.start(std::move(u));
    });
    sim.run();
    CHECK(again.done == std::vector<Time>{ns(12500), ns(13000), ns(13000)});
    CHECK(u_done == ns(13000));
    CHECK(net.counters()[0].bytes == Bytes(5000));
    CHECK(net.counters()[0].busy == ns(5000));  // 0..2000 and 10000..13000
    CHECK(net.counters()[1].busy == ns(4500));  // 0..2000 and 10000..12500
    CHECK(net.replay_stats().materialised == (replay ? 1u : 0u));
  }
}

TEST_CASE("flow network: a component whose links are in use is solved, the others replayed") {
  // U holds link 2 from 9000 to 14000 ns (5000 B alone until K's f2 joins at 10000). K's second run
  // replays {f0, f1} and solves f2 beside U: both at 0.5 B/ns from 10000; U (4000 B left) and f2
  // (3000 B) -> f2 ends at 16000, U at 17000.
  const auto ls = three_links();
  Simulator sim;
  FlowNetwork net(sim, ls);
  Endpoints first, again;
  Time u_done = Time::infinity();
  start_k(sim, net, Time::zero(), first);
  sim.at(ns(9000), [&] {
    Transfer u;
    u.flows.push_back(FlowSpec{route({2}), Bytes(5000)});
    u.on_done = [&] { u_done = sim.now(); };
    net.start(std::move(u));
  });
  start_k(sim, net, ns(10000), again);
  sim.run();
  CHECK(again.done == std::vector<Time>{ns(12000), ns(16000), ns(16000)});
  CHECK(u_done == ns(17000));
  CHECK(net.replay_stats().replayed == 1);
  CHECK(net.replay_stats().solved == 1);
}

TEST_CASE("analytical network: a keyed transfer seen before is replayed at the same offsets") {
  ClusterSpec spec;
  spec.nodes = 1;
  spec.gpus_per_node = 4;
  const Cluster cluster(spec);  // K's flows run over its first three links
  Simulator sim;
  AnalyticalNetwork net(sim, cluster);
  Endpoints first, again;
  start_k(sim, net, Time::zero(), first);
  start_k(sim, net, ns(10000), again);
  sim.run();
  REQUIRE(first.all != Time::infinity());
  for (std::size_t e = 0; e < 3; ++e) CHECK(again.done[e] - ns(10000) == first.done[e]);
  CHECK(again.all - ns(10000) == first.all);
  CHECK(first.done[1] == first.all);  // endpoint 1 waits for f2, the largest load
  CHECK(net.replay_stats().hits == 1);
  CHECK(net.counters()[0].bytes == Bytes(4000));
  CHECK(net.counters()[2].bytes == Bytes(6000));
}

TEST_CASE("a step gives the same report with replay on and off") {
  for (const char* model : {"flow", "analytical"}) {
    CAPTURE(model);
    nlohmann::json sc{{"model", {{"layers", 4}, {"dense_layers", 1}, {"hidden", 1024}, {"dense_intermediate", 2048},
                                 {"expert_intermediate", 512}, {"routed_experts", 8}, {"top_k", 2}, {"heads", 8},
                                 {"head_dim", 128}, {"vocab", 1000}}},
                      {"cluster", {{"nodes", 2}, {"gpus_per_node", 4}}},
                      {"parallelism", {{"attention_tp", 2}}},
                      {"workload", {{"tokens_per_gpu", 512}}},
                      {"schedule", {{"overlap", "dual-microbatch"}, {"chunks", 3}}},
                      {"network", {{"model", model}}}};
    Simulation on(Scenario::from_json(sc));
    sc["network"]["replay"] = false;
    Simulation off(Scenario::from_json(sc));
    on.run();
    off.run();
    CHECK(on.result().replay.hits > 0);
    CHECK(off.result().replay.hits == 0);
    auto a = report_json(on), b = report_json(off);
    for (auto* j : {&a, &b}) {
      j->erase("network_replay");
      j->erase("events");
    }
    CHECK(a.dump(2) == b.dump(2));
  }
}
