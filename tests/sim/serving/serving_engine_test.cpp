// The request-level serving engine with a constant step time, every request's times worked out by
// hand; Little's law on a long Poisson run; the KV transfer of a disaggregated deployment on an
// idle fabric.
#include <doctest/doctest.h>

#include <cmath>

#include "sim/serving/deployment.h"
#include "sim/serving/request.h"
#include "sim/serving/serving_metrics.h"
#include "sim/serving/serving_simulation.h"

using namespace epsim;
using namespace epsim::serving;
using nlohmann::json;

namespace {

// Prefill and decode steps of fixed length, whatever their shape; records the shapes asked.
class ConstantPricer final : public StepPricer {
 public:
  ConstantPricer(Time prefill, Time decode) : prefill_(prefill), decode_(decode) {}
  Time prefill(const PrefillShape& s, const PrefillShape& mean) override {
    prefills.push_back(s);
    means.push_back(mean);
    return prefill_;
  }
  Time decode(const DecodeShape& s) override {
    decodes.push_back(s);
    return decode_;
  }
  std::vector<PrefillShape> prefills, means;
  std::vector<DecodeShape> decodes;

 private:
  Time prefill_, decode_;
};

// The seed's dimensions cut to 2 layers (1 dense, 1 MoE of 8 experts, top-2) on one node of 8 H100
// SXM, EP 8; `tp` GPUs per DP rank. Memory is no limit here (tens of GB of KV per GPU).
json small(int tp) {
  return json{{"model", {{"preset", "seed"}, {"layers", 2}, {"dense_layers", 1}, {"routed_experts", 8}, {"top_k", 2}}},
              {"gpu", {{"preset", "h100-sxm"}}},
              {"cluster", {{"nodes", 1}, {"gpus_per_node", 8}}},
              {"parallelism", {{"attention_tp", tp}, {"ep", 8}}}};
}

double ms(Time t) { return t.to_ms(); }

}  // namespace

TEST_CASE("hand-worked: prefill first, chunked prompts, decode steps, one DP rank") {
  // One DP rank of 8 GPUs (TP 8): 1 sequence per GPU -> 8 requests held; 16 prompt tokens per GPU
  // and step -> 128 per rank. Prefill steps 10 ms, decode steps 4 ms.
  json doc = small(8);
  doc["serving"] = {{"arrivals", "trace"}, {"trace", "unused.csv"}, {"max_batch_per_gpu", 1}, {"max_prefill_tokens_per_gpu", 16}};
  const Deployment d = Deployment::plan(doc);
  const std::vector<Request> reqs = parse_trace("arrival_s,input_tokens,output_tokens\n0,100,3\n0.005,200,2\n0.030,50,1\n", "t");
  ConstantPricer pricer(Time::ms(10), Time::ms(4));
  const ServingResult r = simulate_serving(d, reqs, {&pricer});
  // t=0    r0 arrives; prefill step [0, 10): its 100 tokens.
  // t=5    r1 arrives (queued: a step is in flight).
  // t=10   r0's first token; it joins the decode batch. r1 has prompt left: prefill first,
  //        [10, 20): 128 of its 200 tokens (the rank's room), then [20, 30): the other 72.
  // t=30   r2 arrives (its arrival event was queued before the step end at the same time), then
  //        r1's first token; prefill [30, 40): r2's 50 tokens.
  // t=40   r2's first and only token: done. Decode [40, 44): r0 and r1; r1's second and last token.
  // t=44   decode [44, 48): r0's third and last token.
  const auto& q = r.requests;
  CHECK(ms(q[0].first_token) == doctest::Approx(10).epsilon(1e-12));
  CHECK(ms(q[0].finish) == doctest::Approx(48).epsilon(1e-12));
  CHECK(ms(q[1].first_token) == doctest::Approx(30).epsilon(1e-12));
  CHECK(ms(q[1].finish) == doctest::Approx(44).epsilon(1e-12));
  CHECK(ms(q[2].first_token) == doctest::Approx(40).epsilon(1e-12));
  CHECK(ms(q[2].finish) == doctest::Approx(40).epsilon(1e-12));
  const ServingMetrics m = serving_metrics(r, d.spec);
  // TTFT 10, 25, 10 ms; TPOT (48 - 10) / 2 = 19 and (44 - 30) / 1 = 14 ms (r2 has none).
  CHECK(m.ttft.count == 3);
  CHECK(m.ttft.mean == doctest::Approx(15));
  CHECK(m.ttft.max == doctest::Approx(25));
  CHECK(m.tpot.count == 2);
  CHECK(m.tpot.p50 == doctest::Approx(14));
  CHECK(m.tpot.max == doctest::Approx(19));
  CHECK(m.e2e.max == doctest::Approx(48));
  // Shapes per GPU (TP 8): prefill ceil(100/8) = 13 tokens at (100 + 1) / 2 keys; 16 at 64.5;
  // 72 tokens after 128 cached: ceil(72/8) = 9 at 128 + 73/2; 7 at 25.5. Decode: 2 sequences on the
  // rank -> 1 per GPU at KV (100 + 200) / 2, then r0 alone at KV 101.
  REQUIRE(pricer.prefills.size() == 4);
  CHECK(pricer.prefills[0].tokens == 13);
  CHECK(pricer.prefills[0].keys == doctest::Approx(50.5));
  CHECK(pricer.prefills[1].tokens == 16);
  CHECK(pricer.prefills[1].keys == doctest::Approx(64.5));
  CHECK(pricer.prefills[2].tokens == 9);
  CHECK(pricer.prefills[2].keys == doctest::Approx(164.5));
  CHECK(pricer.prefills[3].tokens == 7);
  CHECK(pricer.prefills[3].keys == doctest::Approx(25.5));
  // One rank: the mean is the busiest.
  for (std::size_t i = 0; i < 4; ++i) CHECK(pricer.means[i].tokens == pricer.prefills[i].tokens);
  REQUIRE(pricer.decodes.size() == 2);
  CHECK(pricer.decodes[0].batch == 1);
  CHECK(pricer.decodes[0].kv == doctest::Approx(150));
  CHECK(pricer.decodes[1].batch == 1);
  CHECK(pricer.decodes[1].kv == doctest::Approx(101));
}

