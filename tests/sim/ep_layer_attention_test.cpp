// `epsim validate` on a measured EP layer whose micro-batches ran a whole decoder layer
// (kernels/ep_layer.cu --attention, issue 16): the scenario a case builds and the ops it simulates,
// GPU-free, on a small hand-made result file (tests/sim/data/ep2-attention-handmade.json).
#include <doctest/doctest.h>

#include <algorithm>
#include <string>

#include "models/config.h"
#include "models/errors.h"
#include "sim/ep_layer_validation.h"
#include "sim/simulation.h"

using namespace epsim;

namespace {

const std::string kFile = std::string(EPSIM_SOURCE_DIR) + "/tests/sim/data/ep2-attention-handmade.json";

// The hand-made case (the file's note): what kernels/ep_layer.cu --attention writes for 2 GPUs, 4
// experts (2 per GPU), top-2, hidden 1024, 1024 tokens per GPU as two micro-batches of one
// 512-token sequence each, GQA with 8 query heads and 2 key/value heads of 128, run in the
// interleaved dual order; every source sends 256 rows to every expert in each micro-batch
// (512 tokens x top-2 = 1024 rows = 4 x 256).
nlohmann::json attention_case(const std::string& order = "interleaved") {
  nlohmann::json c = read_json_file(kFile)["cases"][0];
  c["options"]["dual_order"] = order;
  return c;
}

const Task* find(const TaskGraph& g, int gpu, int mb, const char* op) {
  for (const auto& t : g.tasks())
    if (t.kind == TaskKind::Compute && t.gpu == gpu && t.micro_batch == mb && t.op.str() == op) return &t;
  return nullptr;
}
const Task* dispatch_arrival(const TaskGraph& g, int gpu, int mb) {
  for (const auto& t : g.tasks())
    if (t.kind == TaskKind::Arrival && t.phase == Phase::Dispatch && t.gpu == gpu && t.micro_batch == mb) return &t;
  return nullptr;
}

}  // namespace

TEST_CASE("epsim validate --attention: the case's scenario has its attention block, sequence and order") {
  const Scenario s = ep_layer_scenario(attention_case(), "f.json:cases[0]");
  CHECK(s.model.attention == AttentionKind::Mha);
  CHECK(s.model.heads == 8);
  CHECK(s.model.kv_heads == 2);
  CHECK(s.model.head_dim == 128);
  CHECK(s.model.shared_experts == 0);
  CHECK(s.workload.seq_len == 512);
  CHECK(s.workload.tokens() == 1024);
  CHECK(s.schedule.micro_batches() == 2);

  Simulation sim(s);
  sim.run();
  const TaskGraph& g = sim.graph();
  // Every op of the attention block and the MoE block's norm and residual once per GPU and
  // micro-batch; MLA's ops nowhere.
  for (const char* op : {"attn_norm", "q_proj", "kv_proj", "rope", "attn_core", "o_proj", "attn_residual", "ffn_norm",
                         "ffn_residual", "router", "router_topk", "permute", "unpermute"}) {
    CAPTURE(op);
    CHECK(std::count_if(g.tasks().begin(), g.tasks().end(), [&](const Task& t) {
            return t.kind == TaskKind::Compute && t.op.str() == op;
          }) == 4);
  }
  for (const char* op : {"q_a_norm", "q_b_proj", "kv_a_norm", "kv_b_proj"})
    CHECK(find(g, 0, 0, op) == nullptr);
  // FLOPs by hand, per micro-batch (512 tokens, one sequence of 512): q_proj 2 x 512 x 1024 x (8 x 128)
  // = 1073741824; kv_proj 2 x 512 x 1024 x (2 x 2 x 128) = 536870912; o_proj as q_proj; attn_core:
  // 8 heads x 512 x 513 / 2 causal (query, key) pairs x 2 x (128 + 128) = 537919488.
  CHECK(find(g, 0, 0, "q_proj")->work.flops == doctest::Approx(1073741824.0));
  CHECK(find(g, 1, 1, "kv_proj")->work.flops == doctest::Approx(536870912.0));
  CHECK(find(g, 0, 1, "o_proj")->work.flops == doctest::Approx(1073741824.0));
  CHECK(find(g, 1, 0, "attn_core")->work.flops == doctest::Approx(537919488.0));

  // The interleaved order: micro-batch 1's attention runs while micro-batch 0's dispatch is in
  // flight (on GPU 0: the core starts before that dispatch has arrived and ends after it began).
  const Task* core1 = find(g, 0, 1, "attn_core");
  const Task* disp0 = dispatch_arrival(g, 0, 0);
  REQUIRE(core1 != nullptr);
  REQUIRE(disp0 != nullptr);
  CHECK(core1->start < disp0->end);
  CHECK(core1->end > disp0->start);
}

