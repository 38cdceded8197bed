// An op's name as tasks/common_names.md fixes them: its kind, the GEMM a quant_act feeds, its
// gradient suffix ("q_proj", "quant_act.o_proj", "expert_up.wgrad", "attn_core.bwd").
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

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

}  // namespace epsim