TEST_CASE("hand-worked: two DP ranks, admission when a step is formed, whole prompts only") {
  // TP 4: two ranks of 4 GPUs, each holding 4 requests (1 per GPU); 25 prompt tokens per GPU and
  // step -> 100 per rank; no chunking.
  json doc = small(4);
  doc["serving"] = {{"arrivals", "trace"}, {"trace", "unused.csv"}, {"max_batch_per_gpu", 1},
                    {"max_prefill_tokens_per_gpu", 25}, {"chunked_prefill", false}};
  const Deployment d = Deployment::plan(doc);
  // Four requests at t = 0 of 60, 60, 150 and 50 prompt tokens, 2 output tokens each.
  const std::vector<Request> reqs = parse_trace("0,60,2\n0,60,2\n0,150,2\n0,50,2\n", "t");
  ConstantPricer pricer(Time::ms(10), Time::ms(4));
  const ServingResult r = simulate_serving(d, reqs, {&pricer});
  // t=0   r0 arrives, is admitted to rank 0 (ties: the lower index) and its prefill starts at
  //       once, [0, 10); r1, r2, r3 arrive during the step and wait for the scheduler.
  // t=10  r0's first token. Admission, each to the rank holding fewer (ties: more free KV, then
  //       the lower index): r1 -> rank 1, r2 -> rank 0, r3 -> rank 1. Prefill [10, 20): rank 0
  //       takes r2 whole (150 > 100, but first: it runs alone); rank 1 takes r1 (60), and r3 (50)
  //       does not fit the 40 left.
  // t=20  r1's and r2's first tokens; prefill [20, 30): r3.
  // t=30  r3's first token; decode [30, 34): every request's second and last token.
  const auto& q = r.requests;
  CHECK(q[0].rank == 0);
  CHECK(q[1].rank == 1);
  CHECK(q[2].rank == 0);
  CHECK(q[3].rank == 1);
  CHECK(ms(q[0].first_token) == doctest::Approx(10));
  CHECK(ms(q[1].first_token) == doctest::Approx(20));
  CHECK(ms(q[2].first_token) == doctest::Approx(20));
  CHECK(ms(q[3].first_token) == doctest::Approx(30));
  for (const auto& s : q) CHECK(ms(s.finish) == doctest::Approx(34));
  // Busiest rank per step, per GPU: ceil(60/4) = 15 tokens at 30.5 keys; rank 0's 150: 38 at 75.5;
  // 50: 13 at 25.5. Decode: 2 and 2 sequences, rank 0's KV (60 + 150) / 2 = 105 is larger.
  REQUIRE(pricer.prefills.size() == 3);
  CHECK(pricer.prefills[0].tokens == 15);
  CHECK(pricer.prefills[0].keys == doctest::Approx(30.5));
  CHECK(pricer.prefills[1].tokens == 38);
  CHECK(pricer.prefills[1].keys == doctest::Approx(75.5));
  CHECK(pricer.prefills[2].tokens == 13);
  CHECK(pricer.prefills[2].keys == doctest::Approx(25.5));
  // The mean shapes: the step's tokens over the 8 GPUs: ceil(60/8) = 8 at 30.5 keys;
  // ceil(210/8) = 27 at (150 x 151/2 + 60 x 61/2) / 210 keys; ceil(50/8) = 7 at 25.5.
  REQUIRE(pricer.means.size() == 3);
  CHECK(pricer.means[0].tokens == 8);
  CHECK(pricer.means[0].keys == doctest::Approx(30.5));
  CHECK(pricer.means[1].tokens == 27);
  CHECK(pricer.means[1].keys == doctest::Approx((150.0 * 151 / 2 + 60.0 * 61 / 2) / 210));
  CHECK(pricer.means[2].tokens == 7);
  REQUIRE(pricer.decodes.size() == 1);
  CHECK(pricer.decodes[0].batch == 1);
  CHECK(pricer.decodes[0].kv == doctest::Approx(105));
}

