#include "models/count_sampler.h"

#include <algorithm>
#include <cmath>

#include "models/errors.h"
#include "models/units.h"

namespace epsim {

// Picks one expert with probability proportional to weight among those `eligible` accepts; the
// cumulative weights are fixed, so an ineligible pick is redrawn (rare: only capped experts).
template <class Eligible>
static std::size_t pick(RandomStream& rng, const std::vector<double>& cumulative, Eligible eligible) {
  const double total = cumulative.back();
  for (int attempt = 0; attempt < 64; ++attempt) {
    const double u = rng.uniform() * total;
    const auto it = std::upper_bound(cumulative.begin(), cumulative.end(), u);
    const std::size_t e = static_cast<std::size_t>(std::min<std::ptrdiff_t>(it - cumulative.begin(),
                                                                          static_cast<std::ptrdiff_t>(cumulative.size()) - 1));
    if (eligible(e)) return e;
  }
  for (std::size_t e = 0; e < cumulative.size(); ++e)  // deterministic fallback
    if (eligible(e)) return e;
  throw SimulationError("sample_counts: no expert can take the correction");
}

CountSampler::CountSampler(const std::vector<double>& p, std::int64_t tokens, int top_k)
    : p_(p), tokens_(tokens), top_k_(top_k) {
  binomials_.reserve(p.size());
  for (const double x : p) binomials_.emplace_back(tokens, x);
  double V = 0.0;
  for (const double x : p) V += x * (1.0 - x);
  if (V > 0.0) {
    double running = 0.0;
    for (const double x : p) {
      running += x * (1.0 - x);
      share_.push_back(running / V);
    }
  }
}

void CountSampler::draw(RandomStream& rng, std::span<std::int64_t> counts) const {
  const std::size_t E = p_.size();
  const std::int64_t tokens = tokens_;
  if (counts.size() != E) throw SimulationError("CountSampler: counts and probabilities differ in size");
  std::int64_t sum = 0;
  for (std::size_t e = 0; e < E; ++e) {
    counts[e] = binomials_[e](rng);
    sum += counts[e];
  }
  std::int64_t deficit = tokens * top_k_ - sum;
  if (deficit == 0) return;
  // For independent normals X_e of variances v_e, X conditioned on sum X = s is distributed as
  // X_e + v_e / V x (s - sum X): shift every count by its variance share of the deficit, rounded
  // systematically (running sum) so the shifts are integers that add up to the deficit exactly.
  if (!share_.empty()) {
    std::int64_t given = 0;
    const double d = static_cast<double>(deficit);
    for (std::size_t e = 0; e < E; ++e) {
      const std::int64_t upto = checked_int64(std::round(d * share_[e]), "sampled share -> count");
      const std::int64_t shift = std::clamp(counts[e] + upto - given, std::int64_t{0}, tokens) - counts[e];
      counts[e] += shift;
      given += shift;
    }
    deficit -= given;
  }
  if (deficit == 0) return;
  // What the clamps at 0 and T refused (rare) goes one selection at a time to experts with room.
  std::vector<double> cumulative(E);
  double acc = 0.0;
  for (std::size_t e = 0; e < E; ++e) {
    acc += p_[e] * (1.0 - p_[e]);
    cumulative[e] = acc;
  }
  if (!(acc > 0.0))
    for (std::size_t e = 0; e < E; ++e) cumulative[e] = static_cast<double>(e + 1);
  while (deficit > 0) {
    const std::size_t e = pick(rng, cumulative, [&](std::size_t i) { return counts[i] < tokens; });
    ++counts[e];
    --deficit;
  }
  while (deficit < 0) {
    const std::size_t e = pick(rng, cumulative, [&](std::size_t i) { return counts[i] > 0; });
    --counts[e];
    ++deficit;
  }
}

void sample_counts(RandomStream& rng, const std::vector<double>& p, std::int64_t tokens, int top_k,
                   std::span<std::int64_t> counts) {
  CountSampler(p, tokens, top_k).draw(rng, counts);
}

}  // namespace epsim
