#include "models/expert_bias.h"

#include <string>

#include "models/errors.h"

namespace epsim {

void ExpertBias::update(int layer, const std::vector<std::int64_t>& load) {
  if (layer < 0 || static_cast<std::size_t>(layer) >= bias_.size())
    throw SimulationError("ExpertBias::update: layer " + std::to_string(layer) + " out of range");
  if (load.size() != static_cast<std::size_t>(experts_))
    throw SimulationError("ExpertBias::update: " + std::to_string(load.size()) + " loads for " + std::to_string(experts_) + " experts");
  // Compare load_e x E with the total instead of load_e with the mean: exact in integers.
  std::int64_t total = 0;
  for (const auto l : load) total += l;
  const std::int64_t E = experts_;
  auto& b = bias_[static_cast<std::size_t>(layer)];
  for (std::size_t e = 0; e < load.size(); ++e) {
    const std::int64_t scaled = load[e] * E;
    if (scaled < total) b[e] += step_;
    else if (scaled > total) b[e] -= step_;
  }
}

bool ExpertBias::is_zero(int layer) const {
  for (const double x : at(layer))
    if (x != 0.0) return false;
  return true;
}

}  // namespace epsim
