#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>

#include "models/cost_model.h"
#include "sim/compute_faults.h"
#include "sim/critical_path.h"
#include "sim/report.h"
#include "sim/simulation.h"
#include "sim/step_distribution.h"
#include "tests/sim/op_sum.h"
#include "tests/sim/tiny_scenario.h"

using namespace epsim;
using nlohmann::json;

// The step tests' tiny scenario with attention TP 2 inside each node.
static json tiny() {
  json j = test::tiny_scenario();
  j["parallelism"] = {{"attention_tp", 2}};
  return j;
}

// When GPU `gpu` starts its first op of layer `layer`.
static Time entry(const Simulation& sim, int layer, int gpu) {
  Time t = Time::infinity();
  for (const Task& k : sim.graph().tasks())
    if (k.kind == TaskKind::Compute && k.layer == layer && k.gpu == gpu) t = std::min(t, k.start);
  return t;
}

TEST_CASE("one GPU at 0.5x compute raises the serial MoE layer by that GPU's compute") {
  Simulation healthy(Scenario::from_json(tiny()));
  const StepResult& h = healthy.run();
  // GPU 1's compute in the MoE layer, by hand: each op of the layer program at its roofline time
  // plus the 1 us kernel gap (tests/sim/op_sum.h): attention (TP 2: half the heads, on its 256
  // tokens), norms, gate, permute, the shared expert, its expert on the 256 x 2 x 4 / 4 = 512
  // (token, expert) pairs it receives, unpermute and the residual.
  const Scenario& sc = healthy.scenario();
  const LayerShape shape{Mode::Prefill, 256, 1, 256, 0, 1};
  const Time after_combine = test::blocks_time(sc, {Block::MoeOut}, shape);
  const Time compute = test::blocks_time(sc, {Block::AttnIn, Block::Attention, Block::AttnOut, Block::MoeIn, Block::Shared}, shape) +
                       test::experts_time(sc, 512) + after_combine;
  REQUIRE(h.layers[1].compute_max == compute);

  json doc = tiny();
  doc["faults"] = {{"gpu_compute", {{"1", 0.5}}}};
  Simulation slow(Scenario::from_json(doc));
  const StepResult& s = slow.run();
  // Serial: every compute segment of GPU 1 takes twice as long and every barrier after it waits for
  // GPU 1, so the MoE layer, timed from GPU 1's first op (it enters last: the dense layer's ops
  // after its last barrier ran slow too), grows by exactly GPU 1's compute (its whole share).
  CHECK(entry(healthy, 1, 1) == h.layers[1].start);  // healthy: every GPU enters together
  CHECK(h.layers[1].end - entry(healthy, 1, 1) + compute == s.layers[1].end - entry(slow, 1, 1));
  CHECK(s.layers[1].compute_max == compute + compute);
  CHECK(s.layers[1].dispatch == h.layers[1].dispatch);
  // The critical path blames GPU 1: at each barrier the others were ready c before it, where c is
  // GPU 1's extra time in the segment, so the wait is c - c / 4 (release minus the mean of four
  // ready times). Every compute segment ends at a barrier but the last: the MoE layer's ops after
  // the combine, the final norm and the LM head.
  CHECK(s.bound_gpu == 1);
  const Time tail = after_combine + test::blocks_time(sc, {Block::Head}, shape);
  const double expected_wait = 0.75 * static_cast<double>((healthy.result().per_gpu[1].compute_busy - tail).picoseconds());
  INFO("barrier wait ", s.barrier_wait.picoseconds(), " ps, expected ", expected_wait);
  CHECK(std::abs(static_cast<double>(s.barrier_wait.picoseconds()) - expected_wait) <= 8);  // 1 ps of rounding per barrier
  CHECK(s.straggle[1] == s.barrier_wait);
  CHECK(h.barrier_wait == Time::zero());
}

// GPU g's part of the MoE layer's dispatch: from the collective's start to g's arrival.
static Time dispatch_part(const Simulation& sim, int gpu) {
  for (const Task& t : sim.graph().tasks())
    if (t.kind == TaskKind::Arrival && t.phase == Phase::Dispatch && t.gpu == gpu) return t.end - t.start;
  FAIL("no dispatch");
  return Time::zero();
}

TEST_CASE("a NIC at half bandwidth doubles that GPU's NIC-bound dispatch") {
  json doc = tiny();
  doc["parallelism"]["attention_tp"] = 1;
  Simulation healthy(Scenario::from_json(doc));
  healthy.run();
  // Each GPU sends 256 x 2 / 4 = 128 tokens of 2 KiB to each of the two GPUs of the other node
  // (and receives as much): its NIC carries 2 x 262,144 B each way, 10.48576 us at 50 GB/s; the
  // part ends with the cross-rail flows' 3 us of latency (2 x 1 us NIC + 2 x 0.5 us spine).
  const Time drain = Time::ps(10485760);
  CHECK(dispatch_part(healthy, 0) == drain + Time::us(3));
  doc["faults"] = {{"link_bandwidth", {{"gpu0.nic", 0.5}}}};
  Simulation half(Scenario::from_json(doc));
  half.run();
  CHECK(dispatch_part(half, 0) == drain + drain + Time::us(3));  // 524,288 B at 25 GB/s each way
  CHECK(dispatch_part(half, 1) == drain + Time::us(3));          // its own NIC is healthy
  CHECK(half.cluster().link(half.cluster().route(0, 2).link[0]).bandwidth.bytes_per_second() == doctest::Approx(25e9));
}

