// Auxiliary-loss-free load balancing (DeepSeek-V3): a per-expert bias added to the gate's selection
// score, updated after every step from the observed load,
//     bias_e += u x sign(mean load - load_e)
// so under-loaded experts become more attractive and over-loaded ones less. The bias only steers
// selection (it does not scale the expert's output). In the gate model the score is the log of the
// popularity weight, so an expert's selection weight becomes w_e x exp(bias_e).
#pragma once

#include <cstdint>
#include <vector>

namespace epsim {

class ExpertBias {
 public:
  ExpertBias(int layers, int experts, double step) : step_(step), experts_(experts),
      bias_(static_cast<std::size_t>(layers), std::vector<double>(static_cast<std::size_t>(experts), 0.0)) {}
  // One sign-rule update of `layer` from its per-expert load (any unit; only comparisons matter).
  void update(int layer, const std::vector<std::int64_t>& load);
  const std::vector<double>& at(int layer) const { return bias_[static_cast<std::size_t>(layer)]; }
  bool is_zero(int layer) const;
  double step() const { return step_; }

 private:
  double step_;
  int experts_;
  std::vector<std::vector<double>> bias_;  // [layer][expert]
};

}  // namespace epsim
