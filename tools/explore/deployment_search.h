// The deployment search (`epsim search`): which pools, parallelism, batch limits and schedule serve
// the traffic best per GPU within the latency targets, on a budget of nodes.
//
// 1. Pool configurations: every (instance nodes, attention TP, overlap, chunks, dispatch, placement) of the
//    space whose scenario is valid and whose memory leaves room for a request's KV cache.
// 2. Characterisation: each configuration's step tables (sim/serving/step_table.h) on the cheap
//    analytical network, every node priced from 2 and 4 MoE layers extended to the model's
//    (exact for identical layers in the steady state): prefill tokens/s per GPU at each prefill
//    budget and the time of one prompt alone; decode tokens/s per GPU at each batch limit (capped
//    by what the KV cache holds) and its step time. Per phase (prefill, decode, colocated) the
//    configurations on a Pareto front of throughput against step time are kept, best first, up to
//    search.configs_per_phase.
// 3. Pruning pass: every deployment built from the kept configurations (colocated: instances of
//    one over the budget; disaggregated: a prefill pool of search.space.prefill_nodes, the decode
//    pool of the rest) x batch limits x loads is served (sim/serving/serving_run.h) at load x its
//    capacity estimated from the step tables, on the same cheap tables.
// 4. Confirmation: the pruning pass's fronts (throughput per GPU against TPOT, and against TTFT, at
//    the percentile, among deployments meeting the targets), and the next best, up to
//    search.confirm, are served again exactly: every layer, the flow network. Their fronts are the
//    result, and each confirmed deployment is a scenario document that `epsim serve` reproduces.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sim/serving/serving_metrics.h"
#include "tools/explore/search_spec.h"

namespace epsim::explore {

// One pool configuration: an instance of `nodes` nodes whose GPUs form one EP group.
struct PoolChoice {
  int nodes = 1;
  int tp = 1;
  int slots = 0;  // parallelism.slots_per_gpu when EP does not divide the experts (then eplb), else 0
  int chunks = 1;
  std::string overlap, dispatch_impl, placement;
  // {"key.path": value} that makes the base scenario this instance (every key it controls).
  nlohmann::json set(int gpus_per_node) const;
  std::string label(int gpus_per_node) const;  // "8 nodes, EP 64, TP 8, serial"
};

struct SearchPoint {
  bool disaggregated = false;
  PoolChoice prefill, decode;  // colocated: `decode` is the pool
  int prefill_instances = 0, decode_instances = 1;
  std::int64_t max_batch = 1, prefill_tokens = 1;
  bool chunked = true;
  double load = 1;
  double rate = 0;               // requests/s served
  std::int64_t batch_held = 0;   // sequences per GPU the decode pool holds (max_batch, capped by KV)
  int nodes = 0, gpus = 0;
  // Figures (ms at the search's percentile).
  std::string error;  // non-empty: the deployment was rejected
  double throughput = 0;  // output tokens/s per GPU
  double ttft = 0, tpot = 0, attainment = 0;
  bool feasible = false;                    // meets the targets
  bool front_tpot = false, front_ttft = false;
  double decode_step_ms = 0;  // confirmed: the step `epsim run` gives on the written scenario
  nlohmann::json doc;         // confirmed: the scenario (`epsim serve` reproduces the figures)
  std::string label(int gpus_per_node) const;
};

struct SearchResult {
  int gpus_per_node = 8;
  int configs = 0;                       // pool configurations in the space
  std::vector<std::string> rejected;     // configurations left out, and why
  std::vector<std::string> kept;         // per phase, the configurations kept (for the report)
  std::vector<SearchPoint> pruned, confirmed;
  // The confirmation's step tables against exact runs (search.check_samples shapes each, over the
  // shapes every confirmed run used): a line per table.
  std::vector<std::string> checks;
  double check_max_error = 0;
  int prune_runs = 0, confirm_runs = 0;  // step-simulator runs
  double characterise_s = 0, prune_s = 0, confirm_s = 0;
};

using SearchProgress = std::function<void(const std::string& line)>;

// `threads` for the step simulator's runs (0: all cores).
SearchResult run_search(const SearchSpec& spec, int threads, const SearchProgress& progress);

// The scenario document of a point: the base scenario as its decode (or colocated) instance with a
// decode workload at its held batch (what `epsim run` on it simulates), and its serving section.
// `network`: analytical | flow.
nlohmann::json point_document(const SearchSpec& spec, const SearchPoint& p, int gpus_per_node, const std::string& network,
                              int check_samples);

// Marks the fronts among the feasible points (throughput per GPU against TPOT and against TTFT).
void mark_fronts(std::vector<SearchPoint>& points);

}  // namespace epsim::explore