// 3 nodes x 2 GPUs, EP 6 with one slot each: 4 experts and 2 redundant slots (eplb).
static json redundant() {
  json doc = tiny();
  doc["cluster"]["nodes"] = 3;
  doc["parallelism"] = {{"attention_tp", 2}, {"slots_per_gpu", 1}};
  doc["placement"] = {{"strategy", "eplb"}};
  return doc;
}

TEST_CASE("a failed node with EPLB redundancy covering its experts runs and every token is served") {
  // Under uniform routing EPLB replicates experts 0 and 1 (equal loads: lowest ids first) and packs
  // slot p on GPU p: experts 0 1 2 3 0 1, so node 0 (GPUs 0, 1) holds nothing without a replica.
  json doc = redundant();
  doc["faults"] = {{"failed_nodes", {0}}};
  Simulation sim(Scenario::from_json(doc));
  const StepResult& r = sim.run();
  CHECK(r.serving_gpus == 4);
  CHECK(r.lost_experts.empty());
  CHECK(r.lost_selections == 0);
  CHECK(r.selections == 4 * 256 * 2);  // every selection of the 4 GPUs with tokens
  // Served: experts 2 and 3 alone on GPUs 2 and 3, experts 0 and 1 on GPUs 4 and 5 (the replicas):
  // 4 x 256 x 2 / 4 = 512 each; the failed GPUs compute nothing.
  CHECK(r.layers[1].expert_tokens_max == 512);
  CHECK(r.layers[1].expert_tokens_mean == doctest::Approx(2048.0 / 4));  // over the live GPUs
  CHECK(r.per_gpu[0].compute_busy == Time::zero());
  CHECK(r.per_gpu[1].compute_busy == Time::zero());
  // Throughput counts the 4 GPUs with tokens over all 6.
  CHECK(r.output_tokens_per_gpu == doctest::Approx(256.0 * 4 / 6));
  const json report = report_json(sim);
  CHECK(report["faults"]["failed_gpus"] == json{0, 1});
  CHECK(report["faults"]["lost_selections"] == 0);
}

TEST_CASE("a failure that takes an expert's only replica is refused, dropped when allowed, or re-planned") {
  json doc = redundant();
  doc["faults"] = {{"failed_nodes", {1}}};  // GPUs 2, 3: experts 2 and 3, no replicas
  Simulation refused(Scenario::from_json(doc));
  CHECK_THROWS_WITH_AS(refused.run(), doctest::Contains("2 expert(s) lose their only replica (2, 3)"), ConfigError);

  doc["faults"]["allow_lost_experts"] = true;
  Simulation dropped(Scenario::from_json(doc));
  const StepResult& d = dropped.run();
  CHECK(d.lost_experts == std::vector<int>{2, 3});
  CHECK(d.lost_selections == 4 * 256 * 2 / 2);  // half of every GPU's picks were experts 2 or 3
  CHECK(d.selections == 4 * 256 * 2);
  CHECK(d.layers[1].expert_tokens_max == 256);   // experts 0, 1: 512 each, over two replicas

  doc["faults"] = {{"failed_nodes", {1}}, {"replan_placement", true}};
  Simulation replanned(Scenario::from_json(doc));
  const StepResult& p = replanned.run();  // EPLB over the 4 live GPUs: one expert each
  CHECK(p.lost_selections == 0);
  CHECK(p.layers[1].expert_tokens_max == 512);
}

TEST_CASE("a failed GPU empties its TP group's tokens; its partner still serves its expert") {
  json doc = redundant();
  doc["faults"] = {{"failed_gpus", {4}}};  // expert 0's replica; GPU 5 (its TP partner) keeps expert 1
  Simulation sim(Scenario::from_json(doc));
  const StepResult& r = sim.run();
  CHECK(r.serving_gpus == 4);
  CHECK(r.lost_selections == 0);
  // Expert 0 now only on GPU 0 (4 x 256 x 2 / 4 = 512), expert 1 split over GPUs 1 and 5.
  CHECK(r.layers[1].expert_tokens_max == 512);
  CHECK(r.per_gpu[5].compute_busy > Time::zero());    // its expert
  CHECK(r.per_gpu[4].compute_busy == Time::zero());
}

