// One serving run from a scenario document: plan the pools, price their steps with step tables
// (sim/serving/step_table.h), simulate the requests, check the interpolation, derive the figures.
// `epsim serve` and `epsim search` both come through here, so a scenario file the search writes
// gives the same figures under `epsim serve`.
#pragma once

#include <map>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "sim/serving/deployment.h"
#include "sim/serving/serving_metrics.h"
#include "sim/serving/serving_result.h"
#include "sim/serving/step_table.h"

namespace epsim::serving {

// Step tables kept between runs, one per (pool scenario, pricing): a table's nodes do not depend on
// the traffic or the batching limits, so runs that share a pool scenario share its step times.
class TableCache {
 public:
  TableCache(BatchPricer pricer, bool extrapolate_layers = false)
      : pricer_(std::move(pricer)), extrapolate_(extrapolate_layers) {}
  StepTable& table(const nlohmann::json& pool_doc, StepPricing pricing);
  int runs() const;  // step-simulator runs over every table
  std::vector<StepTable*> tables() const;

 private:
  BatchPricer pricer_;
  bool extrapolate_;
  std::map<std::string, std::unique_ptr<StepTable>> tables_;
};

struct ServingRun {
  Deployment deployment;
  ServingResult result;
  ServingMetrics metrics;
};

// Throws ConfigError / InputError for bad input. `check`: price serving.check_samples shapes of
// each table exactly after the run (false: leave that to the caller, e.g. once per table over many
// runs; the shapes looked up then accumulate over the runs).
ServingRun run_serving(const nlohmann::json& doc, TableCache& tables, bool check = true);

}  // namespace epsim::serving
