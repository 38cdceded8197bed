#include "sim/serving/serving_run.h"

#include "sim/serving/request.h"
#include "sim/serving/serving_simulation.h"

namespace epsim::serving {

StepTable& TableCache::table(const nlohmann::json& pool_doc, StepPricing pricing) {
  // The table sets the workload itself; only the decode drafts (MTP) carry over from it. Names and
  // descriptions change no step.
  nlohmann::json key_doc = pool_doc;
  key_doc.erase("name");
  key_doc.erase("description");
  const nlohmann::json w = pool_doc.value("workload", nlohmann::json::object());
  key_doc["workload"] = {{"mtp_tokens", w.value("mtp_tokens", 0)}, {"mtp_acceptance", w.value("mtp_acceptance", 0.85)}};
  const std::string key = std::to_string(static_cast<int>(pricing)) + key_doc.dump();
  auto it = tables_.find(key);
  if (it == tables_.end())
    it = tables_.emplace(key, std::make_unique<StepTable>(pool_doc, pricer_, StepTableOptions{pricing, extrapolate_})).first;
  return *it->second;
}

std::vector<StepTable*> TableCache::tables() const {
  std::vector<StepTable*> out;
  for (const auto& [key, t] : tables_) out.push_back(t.get());
  return out;
}

int TableCache::runs() const {
  int n = 0;
  for (const auto& [key, t] : tables_) n += t->runs();
  return n;
}

ServingRun run_serving(const nlohmann::json& doc, TableCache& tables, bool check) {
  ServingRun run{Deployment::plan(doc), {}, {}};
  const Deployment& d = run.deployment;
  const std::vector<Request> requests = make_requests(d.spec);
  std::vector<StepTable*> used;
  std::vector<StepPricer*> pricers;
  std::vector<int> runs_before;
  for (const PoolPlan& p : d.pools) {
    StepTable& t = tables.table(p.doc, d.spec.pricing);
    if (check) t.begin_run();
    used.push_back(&t);
    pricers.push_back(&t);
    runs_before.push_back(t.runs());
  }
  run.result = simulate_serving(d, requests, pricers);
  for (std::size_t i = 0; i < used.size(); ++i) {
    // Two pools of one scenario share a table: check it once.
    bool first = true;
    for (std::size_t k = 0; k < i; ++k) first = first && used[k] != used[i];
    if (first && check) run.result.pools[i].checks = used[i]->check(d.spec.check_samples);
    run.result.pools[i].table_runs = used[i]->runs() - runs_before[i];
  }
  run.metrics = serving_metrics(run.result, d.spec);
  return run;
}

}  // namespace epsim::serving
