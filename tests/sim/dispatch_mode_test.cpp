// The two DeepEP modes and the transfer engines on a dispatch small enough to write down (the
// comm_scheme_test example): 2 nodes x 2 GPUs, only GPU 0 sends: 4 distinct tokens to GPU 1 (its
// node), 5 to GPU 2 and 3 to GPU 3; 6 distinct tokens to node 1; 7 (token, expert) copies to GPU 2.
#include "sim/dispatch_mode.h"

#include <doctest/doctest.h>

#include "tests/sim/small_dispatch.h"

#include "models/errors.h"
#include "sim/analytical_network.h"
#include "sim/flow_network.h"
#include "sim/moe_exchange.h"
#include "sim/simulator.h"

using namespace epsim;

namespace {

DispatchMatrix example() { return test::small_dispatch(); }

// 50 GB/s NICs (400 Gb/s), 450 GB/s NVLink, latencies 1 us (NIC), 0.5 us (NVLink, spine);
// kernel links of 10 GB/s when asked.
Cluster cluster(double kernel_gbps = 0) {
  ClusterSpec spec;
  spec.nodes = 2;
  spec.gpus_per_node = 2;
  spec.kernel_rate = Bandwidth::gb_per_s(kernel_gbps);
  return Cluster(spec);
}

// Tokens of 1000 B; RDMA at 0.8 with 10 us a round, NVLink by SMs at 0.9 with 2 us.
CommSetup normal_setup() {
  CommSetup s;
  s.scheme = CommScheme::Hierarchical;
  s.nvlink = TransferEngine{0.9, 0.0, Time::us(2)};
  s.network = TransferEngine{0.8, 0.0, Time::us(10)};
  s.kernel_links = true;
  s.dispatch_token = s.combine_token = Bytes(1000);
  return s;
}

const FlowSpec* flow(const CommPlan& p, int src, int dst) {
  for (std::size_t f = 0; f < p.flows.size(); ++f)
    if (p.src[f] == src && p.dst[f] == dst) return &p.flows[f];
  return nullptr;
}

Scenario scenario(const nlohmann::json& network, const nlohmann::json& extra = nlohmann::json::object()) {
  nlohmann::json doc = {{"model", {{"layers", 2}, {"dense_layers", 1}, {"routed_experts", 16}, {"top_k", 4}, {"attention", "none"}, {"vocab", 0}, {"shared_experts", 0}}},
                        {"cluster", {{"nodes", 2}, {"gpus_per_node", 8}}},
                        {"workload", {{"tokens_per_gpu", 1024}}},
                        {"network", network}};
  doc.update(extra);
  return Scenario::from_json(doc);
}

}  // namespace

TEST_CASE("transfer engine: wire bytes by protocol efficiency, or by the message rate for small messages") {
  const TransferEngine e{0.8, 1e6, Time::zero()};
  // 1000-byte messages at 1 M/s move 1 GB/s of a 50 GB/s link: each byte costs 50 of the wire.
  CHECK(e.wire_bytes(Bytes(8000), Bytes(1000), Bandwidth::gb_per_s(50)).count() == 400000);
  // 1 MB messages: the efficiency binds, 8000 / 0.8.
  CHECK(e.wire_bytes(Bytes(8000), Bytes(1000000), Bandwidth::gb_per_s(50)).count() == 10000);
  CHECK(TransferEngine{}.wire_bytes(Bytes(123), Bytes(7), Bandwidth::gb_per_s(1)).count() == 123);
}

