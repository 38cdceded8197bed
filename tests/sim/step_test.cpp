#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>

#include "models/bench_results.h"
#include "models/calibration_fit.h"
#include "models/cost_model.h"
#include "models/layer_program.h"
#include "sim/report.h"
#include "sim/simulation.h"
#include "sim/step_metrics.h"
#include "tests/sim/op_sum.h"
#include "tests/sim/tiny_scenario.h"

using namespace epsim;
using nlohmann::json;

static json tiny() { return test::tiny_scenario(); }

TEST_CASE("serial schedule: the step time is the sum of its ops and all-to-alls") {
  Simulation sim(Scenario::from_json(tiny()));
  const StepResult& r = sim.run();
  const Scenario& sc = sim.scenario();
  using test::blocks_time;
  const LayerShape shape{Mode::Prefill, 256, 1, 256, 0, 1};
  // Every op: its roofline time plus the 1 us kernel gap (tests/sim/op_sum.h).
  const Time attention = blocks_time(sc, {Block::AttnIn, Block::Attention, Block::AttnOut}, shape);
  // Every source sends 256 x 2 / 4 = 128 tokens of 2 KiB to each expert's GPU: each NIC carries two
  // such flows (262,144 B each) at 50 GB/s = 10.48576 us, + 3 us of cross-rail latency.
  const Time all_to_all = Time::ps(10485760) + Time::us(3);
  const Time expected = attention + blocks_time(sc, {Block::Dense}, shape) + attention + blocks_time(sc, {Block::MoeIn, Block::Shared}, shape) +
                        all_to_all + test::experts_time(sc, 512) + all_to_all + blocks_time(sc, {Block::MoeOut, Block::Head}, shape);
  CHECK(r.step_time == expected);
  REQUIRE(r.layers.size() == 2);
  CHECK(r.layers[1].dispatch == all_to_all);
  CHECK(r.layers[1].combine == all_to_all);
  CHECK(r.layers[1].exposed_comm_max == all_to_all + all_to_all);
  CHECK(r.layers[1].expert_tokens_max == 512);
  CHECK(r.layers[0].exposed_comm_max == Time::zero());
  // One task per op on each GPU: dense layer attn_norm, q_proj, kv_proj, rope, attn_core, o_proj,
  // attn_residual, ffn_norm, dense_up, dense_swiglu, dense_down, ffn_residual (12); the MoE layer
  // 7 attention ops, ffn_norm, router, router_topk, permute, shared_up, shared_swiglu, shared_down,
  // expert_up, swiglu, expert_down, unpermute, ffn_residual (19); final_norm, lm_head (2).
  int gpu0 = 0;
  for (const Task& t : sim.graph().tasks()) gpu0 += t.kind == TaskKind::Compute && t.gpu == 0;
  CHECK(gpu0 == 12 + 19 + 2);
}

TEST_CASE("fp8 dispatch: the dispatch carries hidden + hidden/128 x 4 bytes a token, the combine bf16") {
  json sc = tiny();
  sc["precision"] = {{"dispatch", "fp8"}};
  Simulation sim(Scenario::from_json(sc));
  const StepResult& r = sim.run();
  // 128 tokens of 1024 + 8 x 4 = 1056 bytes to each of two GPUs per NIC: 270,336 B at 50 GB/s =
  // 5.40672 us, + 3 us of latency; the combine as in bf16 (2 KiB a token: 10.48576 us + 3 us).
  CHECK(r.layers[1].dispatch == Time::ps(5406720) + Time::us(3));
  CHECK(r.layers[1].combine == Time::ps(10485760) + Time::us(3));
}

TEST_CASE("the same scenario gives byte-identical reports") {
  Simulation a(Scenario::from_json(tiny()));
  Simulation b(Scenario::from_json(tiny()));
  a.run();
  b.run();
  CHECK(report_json(a).dump(2) == report_json(b).dump(2));
  CHECK(chrome_trace(a) == chrome_trace(b));
}

TEST_CASE("exposed time: what one interval set covers and another does not") {
  CHECK(uncovered({{Time::us(0), Time::us(10)}}, {{Time::us(2), Time::us(4)}, {Time::us(6), Time::us(7)}}) == Time::us(7));
  CHECK(uncovered({{Time::us(0), Time::us(4)}, {Time::us(2), Time::us(6)}}, {}) == Time::us(6));
  CHECK(uncovered({{Time::us(0), Time::us(4)}}, {{Time::us(0), Time::us(5)}}) == Time::zero());
}

TEST_CASE("dual micro-batch hides communication shorter than compute") {
  json sc = tiny();
  sc["model"]["layers"] = 8;
  sc["model"]["expert_intermediate"] = 4096;  // each micro-batch's experts outlast an all-to-all
  sc["workload"]["tokens_per_gpu"] = 4096;
  sc["schedule"] = {{"overlap", "dual-microbatch"}, {"comm_sms", 0}};
  Simulation dual(Scenario::from_json(sc));
  const StepResult& r = dual.run();
  Time comm = Time::zero();
  for (const auto& l : r.layers) comm += l.dispatch + l.combine;
  REQUIRE(comm > Time::zero());
  for (const auto& g : r.per_gpu) {
    CHECK(g.compute_busy > comm + comm);  // the premise: communication is shorter than compute
    CHECK(g.exposed_comm.to_seconds() < 0.05 * r.step_time.to_seconds());
  }
  sc["schedule"] = {{"overlap", "serial"}};
  Simulation serial(Scenario::from_json(sc));
  CHECK(serial.run().step_time > r.step_time);
}

