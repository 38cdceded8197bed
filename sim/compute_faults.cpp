#include "sim/compute_faults.h"

#include <algorithm>

namespace epsim {

std::vector<std::vector<std::string>> phase_ops(Phase phase) {
  switch (phase) {
    case Phase::AttentionProj: return {{"q_proj", "q_b_proj", "kv_proj", "kv_b_proj", "o_proj"}};
    case Phase::AttentionCore: return {{"attn_core"}};
    case Phase::Gate: return {{"router", "router_topk"}};
    case Phase::Experts: return {{"expert_up", "swiglu", "expert_down"}};
    case Phase::SharedExpert: return {{"shared_up", "shared_swiglu", "shared_down"}};
    // The layer files time no dense layer's MLP: the shared expert is the same MLP (up GEMM, SwiGLU,
    // down GEMM) over every token, so its spreads stand in where the dense_* ops are missing.
    case Phase::DenseMlp: return {{"dense_up", "dense_swiglu", "dense_down"}, {"shared_up", "shared_swiglu", "shared_down"}};
    case Phase::LmHead: return {{"lm_head"}};
    case Phase::Permute: return {{"permute"}};
    case Phase::Unpermute: return {{"unpermute"}};
    case Phase::MtpProjection: return {{"mtp_proj"}};
    case Phase::WeightGrad:
      return {{"q_proj.wgrad", "q_b_proj.wgrad", "kv_proj.wgrad", "kv_b_proj.wgrad", "o_proj.wgrad", "router.wgrad",
               "expert_up.wgrad", "expert_down.wgrad", "shared_up.wgrad", "shared_down.wgrad"}};
    case Phase::TpComm: case Phase::Dispatch: case Phase::Combine: case Phase::CountExchange: case Phase::PipeSend: return {};
  }
  return {};
}

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
  // Every value a Phase can take (ops outside phase_ops get the given or fallback CV).
  if (jitter.enabled())
    for (int p = 0; p < 256; ++p) {
      const auto choices = phase_ops(static_cast<Phase>(p));
      auto it = std::find_if(choices.begin(), choices.end(), [&](const auto& ops) { return jitter.measures(ops); });
      cv_.push_back(jitter.cv(it != choices.end() ? *it : std::vector<std::string>{}));
    }
}

Time ComputeFaults::duration(Time nominal, int gpu, Phase phase, TaskId task) const {
  if (!serves_tokens(gpu) && phase != Phase::Experts) return Time::zero();
  double f = slowdown_.empty() ? 1.0 : slowdown_[static_cast<std::size_t>(gpu)];
  if (!cv_.empty()) f *= KernelJitter::factor(seed_, step_, task, cv_[static_cast<std::size_t>(phase)]);
  return f == 1.0 ? nominal : nominal * f;
}

}  // namespace epsim
