#include "models/op_name.h"

namespace epsim {

namespace {
constexpr OpKind kKinds[] = {
    OpKind::AttnNorm,  OpKind::QProj,         OpKind::QANorm,    OpKind::QBProj,     OpKind::KvProj,      OpKind::KvANorm,
    OpKind::KvBProj,   OpKind::Rope,          OpKind::AttnCore,  OpKind::OProj,      OpKind::AttnResidual, OpKind::FfnNorm,
    OpKind::Router,    OpKind::RouterTopk,    OpKind::QuantAct,  OpKind::QuantDispatch, OpKind::Permute,   OpKind::ExpertUp,
    OpKind::Swiglu,    OpKind::ExpertDown,    OpKind::Unpermute, OpKind::SharedUp,   OpKind::SharedSwiglu, OpKind::SharedDown,
    OpKind::DenseUp,   OpKind::DenseSwiglu,   OpKind::DenseDown, OpKind::FfnResidual, OpKind::LmHead,     OpKind::FinalNorm,
    OpKind::MtpProj,
};

const char* suffix(Grad g) {
  switch (g) {
    case Grad::None: return "";
    case Grad::Dgrad: return ".dgrad";
    case Grad::Wgrad: return ".wgrad";
    case Grad::Bwd: return ".bwd";
  }
  return "";
}

std::optional<OpKind> kind_named(std::string_view s) {
  for (OpKind k : kKinds)
    if (s == to_string(k)) return k;
  return std::nullopt;
}
}  // namespace

const char* to_string(OpKind k) {
  switch (k) {
    case OpKind::AttnNorm: return "attn_norm";
    case OpKind::QProj: return "q_proj";
    case OpKind::QANorm: return "q_a_norm";
    case OpKind::QBProj: return "q_b_proj";
    case OpKind::KvProj: return "kv_proj";
    case OpKind::KvANorm: return "kv_a_norm";
    case OpKind::KvBProj: return "kv_b_proj";
    case OpKind::Rope: return "rope";
    case OpKind::AttnCore: return "attn_core";
    case OpKind::OProj: return "o_proj";
    case OpKind::AttnResidual: return "attn_residual";
    case OpKind::FfnNorm: return "ffn_norm";
    case OpKind::Router: return "router";
    case OpKind::RouterTopk: return "router_topk";
    case OpKind::QuantAct: return "quant_act";
    case OpKind::QuantDispatch: return "quant_dispatch";
    case OpKind::Permute: return "permute";
    case OpKind::ExpertUp: return "expert_up";
    case OpKind::Swiglu: return "swiglu";
    case OpKind::ExpertDown: return "expert_down";
    case OpKind::Unpermute: return "unpermute";
    case OpKind::SharedUp: return "shared_up";
    case OpKind::SharedSwiglu: return "shared_swiglu";
    case OpKind::SharedDown: return "shared_down";
    case OpKind::DenseUp: return "dense_up";
    case OpKind::DenseSwiglu: return "dense_swiglu";
    case OpKind::DenseDown: return "dense_down";
    case OpKind::FfnResidual: return "ffn_residual";
    case OpKind::LmHead: return "lm_head";
    case OpKind::FinalNorm: return "final_norm";
    case OpKind::MtpProj: return "mtp_proj";
  }
  return "?";
}

std::string OpName::str() const {
  std::string s = to_string(kind);
  if (kind == OpKind::QuantAct) s += std::string(".") + to_string(feeds);
  return s + suffix(grad);
}

std::optional<OpName> OpName::parse(std::string_view name) {
  OpName n;
  for (Grad g : {Grad::Dgrad, Grad::Wgrad, Grad::Bwd}) {
    const std::string_view s = suffix(g);
    if (name.size() > s.size() && name.substr(name.size() - s.size()) == s) {
      n.grad = g;
      name.remove_suffix(s.size());
      break;
    }
  }
  const auto dot = name.find('.');
  const auto kind = kind_named(name.substr(0, dot));
  if (!kind) return std::nullopt;
  n.kind = *kind;
  if (dot != std::string_view::npos) {
    const auto feeds = kind_named(name.substr(dot + 1));
    if (n.kind != OpKind::QuantAct || !feeds) return std::nullopt;
    n.feeds = *feeds;
  } else if (n.kind == OpKind::QuantAct) {
    return std::nullopt;
  }
  if ((n.grad == Grad::Bwd) != (n.kind == OpKind::AttnCore && n.grad != Grad::None)) return std::nullopt;
  return n;
}

}  // namespace epsim
