#include <doctest/doctest.h>

#include "sim/analytical_network.h"
#include "sim/comm_scheme.h"

using namespace epsim;

// 2 nodes x 2 GPUs, 400 Gb/s NICs (50 GB/s), NVLink 450 GB/s; every GPU sends 1 MB to every other.
// Each NIC up/down carries 2 MB (one same-rail and one cross-rail peer) -> 40 us; leaf uplinks
// carry 2 MB at 2 x 50 GB/s -> 20 us. Cross-rail flows: 40 us + 3 us latency = 43 us.
TEST_CASE("all-to-all bottleneck time on a 2-node cluster") {
  ClusterSpec spec;
  spec.nodes = 2;
  spec.gpus_per_node = 2;
  const Cluster cluster(spec);
  Simulator sim;
  AnalyticalNetwork net(sim, cluster);
  CommPlan plan;
  for (int s = 0; s < 4; ++s)
    for (int d = 0; d < 4; ++d) plan.add(cluster, s, d, Bytes(1000000));
  REQUIRE(plan.flows.size() == 12);
  std::vector<Time> arrived(plan.flows.size());
  Time done;
  Transfer t;
  t.flows = plan.flows;
  t.on_flow_done = [&](std::size_t f) { arrived[f] = sim.now(); };
  t.on_done = [&] { done = sim.now(); };
  net.start(std::move(t));
  sim.run();
  CHECK(done == Time::us(43));
  CHECK(arrived[0] == Time::ps(2222222 + 1000000));  // 0 -> 1 over NVLink: 1 MB / 450 GB/s + 1 us
  CHECK(arrived[1] == Time::us(42));                  // 0 -> 2 same rail: 40 us + 2 us
  CHECK(arrived[2] == Time::us(43));                  // 0 -> 3 across rails
  const auto& nic0 = net.counters()[static_cast<std::size_t>(*cluster.route(0, 2).begin())];
  CHECK(nic0.bytes.count() == 2000000);
  CHECK(nic0.busy == Time::us(40));
  CHECK(nic0.peak_flows == 2);
}

TEST_CASE("an oversubscribed spine becomes the bottleneck") {
  ClusterSpec spec;
  spec.nodes = 2;
  spec.gpus_per_node = 2;
  spec.oversubscription = 4.0;  // leaf uplink 2 x 50 / 4 = 25 GB/s, carries 2 MB -> 80 us
  const Cluster cluster(spec);
  Simulator sim;
  AnalyticalNetwork net(sim, cluster);
  CommPlan plan;
  for (int s = 0; s < 4; ++s)
    for (int d = 0; d < 4; ++d) plan.add(cluster, s, d, Bytes(1000000));
  Time done;
  Transfer t;
  t.flows = plan.flows;
  t.on_done = [&] { done = sim.now(); };
  net.start(std::move(t));
  sim.run();
  CHECK(done == Time::us(83));
}
