// Communication schemes on a dispatch small enough to write down: 2 nodes x 2 GPUs, only GPU 0
// sends. GPU 0 sends 4 distinct tokens to GPU 1 (its node), 5 to GPU 2 and 3 to GPU 3 (node 1);
// 6 distinct tokens go to node 1 (2 of them to both GPUs 2 and 3); 7 (token, expert) copies go to
// GPU 2 (two tokens pick two experts there).
#include "sim/comm_scheme.h"

#include <doctest/doctest.h>

#include "tests/sim/small_dispatch.h"

#include <map>
#include <utility>

using namespace epsim;

namespace {

constexpr std::int64_t kTokenBytes = 100;

DispatchMatrix example() { return test::small_dispatch(); }

Cluster cluster() {
  ClusterSpec spec;
  spec.nodes = 2;
  spec.gpus_per_node = 2;
  return Cluster(spec);
}

// (src, dst) -> tokens, checking that every flow runs on the cluster's route between its ends.
std::map<std::pair<int, int>, std::int64_t> tokens(const CommPlan& p, const Cluster& c) {
  std::map<std::pair<int, int>, std::int64_t> out;
  REQUIRE(p.flows.size() == p.src.size());
  REQUIRE(p.flows.size() == p.dst.size());
  for (std::size_t i = 0; i < p.flows.size(); ++i) {
    const Route& want = c.route(p.src[i], p.dst[i]);
    CHECK(p.flows[i].route.hops == want.hops);
    CHECK(std::equal(want.begin(), want.end(), p.flows[i].route.begin()));
    CHECK(p.flows[i].bytes.count() % kTokenBytes == 0);
    out[{p.src[i], p.dst[i]}] += p.flows[i].bytes.count() / kTokenBytes;
  }
  return out;
}

using Pairs = std::map<std::pair<int, int>, std::int64_t>;

}  // namespace

TEST_CASE("scheme names") {
  CHECK(comm_scheme_names() == std::vector<std::string>{"direct", "hierarchical", "per-token"});
  CHECK(comm_scheme_from_string("hierarchical") == CommScheme::Hierarchical);
  CHECK(comm_scheme_from_string("per-token") == CommScheme::PerToken);
  CHECK_THROWS_AS(comm_scheme_from_string("ring"), std::out_of_range);
}

TEST_CASE("direct: one flow per GPU pair with the distinct tokens; combine reverses it") {
  const Cluster c = cluster();
  const DispatchMatrix m = example();
  CHECK(tokens(dispatch_plan(CommScheme::Direct, c, m, Bytes(kTokenBytes)), c) == Pairs{{{0, 1}, 4}, {{0, 2}, 5}, {{0, 3}, 3}});
  CHECK(tokens(combine_plan(CommScheme::Direct, c, m, Bytes(kTokenBytes)), c) == Pairs{{{1, 0}, 4}, {{2, 0}, 5}, {{3, 0}, 3}});
}

TEST_CASE("hierarchical: InfiniBand once per remote node to the same-rail GPU, then NVLink") {
  // GPU 0 is on rail 0: its relay on node 1 is GPU 2. Over IB: the 6 distinct tokens for node 1
  // (direct sends 5 + 3 = 8). GPU 2 forwards 3 tokens to GPU 3 over NVLink; GPU 1 gets its 4
  // directly over NVLink.
  const Cluster c = cluster();
  const DispatchMatrix m = example();
  CHECK(tokens(dispatch_plan(CommScheme::Hierarchical, c, m, Bytes(kTokenBytes)), c) ==
        Pairs{{{0, 1}, 4}, {{0, 2}, 6}, {{2, 3}, 3}});
  CHECK(tokens(combine_plan(CommScheme::Hierarchical, c, m, Bytes(kTokenBytes)), c) ==
        Pairs{{{1, 0}, 4}, {{2, 0}, 6}, {{3, 2}, 3}});
  // The IB hop stays on rail 0: GPU 0's NIC up, GPU 2's NIC down, no spine.
  CHECK(c.route(0, 2).hops == 2);
}

TEST_CASE("per-token: every (token, expert) copy travels, no deduplication") {
  const Cluster c = cluster();
  const DispatchMatrix m = example();
  CHECK(tokens(dispatch_plan(CommScheme::PerToken, c, m, Bytes(kTokenBytes)), c) == Pairs{{{0, 1}, 4}, {{0, 2}, 7}, {{0, 3}, 3}});
  CHECK(tokens(combine_plan(CommScheme::PerToken, c, m, Bytes(kTokenBytes)), c) == Pairs{{{1, 0}, 4}, {{2, 0}, 7}, {{3, 0}, 3}});
}
