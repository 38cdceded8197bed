#include <doctest/doctest.h>

#include "models/apportion.h"
#include "sim/analytical_network.h"
#include "sim/comm_scheme.h"
#include "sim/pair_traffic.h"

using namespace epsim;

namespace {
// One leaf per rail: GPU g owns links 4g (NVLink up), 4g + 1 (down), 4g + 2 (NIC up), 4g + 3 (NIC
// down); leaf r's spine uplink is 4G + 2r, its downlink 4G + 2r + 1.
Cluster two_nodes_of(int gpus_per_node) {
  ClusterSpec spec;
  spec.nodes = 2;
  spec.gpus_per_node = gpus_per_node;
  return Cluster(spec);
}

std::vector<std::int64_t> counts(int gpus, std::initializer_list<std::tuple<int, int, std::int64_t>> at) {
  std::vector<std::int64_t> c(static_cast<std::size_t>(gpus * gpus), 0);
  for (const auto& [s, d, n] : at) c[static_cast<std::size_t>(s * gpus + d)] = n;
  return c;
}

using Tally = ChunkedPairs::Tally;
bool operator==(const Tally& a, const Tally& b) { return a.tokens == b.tokens && a.flows == b.flows; }
}  // namespace

// Tokens 0 -> 1: 4, 0 -> 2: 5, 0 -> 3: 3, 3 -> 0: 1, cut in 2 chunks (equal_share: 2+2, 3+2, 2+1, 1+0).
// Routes: 0 -> 1 NVLink (links 0, 5); 0 -> 2 same rail (2, 11); 0 -> 3 across rails (2, 16, 19, 15);
// 3 -> 0 across rails (14, 18, 17, 3). Chunk 1 has no 3 -> 0 flow.
TEST_CASE("pair chunks: per-link sums are the sums over the flows' routes") {
  const Cluster cluster = two_nodes_of(2);
  const Route across = cluster.route(0, 3), back_across = cluster.route(3, 0);
  REQUIRE(std::vector<LinkId>(across.begin(), across.end()) == std::vector<LinkId>{2, 16, 19, 15});
  REQUIRE(std::vector<LinkId>(back_across.begin(), back_across.end()) == std::vector<LinkId>{14, 18, 17, 3});
  const auto c = counts(4, {{0, 1, 4}, {0, 2, 5}, {0, 3, 3}, {3, 0, 1}});
  const std::size_t links = cluster.links().size();
  const ChunkedPairs out(std::make_shared<const PairRoutes>(cluster, 0, 4, false), c, 2, links, 4);
  CHECK(out.link(2, 0) == Tally{3 + 2, 2});  // GPU 0's NIC: to 2 and to 3
  CHECK(out.link(2, 1) == Tally{2 + 1, 2});
  CHECK(out.link(0, 0) == Tally{2, 1});      // its NVLink
  CHECK(out.link(0, 1) == Tally{2, 1});
  CHECK(out.link(16, 0) == Tally{2, 1});     // leaf 0 to the spine: 0 -> 3
  CHECK(out.link(16, 1) == Tally{1, 1});
  CHECK(out.link(14, 0) == Tally{1, 1});     // GPU 3's NIC: its one token goes in chunk 0
  CHECK(out.link(14, 1) == Tally{0, 0});
  CHECK(out.link(18, 1) == Tally{0, 0});
  CHECK(out.sent(0, 0) == Tally{7, 3});
  CHECK(out.sent(0, 1) == Tally{5, 3});
  CHECK(out.received(0, 0) == Tally{1, 1});
  CHECK(out.received(3, 1) == Tally{1, 1});
  CHECK(out.total(0) == Tally{8, 4});
  CHECK(out.total(1) == Tally{5, 3});
  // The combine: the same pairs, each flow d -> s.
  const ChunkedPairs back(std::make_shared<const PairRoutes>(cluster, 0, 4, true), c, 2, links, 4);
  CHECK(back.link(3, 0) == Tally{3 + 2, 2});  // into GPU 0's NIC: from 2 and from 3
  CHECK(back.link(2, 0) == Tally{1, 1});      // out of it: the reply to 3's token
  CHECK(back.link(2, 1) == Tally{0, 0});
  CHECK(back.sent(3, 0) == Tally{2, 1});
  std::vector<std::tuple<GpuId, GpuId, std::int64_t, std::size_t>> listed;
  back.for_each_flow(1, [&](GpuId from, GpuId to, std::int64_t order, const LinkId* l, const LinkId* end, Time) {
    listed.emplace_back(from, to, order, static_cast<std::size_t>(end - l));
  });
  CHECK(listed == std::vector<std::tuple<GpuId, GpuId, std::int64_t, std::size_t>>{{1, 0, 2, 2}, {2, 0, 4, 2}, {3, 0, 6, 4}});
}

