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
  // Degraded links (faults): leaf 0 (GPUs 0 and 2, rail 0) at half its uplink can be filled by its
  // two NICs, so it stays in max-min; its down link and a leaf under a half-speed NIC stay out.
  s.oversubscription = 1.0;
  s.link_factors = {{"leaf0.up", 0.5}, {"gpu1.nic.up", 0.5}};
  const Cluster degraded(s);
  const auto by_name = [&](const std::string& name) {
    for (const Link& l : degraded.links())
      if (l.name == name) return l;
    FAIL("no link " << name);
    return Link{};
  };
  CHECK_FALSE(by_name("leaf0.up").dominated);
  CHECK(by_name("leaf0.down").dominated);
  CHECK(by_name("leaf2.up").dominated);  // GPU 1's leaf (rail 1, nodes 0-1)
}

static std::vector<LinkId> ids(const Route& r) { return {r.begin(), r.end()}; }

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
      CHECK(ids(got) == ids(want));
      CHECK(got.latency == want.latency);
    }
  // rail_pxn: across rails of two nodes, the search's route to the relay, then the relay's.
  ClusterSpec p = s;
  p.topology = "rail_pxn";
  const Cluster pxn(p);
  for (GpuId a = 0; a < pxn.gpu_count(); ++a)
    for (GpuId b = 0; b < pxn.gpu_count(); ++b) {
      std::vector<LinkId> want;
      const bool relayed = pxn.node_of(a) != pxn.node_of(b) && pxn.rail_of(a) != pxn.rail_of(b);
      const GpuId relay = pxn.gpu(pxn.node_of(a), pxn.rail_of(b));
      for (const Route& part : relayed ? std::vector<Route>{pxn.searched_route(a, relay), pxn.searched_route(relay, b)}
                                       : std::vector<Route>{pxn.searched_route(a, b)})
        want.insert(want.end(), part.begin(), part.end());
      INFO("pxn " << a << " -> " << b);
      CHECK(ids(pxn.route(a, b)) == want);
      // route_into (flow lists build routes in place) writes the same route over whatever was there.
      Route into = pxn.route(b == 0 ? 1 : 0, b);
      pxn.route_into(a, b, into);
      CHECK(ids(into) == want);
      CHECK(into.latency == pxn.route(a, b).latency);
    }
  // NVLink domains of two nodes (three domains, the last one's second node under another leaf):
  // NVLink inside a domain, NICs between domains; rail_pxn relays only between domains.
  ClusterSpec d = small(6, 4);
  d.nodes_per_leaf = 3;
  d.nvlink_domain = 8;
  for (const char* topology : {"rail", "rail_pxn"}) {
    d.topology = topology;
    const Cluster dc(d);
    for (GpuId a = 0; a < dc.gpu_count(); ++a)
      for (GpuId b = 0; b < dc.gpu_count(); ++b) {
        std::vector<LinkId> want;
        const bool relayed = d.topology == "rail_pxn" && !dc.same_domain(a, b) && dc.rail_of(a) != dc.rail_of(b);
        const GpuId relay = dc.gpu(dc.node_of(a), dc.rail_of(b));
        for (const Route& part : relayed ? std::vector<Route>{dc.searched_route(a, relay), dc.searched_route(relay, b)}
                                         : std::vector<Route>{dc.searched_route(a, b)})
          want.insert(want.end(), part.begin(), part.end());
        INFO(topology << " domain " << a << " -> " << b);
        CHECK(ids(dc.route(a, b)) == want);
        if (dc.same_domain(a, b) && a != b) CHECK(dc.link(*dc.route(a, b).begin()).kind == LinkKind::NvlinkUp);
      }
  }
  const Cluster one(small(3, 1));  // one GPU per node, one leaf: no spine
  CHECK(one.route(0, 2).hops == 2);
  CHECK(ids(one.route(0, 2)) == ids(one.searched_route(0, 2)));
}

static std::vector<std::string> names(const Cluster& c, GpuId a, GpuId b) {
  std::vector<std::string> n;
  for (LinkId l : c.route(a, b)) n.push_back(c.link(l).name);
  return n;
}

TEST_CASE("rail_pxn: across rails of two nodes, NVLink first to the destination's rail, never the spine") {
  ClusterSpec s = small(2, 2);
  s.topology = "rail_pxn";
  const Cluster c(s);
  // GPU 0 (node 0, rail 0) -> GPU 3 (node 1, rail 1): through GPU 1, then rail 1.
  CHECK(names(c, 0, 3) == std::vector<std::string>{"gpu0.nvlink.up", "gpu1.nvlink.down", "gpu1.nic.up", "gpu3.nic.down"});
  CHECK(c.route(0, 3).latency == Time::us(3));  // 2 x 0.5 us NVLink + 2 x 1 us NIC
  // Same rail and same node keep their routes.
  CHECK(kinds(c, 0, 2) == std::vector{LinkKind::NicUp, LinkKind::NicDown});
  CHECK(kinds(c, 0, 1) == std::vector{LinkKind::NvlinkUp, LinkKind::NvlinkDown});
  // Nodes under different leaves of one rail still cross the spine on that rail.
  ClusterSpec wide = small(4, 2);
  wide.topology = "rail_pxn";
  wide.nodes_per_leaf = 2;
  const Cluster w(wide);
  CHECK(kinds(w, 0, 7) == std::vector{LinkKind::NvlinkUp, LinkKind::NvlinkDown, LinkKind::NicUp, LinkKind::LeafUp,
                                      LinkKind::SpineDown, LinkKind::NicDown});
}

