#include "sim/compute_faults.h"

namespace epsim {

bool routed_expert_op(const OpName& op) {
  auto expert = [](OpKind k) { return k == OpKind::ExpertUp || k == OpKind::Swiglu || k == OpKind::ExpertDown; };
  return expert(op.kind) || (op.kind == OpKind::QuantAct && expert(op.feeds));
}

double op_cv(const KernelJitter& jitter, const OpName& op) {
  const std::string name = op.str();
  if (jitter.measures({name})) return jitter.cv({name});
  if (const auto at = name.find("dense_"); at != std::string::npos) {
    const std::string shared = name.substr(0, at) + "shared_" + name.substr(at + 6);
    if (jitter.measures({shared})) return jitter.cv({shared});
  }
  return jitter.cv({name});  // the given CV, or the fallback
}

namespace {
constexpr int kKinds = static_cast<int>(OpKind::MtpProj) + 1;
constexpr int kGrads = 4;
// Ops by (kind, grad); quant_act ops by (the GEMM they feed, grad) after them.
std::size_t cv_index(const OpName& op) {
  const int k = op.kind == OpKind::QuantAct ? kKinds + static_cast<int>(op.feeds) : static_cast<int>(op.kind);
  return static_cast<std::size_t>(k * kGrads + static_cast<int>(op.grad));
}
}  // namespace

KernelJitter make_kernel_jitter(const FaultSpec& f) {
  if (f.kernel_jitter == "lognormal") return KernelJitter::lognormal(f.kernel_cv);
  if (f.kernel_jitter == "measured") return KernelJitter::measured(read_layer_file(f.kernel_spread_file), f.kernel_cv);
  return {};
}

ComputeFaults::ComputeFaults(const Scenario& sc, const KernelJitter& jitter, int step) : seed_(sc.faults.seed), step_(step) {
  const int G = sc.cluster.gpu_count();
  if (!sc.faults.gpu_compute.empty()) {
    slowdown_.assign(static_cast<std::size_t>(G), 1.0);
    for (const auto& [gpu, speed] : sc.faults.gpu_compute) slowdown_[static_cast<std::size_t>(gpu)] = 1.0 / speed;
  }
  if (!sc.cluster.failed_gpus.empty()) {
    serving_.assign(static_cast<std::size_t>(G), 1);
    for (int g = 0; g < G; ++g) serving_[static_cast<std::size_t>(g)] = sc.serves_tokens(g) ? 1 : 0;
  }
  // Every op name: (kind or fed GEMM, gradient).
  if (jitter.enabled()) {
    cv_.assign(static_cast<std::size_t>(2 * kKinds * kGrads), 0.0);
    for (int k = 0; k < kKinds; ++k)
      for (int g = 0; g < kGrads; ++g) {
        const OpName plain{static_cast<OpKind>(k), OpKind::AttnNorm, static_cast<Grad>(g)};
        const OpName quant{OpKind::QuantAct, static_cast<OpKind>(k), static_cast<Grad>(g)};
        cv_[cv_index(plain)] = op_cv(jitter, plain);
        cv_[cv_index(quant)] = op_cv(jitter, quant);
      }
  }
}

Time ComputeFaults::duration(Time nominal, int gpu, const OpName& op, TaskId task) const {
  if (!serves_tokens(gpu) && !routed_expert_op(op)) return Time::zero();
  double f = slowdown_.empty() ? 1.0 : slowdown_[static_cast<std::size_t>(gpu)];
  if (!cv_.empty()) f *= KernelJitter::factor(seed_, step_, task, cv_[cv_index(op)]);
  return f == 1.0 ? nominal : nominal * f;
}

}  // namespace epsim
