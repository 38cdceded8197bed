// epsim search SPEC.json: the best deployments for a traffic and latency targets on a budget of
// nodes (tools/explore/deployment_search.h): the Pareto fronts as a table and an SVG, each front
// point as a scenario file `epsim serve` (and `epsim run`, for its decode step) reproduces.
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include <fmt/format.h>

#include "models/config.h"
#include "sim/report.h"
#include "tools/commands.h"
#include "tools/explore/deployment_search.h"
#include "tools/explore/front_plot.h"
#include "tools/spec_command_args.h"
#include "tools/version.h"

namespace epsim::cli {

namespace {

nlohmann::json point_json(const explore::SearchPoint& p, int gpn) {
  nlohmann::json j = {{"deployment", p.label(gpn)}, {"disaggregated", p.disaggregated}, {"max_batch_per_gpu", p.max_batch},
                      {"batch_held_per_gpu", p.batch_held}, {"max_prefill_tokens_per_gpu", p.prefill_tokens},
                      {"chunked_prefill", p.chunked}, {"load", p.load}, {"rate", p.rate}};
  if (!p.error.empty()) {
    j["error"] = p.error;
    return j;
  }
  j["gpus"] = p.gpus;
  j["nodes"] = p.nodes;
  j["sustained_output_tokens_per_s_per_gpu"] = p.throughput;
  j["ttft_ms"] = p.ttft;
  j["tpot_ms"] = p.tpot;
  j["attainment"] = p.attainment;
  j["meets_targets"] = p.feasible;
  j["front_tpot"] = p.front_tpot;
  j["front_ttft"] = p.front_ttft;
  if (p.decode_step_ms > 0) j["decode_step_ms"] = p.decode_step_ms;
  return j;
}

}  // namespace

int search_command(const Args& args) {
  const SpecCommandArgs o = parse_spec_command(args, "search");
  if (o.jobs < 0) throw UsageError("-j " + std::to_string(o.jobs) + ": must be >= 0 (0: all cores)");
  const explore::SearchSpec spec = explore::SearchSpec::from_json(read_json_file(o.spec));
  const auto t0 = std::chrono::steady_clock::now();
  fmt::print("epsim search: {} on {} nodes; traffic: prompt {}, output {} tokens{}; targets p{}: TTFT <= {} ms, TPOT <= {} ms\n",
             spec.name.empty() ? o.spec : spec.name, spec.nodes, spec.traffic.at("input_tokens").get<std::int64_t>(),
             spec.traffic.at("output_tokens").get<std::int64_t>(),
             spec.rate > 0 ? fmt::format(", {} req/s", spec.rate) : std::string(", each deployment at its loads"), spec.percentile,
             spec.ttft_ms, spec.tpot_ms);
  const explore::SearchResult r = explore::run_search(spec, o.jobs, [](const std::string& line) {
    fmt::print("{}\n", line);
    std::fflush(stdout);
  });
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const int gpn = r.gpus_per_node;
  std::filesystem::create_directories(o.out);

  // The table: confirmed points by decreasing throughput; front points numbered and written.
  std::vector<std::size_t> order(r.confirmed.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return r.confirmed[a].throughput > r.confirmed[b].throughput; });
  explore::FrontPlot plot{fmt::format("epsim search: {} ({} nodes)", spec.name, spec.nodes), spec.percentile, spec.ttft_ms, spec.tpot_ms,
                          std::vector<int>(r.confirmed.size(), 0)};
  int number = 0, fronts = 0;
  const explore::SearchPoint* chosen = nullptr;
  nlohmann::json confirmed = nlohmann::json::array();
  fmt::print("\n  {:>3} {:<5} {:>5} {:>6} {:>7} {:>6} {:>8} {:>10} {:>9} {:>9} {:>7} {:>9}  {}\n", "#", "front", "GPUs", "batch",
             "prefill", "load", "req/s", "tok/s/GPU", fmt::format("TTFT p{}", spec.percentile), fmt::format("TPOT p{}", spec.percentile),
             "within", "step ms", "deployment");
  for (std::size_t i : order) {
    const explore::SearchPoint& p = r.confirmed[i];
    nlohmann::json pj = point_json(p, gpn);
    if (!p.error.empty()) {
      fmt::print("  {:>3} rejected: {} ({})\n", "-", p.label(gpn), p.error);
      confirmed.push_back(pj);
      continue;
    }
    std::string mark = std::string(p.front_tpot ? "P" : "") + (p.front_ttft ? "F" : "");
    std::string id = "-";
    if (p.front_tpot || p.front_ttft) {
      plot.numbers[i] = ++number;
      ++fronts;
      id = std::to_string(number);
      const std::string file = fmt::format("{}/front-{}.json", o.out, number);
      write_file(file, p.doc.dump(2) + "\n");
      pj["scenario_file"] = file;
      if (!chosen) chosen = &p;
    }
    fmt::print("  {:>3} {:<5} {:>5} {:>6} {:>7} {:>6.2f} {:>8.3f} {:>10.2f} {:>9.1f} {:>9.2f} {:>6.1f}% {:>9.3f}  {}\n", id,
               mark.empty() ? (p.feasible ? "" : "miss") : mark, p.gpus, fmt::format("{}/{}", p.batch_held, p.max_batch),
               p.prefill_tokens, p.load, p.rate, p.throughput, p.ttft, p.tpot, p.attainment * 100.0, p.decode_step_ms, p.label(gpn));
    confirmed.push_back(pj);
  }
  fmt::print("  (front: P on throughput vs TPOT, F on throughput vs TTFT, among deployments within the targets; miss: outside them;\n"
             "   batch: sequences per GPU held / limit; prefill: prompt tokens per GPU and step; within: requests meeting both targets;\n"
             "   step ms: the decode step `epsim run` gives on the written scenario)\n");
  if (chosen)
    fmt::print("\n  chosen: #1, {}: {:.2f} output tokens/s per GPU at TTFT p{} {:.1f} ms, TPOT p{} {:.2f} ms ({}/front-1.json)\n",
               chosen->label(gpn), chosen->throughput, spec.percentile, chosen->ttft, spec.percentile, chosen->tpot, o.out);
  else
    fmt::print("\n  no confirmed deployment meets the targets\n");