TEST_CASE("chunks let experts start before the whole dispatch has arrived") {
  json sc = tiny();
  sc["workload"]["tokens_per_gpu"] = 4096;
  Simulation one(Scenario::from_json(sc));
  sc["schedule"] = {{"chunks", 4}};
  Simulation four(Scenario::from_json(sc));
  CHECK(four.run().step_time < one.run().step_time);
  CHECK(four.result().layers[1].expert_tokens_max == one.result().layers[1].expert_tokens_max);
}

TEST_CASE("training runs forward and backward: backward compute at twice the forward or more") {
  json sc = tiny();
  sc["gpu"] = {{"kernel_gap_us", 0}};  // the gaps are per kernel, not per FLOP: leave them out here
  Simulation prefill(Scenario::from_json(sc));
  sc["workload"]["mode"] = "training";
  Simulation train(Scenario::from_json(sc));
  const Time fwd = prefill.run().step_time;
  const Time step = train.run().step_time;
  // prefill's LM head sees 1 token; training's all 256 (forward and backward), so compare compute:
  // GEMMs and elementwise ops x2 in backward, the attention core x2.5.
  CHECK(train.result().per_gpu[0].compute_busy > prefill.result().per_gpu[0].compute_busy * 2.9);
  CHECK(step > fwd * 2);  // compute x3, all-to-alls x2
  CHECK(train.result().memory.optimizer.count() == train.result().memory.weights().count() * 7);
}

TEST_CASE("under zipf skew the hottest expert's GPU is named as what bound the step") {
  json sc = tiny();
  sc["model"]["routed_experts"] = 16;
  sc["model"]["top_k"] = 4;
  sc["cluster"] = {{"nodes", 2}, {"gpus_per_node", 8}};
  sc["workload"]["tokens_per_gpu"] = 2048;
  sc["routing"] = {{"distribution", "zipf"}, {"zipf_s", 1.2}, {"seed", 7}};
  Simulation sim(Scenario::from_json(sc));
  const StepResult& r = sim.run();
  const LayerResult& moe = r.layers[1];
  REQUIRE(moe.moe);
  CHECK(moe.expert_tokens_max > 1.5 * moe.expert_tokens_mean);  // the premise: real skew
  CHECK(r.bound_gpu == moe.expert_tokens_max_gpu);
  CHECK(moe.straggler_gpu == moe.expert_tokens_max_gpu);
  CHECK(r.bound_gpu_straggle > Time::zero());
  CHECK(r.bound_layer == 1);
}

TEST_CASE("uniform routing has no straggler: the bound GPU is the one with most compute on the path") {
  Simulation sim(Scenario::from_json(tiny()));
  const StepResult& r = sim.run();
  CHECK(r.bound_gpu_straggle == Time::zero());
  CHECK(r.bound_gpu >= 0);
  CHECK(r.bound_link >= 0);
}

TEST_CASE("steps: the bias rule brings expert load towards balance over steps") {
  json sc = tiny();
  sc["model"]["routed_experts"] = 16;
  sc["model"]["top_k"] = 4;
  sc["cluster"] = {{"nodes", 2}, {"gpus_per_node", 8}};
  sc["workload"]["tokens_per_gpu"] = 4096;
  sc["routing"] = {{"distribution", "zipf"}, {"zipf_s", 1.0}, {"balance", "bias"}, {"bias_step", 0.05}};
  Simulation sim(Scenario::from_json(sc));
  const auto steps = sim.run_steps(40);
  REQUIRE(steps.size() == 40);
  CHECK(steps.front().imbalance_worst > 1.5);
  CHECK(steps.back().imbalance_worst < 1.1);
  CHECK(steps.back().step_time < steps.front().step_time);
}

TEST_CASE("memory counts every physical expert slot: redundant experts add weights") {
  json sc = tiny();
  Simulation plain(Scenario::from_json(sc));
  sc["placement"] = {{"strategy", "eplb"}, {"redundant_slots", 4}};  // 8 slots on 4 GPUs: 2 per GPU
  Simulation eplb(Scenario::from_json(sc));
  // One MoE layer; an expert is 3 x 1024 x 512 BF16 parameters = 3,145,728 bytes.
  CHECK(plain.run().memory.expert_weights.count() == 3145728);
  CHECK(eplb.run().memory.expert_weights.count() == 2 * 3145728);
}

