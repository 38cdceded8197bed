// Distribution-level sampling of one source GPU's routing: how many of its T tokens select each
// expert, given the per-token selection probabilities p_e (sum_e p_e = top_k, p_e <= 1).
//
// Approximation, stated once: each expert's count is drawn as Binomial(T, p_e) independently (its
// exact marginal law), then the counts are conditioned on their known total T x top_k: the surplus
// or deficit D (~ sqrt(T top_k)) is spread over the experts in proportion to their variances
// T p_e (1 - p_e), rounded to integers that sum to D, never leaving [0, T]. For normals this
// conditioning is exact (X given its sum is X shifted by variance shares); for binomials it is the
// normal approximation. Ignored: the correlations between the experts one token picks beyond the
// fixed total (that a token never picks one expert twice is kept through counts <= T).
// Cost: one binomial draw per expert and two passes over the experts.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "models/random_stream.h"

namespace epsim {

// The sampler of one probability vector and token count, set up once and drawn for every source.
class CountSampler {
 public:
  // Requires sum(p) = top_k (to 1e-9 relative) and 0 <= p_e <= 1.
  CountSampler(const std::vector<double>& p, std::int64_t tokens, int top_k);
  // Writes counts[e] for every expert: 0 <= counts[e] <= tokens, sum = tokens x top_k.
  void draw(RandomStream& rng, std::span<std::int64_t> counts) const;

 private:
  std::vector<double> p_;
  std::vector<Binomial> binomials_;
  std::vector<double> share_;  // running sum of variances / total variance, per expert
  std::int64_t tokens_;
  int top_k_;
};

// One draw with a fresh CountSampler. Writes counts[e] for every expert: 0 <= counts[e] <= tokens, sum = tokens x top_k. Requires
// sum(p) = top_k (to 1e-9 relative) and 0 <= p_e <= 1.
void sample_counts(RandomStream& rng, const std::vector<double>& p, std::int64_t tokens, int top_k,
                   std::span<std::int64_t> counts);

}  // namespace epsim