  if (!r.checks.empty()) {
    fmt::print("\n  the confirmation's step tables against exact runs (shapes the confirmed runs used):\n");
    for (const std::string& line : r.checks) fmt::print("    {}\n", line);
  }

  nlohmann::json pruned = nlohmann::json::array();
  for (const explore::SearchPoint& p : r.pruned) pruned.push_back(point_json(p, gpn));
  nlohmann::json out = {{"version", version()},
                        {"spec", o.spec},
                        {"nodes", spec.nodes},
                        {"percentile", spec.percentile},
                        {"targets", {{"ttft_ms", spec.ttft_ms}, {"tpot_ms", spec.tpot_ms}}},
                        {"configs", r.configs},
                        {"rejected_configs", r.rejected},
                        {"kept_configs", r.kept},
                        {"pruned", pruned},
                        {"confirmed", confirmed},
                        {"front_points", fronts},
                        {"interpolation_checks", r.checks},
                        {"interpolation_max_error", r.check_max_error}};
  write_file(o.out + "/search.json", out.dump(2) + "\n");
  write_file(o.out + "/front.svg", explore::front_svg(plot, r.pruned, r.confirmed));
  double load[3] = {0, 0, 0};
  const bool have_load = ::getloadavg(load, 3) == 3;
  fmt::print("\n  {} pool configurations ({} left out), {} deployments in the pruning pass, {} confirmed; front: {} points\n", r.configs,
             r.rejected.size(), r.pruned.size(), r.confirmed.size(), fronts);
  fmt::print("  wall {:.1f} s: characterisation {:.1f} s and pruning {:.1f} s ({} step-simulator runs), confirmation {:.1f} s ({} runs){}\n",
             wall, r.characterise_s, r.prune_s, r.prune_runs, r.confirm_s, r.confirm_runs,
             have_load ? fmt::format("; load average {:.2f} {:.2f} {:.2f} on {} cores", load[0], load[1], load[2],
                                     std::thread::hardware_concurrency())
                       : std::string());
  fmt::print("  wrote {0}/search.json, {0}/front.svg and {0}/front-N.json (`epsim serve {0}/front-1.json` reproduces #1)\n", o.out);
  return 0;
}

}  // namespace epsim::cli