// The analytical network prices a chunk given as a cut of its matrix exactly as the same chunk's
// listed plan (comm_scheme.h's pairwise order): the endpoints' completion times and order, the end,
// every link's counters, and a keyed replay of it. 2 nodes x 4 GPUs, uneven counts with zeros and
// pairs smaller than the chunk count.
TEST_CASE("pair chunks: the analytical network prices one as its listed plan") {
  const Cluster cluster = two_nodes_of(4);
  const int G = 8, chunks = 3;
  std::vector<std::int64_t> c(static_cast<std::size_t>(G * G));
  for (std::size_t i = 0; i < c.size(); ++i) c[i] = static_cast<std::int64_t>((i * 37 + 11) % 23) - 3;  // some <= 0
  for (auto& v : c) v = std::max<std::int64_t>(v, 0);
  const Bytes token(7000);
  using Done = std::vector<std::pair<GpuId, Time>>;
  struct Run {
    Done endpoints;
    Time end;
    std::vector<std::int64_t> link_bytes, link_busy, link_peak;
  };
  const auto run = [&](const std::function<void(Transfer&)>& give, bool keyed) {
    Simulator sim;
    AnalyticalNetwork net(sim, cluster);
    Run r;
    for (int rep = 0; rep < (keyed ? 2 : 1); ++rep) {
      Transfer t;
      t.endpoints = G;
      t.key = keyed ? 42 : 0;
      give(t);
      t.on_endpoint_done = [&](GpuId e) { r.endpoints.emplace_back(e, sim.now()); };
      t.on_done = [&] { r.end = sim.now(); };
      net.start(std::move(t));
      sim.run();
    }
    for (const LinkCounters& k : net.counters()) {
      r.link_bytes.push_back(k.bytes.count());
      r.link_busy.push_back(k.busy.picoseconds());
      r.link_peak.push_back(k.peak_flows);
    }
    CHECK(net.replay_stats().replayed == (keyed ? 1 : 0));
    return r;
  };
  for (const bool reverse : {false, true}) {
    const auto pairs = std::make_shared<const ChunkedPairs>(std::make_shared<const PairRoutes>(cluster, 0, G, reverse), c, chunks,
                                                            cluster.links().size(), G);
    for (int k = 0; k < chunks; ++k)
      for (const bool keyed : {false, true}) {
        CAPTURE(reverse);
        CAPTURE(k);
        const Run cut = run([&](Transfer& t) { t.fill_pairs = [&] { return std::make_shared<const PairChunk>(PairChunk{pairs, k, token}); }; },
                            keyed);
        const Run listed = run([&](Transfer& t) {
          CommPlan plan;
          for (int s = 0; s < G; ++s)
            for (int d = 0; d < G; ++d) {
              const Bytes b = token * equal_share(c[static_cast<std::size_t>(s * G + d)], k, chunks);
              if (reverse) plan.add(cluster, d, s, b);
              else plan.add(cluster, s, d, b);
            }
          t.flows = std::move(plan.flows);
          t.src = std::move(plan.src);
          t.dst = std::move(plan.dst);
        }, keyed);
        CHECK(cut.endpoints.size() == static_cast<std::size_t>(keyed ? 2 * G : G));
        CHECK(cut.endpoints == listed.endpoints);
        CHECK(cut.end == listed.end);
        CHECK(cut.link_bytes == listed.link_bytes);
        CHECK(cut.link_busy == listed.link_busy);
        CHECK(cut.link_peak == listed.link_peak);
      }
  }
}
