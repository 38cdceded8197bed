// One op of a decoder layer: its name (tasks/common_names.md fixes them), the block of the layer it
// belongs to, and its work. The layer program (layer_program.h) lists them per block and pass; the
// step builder emits one compute task per op, `epsim run --ops` prints them, and whole-layer
// measurements are compared to them by name.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "models/layer_ops.h"

namespace epsim {

enum class OpKind : std::uint8_t {
  AttnNorm, QProj, QANorm, QBProj, KvProj, KvANorm, KvBProj, Rope, AttnCore, OProj, AttnResidual,
  FfnNorm, Router, RouterTopk, QuantAct, QuantDispatch, Permute, ExpertUp, Swiglu, ExpertDown, Unpermute,
  SharedUp, SharedSwiglu, SharedDown, DenseUp, DenseSwiglu, DenseDown, FfnResidual, LmHead, FinalNorm,
  MtpProj,  // the MTP module's input projection (not in common_names.md: no decoder layer has it)
};
const char* to_string(OpKind k);  // "attn_norm", "q_proj", ...

// Forward, or which gradient a backward op computes: .dgrad (input gradient), .wgrad (weight
// gradient), .bwd (the attention core's whole backward).
enum class Grad : std::uint8_t { None, Dgrad, Wgrad, Bwd };

enum class Pass : std::uint8_t { Forward, Backward };

// An op's name: its kind, the GEMM a quant_act feeds ("quant_act.expert_up"), its gradient suffix.
struct OpName {
  OpKind kind = OpKind::AttnNorm;
  OpKind feeds = OpKind::AttnNorm;  // QuantAct only
  Grad grad = Grad::None;
  std::string str() const;          // "q_proj", "quant_act.o_proj", "expert_up.wgrad", "attn_core.bwd"
  bool operator==(const OpName&) const = default;
  // The inverse of str(); nullopt for a name no op has.
  static std::optional<OpName> parse(std::string_view name);
};

// Where in the layer an op runs; the step builder places communication between blocks.
enum class Block : std::uint8_t {
  AttnIn,     // attn_norm, on this GPU's tokens (before the TP all-gather)
  Attention,  // projections, norms of MLA's low-rank ones, rope, core, o_proj: the TP group's tokens, 1/tp of the heads
  AttnOut,    // attn_residual (after the TP reduce-scatter)
  MoeIn,      // ffn_norm, router, router_topk, quant_dispatch, permute: before the dispatch
  Shared,     // the shared expert: beside the dispatch (serial: before it)
  Experts,    // the GPU's routed experts on the rows a dispatch chunk brought
  MoeOut,     // unpermute, ffn_residual: after the combine
  Dense,      // a dense layer's MLP: ffn_norm ... ffn_residual
  Head,       // final_norm, lm_head: after the last layer (and after each MTP draft's layer)
  MtpIn,      // mtp_proj: the MTP module's input projection, before its decoder layer
};
const char* to_string(Block b);

struct LayerOp {
  OpName name;
  Block block;
  OpWork work;
};

}  // namespace epsim
