#include "models/gate_model.h"

#include <cmath>
#include <string>

#include "models/capacity_limit.h"
#include "models/count_sampler.h"
#include "models/errors.h"
#include "models/expert_popularity.h"
#include "models/random_stream.h"

namespace epsim {

GateModel::GateModel(RoutingSpec spec, const MoeModelSpec& model, int always_chosen)
    : spec_(std::move(spec)), model_(model), always_chosen_(always_chosen), bias_(model.layers, model.routed_experts, spec_.bias_step) {
  const int E = model_.routed_experts;
  if (spec_.distribution == "hot" && spec_.hot_experts >= E)
    throw ConfigError("routing.hot_experts", std::to_string(spec_.hot_experts),
                      "must be < model.routed_experts = " + std::to_string(E));
  const TraceShape shape{E, model_.top_k, model_.first_moe_layer(), model_.moe_layer_ids};
  if (spec_.distribution == "trace")
    trace_ = spec_.trace_document.is_null() ? RoutingTrace::read(spec_.trace, "routing.trace", shape)
                                            : RoutingTrace::from_json(spec_.trace_document, spec_.trace, shape);
  popularity_.resize(static_cast<std::size_t>(model_.layers));
  for (int l = 0; l < model_.layers; ++l)
    if (model_.is_moe(l)) popularity_[static_cast<std::size_t>(l)] = expert_popularity(spec_, E, l);
}

void GateModel::begin_step(int step) {
  if (step < 0) throw SimulationError("GateModel::begin_step: negative step " + std::to_string(step));
  step_ = step;
}

void GateModel::observe(int layer, const std::vector<std::int64_t>& expert_load) {
  // Exact uniform counts do not depend on the bias: nothing to learn.
  if (spec_.balance == Balance::Bias && spec_.distribution != "uniform") {
    const auto routed = static_cast<std::size_t>(model_.routed_experts);  // always-chosen ones have no bias
    bias_.update(layer, expert_load.size() > routed ? std::vector<std::int64_t>(expert_load.begin(), expert_load.begin() + static_cast<std::ptrdiff_t>(routed))
                                                    : expert_load);
  }
}

bool GateModel::group_limited() const {
  return spec_.group_limited && model_.groups > 1 && model_.topk_groups < model_.groups;
}

SelectionMarginals GateModel::marginals(int layer) const {
  if (!model_.is_moe(layer) || layer >= model_.layers)
    throw SimulationError("GateModel: layer " + std::to_string(layer) + " is not a MoE layer");
  const int E = model_.routed_experts;
  if (trace_) return SelectionMarginals{trace_->probabilities(model_.moe_index(layer), model_.top_k), {1.0}};
  std::vector<double> w = popularity_[static_cast<std::size_t>(layer)];
  const std::vector<double>& b = bias_.at(layer);
  for (std::size_t e = 0; e < w.size(); ++e) w[e] *= std::exp(b[e]);
  if (spec_.distribution == "uniform" && bias_.is_zero(layer))
    return SelectionMarginals{std::vector<double>(static_cast<std::size_t>(E), static_cast<double>(model_.top_k) / E), {1.0}};
  return group_limited() ? selection_marginals(w, model_.top_k, model_.groups, model_.topk_groups)
                         : selection_marginals(w, model_.top_k, 1, 1);
}

std::vector<double> GateModel::selection_probabilities(int layer) const {
  std::vector<double> p = marginals(layer).expert;
  p.insert(p.end(), static_cast<std::size_t>(always_chosen_), 1.0);
  return p;
}

std::shared_ptr<const SelectionLaw> GateModel::law(int layer) const {
  const std::vector<double> p = selection_probabilities(layer);
  {
    const std::lock_guard<std::mutex> lock(laws_->mutex);
    if (auto it = laws_->laws.find(p); it != laws_->laws.end()) return it->second;
  }
  std::vector<int> group(p.size(), 0);
  const int E = model_.routed_experts;
  const bool limited = group_limited();
  for (std::size_t e = 0; e < p.size(); ++e)
    group[e] = static_cast<int>(e) >= E ? -1 : limited ? static_cast<int>(e) / (E / model_.groups) : 0;
  auto law = std::make_shared<const SelectionLaw>(p, group, limited ? model_.topk_groups : 1, model_.top_k + always_chosen_);
  const std::lock_guard<std::mutex> lock(laws_->mutex);
  if (laws_->laws.size() >= 256) laws_->laws.clear();  // bias balancing makes new marginals every step
  return laws_->laws.emplace(p, std::move(law)).first->second;
}

RoutingSample GateModel::sample(int layer, int micro_batch, int sources, std::int64_t tokens_per_source) const {
  if (sources < 1 || tokens_per_source < 0)
    throw SimulationError("GateModel::sample: " + std::to_string(sources) + " sources of " +
                          std::to_string(tokens_per_source) + " tokens");
  const int E = model_.routed_experts;
  RoutingSample r;
  if (spec_.distribution == "uniform") {
    r = uniform(layer, sources, tokens_per_source);
  } else {
    r.sources = sources;
    r.experts = E;
    r.tokens.assign(static_cast<std::size_t>(sources), tokens_per_source);
    if (trace_) {
      r.counts = trace_->counts(model_.moe_index(layer), micro_batch, sources, tokens_per_source, model_.top_k);
    } else {
      const std::vector<double> p = marginals(layer).expert;
      r.counts.assign(static_cast<std::size_t>(sources) * static_cast<std::size_t>(E), 0);
      const CountSampler sampler(p, tokens_per_source, model_.top_k);
      RandomStream rng(derive_seed(spec_.seed, {step_, layer, micro_batch}));
      for (int s = 0; s < sources; ++s)
        sampler.draw(rng, std::span<std::int64_t>(r.counts).subspan(static_cast<std::size_t>(s) * static_cast<std::size_t>(E),
                                                                    static_cast<std::size_t>(E)));
    }
  }
  r.step = step_;
  if (spec_.capacity_factor > 0) apply_capacity(r, spec_.capacity_factor);
  if (always_chosen_ > 0) r = with_always_chosen(r, always_chosen_);
  r.law = law(layer);
  r.max_nodes = spec_.max_nodes;
  return r;
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