TEST_CASE("noisy kernels: seeded, mean 1, the coefficient of variation asked") {
  double sum = 0, sq = 0;
  const int n = 200000;
  for (int i = 0; i < n; ++i) {
    const double f = KernelJitter::factor(7, 3, i, 0.1);
    sum += f;
    sq += f * f;
  }
  const double mean = sum / n, sd = std::sqrt(sq / n - mean * mean);
  CHECK(mean == doctest::Approx(1.0).epsilon(0.002));
  CHECK(sd / mean == doctest::Approx(0.1).epsilon(0.02));
  CHECK(KernelJitter::factor(7, 3, 11, 0.1) == KernelJitter::factor(7, 3, 11, 0.1));
  CHECK(KernelJitter::factor(7, 3, 11, 0.1) != KernelJitter::factor(7, 4, 11, 0.1));
  CHECK(KernelJitter::factor(7, 3, 11, 0.0) == 1.0);

  json doc = tiny();
  doc["faults"] = {{"kernel_jitter", "lognormal"}, {"kernel_cv", 0.05}};
  Simulation a(Scenario::from_json(doc)), b(Scenario::from_json(doc));
  a.run_steps(3);
  b.run_steps(3);
  CHECK(report_json(a).dump() == report_json(b).dump());
  CHECK(a.history()[0].step_time != a.history()[1].step_time);
  Simulation quiet(Scenario::from_json(tiny()));
  // Jitter only adds waits at barriers: the healthy step has none.
  CHECK(quiet.run().barrier_wait == Time::zero());
  CHECK(a.history()[0].barrier_wait > Time::zero());
}

TEST_CASE("measured spreads: sigma = range / d2(n), a task's ops combined as independent") {
  CHECK(normal_range_d2(2) == doctest::Approx(1.128).epsilon(1e-3));  // the control-chart table
  CHECK(normal_range_d2(10) == doctest::Approx(3.078).epsilon(1e-3));
  CHECK(normal_range_d2(20) == doctest::Approx(3.735).epsilon(1e-3));
  MeasuredLayerFile f;
  f.path = "hand.json";
  MeasuredLayerCase c;
  c.repetitions = 20;
  const double d2 = normal_range_d2(20);
  // expert_up: median 100 us, range 2 x d2 us (sigma 2 us); swiglu: median 50 us, sigma 1.5 us.
  c.ops.push_back({"expert_up", Time::us(100), Time::us(100 - d2), Time::us(100 + d2), 1, 0, 0, "bf16", {}});
  c.ops.push_back({"swiglu", Time::us(50), Time::us(50 - 0.75 * d2), Time::us(50 + 0.75 * d2), 1, 0, 0, "bf16", {}});
  f.cases.push_back(c);
  const KernelJitter j = KernelJitter::measured(f, 0.03);
  CHECK(j.cv({"expert_up"}) == doctest::Approx(0.02).epsilon(1e-6));
  CHECK(j.cv({"expert_up", "swiglu"}) == doctest::Approx(2.5 / 150).epsilon(1e-6));  // sqrt(2^2 + 1.5^2) / 150
  CHECK(j.cv({"lm_head"}) == 0.03);  // not in the file: the fallback

  // A task is one op: its own spread; dense_* (the files time no dense MLP) the shared expert's.
  c.ops.push_back({"shared_up", Time::us(40), Time::us(40 - 0.2 * d2), Time::us(40 + 0.2 * d2), 1, 0, 0, "bf16", {}});
  f.cases[0] = c;
  const KernelJitter k = KernelJitter::measured(f, 0.03);
  CHECK(op_cv(k, {OpKind::ExpertUp}) == doctest::Approx(0.02).epsilon(1e-6));
  CHECK(op_cv(k, {OpKind::DenseUp}) == doctest::Approx(0.01).epsilon(1e-6));  // sigma 0.4 us over 40 us
  CHECK(op_cv(k, {OpKind::DenseDown}) == 0.03);                               // shared_down is not timed either
  CHECK(op_cv(k, {OpKind::QuantAct, OpKind::ExpertUp}) == 0.03);
  // A GPU without tokens runs only these (for the tokens it receives).
  CHECK(routed_expert_op({OpKind::Swiglu, OpKind::AttnNorm, Grad::Wgrad}));
  CHECK(routed_expert_op({OpKind::QuantAct, OpKind::ExpertDown}));
  CHECK_FALSE(routed_expert_op({OpKind::QuantAct, OpKind::SharedUp}));
  CHECK_FALSE(routed_expert_op({OpKind::Permute}));
}

TEST_CASE("the step-time distribution: nearest-rank percentiles, the tail's barrier part, stragglers") {
  std::vector<StepSummary> steps;
  const int ms[] = {5, 1, 3, 4, 2};
  const int wait[] = {4, 0, 2, 1, 1};
  for (int i = 0; i < 5; ++i) steps.push_back({i, Time::ms(ms[i]), 1, 1, 0, 0, Time::ms(wait[i]), Time::ms(wait[i])});
  const StepDistribution d = step_distribution(steps, {Time::ms(1), Time::ms(6), Time::zero()});
  CHECK(d.p50 == Time::ms(3));  // the 3rd of 5
  CHECK(d.p50_step == 2);
  CHECK(d.p99 == Time::ms(5));  // the 5th
  CHECK(d.tail() == Time::ms(2));
  CHECK(d.tail_from_barriers() == Time::ms(2));  // wait 4 at the p99 step, 2 at the p50 step
  CHECK(d.mean == Time::ms(3));
  REQUIRE(d.stragglers.size() == 2);
  CHECK(d.stragglers[0].gpu == 1);
  CHECK(d.stragglers[0].wait == Time::ms(6));
}
