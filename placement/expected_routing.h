// The expected routing matrix a placement is optimised for: per source GPU and logical expert, the
// expected number of tokens that select the expert (from the gate's selection probabilities, gate
// samples, or measured per-expert load statistics).
#pragma once

#include <vector>

#include "models/gate_model.h"

namespace epsim {

struct ExpectedRouting {
  int sources = 0;
  int experts = 0;
  std::vector<double> tokens;  // per source
  std::vector<double> counts;  // [s * experts + e]

  double at(int s, int e) const { return counts[static_cast<std::size_t>(s) * static_cast<std::size_t>(experts) + static_cast<std::size_t>(e)]; }
  // Tokens that selected each expert, summed over sources.
  std::vector<double> expert_load() const;

  // The mean of gate samples (all of the same shape).
  static ExpectedRouting mean(const std::vector<RoutingSample>& samples);
  // Every source's tokens select expert e with probability p[e] (GateModel::selection_probabilities).
  static ExpectedRouting from_probabilities(const std::vector<double>& p, int sources, double tokens_per_source);
  // Every source routes `tokens_per_source` x top_k picks in proportion to `load` (per expert),
  // each expert capped at one pick per token.
  static ExpectedRouting from_load(const std::vector<double>& load, int sources, double tokens_per_source, int top_k);
};

}  // namespace epsim
