#include "sim/serving/serving_report.h"

#include <fmt/format.h>

#include "sim/resolved_scenario.h"

namespace epsim::serving {

nlohmann::json resolved_serving_scenario(const nlohmann::json& doc) {
  nlohmann::json base = doc;
  base.erase("serving");
  nlohmann::json out = resolved_scenario(base);
  out["serving"] = ServingSpec::from_json(doc.contains("serving") ? doc.at("serving") : nlohmann::json()).to_json();
  return out;
}

namespace {

nlohmann::json pool_json(const PoolPlan& p, const PoolResult& r) {
  const Scenario& sc = p.scenario;
  const InstanceStats& s = r.stats;
  nlohmann::json checks = nlohmann::json::array();
  double worst = 0;
  for (const TableCheck& c : r.checks) {
    checks.push_back({{"phase", c.phase}, {"size", c.size}, {"keys", c.keys}, {"interpolated_ms", c.interpolated_ms},
                      {"exact_ms", c.exact_ms}, {"error", c.error()}});
    worst = std::max(worst, std::abs(c.error()));
  }
  return {
      {"name", p.name},
      {"instances", p.instances},
      {"nodes_per_instance", p.nodes},
      {"gpus", r.gpus},
      {"ep", sc.parallelism.ep},
      {"attention_tp", sc.parallelism.attention_tp},
      {"dp_ranks", r.ranks},
      {"overlap", sc.schedule.overlap},
      {"network", sc.network.model},
      {"memory_per_gpu_gb",
       {{"capacity", p.budget.capacity.to_gb()}, {"weights", p.budget.weights.to_gb()},
        {"activations_and_buffers", p.budget.activations.to_gb()}, {"kv", p.budget.kv.to_gb()}}},
      {"kv_bytes_per_token_per_gpu", p.budget.bytes_per_token},
      {"rank_kv_tokens", p.setup.rank_kv_tokens},
      {"rank_slots", p.setup.rank_slots},
      {"tokens_per_decode_step", p.setup.tokens_per_decode_step},
      {"prefill_steps", s.prefill_steps},
      {"decode_steps", s.decode_steps},
      {"prefill_busy_s", s.prefill_time.to_seconds()},
      {"decode_busy_s", s.decode_time.to_seconds()},
      {"prefill_tokens", s.prefill_tokens},
      {"decode_tokens", s.decode_tokens},
      {"prefill_rank_balance", s.prefill_load_max > 0 ? s.prefill_load / s.prefill_load_max : 0.0},
      {"decode_rank_balance", s.decode_load_max > 0 ? s.decode_load / s.decode_load_max : 0.0},
      {"kv_peak_gb_per_gpu", r.kv_peak_gb_per_gpu},
      {"step_table_runs", r.table_runs},
      {"interpolation_checks", checks},
      {"interpolation_max_error", worst},
  };
}

}  // namespace

nlohmann::json serving_json(const Deployment& d, const ServingResult& r, const ServingMetrics& m, const Provenance& provenance) {
  nlohmann::json j;
  if (!provenance.version.empty()) j["version"] = provenance.version;
  if (!provenance.command.empty()) j["command"] = provenance.command;
  if (!provenance.scenario.is_null()) j["resolved_scenario"] = provenance.scenario;
  j["requests"] = r.requests.size();
  j["gpus"] = r.gpus;
  j["nodes"] = r.nodes;
  j["disaggregated"] = d.spec.disaggregated;
  j["ttft_ms"] = to_json(m.ttft);
  j["tpot_ms"] = to_json(m.tpot);
  j["e2e_ms"] = to_json(m.e2e);
  if (d.spec.disaggregated) j["kv_transfer_ms"] = to_json(m.kv_transfer);
  j["duration_s"] = m.duration_s;
  j["output_tokens_per_s"] = m.output_tokens_per_s;
  j["output_tokens_per_s_per_gpu"] = m.output_tokens_per_s_per_gpu;
  j["output_tokens_per_s_per_node"] = m.output_tokens_per_s_per_node;
  j["input_tokens_per_s_per_gpu"] = m.input_tokens_per_s_per_gpu;
  j["sustained"] = {{"output_tokens_per_s_per_gpu", m.sustained_output_tokens_per_s_per_gpu},
                    {"from_s", r.window_start.to_seconds()},
                    {"to_s", r.window_end.to_seconds()}};
  j["requests_per_s"] = m.requests_per_s;
  j["goodput"] = {{"ttft_ms", d.spec.ttft_ms},
                  {"tpot_ms", d.spec.tpot_ms},
                  {"requests_per_s", m.goodput_requests_per_s},
                  {"output_tokens_per_s_per_gpu", m.goodput_tokens_per_s_per_gpu},
                  {"attainment", m.attainment}};
  j["little"] = {{"mean_in_system", m.little_l}, {"rate_times_mean_latency", m.little_lambda_w}};
  nlohmann::json pools = nlohmann::json::array();
  nlohmann::json kv = nlohmann::json::object();
  for (std::size_t i = 0; i < d.pools.size(); ++i) {
    pools.push_back(pool_json(d.pools[i], r.pools[i]));
    nlohmann::json series = nlohmann::json::array();
    for (const KvSample& s : r.pools[i].kv) series.push_back({s.time.to_seconds(), s.gb_per_gpu, s.max_rank_share});
    kv[d.pools[i].name] = series;
  }
  j["pools"] = pools;
  j["kv_over_time"] = {{"columns", {"time_s", "gb_per_gpu", "max_rank_share"}}, {"pools", kv}};
  return j;
}

std::string requests_csv(const ServingResult& r) {
  std::string out = "id,arrival_s,input_tokens,output_tokens,ttft_ms,tpot_ms,e2e_ms,kv_transfer_ms,instance,rank,decode_instance,decode_rank\n";
  for (const RequestState& s : r.requests) {
    const double tpot = s.req.output > 1 ? (s.finish - s.first_token).to_ms() / static_cast<double>(s.req.output - 1) : 0.0;
    const double transfer = s.transfer_end != Time::infinity() ? (s.transfer_end - s.transfer_start).to_ms() : 0.0;
    out += fmt::format("{},{:.9f},{},{},{:.6f},{:.6f},{:.6f},{:.6f},{},{},{},{}\n", s.req.id, s.req.arrival.to_seconds(),
                       s.req.input, s.req.output, (s.first_token - s.req.arrival).to_ms(), tpot,
                       (s.finish - s.req.arrival).to_ms(), transfer, s.instance, s.rank, s.decode_instance, s.decode_rank);
  }
  return out;
}

std::string kv_csv(const ServingResult& r) {
  std::string out = "time_s";
  for (const PoolResult& p : r.pools) out += fmt::format(",{0}_kv_gb_per_gpu,{0}_max_rank_share", p.name);
  out += "\n";
  if (r.pools.empty()) return out;
  for (std::size_t k = 0; k < r.pools.front().kv.size(); ++k) {
    out += fmt::format("{:.6f}", r.pools.front().kv[k].time.to_seconds());
    for (const PoolResult& p : r.pools)
      out += k < p.kv.size() ? fmt::format(",{:.6f},{:.6f}", p.kv[k].gb_per_gpu, p.kv[k].max_rank_share) : ",,";
    out += "\n";
  }
  return out;
}

}  // namespace epsim::serving