TEST_CASE("a routed shared expert is computed where its replicas sit, reached by the dispatch") {
  // tiny() with its shared expert routed: 4 routed + 1 shared + 3 redundant slots (eplb gives all 3
  // to the shared expert, 4x heavier) = 8 slots on 4 GPUs. Every token takes top-2 + the shared one:
  // 4 GPUs x 256 tokens x 3 = 3072 (token, expert) pairs, 768 per GPU; no local shared-expert task.
  json sc = tiny();
  sc["model"]["shared_experts"] = 1;
  sc["parallelism"] = {{"shared_expert", "routed"}};
  sc["placement"] = {{"strategy", "eplb"}, {"redundant_slots", 3}};
  Simulation routed(Scenario::from_json(sc));
  const StepResult& r = routed.run();
  CHECK(r.layers[1].expert_tokens_max == 768);
  CHECK(r.layers[1].expert_tokens_mean == doctest::Approx(768.0));
  CHECK(r.memory.shared_weights == Bytes(0));
  for (const Task& t : routed.graph().tasks()) CHECK(t.phase != Phase::SharedExpert);
  sc["parallelism"] = {{"shared_expert", "local"}};
  sc["placement"] = json::object();
  Simulation local(Scenario::from_json(sc));
  CHECK(local.run().layers[1].expert_tokens_max == 512);
  CHECK(local.result().memory.shared_weights > Bytes(0));
}

TEST_CASE("the ops listing of one layer adds up to that layer's compute under the serial schedule") {
  json sc = tiny();
  sc["workload"]["mode"] = "training";
  Simulation sim(Scenario::from_json(sc));
  const StepResult& r = sim.run();
  const OpsReport ops = sim.layer_ops();
  REQUIRE(ops.layers.size() == 4);  // dense and MoE, forward and backward
  CHECK(ops.tokens == 256);
  CHECK(ops.expert_rows == 512);
  CHECK(ops.layers[0].ops.front().op == "attn_norm");
  CHECK(ops.layers[1].pass == Pass::Backward);
  CHECK(ops.layers[1].ops.front().op == "ffn_residual.dgrad");
  CHECK(ops.layers[3].ops.front().op == "ffn_residual.dgrad");
  CHECK(ops.layers[3].ops[1].op == "unpermute.dgrad");
  // Nothing overlaps compute on a GPU in serial: a layer's compute is its forward + backward ops.
  CHECK(ops.layers[0].total() + ops.layers[1].total() == r.layers[0].compute_max);
  CHECK(ops.layers[2].total() + ops.layers[3].total() == r.layers[1].compute_max);
  const nlohmann::json j = report_json(sim)["ops"];
  CHECK(j["layers"][2]["kind"] == "moe");
  CHECK(j["layers"][2]["ops"].size() == ops.layers[2].ops.size());
  CHECK(j["layers"][2]["ops"][0]["priced_by"] == "nominal(h100-seed): roofline");
}

TEST_CASE("calibrated costs: op classes the profile lacks are priced nominal and flagged, nothing throws") {
  // h200-measured as it was before the issue-14 refit: the two 2026-11 files, no per-op families.
  std::vector<BenchFile> files;
  for (const char* f : {"h200x2-2026-11-29.json", "h200-2026-11-30-expert-large.json"})
    files.push_back(read_bench_file(std::string(EPSIM_SOURCE_DIR) + "/kernels/results/" + f));
  const std::string profile = (std::filesystem::temp_directory_path() / "epsim-step-test-h200-2026-11.json").string();
  std::ofstream(profile) << calibrate(files, HoldoutPolicy{}, "test").profile.to_json().dump() << "\n";
  json sc = tiny();
  sc["gpu"] = {{"preset", "h200"}};
  sc["cost_model"] = {{"calibration", profile}};
  sc["precision"] = {{"weights", "fp8"}, {"attention_proj", "fp8"}, {"routed_experts", "fp8"}, {"dispatch", "fp8"}};
  sc["workload"]["mode"] = "training";
  Simulation sim(Scenario::from_json(sc));
  REQUIRE_NOTHROW(sim.run());
  auto line = [&](const std::string& cls) {
    for (const auto& l : sim.result().pricing_lines)
      if (l.rfind(cls + " ", 0) == 0) return l;
    return std::string("(none)");
  };
  CHECK(line("norm").find("no measurement: nominal roofline") != std::string::npos);
  CHECK(line("attention_core_bwd").find("the profile has no attention_prefill_bwd") != std::string::npos);
  CHECK(line("attention_proj").find("the profile has no gemm_fp8") != std::string::npos);
  CHECK(line("expert_mlp").find("expert_mlp_fp8") != std::string::npos);  // measured in fp8
  CHECK(line("router_topk").find("within gate_topk") != std::string::npos);
  // Measured prices include their launches: no gap on top. An op no family prices: the nominal
  // price of its work (h200: 4.8 TB/s x 0.8) and, as the profile measured no kernel_gap_us, the
  // preset's 1 us gap.
  CHECK(sim.cost_model().kernel_gap() == Time::zero());
  const OpsReport ops = sim.layer_ops();
  const NominalCostModel nominal(sim.scenario().gpu);
  const LayerOps lo(sim.scenario().model, 1);
  CHECK(ops.layers[0].ops.front().op == "attn_norm");
  CHECK(ops.layers[0].ops.front().time == nominal.time(lo.norm(256, 1024)) + Time::us(1));
}
