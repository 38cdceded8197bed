// epsim serve SCENARIO: request-level serving over the step simulator (sim/serving/): latency
// percentiles, throughput per GPU and node, goodput, KV cache over time; serve.json, requests.csv,
// kv.csv.
#include <chrono>
#include <cmath>
#include <filesystem>

#include <boost/program_options.hpp>
#include <fmt/format.h>

#include "models/config.h"
#include "sim/scenario.h"
#include "sim/serving/serving_report.h"
#include "sim/serving/serving_spec.h"
#include "sim/serving/serving_run.h"
#include "tools/commands.h"
#include "tools/explore/serving_pricer.h"
#include "tools/version.h"

namespace po = boost::program_options;

namespace epsim::cli {

namespace {

struct ServeOptions {
  std::string scenario;
  std::vector<std::string> sets;
  std::string out = "out";
  int jobs = 0;
};

ServeOptions parse(const Args& args) {
  ServeOptions o;
  po::options_description desc;
  desc.add_options()("scenario", po::value(&o.scenario))("set", po::value(&o.sets)->composing())("out", po::value(&o.out))(
      "jobs,j", po::value(&o.jobs));
  po::positional_options_description pos;
  pos.add("scenario", 1);
  po::variables_map vm;
  po::store(po::command_line_parser(args).options(desc).positional(pos).run(), vm);
  po::notify(vm);
  if (o.scenario.empty()) throw UsageError("serve needs a scenario file (epsim serve SCENARIO.json)");
  if (o.jobs < 0) throw UsageError("-j " + std::to_string(o.jobs) + ": must be >= 0 (0: all cores)");
  return o;
}

std::string pool_line(const serving::PoolPlan& p) {
  const Scenario& sc = p.scenario;
  return fmt::format("{} x {} nodes (EP {}, attention TP {}, {}, {} network)", p.instances, p.nodes, sc.parallelism.ep,
                     sc.parallelism.attention_tp, sc.schedule.overlap, sc.network.model);
}

void print_latency(const char* name, const serving::Percentiles& p) {
  if (p.count == 0) return;
  fmt::print("  {:<15} {:>10.2f} {:>10.2f} {:>10.2f} {:>10.2f} {:>10.2f}\n", name, p.mean, p.p50, p.p90, p.p99, p.max);
}

void print_summary(const serving::ServingRun& run, double wall_s) {
  const serving::Deployment& d = run.deployment;
  const serving::ServingSpec& spec = d.spec;
  const serving::ServingMetrics& m = run.metrics;
  const serving::ServingResult& r = run.result;
  const std::string name = d.doc.value("name", std::string());
  fmt::print("epsim serve: {}\n", name.empty() ? "(unnamed scenario)" : name);
  for (const serving::PoolPlan& p : d.pools) fmt::print("  {} pool: {}\n", p.name, pool_line(p));
  if (spec.arrivals == serving::Arrivals::Poisson)
    fmt::print("  traffic: {} Poisson requests at {:.4g} req/s, prompt {} tokens, output {} tokens (spread {}), prefix hit {}\n",
               r.requests.size(), spec.rate, spec.input_tokens, spec.output_tokens, spec.length_spread, spec.prefix_hit);
  else
    fmt::print("  traffic: {} requests replayed from {}, prefix hit {}\n", r.requests.size(), spec.trace, spec.prefix_hit);
  fmt::print("  batching: {} sequences and {} prefill tokens per GPU and step, chunked prefill {}\n", spec.max_batch_per_gpu,
             spec.max_prefill_tokens_per_gpu, spec.chunked_prefill ? "on" : "off");

  fmt::print("\n  {:<15} {:>8} {:>6} {:>6} {:>6} {:>10} {:>10} {:>9} {:>9} {:>9}\n", "pool", "GPUs", "ranks", "KV GB",
             "peak", "rank KV", "prefill", "decode", "busy %", "balance");
  for (std::size_t i = 0; i < d.pools.size(); ++i) {
    const serving::PoolPlan& p = d.pools[i];
    const serving::PoolResult& pr = r.pools[i];
    const serving::InstanceStats& s = pr.stats;
    const double busy = (s.prefill_time + s.decode_time).to_seconds() / (m.duration_s * p.instances) * 100.0;
    const double bal_p = s.prefill_load_max > 0 ? s.prefill_load / s.prefill_load_max : 0;
    const double bal_d = s.decode_load_max > 0 ? s.decode_load / s.decode_load_max : 0;
    fmt::print("  {:<15} {:>8} {:>6} {:>6.2f} {:>6.2f} {:>10} {:>10} {:>9} {:>9.1f} {:>9}\n", p.name, pr.gpus, pr.ranks,
               p.budget.kv.to_gb(), pr.kv_peak_gb_per_gpu, p.setup.rank_kv_tokens, s.prefill_steps, s.decode_steps, busy,
               fmt::format("{:.2f}/{:.2f}", bal_p, bal_d));
  }
  fmt::print("  (KV GB: KV cache per GPU, peak: most held (mean over the pool's GPUs); rank KV: tokens a DP rank holds;\n"
             "   prefill, decode: steps; balance: mean over busiest DP rank's load in prefill / decode steps)\n");

  fmt::print("\n  {:<15} {:>10} {:>10} {:>10} {:>10} {:>10}\n", "latency ms", "mean", "p50", "p90", "p99", "max");
  print_latency("TTFT", m.ttft);
  print_latency("TPOT", m.tpot);
  print_latency("end-to-end", m.e2e);
  print_latency("KV transfer", m.kv_transfer);

  fmt::print("\n  throughput      {:.2f} output tokens/s per GPU sustained ({:.2f} per node) while the middle 80% of the requests "
             "arrived ({:.1f} to {:.1f} s)\n",
             m.sustained_output_tokens_per_s_per_gpu, m.sustained_output_tokens_per_s_per_gpu * r.gpus / r.nodes,
             r.window_start.to_seconds(), r.window_end.to_seconds());
  fmt::print("                  whole run: {:.1f} output tokens/s, {:.2f} per GPU, {:.2f} per node ({} GPUs, {} nodes); prompt {:.1f} "
             "tokens/s per GPU\n",
             m.output_tokens_per_s, m.output_tokens_per_s_per_gpu, m.output_tokens_per_s_per_node, r.gpus, r.nodes,
             m.input_tokens_per_s_per_gpu);
  fmt::print("  goodput         {:.1f}% of requests within {}: {:.3f} req/s, {:.2f} output tokens/s per GPU\n",
             m.attainment * 100.0,
             spec.ttft_ms > 0 || spec.tpot_ms > 0
                 ? fmt::format("TTFT <= {} ms, TPOT <= {} ms", spec.ttft_ms, spec.tpot_ms)
                 : std::string("(no targets: serving.ttft_ms, serving.tpot_ms)"),
             m.goodput_requests_per_s, m.goodput_tokens_per_s_per_gpu);
  const double span = (r.last_arrival - r.first_arrival).to_seconds();
  fmt::print("  Little's law    L = {:.3f} requests in the system (time average over the arrivals), lambda x W = {:.3f} ({:+.2f}%){}\n",
             m.little_l, m.little_lambda_w, m.little_l > 0 ? (m.little_lambda_w / m.little_l - 1.0) * 100.0 : 0.0,
             span < 10 * m.e2e.mean * 1e-3 ? fmt::format("; the arrivals span {:.1f} s, only {:.0f}x the mean latency: start and end "
                                                          "effects dominate (the law holds on long runs)",
                                                          span, span / (m.e2e.mean * 1e-3))
                                           : std::string());
  fmt::print("  duration        {:.3f} s from the first arrival to the last token\n", m.duration_s);

  int runs = 0;
  for (const serving::PoolResult& pr : r.pools) runs += pr.table_runs;
  fmt::print("\n  step times: {} ({} step-simulator runs)\n",
             spec.pricing == serving::StepPricing::Exact ? "every shape priced exactly" : "interpolated on a grid of shapes", runs);
  for (std::size_t i = 0; i < d.pools.size(); ++i) {
    const auto& checks = r.pools[i].checks;
    if (checks.empty()) continue;
    double worst = 0, sum = 0;
    const serving::TableCheck* w = &checks.front();
    for (const serving::TableCheck& c : checks) {
      sum += std::abs(c.error());
      if (std::abs(c.error()) >= worst) worst = std::abs(c.error()), w = &c;
    }
    fmt::print("    {} pool: interpolation against exact runs on {} shapes: mean |error| {:.2f}%, max {:.2f}% ({} {} {} at {} {:.1f}: {:.3f} ms interpolated, {:.3f} ms exact)\n",
               d.pools[i].name, checks.size(), sum / static_cast<double>(checks.size()) * 100.0, worst * 100.0, w->phase, w->size,
               w->phase == "prefill" ? "tokens/GPU" : "sequences/GPU", w->phase == "prefill" ? "keys/query" : "KV", w->keys,
               w->interpolated_ms, w->exact_ms);
  }
  fmt::print("  simulated in {:.2f} s wall time\n", wall_s);
}

}  // namespace

int serve_command(const Args& args) {
  const ServeOptions o = parse(args);
  nlohmann::json doc = read_scenario_file(o.scenario, serving::ServingSpec::schemas());
  for (const auto& s : o.sets) apply_override(doc, s);
  const auto t0 = std::chrono::steady_clock::now();
  serving::TableCache tables(explore::threaded_pricer(o.jobs));
  const serving::ServingRun run = serving::run_serving(doc, tables);
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::filesystem::create_directories(o.out);
  Provenance provenance{version(), {"epsim", "serve"}, serving::resolved_serving_scenario(doc)};
  provenance.command.insert(provenance.command.end(), args.begin(), args.end());
  write_file(o.out + "/serve.json", serving::serving_json(run.deployment, run.result, run.metrics, provenance).dump(2) + "\n");
  write_file(o.out + "/requests.csv", serving::requests_csv(run.result));
  write_file(o.out + "/kv.csv", serving::kv_csv(run.result));
  print_summary(run, wall);
  fmt::print("  wrote {0}/serve.json, {0}/requests.csv (a row per request) and {0}/kv.csv (KV cache over time)\n", o.out);
  return 0;
}

}  // namespace epsim::cli
