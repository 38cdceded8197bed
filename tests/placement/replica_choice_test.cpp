#include <doctest/doctest.h>

#include "placement/dispatch_matrix.h"
#include "placement/evaluation.h"
#include "placement/link_load_model.h"
#include "placement/replica_choice.h"
#include "placement/slot_traffic.h"

using namespace epsim;

TEST_CASE("replica shares: even splits over every replica, nearest over the own GPU, else the node, else all") {
  // Replicas on GPUs 1, 2 and 5; 2 GPUs per node: nodes {0,1} {2,3} {4,5} {6,7}.
  const std::vector<int> gpus = {1, 2, 5};
  std::vector<std::int64_t> s;
  replica_shares(ReplicaChoice::even, 10, gpus, 0, 2, s);
  CHECK(s == std::vector<std::int64_t>{4, 3, 3});  // 10 / 3 = 3, the extra one at index 0 mod 3
  replica_shares(ReplicaChoice::even, 10, gpus, 1, 2, s);
  CHECK(s == std::vector<std::int64_t>{3, 4, 3});  // source 1 starts the extra one at index 1
  replica_shares(ReplicaChoice::nearest, 10, gpus, 2, 2, s);
  CHECK(s == std::vector<std::int64_t>{0, 10, 0});  // own GPU
  replica_shares(ReplicaChoice::nearest, 10, gpus, 0, 2, s);
  CHECK(s == std::vector<std::int64_t>{10, 0, 0});  // GPU 1 shares node 0
  replica_shares(ReplicaChoice::nearest, 10, gpus, 7, 2, s);
  CHECK(s == std::vector<std::int64_t>{3, 4, 3});  // node 3 holds none: every replica, as even from source 7
  // Two replicas on the source's node (not on the source): split between them.
  replica_shares(ReplicaChoice::nearest, 7, {4, 5, 0}, 5, 2, s);
  CHECK(s == std::vector<std::int64_t>{0, 7, 0});
  replica_shares(ReplicaChoice::nearest, 7, {4, 5, 0}, 4, 3, s);  // 3 GPUs per node: 4 and 5 on node 1
  CHECK(s == std::vector<std::int64_t>{7, 0, 0});
  replica_shares(ReplicaChoice::nearest, 7, {4, 5, 0}, 3, 3, s);  // GPU 3 is on node 1 too
  CHECK(s == std::vector<std::int64_t>{3, 4, 0});                  // 7 / 2, the extra one at index 3 mod 2
  std::vector<double> f;
  replica_fractions(ReplicaChoice::nearest, {4, 5, 0}, 3, 3, f);
  CHECK(f == std::vector<double>{0.5, 0.5, 0.0});
  replica_fractions(ReplicaChoice::even, {4, 5, 0}, 3, 3, f);
  CHECK(f[2] == doctest::Approx(1.0 / 3));
  CHECK(replica_choice_from_name("nearest") == ReplicaChoice::nearest);
  CHECK(std::string(replica_choice_name(ReplicaChoice::even)) == "even");
}

// 4 GPUs on 2 nodes (2 per node), one EP group, 2 slots per GPU: expert 0 on GPUs 0 and 3 (a
// replica per node), expert 1 on GPU 1, expert 2 on GPU 2; 10 tokens per source, top-1:
// 6 choose expert 0, 4 expert 1 (expert 2 idle).
static RoutingSample two_experts_replicated() {
  RoutingSample r;
  r.sources = 4;
  r.experts = 3;
  r.tokens.assign(4, 10);
  r.counts = {6, 4, 0, 6, 4, 0, 6, 4, 0, 6, 4, 0};
  return r;
}
static const LayerPlacement kReplicated(3, 4, {0, -1, 1, -1, 2, -1, 0, -1});

static ClusterSpec two_by_two() {  // 2 nodes x 2 GPUs
  ClusterSpec spec;
  spec.nodes = 2;
  spec.gpus_per_node = 2;
  return spec;
}

// The expected form of two_experts_replicated().
static ExpectedRouting expected_two_experts() {
  ExpectedRouting r;
  r.sources = 4;
  r.experts = 3;
  r.tokens.assign(4, 10.0);
  r.counts = {6, 4, 0, 6, 4, 0, 6, 4, 0, 6, 4, 0};
  return r;
}