TEST_CASE("normal: InfiniBand once per node, NVLink onwards, at the engines' rates through the kernel links") {
  const Cluster c = cluster(10);
  const CommPlan p = comm_plan(normal_setup(), c, example(), true);
  // GPU 0 -> GPU 2 (its rail on node 1): the 6 distinct tokens, 6000 B / 0.8 on the wire, after the
  // RDMA round (10 us) and the route (two NIC links, 2 us); the kernel link first.
  const FlowSpec* ib = flow(p, 0, 2);
  REQUIRE(ib != nullptr);
  CHECK(ib->bytes.count() == 7500);
  CHECK(ib->route.latency == Time::us(12));
  CHECK(ib->route.hops == 3);
  CHECK(ib->route.link[0] == c.kernel_link(0));
  // GPU 2 forwards GPU 3's 3 tokens: 3000 / 0.9 = 3333.3 -> 3334 B, 2 us round + 1 us of NVLink.
  const FlowSpec* fwd = flow(p, 2, 3);
  REQUIRE(fwd != nullptr);
  CHECK(fwd->bytes.count() == 3334);
  CHECK(fwd->route.latency == Time::us(3));
  CHECK(fwd->route.link[0] == c.kernel_link(2));
  CHECK(flow(p, 0, 1)->bytes.count() == 4445);  // own node: 4000 / 0.9
  CHECK(flow(p, 0, 3) == nullptr);               // nothing crosses InfiniBand twice
  // The analytical network: GPU 0's kernel link carries 7500 + 4445 B at 10 GB/s (1.1945 us), the
  // slowest link of both its flows; GPU 0 -> 2 then adds its 12 us.
  Simulator sim;
  AnalyticalNetwork net(sim, c);
  Time done_2;
  Transfer t;
  t.flows = p.flows;
  t.src = p.src;
  t.dst = p.dst;
  t.endpoints = 4;
  t.on_endpoint_done = [&](GpuId g) { if (g == 2) done_2 = sim.now(); };
  net.start(std::move(t));
  sim.run();
  // GPU 2's part: 0 -> 2 at 1.1945 + 12 us; 2 -> 3 at 3334 B / 10 GB/s + 3 us = 3.3334 us.
  CHECK(done_2 == Time::ps(13194500));
  // Combine: the same flows reversed, the forwarder's NVLink gather and its InfiniBand return.
  const CommPlan back = comm_plan(normal_setup(), c, example(), false);
  CHECK(flow(back, 2, 0)->bytes.count() == 7500);
  CHECK(flow(back, 3, 2)->bytes.count() == 3334);
  CHECK(flow(back, 2, 0)->route.link[0] == c.kernel_link(2));
}

TEST_CASE("normal with the copy engine on NVLink: its flows take no SMs") {
  CommSetup s = normal_setup();
  s.nvlink_by_sms = false;
  const Cluster c = cluster(10);
  const CommPlan p = comm_plan(s, c, example(), true);
  CHECK(flow(p, 2, 3)->route.hops == 2);                      // NVLink up and down only
  CHECK(flow(p, 0, 2)->route.link[0] == c.kernel_link(0));    // RDMA is still issued by SMs
}

TEST_CASE("low_latency: every copy straight to the expert's GPU, no kernel links") {
  CommSetup s = normal_setup();
  s.scheme = CommScheme::PerToken;
  s.kernel_links = false;
  const Cluster c = cluster(10);
  const CommPlan p = comm_plan(s, c, example(), true);
  CHECK(flow(p, 0, 2)->bytes.count() == 8750);  // 7 copies x 1000 B / 0.8
  CHECK(flow(p, 0, 3)->bytes.count() == 3750);
  CHECK(flow(p, 0, 1)->bytes.count() == 4445);
  CHECK(flow(p, 0, 2)->route.hops == 2);
}

TEST_CASE("scenario: the modes fix the scheme, quantise the dispatch, hold their SMs, and check their keys") {
  const Scenario n = scenario({{"dispatch_impl", "normal"}}, {{"precision", {{"dispatch", "fp8"}}}});
  CHECK(n.network.scheme == "hierarchical");
  CHECK(n.schedule.comm_sms == 20);
  const std::unique_ptr<CostModel> nominal = make_cost_model(n.cost_model, n.gpu);
  const CommSetup s = comm_setup(n, engine_rates(n, *nominal), false);
  CHECK(s.dispatch_token.count() == 7168 + 56 * 4);  // fp8 with one FP32 scale per 128 channels
  CHECK(s.combine_token.count() == 7168 * 2);
  CHECK(kernel_rate(n, engine_rates(n, *nominal)).to_gb_per_s() == doctest::Approx(20 * 20.0));
  const Scenario ll = scenario({{"dispatch_impl", "low_latency"}, {"rdma_efficiency", 0.5}});
  CHECK(ll.network.scheme == "per-token");
  CHECK(ll.schedule.comm_sms == 0);
  CHECK(engine_rates(ll, *nominal).rdma.efficiency == 0.5);
  CHECK(kernel_rate(ll, engine_rates(ll, *nominal)).bytes_per_second() == 0);
  // ideal under the nominal model: nothing shaped (every scenario's old figures).
  const Scenario ideal = scenario(nlohmann::json::object());
  CHECK(!comm_setup(ideal, EngineRates::defaults(), false).nvlink);
  CHECK_THROWS_AS(scenario({{"dispatch_impl", "normal"}, {"scheme", "per-token"}}), ConfigError);
  CHECK_THROWS_AS(scenario({{"rdma_efficiency", 1.5}}), ConfigError);
}

