#include <doctest/doctest.h>

#include "topology/cluster.h"

using namespace epsim;

static ClusterSpec small(int nodes, int gpn) {
  ClusterSpec s;
  s.nodes = nodes;
  s.gpus_per_node = gpn;
  return s;
}

static std::vector<LinkKind> kinds(const Cluster& c, GpuId a, GpuId b) {
  std::vector<LinkKind> k;
  for (LinkId l : c.route(a, b)) k.push_back(c.link(l).kind);
  return k;
}

TEST_CASE("routes: NVLink inside a node, own NIC across nodes, spine only across rails") {
  const Cluster c(small(2, 2));  // GPUs 0,1 on node 0; 2,3 on node 1
  CHECK(kinds(c, 0, 1) == std::vector{LinkKind::NvlinkUp, LinkKind::NvlinkDown});
  CHECK(kinds(c, 0, 2) == std::vector{LinkKind::NicUp, LinkKind::NicDown});  // same rail: one leaf
  CHECK(kinds(c, 0, 3) == std::vector{LinkKind::NicUp, LinkKind::LeafUp, LinkKind::SpineDown, LinkKind::NicDown});
  CHECK(c.link(*c.route(0, 3).begin()).name == "gpu0.nic.up");
  // Latency: NVLink 2 x 0.5 us; same rail 2 x 1 us; across rails + 2 x 0.5 us of spine.
  CHECK(c.route(0, 1).latency == Time::us(1));
  CHECK(c.route(0, 2).latency == Time::us(2));
  CHECK(c.route(0, 3).latency == Time::us(3));
  CHECK(c.route(2, 2).hops == 0);
}

TEST_CASE("leaf uplinks are thinned by oversubscription; more nodes than a leaf holds add leaves") {
  ClusterSpec s = small(4, 2);
  s.nodes_per_leaf = 2;
  s.oversubscription = 2.0;
  const Cluster c(s);
  CHECK(c.leaf_of(0) == 0);
  CHECK(c.leaf_of(4) == 1);  // node 2, rail 0: second leaf of rail 0
  // Same rail, other leaf: through the spine.
  CHECK(kinds(c, 0, 4) == std::vector{LinkKind::NicUp, LinkKind::LeafUp, LinkKind::SpineDown, LinkKind::NicDown});
  const Link& up = c.link(c.route(0, 4).link[1]);
  CHECK(up.bandwidth.bytes_per_second() == doctest::Approx(2 * 50e9 / 2.0));
}

TEST_CASE("spine links are dominated by the NICs under their leaf unless oversubscribed") {
  // A leaf's uplink of nodes_here x NIC carries only what the nodes_here NICs under it send: it can
  // never be the tightest link of a flow, and the flow network leaves it out of max-min. Thinned by
  // oversubscription it can be, and it stays in. NIC and NVLink links never are.
  ClusterSpec s = small(4, 2);
  s.nodes_per_leaf = 2;
  const Cluster plain(s);
  for (LinkId l : plain.route(0, 4)) CHECK(plain.link(l).dominated == (plain.link(l).kind == LinkKind::LeafUp || plain.link(l).kind == LinkKind::SpineDown));
  for (LinkId l : plain.route(0, 1)) CHECK_FALSE(plain.link(l).dominated);
  s.oversubscription = 2.0;
  const Cluster thin(s);
  for (LinkId l : thin.route(0, 4)) CHECK_FALSE(thin.link(l).dominated);
}

TEST_CASE("the route rule gives the graph's fewest-hop routes for every pair") {
  // Routes are computed by rule, not stored; the breadth-first search of the graph must agree on
  // every ordered pair of a cluster with several leaves per rail and a partial last leaf.
  ClusterSpec s = small(5, 4);
  s.nodes_per_leaf = 2;
  const Cluster c(s);
  for (GpuId a = 0; a < c.gpu_count(); ++a)
    for (GpuId b = 0; b < c.gpu_count(); ++b) {
      const Route want = c.searched_route(a, b), got = c.route(a, b);
      INFO(a << " -> " << b);
      REQUIRE(got.hops == want.hops);
      CHECK(std::vector<LinkId>(got.begin(), got.end()) == std::vector<LinkId>(want.begin(), want.end()));
      CHECK(got.latency == want.latency);
    }
  const Cluster one(small(3, 1));  // one GPU per node, one leaf: no spine
  CHECK(one.route(0, 2).hops == 2);
  CHECK(std::vector<LinkId>(one.route(0, 2).begin(), one.route(0, 2).end()) ==
        std::vector<LinkId>(one.searched_route(0, 2).begin(), one.searched_route(0, 2).end()));
}
