#include "models/layer_program.h"

#include <algorithm>

namespace epsim {

namespace {
constexpr NumberFormat kBf16 = NumberFormat::Bf16, kFp8 = NumberFormat::Fp8;

OpName named(OpKind k, Grad g = Grad::None) { return {k, k, g}; }
OpName quant_for(OpKind gemm) { return {OpKind::QuantAct, gemm, Grad::None}; }

bool is_gemm(OpClass c) {
  switch (c) {
    case OpClass::AttentionProj:
    case OpClass::Gate:
    case OpClass::DenseMlp:
    case OpClass::SharedExpert:
    case OpClass::ExpertMlp:
    case OpClass::ExpertGemm:
    case OpClass::LmHead:
    case OpClass::MtpProjection: return true;
    default: return false;
  }
}
}  // namespace

LayerProgram::LayerProgram(const LayerOps& ops, int local_shared_experts)
    : ops_(ops), shared_(local_shared_experts < 0 ? ops.model().shared_experts : local_shared_experts) {}

std::vector<Block> LayerProgram::blocks(bool moe, Pass pass) const {
  std::vector<Block> b = moe ? std::vector<Block>{Block::AttnIn, Block::Attention, Block::AttnOut, Block::MoeIn,
                                                  Block::Shared, Block::Experts, Block::MoeOut}
                            : std::vector<Block>{Block::AttnIn, Block::Attention, Block::AttnOut, Block::Dense};
  if (pass == Pass::Backward) std::reverse(b.begin(), b.end());
  return b;
}

namespace {
// Each op's work carries its name (OpWork::name, the hook for pricing by op name).
std::vector<LayerOp> with_names(std::vector<LayerOp> ops) {
  for (LayerOp& o : ops) {
    o.work.name = o.name;
    o.work.named = true;
  }
  return ops;
}
}  // namespace

std::vector<LayerOp> LayerProgram::block(Block b, const LayerShape& s, Pass pass) const {
  std::vector<LayerOp> f = with_names(forward(b, s));
  return pass == Pass::Forward ? f : reversed(std::move(f));
}

std::vector<LayerOp> LayerProgram::forward(Block b, const LayerShape& s) const {
  const MoeModelSpec& m = ops_.model();
  const Precision& p = m.precision;
  const bool attention = m.attention != AttentionKind::None;
  const std::int64_t T = s.tokens, G = T * ops_.tp(), tp = ops_.tp();
  std::vector<LayerOp> out;
  auto add = [&](OpName n, OpWork w) { out.push_back({n, b, w}); };
  switch (b) {
    case Block::AttnIn:
      if (attention) add(named(OpKind::AttnNorm), ops_.norm(T, m.hidden));
      break;
    case Block::Attention:
      if (attention) this->attention(out, s);
      break;
    case Block::AttnOut:
      if (attention) add(named(OpKind::AttnResidual), ops_.residual(T));
      break;
    case Block::MoeIn:
      if (attention) add(named(OpKind::FfnNorm), ops_.norm(T, m.hidden));
      add(named(OpKind::Router), ops_.gate(T));
      add(named(OpKind::RouterTopk), ops_.router_topk(T));
      if (p.dispatch == kFp8) add(named(OpKind::QuantDispatch), ops_.quant(T, m.hidden));
      add(named(OpKind::Permute), ops_.permute(T));
      break;
    case Block::Shared: {
      if (shared_ == 0) break;
      // The TP group's rows with 1/tp of the shared experts' intermediate width.
      const std::int64_t width = m.expert_intermediate * shared_ / tp;
      mlp(out, b, {OpKind::SharedUp, OpKind::SharedSwiglu, OpKind::SharedDown}, p.shared_expert, OpClass::SharedExpert, G, width,
          false, 1);
      break;
    }
    case Block::Experts: break;  // experts(): per chunk, on the rows it brought
    case Block::MoeOut:
      add(named(OpKind::Unpermute), ops_.unpermute(T));
      if (attention) add(named(OpKind::FfnResidual), ops_.residual(T));
      break;
    case Block::Dense:
      if (attention) add(named(OpKind::FfnNorm), ops_.norm(T, m.hidden));
      mlp(out, b, {OpKind::DenseUp, OpKind::DenseSwiglu, OpKind::DenseDown}, p.dense_mlp, OpClass::DenseMlp, G,
          m.dense_intermediate / tp, false, 1);
      if (attention) add(named(OpKind::FfnResidual), ops_.residual(T));
      break;
    case Block::Head:
      add(named(OpKind::FinalNorm), ops_.norm(T, m.hidden));
      add(named(OpKind::LmHead), ops_.lm_head(s.logits));
      break;
    case Block::MtpIn:
      add(named(OpKind::MtpProj), ops_.mtp_projection(T));
      break;
  }
  return out;
}

void LayerProgram::attention(std::vector<LayerOp>& out, const LayerShape& s) const {
  const MoeModelSpec& m = ops_.model();
  const NumberFormat f = m.precision.attention_proj;
  const std::int64_t tp = ops_.tp(), G = s.tokens * tp, h = m.hidden, heads = m.heads / tp;
  auto add = [&](OpName n, OpWork w) { out.push_back({n, Block::Attention, w}); };
  auto gemm = [&](OpKind k, std::int64_t in, std::int64_t n) {
    add(named(k), ops_.linear(OpClass::AttentionProj, f, G, in, n, ops_.weight(in, n)));
  };
  auto quant = [&](OpKind feeds, std::int64_t width) {
    if (f == kFp8) add(quant_for(feeds), ops_.quant(G, width));
  };
  quant(OpKind::QProj, h);
  if (m.attention == AttentionKind::Mha) {
    gemm(OpKind::QProj, h, heads * m.head_dim);
    quant(OpKind::KvProj, h);
    gemm(OpKind::KvProj, h, 2 * ops_.kv_heads_per_gpu() * m.head_dim);
  } else {
    const std::int64_t r = m.q_lora_rank, lora = m.kv_lora_rank, dqk = m.qk_head_dim();
    if (r > 0) {
      gemm(OpKind::QProj, h, r);  // q_a_proj, replicated over TP
      add(named(OpKind::QANorm), ops_.norm(G, r));
      quant(OpKind::QBProj, r);
      gemm(OpKind::QBProj, r, heads * dqk);
    } else {
      gemm(OpKind::QProj, h, heads * dqk);
    }
    quant(OpKind::KvProj, h);
    gemm(OpKind::KvProj, h, lora + m.qk_rope_head_dim);  // kv_a_proj_with_mqa, replicated over TP
    add(named(OpKind::KvANorm), ops_.norm(G, lora));
    if (s.mode == Mode::Decode) {
      add(named(OpKind::KvBProj), ops_.kv_b_absorbed(G));
    } else {
      quant(OpKind::KvBProj, lora);
      gemm(OpKind::KvBProj, lora, heads * (m.qk_nope_head_dim + m.v_head_dim));
    }
  }
  add(named(OpKind::Rope), ops_.rope(G, s.mode == Mode::Decode ? s.kv_len : 0));  // decode: with the KV append
  add(named(OpKind::AttnCore), s.mode == Mode::Decode ? ops_.attention_core_decode(s.tokens / s.queries, s.kv_len, s.queries, s.window)
                                                      : ops_.attention_core_prefill(s.seqs, s.seq_len, s.cached, s.window));
  quant(OpKind::OProj, heads * m.v_dim());
  gemm(OpKind::OProj, heads * m.v_dim(), h);
}

void LayerProgram::mlp(std::vector<LayerOp>& out, Block b, MlpKinds k, NumberFormat f, OpClass cls, std::int64_t rows,
                       std::int64_t width, bool input_fp8, int copies) const {
  const std::int64_t h = ops_.model().hidden;
  auto add = [&](OpName n, OpWork w) { out.push_back({n, b, w}); };
  auto gemm = [&](OpKind kind, std::int64_t in, std::int64_t n) {
    OpWork w = cls == OpClass::ExpertGemm
                   ? (kind == k.up ? ops_.expert_gemm_up(rows) : ops_.expert_gemm_down(rows))
                   : ops_.linear(cls, f, rows, in, n, ops_.weight(in, n) * copies);
    w.experts = copies;
    w.sizes.m = rows / copies;  // a per-expert loop: rows per expert, `copies` calls
    add(named(kind), w);
  };
  if (f == kFp8 && !input_fp8) add(quant_for(k.up), ops_.quant(rows, h));
  gemm(k.up, h, 2 * width);
  add(named(k.act), ops_.swiglu(cls == OpClass::ExpertMlp || cls == OpClass::ExpertGemm ? OpClass::ExpertActivation : OpClass::Activation,
                                rows, width));
  if (f == kFp8) add(quant_for(k.down), ops_.quant(rows, width));
  gemm(k.down, width, h);
}

std::vector<LayerOp> LayerProgram::experts(std::int64_t rows, int experts, Pass pass, bool per_expert) const {
  const MoeModelSpec& m = ops_.model();
  std::vector<LayerOp> out;
  mlp(out, Block::Experts, {OpKind::ExpertUp, OpKind::Swiglu, OpKind::ExpertDown}, m.precision.routed_experts,
      per_expert ? OpClass::ExpertGemm : OpClass::ExpertMlp, rows, m.expert_intermediate, m.precision.dispatch == kFp8,
      per_expert ? 1 : std::max(1, experts));
  out = with_names(std::move(out));
  return pass == Pass::Forward ? out : reversed(std::move(out));
}

std::vector<LayerOp> LayerProgram::backward(const LayerOp& f) const {
  auto with = [&](Grad g, OpWork w) {
    w.name = {f.name.kind, f.name.feeds, g};
    w.named = true;
    return LayerOp{w.name, f.block, w};
  };
  const OpWork& w = f.work;
  if (is_gemm(w.op)) return {with(Grad::Dgrad, w), with(Grad::Wgrad, w)};
  switch (w.op) {
    case OpClass::AttentionCore: return {with(Grad::Bwd, ops_.attention_core_backward(w))};
    case OpClass::Permute: {  // gathers each token's top_k row gradients back and sums them
      OpWork u = ops_.unpermute(w.tokens);
      return {with(Grad::Dgrad, u)};
    }
    case OpClass::Unpermute:  // scatters each token's gradient to its top_k rows, bf16
      return {with(Grad::Dgrad, ops_.permute(w.tokens, kBf16))};
    default: break;
  }
  if (f.name.kind == OpKind::QuantDispatch) return {};
  OpWork d = w;
  d.flops = w.flops * 2.0;
  d.bytes = w.bytes + w.bytes;
  return {with(Grad::Dgrad, d)};
}

std::vector<LayerOp> LayerProgram::reversed(std::vector<LayerOp> fwd) const {
  std::vector<LayerOp> out;
  for (auto it = fwd.rbegin(); it != fwd.rend(); ++it)
    for (LayerOp& b : backward(*it)) out.push_back(std::move(b));
  return out;
}

}  // namespace epsim
