#include <doctest/doctest.h>

#include "models/layer_ops.h"
#include "models/cost_model.h"
#include "models/memory_model.h"

using namespace epsim;

TEST_CASE("expert MLP FLOPs per token: three 7168x2048 GEMMs") {
  const MoeModelSpec m = MoeModelSpec::preset("seed");
  const LayerOps ops(m, 1);
  CHECK(ops.expert_mlp(1, 1).flops.count() == 88080384.0);  // 2 * 3 * 7168 * 2048
  CHECK(ops.expert_mlp(512, 1).flops.count() == 512.0 * 88080384.0);
}

TEST_CASE("attention projection FLOPs per token: MHA q, k, v, o of 7168 x 128*128") {
  const MoeModelSpec m = MoeModelSpec::preset("seed");
  CHECK(LayerOps(m, 1).attention_proj(1).flops.count() == 939524096.0);  // 2 * 4 * 7168 * 16384
  // Under TP 2 a GPU computes the group's 2T tokens with half the weights: same FLOPs per GPU.
  CHECK(LayerOps(m, 2).attention_proj(1).flops.count() == 939524096.0);
}

TEST_CASE("MLA projections of deepseek-v3") {
  const MoeModelSpec m = MoeModelSpec::preset("deepseek-v3");
  // q: 7168*1536 + 1536*128*192; kv_a: 7168*576; kv_b: 512*128*256; o: 128*128*7168
  const std::int64_t params = 7168LL * 1536 + 1536LL * 128 * 192 + 7168LL * 576 + 512LL * 128 * 256 + 128LL * 128 * 7168;
  CHECK(LayerOps(m, 1).attention_proj_params() == params);
}

TEST_CASE("causal prefill attention core counts seq*(seq+1)/2 query-key pairs") {
  MoeModelSpec m = MoeModelSpec::preset("seed");
  m.heads = 2;
  m.head_dim = 4;
  // 1 sequence of 3 tokens: 6 pairs x 2 heads x (2*4 + 2*4) FLOPs = 192
  CHECK(LayerOps(m, 1).attention_core_prefill(1, 3).flops.count() == 192.0);
  // decode: 1 sequence at KV length 10: 10 x 2 x 16 = 320 FLOPs; reads 10 tokens x 2*2*4 elems x 2 B
  const OpWork d = LayerOps(m, 1).attention_core_decode(1, 10);
  CHECK(d.flops.count() == 320.0);
  CHECK(d.bytes.count() == 10 * 16 * 2);
}

TEST_CASE("seed per-GPU weight memory at attention TP 2, EP 256") {
  const MoeModelSpec m = MoeModelSpec::preset("seed");
  const LayerOps ops(m, 2);
  Parallelism par;
  par.attention_tp = 2;
  par.ep = 256;
  par.experts_per_gpu = 1;
  const MemoryReport r = estimate_memory(ops, par, Workload{}, GpuSpec::preset("h100-seed"));
  CHECK(r.attention_weights.count() == 28655484928LL);  // 61 layers x 4*7168*16384 / 2 x 2 B
  CHECK(r.dense_weights.count() == 1189085184LL);       // 3 x 3*7168*18432 / 2 x 2 B
  CHECK(r.expert_weights.count() == 5108662272LL);      // 58 x 3*7168*2048 x 2 B
  CHECK(r.shared_weights.count() == 2554331136LL);      // 58 x 3*7168*2048 / 2 x 2 B
  CHECK(r.other_weights.count() == 2066219008LL);       // (58 x 7168*256 + 129280*7168) x 2 B
  CHECK(r.weights().count() == 39573782528LL);
  // Without TP the attention weights alone (57.3 GB) leave no room in 64 GB: why seed.json uses TP 2.
  Parallelism dp = par;
  dp.attention_tp = 1;
  CHECK_FALSE(estimate_memory(LayerOps(m, 1), dp, Workload{}, GpuSpec::preset("h100-seed")).fits());
  CHECK(r.fits());
}

TEST_CASE("nominal cost model: the larger of compute and memory time") {
  GpuSpec g = GpuSpec::preset("h100-seed");  // 240 TFLOPS and 1.44 TB/s effective
  const OpWork compute_bound{OpClass::ExpertMlp, Flops(240e12 * 1e-3), Bytes(1000), 1, 1};
  const OpWork memory_bound{OpClass::Gate, Flops(1.0), Bytes(1440000000), 1, 1};
  const NominalCostModel cost(g);
  CHECK(cost.time(compute_bound) == Time::ms(1));
  CHECK(cost.time(memory_bound) == Time::ms(1));
}

TEST_CASE("prefill with a prefix cache: only the new tokens are queries, every token's k and v is read") {
  MoeModelSpec m = MoeModelSpec::preset("seed");
  m.heads = 2;
  m.head_dim = 4;
  // 1 sequence of 4 tokens, the first 2 cached: queries 2 and 3 see 3 + 4 = 7 keys (10 - 3) x 2 heads
  // x 16 FLOPs = 224; io = 2 heads x (2 new x (4 + 4) q,o + 4 x (4 + 4) k,v) = 96 elements x 2 B.
  const OpWork w = LayerOps(m, 1).attention_core_prefill(1, 4, 2);
  CHECK(w.flops.count() == 224.0);
  CHECK(w.bytes.count() == 96 * 2);
  CHECK(w.tokens == 2);
  // No cache: the full causal count (10 pairs) and 4 x 16 elements.
  CHECK(LayerOps(m, 1).attention_core_prefill(1, 4, 0).flops.count() == 320.0);
  CHECK(LayerOps(m, 1).attention_core_prefill(1, 4, 0).bytes.count() == 128 * 2);
}

TEST_CASE("decode with MTP drafts: each query reads the same KV cache once per sequence") {
  MoeModelSpec m = MoeModelSpec::preset("seed");
  m.heads = 2;
  m.head_dim = 4;
  const OpWork one = LayerOps(m, 1).attention_core_decode(1, 10, 1);
  const OpWork three = LayerOps(m, 1).attention_core_decode(1, 10, 3);
  CHECK(three.flops.count() == 3 * one.flops.count());
  CHECK(three.bytes == one.bytes);
  CHECK(three.tokens == 3);
  // The MTP projection: 2 x 7168 -> 7168 per token.
  const OpWork p = LayerOps(MoeModelSpec::preset("seed"), 1).mtp_projection(10);
  CHECK(p.flops.count() == 2.0 * 10 * 7168 * 14336);
}