TEST_CASE("calibrated network terms: the profile's NVLink measurements replace the defaults") {
  const Scenario sc = scenario(nlohmann::json::object(), {{"cost_model", {{"calibration", "h200-measured"}}}, {"gpu", {{"preset", "h200"}}}});
  const std::unique_ptr<CostModel> cost = make_cost_model(sc.cost_model, sc.gpu);
  const EngineRates r = engine_rates(sc, *cost);
  // kernels/results/h200x2-2026-11-29.json fits (README, "latency + bandwidth fits"), over 450 GB/s.
  CHECK(r.nvlink_sm.efficiency == doctest::Approx(370.158 / 450).epsilon(1e-4));
  CHECK(r.nvlink_sm.round.to_us() == doctest::Approx(10.600).epsilon(1e-4));
  CHECK(r.nvlink_ce.efficiency == doctest::Approx(394.194 / 450).epsilon(1e-4));
  CHECK(r.nccl.efficiency == doctest::Approx(578.127 / 2 / 450).epsilon(1e-4));
  CHECK(r.nccl.round.to_us() == doctest::Approx(20.291).epsilon(1e-4));
  CHECK(r.rdma.efficiency == 0.86);  // nothing measured across nodes
  // ideal then runs NVLink flows at NCCL's rate after NCCL's round.
  const CommSetup s = comm_setup(sc, r, true);
  REQUIRE(s.nvlink);
  CHECK(s.nvlink->efficiency == r.nccl.efficiency);
  CHECK(s.network->round == r.nccl.round);
}

TEST_CASE("SM-bound kernels: schedule.comm_sms sets how fast normal's dispatch moves") {
  // One MoE layer, 16 experts top-4 on 2 nodes x 8 GPUs, 1024 tokens per GPU.
  auto exchange = [](int sms) {
    return moe_exchange(scenario({{"dispatch_impl", "normal"}, {"model", "flow"}, {"comm_gbps_per_sm", 1.0}},
                                 {{"schedule", {{"comm_sms", sms}}}}));
  };
  const MoeExchange two = exchange(2), eight = exchange(8);
  CHECK(two.kernel_rate.to_gb_per_s() == doctest::Approx(2.0));
  // Every GPU's kernel link carries the same bytes (uniform routing): 4x the SMs, 1/4 the time,
  // up to the fixed round and route latencies.
  const double t2 = two.dispatch[0].time.to_us(), t8 = eight.dispatch[0].time.to_us();
  const double fixed = 18.0 + 2.0;  // RDMA round, two NIC links (the longest fixed part of GPU 0's flows)
  CHECK((t2 - fixed) / (t8 - fixed) == doctest::Approx(4.0).epsilon(0.02));
  CHECK(two.dispatch[0].rdma == eight.dispatch[0].rdma);
}

TEST_CASE("the per-SM default: DeepEP's EP 16 normal run (43 GB/s RDMA on 20 SMs) is not SM-bound at 20 GB/s per SM") {
  // 16 GPUs (2 nodes), 4096 FP8 tokens, top-8 of 256 in 8 groups / 4, flow network.
  auto rdma = [](double per_sm) {
    nlohmann::json doc = {{"model", {{"layers", 2}, {"dense_layers", 1}, {"routed_experts", 256}, {"top_k", 8}, {"groups", 8}, {"topk_groups", 4},
                                     {"attention", "none"}, {"vocab", 0}, {"shared_experts", 0}}},
                          {"precision", {{"dispatch", "fp8"}}}, {"cluster", {{"gpus", 16}, {"gpus_per_node", 8}}},
                          {"parallelism", {{"ep", 16}}}, {"workload", {{"tokens_per_gpu", 4096}}},
                          {"network", {{"model", "flow"}, {"dispatch_impl", "normal"}, {"comm_gbps_per_sm", per_sm}}}};
    return moe_exchange(Scenario::from_json(doc)).dispatch[0].rdma_gbps();
  };
  const double bound = rdma(1000);  // 50 GB/s x 0.86 = 43 GB/s, less the 18 us round: 41.8 GB/s
  CHECK(bound == doctest::Approx(41.8).epsilon(0.005));
  CHECK(rdma(20) == doctest::Approx(bound).epsilon(1e-6));
  CHECK(rdma(19) < bound * 0.98);
  CHECK(EngineRates::defaults().per_sm.to_gb_per_s() == 20.0);
}