TEST_CASE("kernel links: one per GPU at the kernels' rate, outside every route") {
  ClusterSpec s = small(2, 2);
  s.kernel_rate = Bandwidth::gb_per_s(153);
  const Cluster c(s);
  const Cluster plain(small(2, 2));
  CHECK(c.links().size() == plain.links().size() + 4);
  CHECK(c.link(c.kernel_link(3)).name == "gpu3.kernel");
  CHECK(c.link(c.kernel_link(3)).kind == LinkKind::Kernel);
  CHECK(c.link(c.kernel_link(3)).bandwidth.to_gb_per_s() == doctest::Approx(153));
  CHECK(plain.kernel_link(3) == -1);
  CHECK(kinds(c, 0, 3) == kinds(plain, 0, 3));
}

TEST_CASE("link names: what the report's top_links calls them") {
  ClusterSpec s = small(2, 2);
  CHECK(s.has_link("gpu3.nic.up"));
  CHECK(s.has_link("gpu0.nvlink.down"));
  CHECK(s.has_link("leaf1.down"));  // two rails: a spine
  CHECK_FALSE(s.has_link("gpu4.nic.up"));
  CHECK_FALSE(s.has_link("gpu03.nic.up"));
  CHECK_FALSE(s.has_link("gpu3.nic"));
  CHECK_FALSE(s.has_link("leaf2.up"));
  CHECK_FALSE(small(2, 1).has_link("leaf0.up"));  // one rail under one leaf: no spine
}

TEST_CASE("a degraded link keeps its routes at its factor of the bandwidth") {
  ClusterSpec s = small(2, 2);
  s.link_factors = {{"gpu0.nic.up", 0.5}};
  const Cluster c(s);
  CHECK(names(c, 0, 2) == std::vector<std::string>{"gpu0.nic.up", "gpu2.nic.down"});
  CHECK(c.link(c.route(0, 2).link[0]).bandwidth.bytes_per_second() == doctest::Approx(25e9));
  CHECK(c.link(c.route(2, 0).link[1]).bandwidth.bytes_per_second() == doctest::Approx(50e9));  // nic.down untouched
}

TEST_CASE("a failed link: routes detour through live GPUs (PXN-style) or the spine, fewest hops first") {
  ClusterSpec s = small(2, 2);  // GPUs 0,1 on node 0; 2,3 on node 1; rails 0 and 1
  s.link_factors = {{"gpu0.nic.up", 0.0}};
  const Cluster c(s);
  CHECK(c.link(0).name == "gpu0.nvlink.up");
  // Across rails: over NVLink to GPU 1, out of its NIC on the destination's rail (4 hops, no spine).
  CHECK(names(c, 0, 3) == std::vector<std::string>{"gpu0.nvlink.up", "gpu1.nvlink.down", "gpu1.nic.up", "gpu3.nic.down"});
  CHECK(c.route(0, 3).latency == Time::us(3));
  // Same rail: GPU 1's NIC, then back to rail 0 at the far end. Two 6-hop detours tie (NVLink at the
  // far node, or the spine); the search reaches GPU 3 before the spine, so NVLink it is.
  CHECK(names(c, 0, 2) == std::vector<std::string>{"gpu0.nvlink.up", "gpu1.nvlink.down", "gpu1.nic.up", "gpu3.nic.down",
                                                   "gpu3.nvlink.up", "gpu2.nvlink.down"});
  // Routes that never crossed it keep their direct path; inbound traffic uses gpu0.nic.down as before.
  CHECK(names(c, 1, 2) == std::vector<std::string>{"gpu1.nic.up", "leaf1.up", "leaf0.down", "gpu2.nic.down"});
  CHECK(names(c, 2, 0) == std::vector<std::string>{"gpu2.nic.up", "gpu0.nic.down"});
  for (GpuId a = 0; a < 4; ++a)
    for (GpuId b = 0; b < 4; ++b)
      for (LinkId l : c.route(a, b)) CHECK_FALSE(c.link(l).failed);
}

