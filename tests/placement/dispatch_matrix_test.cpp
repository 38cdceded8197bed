#include <doctest/doctest.h>

#include <cmath>
#include <numeric>
#include <set>

#include "models/gate_model.h"
#include "placement/dispatch_matrix.h"
#include "placement/layouts.h"

using namespace epsim;

namespace {
MoeModelSpec deepseek_like(int groups, int topk_groups) {
  MoeModelSpec m;
  m.layers = 2;
  m.dense_layers = 1;
  m.routed_experts = 256;
  m.top_k = 8;
  m.groups = groups;
  m.topk_groups = topk_groups;
  return m;
}

RoutingSpec routing(const std::string& distribution, int max_nodes = 0) {
  RoutingSpec r;
  r.distribution = distribution;
  r.seed = 3;
  r.max_nodes = max_nodes;
  return r;
}

// Distinct nodes per token: from the dispatch matrix (sum over sources and nodes of node_unique
// over all tokens), and a Monte Carlo of the gate's joint law mapped through the placement.
struct NodeReach {
  double matrix = 0;
  double monte_carlo = 0;
  std::size_t most = 0;         // most nodes one sampled token reached
  std::int64_t most_source = 0;  // most node_unique summed over one source's nodes, per token x 1000
};

NodeReach node_reach(const GateModel& gate, const LayerPlacement& p, int gpus, int gpn, std::int64_t tokens) {
  const RoutingSample r = gate.sample(1, 0, gpus, tokens);
  const DispatchMatrix m = build_dispatch(r, p, gpn);
  NodeReach out;
  std::int64_t all = 0, sum = 0;
  for (int s = 0; s < gpus; ++s) {
    std::int64_t mine = 0;
    for (int n = 0; n < m.nodes(); ++n) mine += m.node_unique[static_cast<std::size_t>(s * m.nodes() + n)];
    sum += mine;
    all += tokens;
    out.most_source = std::max(out.most_source, mine * 1000 / tokens);
  }
  out.matrix = static_cast<double>(sum) / static_cast<double>(all);
  RandomStream rng(17);
  const int N = 20000;  // the mean's standard error: ~1 / sqrt(N) nodes, 0.2% of it
  double total = 0;
  for (int i = 0; i < N; ++i) {
    std::set<int> nodes;
    for (int e : r.law->draw(rng)) nodes.insert(p.primary_gpu(e) / gpn);
    total += static_cast<double>(nodes.size());
    out.most = std::max(out.most, nodes.size());
  }
  out.monte_carlo = total / N;
  return out;
}
}  // namespace

TEST_CASE("group-limited dispatch: 8 groups / 4 on 8 nodes reach at most 4 nodes, as the gate's Monte Carlo") {
  // EP 64 on 8 nodes x 8 GPUs, contiguous: 4 experts per GPU, group g = node g.
  for (const char* dist : {"uniform", "zipf"}) {
    CAPTURE(dist);
    const GateModel gate(routing(dist), deepseek_like(8, 4));
    const NodeReach r = node_reach(gate, contiguous_layout(256, 64), 64, 8, 4096);
    CHECK(r.most <= 4);
    CHECK(r.most_source <= 4000);
    CHECK(r.matrix == doctest::Approx(r.monte_carlo).epsilon(0.01));
    // Without the limit the same tokens reach 5.1 nodes (uniform: 8 (1 - C(224, 8) / C(256, 8)) = 5.25).
    const GateModel free(routing(dist), deepseek_like(1, 1));
    const NodeReach f = node_reach(free, contiguous_layout(256, 64), 64, 8, 4096);
    CHECK(f.matrix > r.matrix + 1.0);
    CHECK(f.matrix == doctest::Approx(f.monte_carlo).epsilon(0.01));
  }
  // Uniform: the closed form of the law (tests/models/selection_law_test.cpp), 3.903221 nodes, up to
  // rounding each node's distinct tokens to a whole token (8 nodes x 0.5 of 4096 tokens).
  const GateModel gate(routing("uniform"), deepseek_like(8, 4));
  CHECK(std::abs(node_reach(gate, contiguous_layout(256, 64), 64, 8, 4096).matrix - 3.903221) <= 8 * 0.5 / 4096);
}

TEST_CASE("group-limited dispatch on 32 nodes (a group spans 4) and a scattered placement") {
  const GateModel gate(routing("zipf"), deepseek_like(8, 4));
  const NodeReach contiguous = node_reach(gate, contiguous_layout(256, 256), 256, 8, 1024);
  CHECK(contiguous.matrix == doctest::Approx(contiguous.monte_carlo).epsilon(0.01));
  // Round robin deals the experts of every group over all nodes: the limit no longer confines nodes.
  const NodeReach scattered = node_reach(gate, round_robin_layout(256, 256, 8), 256, 8, 1024);
  CHECK(scattered.matrix == doctest::Approx(scattered.monte_carlo).epsilon(0.01));
  CHECK(scattered.matrix > contiguous.matrix);
}

TEST_CASE("node-limited routing (routing.max_nodes) without groups: at most 2 of 8 nodes") {
  const GateModel gate(routing("uniform", 2), deepseek_like(1, 1));
  const RoutingSample r = gate.sample(1, 0, 64, 4096);
  const LayerPlacement p = contiguous_layout(256, 64);
  const DispatchMatrix m = build_dispatch(r, p, 8);
  // The node law: uniform over 8-subsets of 64 experts on at most 2 nodes of 32. By hand: allowed
  // sets C(8, 1) C(32, 8) + C(8, 2) (C(64, 8) - 2 C(32, 8)); those missing node 0 use only the other
  // 7 nodes: C(7, 1) C(32, 8) + C(7, 2) (C(64, 8) - 2 C(32, 8)).
  const double one = 10518300.0, two = 4426165368.0 - 2 * one;  // C(32, 8), C(64, 8) - 2 C(32, 8)
  const double reach = 1.0 - (7 * one + 21 * two) / (8 * one + 28 * two);
  for (int s : {0, 9, 63}) {
    std::int64_t sum = 0;
    for (int n = 0; n < 8; ++n) {
      sum += m.node_unique[static_cast<std::size_t>(s * 8 + n)];
      CHECK(m.node_unique[static_cast<std::size_t>(s * 8 + n)] == std::llround(4096 * reach));
    }
    CHECK(sum <= 2 * 4096);
  }
}

TEST_CASE("distinct tokens: one expert per GPU sends every copy; replicas pool on one GPU") {
  // Uniform top-8 of 256 at EP 256: GPU d gets 4096 x 8 / 256 = 128 copies, all distinct tokens.
  const GateModel gate(routing("uniform"), deepseek_like(8, 4));
  const DispatchMatrix m = build_dispatch(gate.sample(1, 0, 256, 4096), contiguous_layout(256, 256), 8);
  CHECK(m.copies == m.unique);
  CHECK(m.unique_at(5, 200) == 128);
}
