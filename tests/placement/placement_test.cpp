#include <doctest/doctest.h>

#include <algorithm>

#include "models/errors.h"
#include "placement/dispatch_matrix.h"
#include "placement/evaluation.h"
#include "placement/layouts.h"
#include "placement/link_load_model.h"

using namespace epsim;

static ClusterSpec nodes_of(int nodes, int gpn) {
  ClusterSpec s;
  s.nodes = nodes;
  s.gpus_per_node = gpn;
  return s;
}

static LinkId link_named(const Cluster& c, const std::string& name) {
  for (std::size_t i = 0; i < c.links().size(); ++i)
    if (c.links()[i].name == name) return static_cast<LinkId>(i);
  FAIL("no link " << name);
  return -1;
}

// Every source has 100 tokens, top-1: 60 choose expert 0, 40 expert 1 (experts 2, 3 idle).
static ExpectedRouting two_hot(int sources, int experts) {
  ExpectedRouting r;
  r.sources = sources;
  r.experts = experts;
  r.tokens.assign(static_cast<std::size_t>(sources), 100.0);
  r.counts.assign(static_cast<std::size_t>(sources * experts), 0.0);
  for (int s = 0; s < sources; ++s) {
    r.counts[static_cast<std::size_t>(s * experts)] = 60;
    r.counts[static_cast<std::size_t>(s * experts + 1)] = 40;
  }
  return r;
}

TEST_CASE("layouts: contiguous, round robin across nodes, seeded random, colocated") {
  CHECK(contiguous_layout(8, 4).phy2log() == std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7});
  // 8 experts on 4 nodes x 2 GPUs: e -> node e mod 4, then GPU (e / 4) mod 2 of that node.
  const LayerPlacement rr = round_robin_layout(8, 8, 2);
  CHECK(rr.phy2log() == std::vector<int>{0, 4, 1, 5, 2, 6, 3, 7});
  CHECK(rr.primary_gpu(1) == 2);
  // 16 experts, 2 per GPU: the second round fills each GPU's second slot.
  CHECK(round_robin_layout(16, 8, 2).phy2log() == std::vector<int>{0, 8, 4, 12, 1, 9, 5, 13, 2, 10, 6, 14, 3, 11, 7, 15});
  const LayerPlacement r1 = random_layout(16, 8, 7), r2 = random_layout(16, 8, 7), r3 = random_layout(16, 8, 8);
  CHECK(r1 == r2);
  CHECK(!(r1 == r3));
  std::vector<int> sorted = r1.phy2log();
  std::sort(sorted.begin(), sorted.end());
  CHECK(sorted == contiguous_layout(16, 8).phy2log());
  // Colocated, k = 2: sources 0-1 use experts {0, 3}, sources 2-3 use {1, 2}; 0 and 3 share a GPU.
  ExpectedRouting r;
  r.sources = 4;
  r.experts = 4;
  r.tokens.assign(4, 10.0);
  r.counts = {5, 0, 0, 4, 5, 0, 0, 4, 0, 3, 2, 0, 0, 3, 2, 0};
  CHECK(colocated_layout(r, 2, 0).phy2log() == std::vector<int>{0, 3, 1, 2});
  // k = 3 on 2 GPUs (6 slots): {0, 3} then 1 (no co-selection left: lowest id) on GPU 0; 2 and two empty slots on GPU 1.
  CHECK(colocated_layout(r, 2, 3).phy2log() == std::vector<int>{0, 3, 1, 2, -1, -1});
  CHECK_THROWS_AS(colocated_layout(r, 2, 1), ConfigError);
  CHECK_THROWS_AS(LayerPlacement(4, 2, {0, 1, 2, 2}), SimulationError);  // expert 3 has no slot
}

