#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "models/layer_program.h"

using namespace epsim;

namespace {
std::vector<std::string> names(const std::vector<LayerOp>& ops) {
  std::vector<std::string> out;
  for (const LayerOp& o : ops) out.push_back(o.name.str());
  return out;
}
using Names = std::vector<std::string>;
const LayerShape kPrefill{Mode::Prefill, 4096, 1, 4096, 0, 1};
}  // namespace

TEST_CASE("the seed's MoE layer, forward: every op of common_names.md in run order") {
  const MoeModelSpec m = MoeModelSpec::preset("seed");
  const LayerOps ops(m, 2);
  const LayerProgram p(ops);
  CHECK(p.blocks(true, Pass::Forward) == std::vector<Block>{Block::AttnIn, Block::Attention, Block::AttnOut, Block::MoeIn,
                                                             Block::Shared, Block::Experts, Block::MoeOut});
  CHECK(names(p.block(Block::AttnIn, kPrefill, Pass::Forward)) == Names{"attn_norm"});
  CHECK(names(p.block(Block::Attention, kPrefill, Pass::Forward)) == Names{"q_proj", "kv_proj", "rope", "attn_core", "o_proj"});
  CHECK(names(p.block(Block::AttnOut, kPrefill, Pass::Forward)) == Names{"attn_residual"});
  CHECK(names(p.block(Block::MoeIn, kPrefill, Pass::Forward)) == Names{"ffn_norm", "router", "router_topk", "permute"});
  CHECK(names(p.block(Block::Shared, kPrefill, Pass::Forward)) == Names{"shared_up", "shared_swiglu", "shared_down"});
  CHECK(names(p.experts(32768, 1, Pass::Forward)) == Names{"expert_up", "swiglu", "expert_down"});
  CHECK(names(p.block(Block::MoeOut, kPrefill, Pass::Forward)) == Names{"unpermute", "ffn_residual"});
  CHECK(names(p.block(Block::Head, kPrefill, Pass::Forward)) == Names{"final_norm", "lm_head"});
  CHECK(names(p.block(Block::Dense, kPrefill, Pass::Forward)) == Names{"ffn_norm", "dense_up", "dense_swiglu", "dense_down", "ffn_residual"});
  // Routed shared experts are not computed locally.
  CHECK(LayerProgram(ops, 0).block(Block::Shared, kPrefill, Pass::Forward).empty());
}

TEST_CASE("per-op work of the seed at TP 2: the GEMMs add up to the classes they replace") {
  const MoeModelSpec m = MoeModelSpec::preset("seed");
  const LayerOps ops(m, 2);
  const LayerProgram p(ops);
  const auto attn = p.block(Block::Attention, kPrefill, Pass::Forward);
  // 8192 rows (4096 tokens x TP 2), 64 of 128 heads of 128 per GPU: q 7168 -> 8192, kv 7168 ->
  // 16384 (k and v), o 8192 -> 7168.
  CHECK(attn[0].work.flops.count() == 2.0 * 8192 * 7168 * 8192);
  CHECK(attn[1].work.flops.count() == 2.0 * 8192 * 7168 * 16384);
  CHECK(attn[4].work.flops.count() == 2.0 * 8192 * 8192 * 7168);
  CHECK(attn[0].work.flops + attn[1].work.flops + attn[4].work.flops == ops.attention_proj(4096).flops);
  // q_proj bytes: weights 7168 x 8192 x 2, input 8192 x 7168 x 2, output 8192 x 8192 x 2.
  CHECK(attn[0].work.bytes.count() == 7168LL * 8192 * 2 + 8192LL * 7168 * 2 + 8192LL * 8192 * 2);
  // rope rotates q's 64 heads and k's 64 heads of 128 for 8192 rows: read and written, bf16.
  CHECK(attn[2].work.bytes.count() == 8192LL * 128 * 128 * 4);
  CHECK(attn[3].work.flops == ops.attention_core_prefill(1, 4096).flops);
  // The expert MLP's three ops: the same FLOPs as the grouped MLP class, the SwiGLU reading 2I and
  // writing I per row.
  const auto e = p.experts(32768, 1, Pass::Forward);
  CHECK(e[0].work.flops + e[2].work.flops == ops.expert_mlp(32768, 1).flops);
  CHECK(e[1].work.bytes.count() == 32768LL * 3 * 2048 * 2);
  // attn_norm: 4096 x 7168 read and written plus the weight; ffn_residual: two read, one written.
  CHECK(p.block(Block::AttnIn, kPrefill, Pass::Forward)[0].work.bytes.count() == 4096LL * 7168 * 4 + 7168 * 2);
  CHECK(p.block(Block::MoeOut, kPrefill, Pass::Forward)[1].work.bytes.count() == 4096LL * 7168 * 6);
  // router_topk: 4096 x 256 logits read (bf16), 8 x (index, weight) of 4 B each written per token.
  CHECK(p.block(Block::MoeIn, kPrefill, Pass::Forward)[2].work.bytes.count() == 4096LL * 256 * 2 + 4096LL * 8 * 8);
}