TEST_CASE("dispatch matrix and slot rows under nearest: expert 0's tokens stay on their node") {
  const RoutingSample r = two_experts_replicated();
  const DispatchMatrix even = build_dispatch(r, kReplicated, 2, ReplicaChoice::even);
  // even: source 1's 6 tokens of expert 0 -> 3 to GPU 0, 3 to GPU 3.
  CHECK(even.copies_at(1, 0) == 3);
  CHECK(even.copies_at(1, 3) == 3);
  const DispatchMatrix near = build_dispatch(r, kReplicated, 2, ReplicaChoice::nearest);
  // nearest: sources 0, 1 (node 0) send expert 0 to GPU 0, sources 2, 3 (node 1) to GPU 3.
  CHECK(near.copies_at(0, 0) == 6);
  CHECK(near.copies_at(1, 0) == 6);
  CHECK(near.copies_at(1, 3) == 0);
  CHECK(near.copies_at(2, 3) == 6);
  CHECK(near.copies_at(2, 0) == 0);
  CHECK(near.copies_at(3, 3) == 6);
  CHECK(near.received(0) == 12);
  CHECK(near.received(3) == 12);
  CHECK(near.received(1) == 16);  // expert 1 has one replica: every source's 4
  // Tokens leaving node 0 for node 1: expert 1 lives on node 0, so only sources 2 and 3 cross, 4 each.
  CHECK(near.unique_at(2, 1) == 4);
  CHECK(near.unique_at(0, 3) == 0);
  const SlotTraffic slots = slot_traffic(r, kReplicated, 2, ReplicaChoice::nearest);
  CHECK(slots.at(1, 0, 0) == 6);
  CHECK(slots.at(2, 3, 0) == 6);
  CHECK(slots.at(1, 3, 0) == 0);
  CHECK(slots.slot_rows(3, 0) == 12);
  // The whole-model placement carries its choice.
  const Placement p = Placement("x", {}, {kReplicated}).with_replica_choice(ReplicaChoice::nearest);
  CHECK(build_dispatch(r, p, 2).copies == near.copies);
}

TEST_CASE("expected link loads under nearest: the replica on each node takes that node's sources") {
  const Cluster c(two_by_two());
  const ExpectedRouting r = expected_two_experts();
  const Bytes token(1000);
  const LinkLoadModel even(r, c, kReplicated, token);
  const LinkLoadModel near(r, c, kReplicated, token, Time::zero(), ReplicaChoice::nearest);
  // GPU loads: (token, expert) pairs. even: GPU 0 and GPU 3 take 3 of each source's 6.
  CHECK(even.gpu_load()[0] == doctest::Approx(12.0));
  CHECK(near.gpu_load()[0] == doctest::Approx(12.0));  // 6 from each of sources 0, 1
  CHECK(near.gpu_load()[1] == doctest::Approx(16.0));
  // Distinct tokens source 2 sends to GPU 0: even 3 (half of its expert-0 tokens), nearest none.
  CHECK(even.unique(2, 0) == doctest::Approx(3.0));
  CHECK(near.unique(2, 0) == doctest::Approx(0.0));
  CHECK(near.unique(2, 1) == doctest::Approx(4.0));
  // Fewer tokens cross the nodes: even 2 sources x (3 + 4) + 2 x 3 = 20, nearest 2 x 4 = 8.
  const PlacementEvaluation ee = evaluate(kReplicated, r, c, token, Bytes(1), 1);
  const PlacementEvaluation en = evaluate(kReplicated, r, c, token, Bytes(1), 1, ReplicaChoice::nearest);
  CHECK(ee.internode_tokens == doctest::Approx(20.0));
  CHECK(en.internode_tokens == doctest::Approx(8.0));
}

TEST_CASE("LinkLoadModel under nearest: a swap updates the GPUs of the moved expert's other replicas") {
  const Cluster c(two_by_two());
  const ExpectedRouting r = expected_two_experts();
  LinkLoadModel m(r, c, kReplicated, Bytes(1000), Time::zero(), ReplicaChoice::nearest);
  // Move expert 0's node-1 replica (slot 6, GPU 3) to GPU 1 (slot 3, empty): both replicas on node 0.
  m.swap_slots(6, 3);
  const LinkLoadModel fresh(r, c, m.placement(), Bytes(1000), Time::zero(), ReplicaChoice::nearest);
  for (int g = 0; g < 4; ++g) CHECK(m.gpu_load()[static_cast<std::size_t>(g)] == doctest::Approx(fresh.gpu_load()[static_cast<std::size_t>(g)]));
  for (std::size_t l = 0; l < c.links().size(); ++l) CHECK(m.link_tokens()[l] == doctest::Approx(fresh.link_tokens()[l]));
  // Now GPU 0 and GPU 1 split every source's expert-0 tokens... for sources 0, 1 their own GPU.
  CHECK(m.gpu_load()[0] == doctest::Approx(6.0 + 3 + 3));  // source 0 all 6; sources 2, 3 (node 1, no replica) half each
}
