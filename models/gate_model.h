// The gate (token-routing) model: per step, layer and micro-batch, how many tokens each source GPU
// sends to each routed expert under top-k. Shared experts are always taken and are not routed here
// (the step builder adds them).
//
// Distributions (routing.distribution): `uniform` gives exact balanced counts (no randomness);
// `uniform-sampled`, `zipf` and `hot` give per-expert popularity weights (expert_popularity.h),
// turned into per-token selection probabilities with DeepSeek-V3's group limit when
// model.groups > 1 (selection_marginals.h), from which each source's counts are drawn
// (count_sampler.h: a distribution-level draw, not token by token: 256 sources x 256 experts cost
// ~3 ms per layer); `trace` replays a file's loads exactly (routing_trace.h). Every sample carries
// the layer's joint selection law (law(): which experts one token takes together, within the group
// limit), from which the dispatch takes its distinct tokens per GPU and node.
//
// Determinism: a sample depends only on (routing.seed, step, layer, micro_batch, sources, tokens)
// and the balancing bias at the time of the call, never on which samples were drawn before.
//
// Use across steps (`epsim run --steps N`):
//   GateModel gate(spec, model);
//   for (int step = 0; step < N; ++step) {
//     gate.begin_step(step);                     // selects the random stream of this step
//     for each MoE layer l:
//       RoutingSample r = gate.sample(l, mb, sources, tokens);   // any number of times, any order
//       ... simulate; report r.imbalance(), r.dropped ...
//     for each MoE layer l: gate.observe(l, load of l this step);  // bias update (balance = bias)
//   }
// observe() changes the bias at once, so call it after the step's last sample of that layer.
// With balance = none observe() does nothing; samples still change from step to step (new draws).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "models/config.h"
#include "models/expert_bias.h"
#include "models/moe_model.h"
#include "models/routing_sample.h"
#include "models/routing_spec.h"
#include "models/routing_trace.h"
#include "models/selection_marginals.h"

namespace epsim {

class GateModel {
 public:
  // Checks the spec against the model and reads the trace file (ConfigError naming the key or the
  // file's JSON path / line, the value and the rule).
  // `always_chosen`: experts every token takes besides its top_k (shared experts routed as experts,
  // parallelism.shared_expert = routed); they follow the routed ones, ids routed_experts.. .
  GateModel(RoutingSpec spec, const MoeModelSpec& model, int always_chosen = 0);

  // `tokens_per_source` tokens on each of `sources` GPUs choose among model.routed_experts (then
  // take the always-chosen experts: the sample has routed_experts + always_chosen columns).
  // `layer` must be a MoE layer (model.is_moe). Applies the capacity factor if set.
  RoutingSample sample(int layer, int micro_batch, int sources, std::int64_t tokens_per_source) const;

  // Starts step `step` (>= 0; the constructor starts step 0): later samples draw from its stream.
  void begin_step(int step);
  int step() const { return step_; }

  // After a step: the per-expert load of MoE layer `layer` in that step (expert_load() of its
  // samples, summed over micro-batches). With balance = bias, one sign-rule update of the layer's
  // bias; otherwise (and for the exact `uniform` distribution) nothing.
  void observe(int layer, const std::vector<std::int64_t>& expert_load);

  // Per-token selection probability of each expert in `layer` under the current bias (sums to
  // top_k, then 1 for each always-chosen expert; each <= 1): the expected load is tokens x this.
  // For placement strategies.
  std::vector<double> selection_probabilities(int layer) const;
  // The same with the group probabilities (group-limited routing); trace and uniform: one group.
  SelectionMarginals marginals(int layer) const;
  // The joint law of one token's selection in `layer` (models/selection_law.h): its marginals are
  // selection_probabilities(layer), its groups the model's when the group limit applies, and the
  // always-chosen experts are in every selection. Fitted once per distinct marginals (cached).
  std::shared_ptr<const SelectionLaw> law(int layer) const;
  // The bias of `layer` per expert (log-weight units; all 0 unless balance = bias).
  const std::vector<double>& bias(int layer) const { return bias_.at(layer); }
  const RoutingSpec& spec() const { return spec_; }

 private:
  RoutingSample uniform(int layer, int sources, std::int64_t tokens_per_source) const;
  bool group_limited() const;
  RoutingSpec spec_;
  MoeModelSpec model_;
  std::optional<RoutingTrace> trace_;
  int always_chosen_ = 0;
  std::vector<std::vector<double>> popularity_;  // [layer][expert]; empty for dense layers
  ExpertBias bias_;
  int step_ = 0;
  // Fitted laws by their marginals (a law depends on nothing else here), shared by copies.
  struct LawCache {
    std::mutex mutex;
    std::map<std::vector<double>, std::shared_ptr<const SelectionLaw>> laws;
  };
  std::shared_ptr<LawCache> laws_ = std::make_shared<LawCache>();
};

}  // namespace epsim