TEST_CASE("backward: GEMMs as dgrad and wgrad, attn_core.bwd at 2.5x, blocks and ops reversed") {
  const MoeModelSpec m = MoeModelSpec::preset("seed");
  const LayerOps ops(m, 1);
  const LayerProgram p(ops);
  CHECK(p.blocks(true, Pass::Backward).front() == Block::MoeOut);
  CHECK(p.blocks(true, Pass::Backward).back() == Block::AttnIn);
  const auto bwd = p.block(Block::Attention, kPrefill, Pass::Backward);
  CHECK(names(bwd) == Names{"o_proj.dgrad", "o_proj.wgrad", "attn_core.bwd", "rope.dgrad", "kv_proj.dgrad", "kv_proj.wgrad",
                            "q_proj.dgrad", "q_proj.wgrad"});
  const auto fwd = p.block(Block::Attention, kPrefill, Pass::Forward);
  CHECK(bwd[0].work.flops == fwd[4].work.flops);  // each of dgrad and wgrad: the forward GEMM's FLOPs
  CHECK(bwd[2].work.flops.count() == 2.5 * fwd[3].work.flops.count());
  CHECK(bwd[2].work.op == OpClass::AttentionCoreBwd);
  CHECK(bwd[3].work.bytes == fwd[2].work.bytes + fwd[2].work.bytes);
  CHECK(names(p.experts(512, 1, Pass::Backward)) ==
        Names{"expert_down.dgrad", "expert_down.wgrad", "swiglu.dgrad", "expert_up.dgrad", "expert_up.wgrad"});
  // permute's gradient gathers the rows back as an unpermute does, and the other way round.
  const auto moe_in = p.block(Block::MoeIn, kPrefill, Pass::Backward);
  CHECK(names(moe_in) == Names{"permute.dgrad", "router_topk.dgrad", "router.dgrad", "router.wgrad", "ffn_norm.dgrad"});
  CHECK(moe_in[0].work.op == OpClass::Unpermute);
  CHECK(p.block(Block::MoeOut, kPrefill, Pass::Backward)[1].work.op == OpClass::Permute);
}

TEST_CASE("deepseek-v3 in fp8: MLA's low-rank path, a quant_act before every fp8 GEMM not fed fp8") {
  const MoeModelSpec m = MoeModelSpec::preset("deepseek-v3");
  const LayerOps ops(m, 1);
  const LayerProgram p(ops);
  CHECK(names(p.block(Block::Attention, kPrefill, Pass::Forward)) ==
        Names{"quant_act.q_proj", "q_proj", "q_a_norm", "quant_act.q_b_proj", "q_b_proj", "quant_act.kv_proj", "kv_proj",
              "kv_a_norm", "quant_act.kv_b_proj", "kv_b_proj", "rope", "attn_core", "quant_act.o_proj", "o_proj"});
  CHECK(names(p.block(Block::MoeIn, kPrefill, Pass::Forward)) == Names{"ffn_norm", "router", "router_topk", "quant_dispatch", "permute"});
  // The fp8 dispatch brings expert_up's input quantised already.
  CHECK(names(p.experts(512, 8, Pass::Forward)) == Names{"expert_up", "swiglu", "quant_act.expert_down", "expert_down"});
  CHECK(names(p.block(Block::Shared, kPrefill, Pass::Forward)) ==
        Names{"quant_act.shared_up", "shared_up", "shared_swiglu", "quant_act.shared_down", "shared_down"});
  // quant_act of one 7168-wide token: 14336 B read, 7168 + 56 x 4 written.
  CHECK(ops.quant(1, 7168).bytes.count() == 14336 + 7392);
  // An fp8 GEMM reads its input at 1 byte + scales: expert_up of 1 row over 8 experts' weights.
  const OpWork up = p.experts(1, 8, Pass::Forward)[0].work;
  CHECK(up.precision == NumberFormat::Fp8);
  CHECK(up.experts == 8);
  CHECK(up.bytes.count() == 8LL * (7168 * 4096 + 56 * 32 * 4) + 7392 + 4096 * 2);
  // The attention core stays bf16.
  CHECK(p.block(Block::Attention, kPrefill, Pass::Forward)[11].work.op == OpClass::AttentionCore);
  CHECK(p.block(Block::Attention, kPrefill, Pass::Forward)[11].work.precision == NumberFormat::Bf16);
  CHECK(p.block(Block::Attention, kPrefill, Pass::Forward)[11].work.name.str() == "attn_core");
}

