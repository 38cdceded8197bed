#include "models/gate_model.h"

namespace epsim {

std::vector<std::int64_t> RoutingSample::expert_load() const {
  std::vector<std::int64_t> load(static_cast<std::size_t>(experts), 0);
  for (int s = 0; s < sources; ++s)
    for (int e = 0; e < experts; ++e) load[static_cast<std::size_t>(e)] += at(s, e);
  return load;
}

const Schema& RoutingSpec::schema() {
  static const Schema s{"routing", {
      {"distribution", "string", "uniform", "", "uniform: every expert gets exactly tokens x top_k / experts from every source (remainders spread evenly)"},
      {"seed", "integer", 1, "", "seed of every random choice in the run"},
  }};
  return s;
}

RoutingSpec RoutingSpec::from_json(const nlohmann::json& j, const std::string& path) {
  const nlohmann::json obj = j.is_null() ? nlohmann::json::object() : j;
  ConfigObject c(obj, path, schema());
  RoutingSpec r;
  r.distribution = c.choice("distribution", {"uniform"});
  r.seed = static_cast<std::uint64_t>(c.integer("seed", 0));
  return r;
}

RoutingSample GateModel::sample(int layer, int /*micro_batch*/, int sources, std::int64_t tokens_per_source) const {
  return uniform(layer, sources, tokens_per_source);
}

RoutingSample GateModel::uniform(int layer, int sources, std::int64_t tokens_per_source) const {
  const int E = model_.routed_experts;
  RoutingSample r;
  r.sources = sources;
  r.experts = E;
  r.tokens.assign(static_cast<std::size_t>(sources), tokens_per_source);
  r.counts.assign(static_cast<std::size_t>(sources) * static_cast<std::size_t>(E), 0);
  const std::int64_t picks = tokens_per_source * model_.top_k;
  const std::int64_t base = picks / E, rem = picks % E;
  for (int s = 0; s < sources; ++s) {
    // The rem extra picks of source s go to a window of experts that rotates with s and the layer,
    // so that over sources every expert gets the same share (+-1).
    const std::int64_t start = (static_cast<std::int64_t>(s) * rem + layer) % E;
    for (int e = 0; e < E; ++e) {
      const std::int64_t offset = (e - start + E) % E;
      r.counts[static_cast<std::size_t>(s) * static_cast<std::size_t>(E) + static_cast<std::size_t>(e)] = base + (offset < rem ? 1 : 0);
    }
  }
  return r;
}

}  // namespace epsim