TEST_CASE("a failed leaf uplink: cross-rail traffic goes PXN; failed GPUs forward nothing") {
  ClusterSpec s = small(2, 2);
  s.link_factors = {{"leaf0.up", 0.0}};
  const Cluster c(s);
  CHECK(names(c, 0, 3) == std::vector<std::string>{"gpu0.nvlink.up", "gpu1.nvlink.down", "gpu1.nic.up", "gpu3.nic.down"});
  CHECK(names(c, 1, 2) == std::vector<std::string>{"gpu1.nic.up", "leaf1.up", "leaf0.down", "gpu2.nic.down"});

  ClusterSpec w = small(2, 4);  // GPUs 0-3 on node 0, 4-7 on node 1
  w.link_factors = {{"gpu0.nic.up", 0.0}};
  w.failed_gpus = {2};
  const Cluster f(w);
  CHECK(f.failed(2));
  // To GPU 6 (rail 2): the PXN relay would be GPU 2, which is down: through GPU 1 and the spine or
  // GPU 5; never through GPU 2.
  for (GpuId dst : {4, 5, 6, 7})
    for (LinkId l : f.route(0, dst)) CHECK(f.link(l).owner != 2);
  CHECK(f.route(0, 2).hops == 0);  // nothing goes to a failed GPU

  ClusterSpec cut = small(2, 2);
  cut.link_factors = {{"gpu0.nic.up", 0.0}};
  cut.failed_gpus = {1};  // node 0's only other GPU: GPU 0 cannot leave its node
  CHECK_THROWS_WITH_AS(Cluster{cut}, doctest::Contains("GPU 0 cannot reach GPU 2"), ConfigError);
}

TEST_CASE("NVLink domains larger than a node: NVLink across the domain's nodes, NICs between domains") {
  ClusterSpec s = small(4, 2);  // 8 GPUs; nodes 0 and 1 (GPUs 0-3) one domain, nodes 2 and 3 the other
  s.nvlink_domain = 4;
  const Cluster c(s);
  CHECK(c.domain_of(3) == 0);
  CHECK(c.domain_of(4) == 1);
  // GPU 0 -> GPU 2: other node, same rail and leaf (a NIC route would be as short): NVLink.
  CHECK(names(c, 0, 2) == std::vector<std::string>{"gpu0.nvlink.up", "gpu2.nvlink.down"});
  CHECK(kinds(c, 0, 3) == std::vector{LinkKind::NvlinkUp, LinkKind::NvlinkDown});
  CHECK(c.route(0, 3).latency == Time::us(1));
  // Across domains: the own NIC, as between nodes of an HGX cluster.
  CHECK(kinds(c, 0, 4) == std::vector{LinkKind::NicUp, LinkKind::NicDown});
  CHECK(kinds(c, 0, 5) == std::vector{LinkKind::NicUp, LinkKind::LeafUp, LinkKind::SpineDown, LinkKind::NicDown});
  // One NVSwitch per domain: GPUs 0 and 3 share it, so their up links end at the same vertex as
  // the down links of either; nothing of domain 0 reaches GPU 4 over NVLink.
  for (GpuId a = 0; a < 4; ++a)
    for (GpuId b = 4; b < 8; ++b)
      for (LinkId l : c.route(a, b)) CHECK_FALSE(is_nvlink(c.link(l).kind));
  // rail_pxn relays only between domains.
  s.topology = "rail_pxn";
  const Cluster p(s);
  CHECK(kinds(p, 0, 3) == std::vector{LinkKind::NvlinkUp, LinkKind::NvlinkDown});
  CHECK(names(p, 0, 5) == std::vector<std::string>{"gpu0.nvlink.up", "gpu1.nvlink.down", "gpu1.nic.up", "gpu5.nic.down"});
}

TEST_CASE("cluster presets: gb200-nvl72 is 18 nodes of 4 GPUs in one NVLink domain; domains must tile the nodes") {
  const ClusterSpec nvl = ClusterSpec::from_json({{"preset", "gb200-nvl72"}, {"gpus", 144}}, "cluster", Bandwidth::gb_per_s(900));
  CHECK(nvl.gpus_per_node == 4);
  CHECK(nvl.nodes == 36);
  CHECK(nvl.domain_size() == 72);
  const Cluster c(nvl);
  CHECK(kinds(c, 0, 71) == std::vector{LinkKind::NvlinkUp, LinkKind::NvlinkDown});
  CHECK(kinds(c, 0, 72) == std::vector{LinkKind::NicUp, LinkKind::NicDown});  // rail 0 of the next rack
  CHECK(ClusterSpec::from_json(nlohmann::json::object(), "cluster", Bandwidth::gb_per_s(450)).domain_size() == 8);
  auto error_of = [](const nlohmann::json& j) {
    try {
      ClusterSpec::from_json(j, "cluster", Bandwidth::gb_per_s(450));
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK(error_of({{"nodes", 4}, {"nvlink_domain", 12}}) ==
        "cluster.nvlink_domain = 12: the NVLink domain (12 GPUs) must be a multiple of gpus_per_node = 8");
  CHECK(error_of({{"nodes", 3}, {"nvlink_domain", 16}}) ==
        "cluster.nvlink_domain = 16: the NVLink domain (16 GPUs) must divide the GPU count (24)");
  CHECK(error_of({{"preset", "gb200-nvl72"}, {"nodes", 4}}) ==
        "cluster.preset = \"gb200-nvl72\": the NVLink domain (72 GPUs) must divide the GPU count (16)");
}