TEST_CASE("dispatch matrix: replicas split an expert's tokens; replicas on one GPU send a token once") {
  // 4 GPUs (one EP group), 2 experts in 4 slots: expert 0 on GPUs 0 and 1, expert 1 on GPUs 2 and 3.
  const LayerPlacement p(2, 4, {0, 0, 1, 1});
  RoutingSample r;
  r.sources = 4;
  r.experts = 2;
  r.tokens.assign(4, 10);
  r.counts = {7, 3, 7, 3, 7, 3, 7, 3};
  const DispatchMatrix m = build_dispatch(r, p, 2);
  // Source 0: 7 tokens of expert 0 -> 4 to replica index (0 - 0) = 0 (GPU 0), 3 to GPU 1;
  // 3 of expert 1 -> 2 to GPU 2, 1 to GPU 3. Source 1 starts the extra token at replica index 1.
  CHECK(m.copies_at(0, 0) == 4);
  CHECK(m.copies_at(0, 1) == 3);
  CHECK(m.copies_at(0, 2) == 2);
  CHECK(m.copies_at(0, 3) == 1);
  CHECK(m.copies_at(1, 0) == 3);
  CHECK(m.copies_at(1, 1) == 4);
  CHECK(m.received(0) == 4 + 3 + 4 + 3);
  // Both replicas on one GPU: all 7 tokens go there, counted once.
  const DispatchMatrix same = build_dispatch(r, LayerPlacement(2, 2, {0, 0, 1, -1}), 2);
  CHECK(same.copies_at(1, 0) == 7);
  CHECK(same.unique_at(1, 0) == 7);
  CHECK(same.copies_at(1, 1) == 3);
  // A per-layer placement needs the layer.
  const Placement per_layer("x", {1, 2}, {LayerPlacement(2, 4, {0, 0, 1, 1}), LayerPlacement(2, 4, {1, 1, 0, 0})});
  CHECK_THROWS_AS(build_dispatch(r, per_layer, 2), SimulationError);
  CHECK(per_layer.layer(2).phy2log() == std::vector<int>{1, 1, 0, 0});
  CHECK(per_layer.layer(0).phy2log() == std::vector<int>{0, 0, 1, 1});
}

TEST_CASE("link loads: expected tokens per link on the direct routes, by hand") {
  const Cluster c(nodes_of(2, 2));  // GPUs 0, 1 on node 0; 2, 3 on node 1; rails 0 and 1
  const ExpectedRouting r = two_hot(4, 4);
  const Bytes token(14336);
  LinkLoadModel m(r, c, contiguous_layout(4, 4), token);  // expert 0 on GPU 0, expert 1 on GPU 1
  auto at = [&](const char* name) { return m.link_tokens()[static_cast<std::size_t>(link_named(c, name))]; };
  CHECK(at("gpu0.nic.down") == doctest::Approx(120));  // 60 from GPU 2 (same rail) + 60 from GPU 3 (via spine)
  CHECK(at("gpu1.nic.down") == doctest::Approx(80));
  CHECK(at("gpu2.nic.up") == doctest::Approx(100));
  CHECK(at("gpu0.nvlink.down") == doctest::Approx(60));
  CHECK(at("gpu0.nvlink.up") == doctest::Approx(40));
  CHECK(at("leaf1.up") == doctest::Approx(60));  // GPU 3 (rail 1) -> GPU 0 (rail 0)
  CHECK(m.most_tokens_link() == link_named(c, "gpu0.nic.down"));
  CHECK(m.busiest_link() == link_named(c, "gpu0.nic.down"));
  // 120 tokens x 14,336 B at 400 Gb/s = 34.4 us.
  CHECK(m.objective().max_load == doctest::Approx(120 * 14336 / 50e9));
  CHECK(m.gpu_load()[0] == doctest::Approx(240));
  // Incremental swaps agree with a fresh evaluation.
  m.swap_slots(1, 2);
  m.swap_slots(0, 3);
  const LinkLoadModel fresh(r, c, m.placement(), token);
  for (std::size_t l = 0; l < c.links().size(); ++l) CHECK(m.link_tokens()[l] == doctest::Approx(fresh.link_tokens()[l]));
  const PlacementEvaluation ev = evaluate(contiguous_layout(4, 4), r, c, token, Bytes(1000), 3);
  CHECK(ev.max_link_tokens == doctest::Approx(120));
  CHECK(ev.max_link_bytes == Bytes(120 * 14336));
  CHECK(ev.gpu_load_max == doctest::Approx(240));
  CHECK(ev.gpu_load_mean == doctest::Approx(100));
  CHECK(ev.imbalance() == doctest::Approx(2.4));
  CHECK(ev.expert_memory_per_gpu == Bytes(3000));
  // Off-node: sources 0, 1 send 0 + 0 (experts 0, 1 are on their node); sources 2, 3 send 100 each.
  CHECK(ev.internode_tokens == doctest::Approx(200));
}