TEST_CASE("Little's law on a long Poisson run: time-average requests in the system = rate x mean latency") {
  json doc = small(1);  // 8 DP ranks
  doc["serving"] = {{"rate", 50}, {"requests", 20000}, {"input_tokens", 512}, {"output_tokens", 64},
                    {"length_spread", 0.9}, {"max_batch_per_gpu", 8}, {"max_prefill_tokens_per_gpu", 1024}, {"seed", 3}};
  const Deployment d = Deployment::plan(doc);
  ConstantPricer pricer(Time::ms(12), Time::ms(5));
  const ServingResult r = simulate_serving(d, make_requests(d.spec), {&pricer});
  const ServingMetrics m = serving_metrics(r, d.spec);
  // The engine integrates requests in the system over time; lambda is the rate asked for, W the mean
  // end-to-end latency of the requests: independent figures that must agree on a long run.
  CHECK(m.little_l > 10);
  CHECK(std::abs(m.little_lambda_w / m.little_l - 1.0) < 0.02);
  // Deterministic: the same document gives the same run.
  const ServingResult again = simulate_serving(d, make_requests(d.spec), {&pricer});
  CHECK(again.end == r.end);
  CHECK(again.mean_in_system == r.mean_in_system);
}

TEST_CASE("disaggregated: the KV cache moves at the link rate on an idle fabric") {
  // Prefill pool: 1 node, decode pool: 1 node, one GPU per DP rank, no link latency. A request of
  // 1000 prompt tokens: 2 layers x 2 (k, v) x 128 heads x 128 x 2 bytes = 131072 bytes per token,
  // 131.072 MB from GPU 0 to GPU 8 (the same rail): through the NICs at 400 Gb/s = 50 GB/s,
  // 2.62144 ms.
  for (const char* network : {"analytical", "flow"}) {
    CAPTURE(network);
    json doc = small(1);
    doc["cluster"]["nic_latency_us"] = 0;
    doc["cluster"]["nvlink_latency_us"] = 0;
    doc["cluster"]["spine_latency_us"] = 0;
    doc["network"] = {{"model", network}};
    doc["serving"] = {{"arrivals", "trace"}, {"trace", "unused.csv"}, {"disaggregated", true},
                      {"prefill", {{"instances", 1}}}, {"decode", {{"instances", 1}}}};
    const Deployment d = Deployment::plan(doc);
    REQUIRE(d.pools.size() == 2);
    CHECK(d.pools[1].budget.bytes_per_token == doctest::Approx(131072));
    const std::vector<Request> reqs = parse_trace("0,1000,3\n", "t");
    ConstantPricer pre(Time::ms(10), Time::ms(4)), dec(Time::ms(10), Time::ms(4));
    const ServingResult r = simulate_serving(d, reqs, {&pre, &dec});
    const RequestState& s = r.requests[0];
    CHECK(s.rank == 0);
    CHECK(s.decode_rank == 0);
    CHECK(ms(s.transfer_start) == doctest::Approx(10));
    CHECK((s.transfer_end - s.transfer_start) == Bytes(131072000) / Bandwidth::gbit_per_s(400));
    // Decode starts when the KV is in: two decode steps for tokens 2 and 3.
    CHECK(s.finish == Time::ms(10) + (Bytes(131072000) / Bandwidth::gbit_per_s(400)) + Time::ms(8));
    CHECK(pre.decodes.empty());
    CHECK(dec.prefills.empty());
  }
}

TEST_CASE("a request whose KV cannot fit a DP rank is bad input") {
  json doc = small(8);
  doc["serving"] = {{"arrivals", "trace"}, {"trace", "unused.csv"}, {"kv_memory_fraction", 0.0001}};
  const Deployment d = Deployment::plan(doc);
  ConstantPricer pricer(Time::ms(10), Time::ms(4));
  CHECK_THROWS_AS(simulate_serving(d, parse_trace("0,100000,10\n", "t"), {&pricer}), ConfigError);
}
