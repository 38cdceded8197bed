#include "placement/expected_routing.h"

#include <algorithm>
#include <numeric>

#include "models/errors.h"

namespace epsim {

std::vector<double> ExpectedRouting::expert_load() const {
  std::vector<double> load(static_cast<std::size_t>(experts), 0.0);
  for (int s = 0; s < sources; ++s)
    for (int e = 0; e < experts; ++e) load[static_cast<std::size_t>(e)] += at(s, e);
  return load;
}

ExpectedRouting ExpectedRouting::mean(const std::vector<RoutingSample>& samples) {
  if (samples.empty()) throw SimulationError("ExpectedRouting::mean of no samples");
  ExpectedRouting r;
  r.sources = samples.front().sources;
  r.experts = samples.front().experts;
  r.tokens.assign(static_cast<std::size_t>(r.sources), 0.0);
  r.counts.assign(static_cast<std::size_t>(r.sources) * static_cast<std::size_t>(r.experts), 0.0);
  const double w = 1.0 / static_cast<double>(samples.size());
  for (const RoutingSample& s : samples) {
    if (s.sources != r.sources || s.experts != r.experts) throw SimulationError("ExpectedRouting::mean: samples differ in shape");
    for (std::size_t i = 0; i < r.tokens.size(); ++i) r.tokens[i] += w * static_cast<double>(s.tokens[i]);
    for (std::size_t i = 0; i < r.counts.size(); ++i) r.counts[i] += w * static_cast<double>(s.counts[i]);
  }
  return r;
}

ExpectedRouting ExpectedRouting::from_probabilities(const std::vector<double>& p, int sources, double tokens_per_source) {
  ExpectedRouting r;
  r.sources = sources;
  r.experts = static_cast<int>(p.size());
  r.tokens.assign(static_cast<std::size_t>(sources), tokens_per_source);
  r.counts.resize(static_cast<std::size_t>(sources) * p.size());
  for (int s = 0; s < sources; ++s)
    for (std::size_t e = 0; e < p.size(); ++e) r.counts[static_cast<std::size_t>(s) * p.size() + e] = tokens_per_source * p[e];
  return r;
}

ExpectedRouting ExpectedRouting::from_load(const std::vector<double>& load, int sources, double tokens_per_source, int top_k) {
  const double total = std::accumulate(load.begin(), load.end(), 0.0);
  if (!(total > 0)) throw SimulationError("ExpectedRouting::from_load: the loads sum to zero");
  ExpectedRouting r;
  r.sources = sources;
  r.experts = static_cast<int>(load.size());
  r.tokens.assign(static_cast<std::size_t>(sources), tokens_per_source);
  r.counts.resize(static_cast<std::size_t>(sources) * load.size());
  const double picks = tokens_per_source * top_k;
  for (int s = 0; s < sources; ++s)
    for (int e = 0; e < r.experts; ++e)
      r.counts[static_cast<std::size_t>(s) * load.size() + static_cast<std::size_t>(e)] =
          std::min(tokens_per_source, picks * load[static_cast<std::size_t>(e)] / total);
  return r;
}

}  // namespace epsim
