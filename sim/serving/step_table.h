// Step times of one pool's instance scenario, priced by the step simulator per batch shape and
// cached.
//
// Interpolated (the default). Prefill and decode each have a grid of shapes that the step
// simulator's workload states exactly:
//   decode  (b, kv): b sequences per GPU, b in {b_min} + the powers of two above it, at KV length
//                    kv, a power of two (workload.batch_per_gpu, workload.kv_len);
//   prefill (T, S):  T tokens per GPU, a power of two >= t_min, whose queries attend to
//                    K = (S + 1) / 2 keys on average, S a power of two: T / S sequences of S tokens
//                    when S <= T; else one sequence of T new tokens after a cached prefix of
//                    (S - T) / 2 tokens (workload.prefix_hit), which has the same K.
// A shape between grid nodes gets the bilinear interpolation of its cell's four corners (linear
// in b and kv, in T and K), priced on first use. b_min and t_min are the fewest tokens the scenario's
// schedule can split (micro-batches x chunks): smaller shapes are priced at that minimum.
// Interpolation is only as good as the step time is linear between nodes: check() prices a sample
// of the shapes a run used exactly and reports the error.
//
// Exact: every distinct shape (decode KV rounded to a token; prefill as the nearest shape the
// workload states, see exact_prefill) is priced by its own run.
//
// Uneven prefill steps (a busiest rank above the mean): the step is priced at the mean shape, plus
// what the busiest rank's own work adds over the mean's (rank_work: the attention side of every
// layer, the dense MLPs, the gate and local shared experts, the LM head, priced by the pool's cost
// model), and at most the busiest shape on every GPU. Under a serial schedule the step is close to
// the sum of a rank's compute and the routed part; the other ranks wait for the busiest at the
// all-to-alls, while the experts and the all-to-alls carry the step's mean load.
//
// Pricing runs whole scenario documents through a BatchPricer, so that tools/ can run a batch on
// threads (tools/explore); sequential_pricer() runs them one at a time. With extrapolate_layers
// (the search's pruning pass, never `epsim serve`) a node is priced from two runs of 2 and 4 MoE
// layers, extended linearly to the model's MoE layers (exact when the layers are identical and
// the schedule has reached its steady state by the second).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "models/cost_model.h"
#include "sim/scenario.h"
#include "sim/serving/serving_spec.h"
#include "sim/serving/step_pricer.h"

namespace epsim::serving {

// Step time in ms of each scenario document (one step, as `epsim run`); throws what Scenario
// parsing throws.
using BatchPricer = std::function<std::vector<double>(const std::vector<nlohmann::json>& docs)>;
BatchPricer sequential_pricer();

struct StepTableOptions {
  StepPricing pricing = StepPricing::Interpolated;
  bool extrapolate_layers = false;
};

// One exact check of the interpolation.
struct TableCheck {
  std::string phase;          // prefill | decode
  std::int64_t size = 0;      // tokens (prefill) or sequences (decode) per GPU
  double keys = 0;            // keys per query (prefill) or KV length (decode)
  double interpolated_ms = 0, exact_ms = 0;
  double error() const { return exact_ms > 0 ? (interpolated_ms - exact_ms) / exact_ms : 0.0; }
};

class StepTable final : public StepPricer {
 public:
  // `pool_doc`: the instance's scenario (validated by the caller).
  StepTable(nlohmann::json pool_doc, BatchPricer pricer, StepTableOptions options = {});
  Time prefill(const PrefillShape& busiest, const PrefillShape& mean) override;
  Time prefill(const PrefillShape& shape) { return prefill(shape, shape); }
  // One GPU's own work in a prefill step of `shape` (see above), every layer.
  Time rank_work(const PrefillShape& shape) const;
  Time decode(const DecodeShape& shape) override;

  // Forgets the shapes looked up so far (not the priced nodes): check() samples one run's shapes.
  void begin_run() {
    seen_prefill_.clear();
    seen_decode_.clear();
  }
  // Prices up to `samples` of the shapes looked up so far that are not grid nodes, exactly, and
  // compares (evenly spread over the shapes in sorted order: deterministic). Interpolated only.
  std::vector<TableCheck> check(int samples);

  // The exact workload section for a prefill of about `tokens` (at least min_tokens) per GPU at
  // about `keys` keys per query, and the shape it states: one sequence with a cached prefix when
  // keys >= (tokens + 1) / 2, else n sequences of S = round(2 keys - 1) tokens, n = round(tokens / S).
  static std::pair<nlohmann::json, PrefillShape> exact_prefill(const PrefillShape& shape, std::int64_t min_tokens);

  int runs() const { return runs_; }                  // step-simulator runs so far
  std::size_t nodes() const { return prefill_nodes_.size() + decode_nodes_.size(); }
  const nlohmann::json& document() const { return doc_; }
  std::int64_t min_tokens() const { return t_min_; }  // prefill grid's first T
  std::int64_t min_batch() const { return b_min_; }   // decode grid's first b

 private:
  using Key = std::pair<std::int64_t, std::int64_t>;
  double prefill_ms(std::int64_t tokens, double keys);
  Time uniform_prefill(const PrefillShape& shape);  // every GPU at `shape`
  double decode_ms(std::int64_t batch, double kv);
  void ensure_prefill(const std::vector<Key>& nodes);
  void ensure_decode(const std::vector<Key>& nodes);
  nlohmann::json with_workload(const nlohmann::json& workload) const;
  // Step ms of each document, through the pricer (extrapolated when asked).
  std::vector<double> price(const std::vector<nlohmann::json>& workloads);

  nlohmann::json doc_;
  Scenario scenario_;
  std::unique_ptr<CostModel> cost_;
  BatchPricer pricer_;
  StepTableOptions options_;
  nlohmann::json decode_extra_;  // the pool's MTP keys, carried into decode workloads
  std::int64_t t_min_ = 2, b_min_ = 1;
  int dense_layers_ = 0, moe_layers_ = 0;
  int runs_ = 0;
  std::map<Key, double> prefill_nodes_;  // (T, S) -> ms
  std::map<Key, double> decode_nodes_;   // (b, kv) -> ms
  std::map<Key, double> exact_prefill_, exact_decode_;  // Exact pricing: (T, 2K) and (b, kv) -> ms
  std::map<Key, std::int64_t> seen_prefill_, seen_decode_;  // shapes looked up: (T, 2K) / (b, kv) -> count
};

}  // namespace epsim::serving