TEST_CASE("epsim validate --attention: an MLA case runs DeepSeek-V3's attention in bf16") {
  nlohmann::json mc = attention_case();
  auto& o = mc["options"];
  o["attention"] = "mla";
  o["heads"] = 16;
  o["kv_heads"] = 16;
  o["head_dim"] = 192;
  o["head_dim_qk"] = 192;
  for (const auto& [k, v] : {std::pair<const char*, int>{"q_lora_rank", 1536}, {"kv_lora_rank", 512}, {"qk_nope_head_dim", 128},
                             {"qk_rope_head_dim", 64}, {"v_head_dim", 128}})
    o[k] = v;
  const Scenario s = ep_layer_scenario(mc, "f.json:cases[0]");
  CHECK(s.model.attention == AttentionKind::Mla);
  CHECK(s.model.heads == 16);
  CHECK(s.model.hidden == 1024);
  CHECK(s.model.routed_experts == 4);
  CHECK(s.model.mtp_layers == 0);
  CHECK(s.model.precision.attention_proj == NumberFormat::Bf16);
  Simulation sim(s);
  sim.run();
  // By hand, per micro-batch of 512 tokens: q_b_proj 2 x 512 x 1536 x (16 x 192) = 4831838208;
  // kv_b_proj 2 x 512 x 512 x (16 x (128 + 128)) = 2147483648; attn_core 16 heads x 131328 pairs
  // x 2 x (192 + 128) = 1344798720.
  CHECK(find(sim.graph(), 0, 0, "q_b_proj")->work.flops == doctest::Approx(4831838208.0));
  CHECK(find(sim.graph(), 1, 1, "kv_b_proj")->work.flops == doctest::Approx(2147483648.0));
  CHECK(find(sim.graph(), 0, 1, "attn_core")->work.flops == doctest::Approx(1344798720.0));
  for (const char* op : {"q_a_norm", "kv_a_norm"}) CHECK(find(sim.graph(), 1, 0, op) != nullptr);
}

TEST_CASE("epsim validate --attention: the shipped dual-microbatch order dispatches after both micro-batches' gates") {
  // dual_order "blocks" (or absent): compute A0 A1 E0 E1, communication M0 M1 D0 D1: micro-batch 0's
  // dispatch waits for micro-batch 1's count exchange, so it cannot start before 1's permute ends.
  Simulation sim(ep_layer_scenario(attention_case("blocks"), "f.json:cases[0]"));
  CHECK(sim.scenario().schedule.micro_batches() == 2);
  sim.run();
  const Task* perm1 = find(sim.graph(), 0, 1, "permute");
  const Task* disp0 = dispatch_arrival(sim.graph(), 0, 0);
  REQUIRE(perm1 != nullptr);
  REQUIRE(disp0 != nullptr);
  CHECK(disp0->start >= perm1->end);
}

TEST_CASE("epsim validate --attention: per-op phases, the gate without ffn_norm") {
  const FileValidation v = validate_ep_layer_file(kFile);
  CHECK(v.device == "NVIDIA H100 80GB HBM3 x2");
  REQUIRE(v.cases.size() == 1);
  const CaseComparison& c = v.cases[0];
  CHECK(c.label == "nccl 1024 uniform dual c1 L1 gqa8/2 s512");
  // the seven MoE phases, then the nine ops of the attention block and the MoE block's norm and
  // residual, in the layer's order, each with its measured time from the file
  std::vector<std::string> names;
  for (const auto& p : c.phases) names.push_back(p.phase);
  CHECK(names == std::vector<std::string>{"gate", "permute", "dispatch_meta", "dispatch_data", "experts", "combine",
                                          "unpermute", "attn_norm", "q_proj", "kv_proj", "rope", "attn_core", "o_proj",
                                          "attn_residual", "ffn_norm", "ffn_residual"});
  CHECK(c.phases[11].measured_us == 5.0);
  CHECK(c.phases[15].measured_us == 9.0);
  // Predicted per phase: the max over GPUs of the sum of its tasks; the gate is router + router_topk
  // (ffn_norm is its own phase), the unpermute without ffn_residual.
  Simulation sim(ep_layer_scenario(attention_case(), "f.json:cases[0]", {}, "h100-sxm"));
  sim.run();
  auto sum = [&](int gpu, std::initializer_list<const char*> ops) {
    double us = 0;
    for (int mb = 0; mb < 2; ++mb)
      for (const char* op : ops) {
        const Task* t = find(sim.graph(), gpu, mb, op);
        REQUIRE(t != nullptr);
        us += (t->end - t->start).to_us();
      }
    return us;
  };
  auto max2 = [&](std::initializer_list<const char*> ops) { return std::max(sum(0, ops), sum(1, ops)); };
  CHECK(c.phases[0].predicted_us == doctest::Approx(max2({"router", "router_topk"})));
  CHECK(c.phases[6].predicted_us == doctest::Approx(max2({"unpermute"})));
  CHECK(c.phases[14].predicted_us == doctest::Approx(max2({"ffn_norm"})));
  CHECK(c.phases[11].predicted_us == doctest::Approx(max2({"attn_core"})));
  CHECK(c.phases[11].predicted_us > 0);
}

TEST_CASE("epsim validate --attention: bad attention options name the path and the rule") {
  nlohmann::json mc = attention_case();
  mc["options"]["attention"] = "sparse";
  CHECK_THROWS_WITH_AS(ep_layer_scenario(mc, "f.json:cases[0]"),
                       doctest::Contains("f.json:cases[0].options.attention = \"sparse\": must be none, mha, gqa or mla"),
                       InputError);
  mc["options"]["attention"] = "mla";
  mc["options"]["q_lora_rank"] = 1024;
  CHECK_THROWS_WITH_AS(ep_layer_scenario(mc, "f.json:cases[0]"),
                       doctest::Contains("f.json:cases[0].options.q_lora_rank = 1024: only DeepSeek-V3's MLA (1536)"),
                       InputError);
  mc = attention_case();
  mc["options"].erase("seq_len");
  CHECK_THROWS_WITH_AS(ep_layer_scenario(mc, "f.json:cases[0]"), doctest::Contains("f.json:cases[0].options.seq_len"), InputError);
}