TEST_CASE("MLA decode: kv_b_proj absorbed, the core over the latent") {
  const MoeModelSpec m = MoeModelSpec::preset("deepseek-v3");
  const LayerOps ops(m, 1);
  const LayerProgram p(ops);
  const LayerShape decode{Mode::Decode, 64, 64, 0, 4096, 64};
  const auto attn = p.block(Block::Attention, decode, Pass::Forward);
  CHECK(names(attn) == Names{"quant_act.q_proj", "q_proj", "q_a_norm", "quant_act.q_b_proj", "q_b_proj", "quant_act.kv_proj",
                             "kv_proj", "kv_a_norm", "kv_b_proj", "rope", "attn_core", "quant_act.o_proj", "o_proj"});
  // q_nope (128) into the 512-wide latent and the latent output into v (128), 128 heads, 64 rows.
  CHECK(attn[8].work.flops.count() == 2.0 * 64 * 128 * 512 * 256);
  // Per head and cached token: 2 x (512 + 64) for the scores, 2 x 512 for the values.
  CHECK(attn[10].work.flops.count() == 64.0 * 128 * 4096 * 2 * (576 + 512));
  CHECK(attn[10].work.bytes.count() == 64LL * 4096 * 1152);  // the latent cache, read once
  // The sizes a measured profile prices them by (op_family.h): the two absorbed products, the
  // rope with its KV append into the latent cache, the core as MQA over it.
  const OpWork::Sizes& kvb = attn[8].work.sizes;
  CHECK(std::vector<std::int64_t>{kvb.m, kvb.heads, kvb.kv_lora, kvb.head_dim_qk, kvb.head_dim_v} ==
        std::vector<std::int64_t>{64, 128, 512, 128, 128});
  CHECK(attn[9].work.kv_len == 4096);
  CHECK(attn[9].work.sizes.kv_lora == 512);
  CHECK(attn[9].work.sizes.rope_dim == 64);
  CHECK(attn[9].work.sizes.head_dim_qk == 192);
  CHECK(attn[10].work.sizes.kv_lora == 512);
  // Prefill's rope has no append (kv_len 0) and keeps the assembling kernel's sizes.
  const LayerShape prefill{Mode::Prefill, 64, 1, 64, 0, 1};
  const auto pre = p.block(Block::Attention, prefill, Pass::Forward);
  CHECK(pre[10].work.name.str() == "rope");
  CHECK(pre[10].work.kv_len == 0);
  CHECK(pre[10].work.sizes.kv_lora == 0);
}

TEST_CASE("GQA: kv_proj and the KV read shrink with kv_heads") {
  MoeModelSpec m = MoeModelSpec::preset("seed");
  m.hidden = 4096;
  m.heads = 32;
  m.kv_heads = 8;
  const LayerOps ops(m, 1);
  const auto attn = LayerProgram(ops).block(Block::Attention, kPrefill, Pass::Forward);
  CHECK(attn[1].work.flops.count() == 2.0 * 4096 * 4096 * (2 * 8 * 128));
  // The core reads q (32 heads), k and v (8 heads) and writes o (32 heads) per token, bf16.
  CHECK(attn[3].work.bytes.count() == 4096LL * (32 * 128 + 8 * 256) * 2 + 4096LL * 32 * 128 * 2);
  // Decode reads 2 x 8 x 128 elements per cached token.
  CHECK(ops.attention_core_decode(1, 100).bytes.count() == 100 * 2 * 8 * 128 * 2);
}

TEST_CASE("op names: every name round-trips, others are refused") {
  for (const char* n : {"attn_norm", "q_proj", "q_a_norm", "q_b_proj", "kv_proj", "kv_a_norm", "kv_b_proj", "rope", "attn_core",
                        "o_proj", "attn_residual", "ffn_norm", "router", "router_topk", "quant_act.expert_up", "quant_dispatch",
                        "permute", "expert_up", "swiglu", "expert_down", "unpermute", "shared_up", "shared_swiglu", "shared_down",
                        "dense_up", "dense_swiglu", "dense_down", "ffn_residual", "lm_head", "final_norm", "expert_up.dgrad",
                        "expert_up.wgrad", "attn_core.bwd", "quant_act.o_proj.dgrad"}) {
    CAPTURE(n);
    REQUIRE(OpName::parse(n).has_value());
    CHECK(OpName::parse(n)->str() == n);
  }
  for (const char* n : {"q_proj.bwd", "attn_core.dgrad", "quant_act", "router.expert_up", "gemm", ""}) {
    CAPTURE(n);
    CHECK_FALSE(OpName::parse(n).has_value());
  }
}
