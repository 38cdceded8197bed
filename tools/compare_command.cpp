// epsim compare: one scenario, several placement strategies, the same routing samples; a table,
// compare.json, compare.svg, each strategy's placement and the expected expert loads, in EPLB's JSON
// layout or a serving system's (--format, placement/interchange.h).
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <memory>
#include <sstream>

#include <boost/program_options.hpp>
#include <fmt/format.h>

#include "models/config.h"
#include "models/layer_ops.h"
#include "placement/dispatch_matrix.h"
#include "placement/evaluation.h"
#include "placement/gate_routing.h"
#include "placement/interchange.h"
#include "sim/report.h"
#include "sim/simulation.h"
#include "tools/commands.h"

namespace po = boost::program_options;

namespace epsim::cli {

namespace {

struct CompareOptions {
  std::string scenario = "scenarios/seed.json";
  std::vector<std::string> placements;
  std::vector<std::string> sets;
  int steps = 1;
  std::string out = "out";
  InterchangeFormat format = InterchangeFormat::eplb;  // of placement-<strategy>.json and load-stats.json
};

CompareOptions parse(const Args& args) {
  CompareOptions o;
  std::string list = "contiguous,round_robin,topology_aware,eplb";
  std::string format = "eplb";
  po::options_description desc;
  desc.add_options()("scenario", po::value(&o.scenario))("placements", po::value(&list))("steps", po::value(&o.steps))(
      "out", po::value(&o.out))("set", po::value(&o.sets)->composing())("format", po::value(&format));
  po::positional_options_description pos;
  pos.add("scenario", 1);
  po::variables_map vm;
  po::store(po::command_line_parser(args).options(desc).positional(pos).run(), vm);
  po::notify(vm);
  if (o.steps < 1) throw UsageError("--steps must be >= 1");
  o.format = interchange_format(format, "--format");
  std::stringstream ss(list);
  for (std::string item; std::getline(ss, item, ',');)
    if (!item.empty()) o.placements.push_back(item);
  if (o.placements.empty()) throw UsageError("--placements needs at least one strategy");
  return o;
}

struct Row {
  std::string strategy;
  double place_s = 0;
  PlacementEvaluation expected;   // worst MoE layer, no simulation
  double step_ms = 0, tokens_per_s_per_gpu = 0, exposed_comm_ms = 0;
  double max_link_tokens = 0, gpu_max_over_mean = 0;
  std::string busiest_link;
  bool fits = true;
  nlohmann::json placement;       // in CompareOptions::format
};

// The scenario document with `strategy` and only the placement keys that strategy takes.
nlohmann::json with_strategy(nlohmann::json doc, const std::string& strategy) {
  nlohmann::json& p = doc["placement"];
  if (!p.is_object()) p = nlohmann::json::object();
  p["strategy"] = strategy;
  if (strategy != "eplb") p.erase("redundant_slots");
  if (strategy != "colocated") p.erase("colocate");
  return doc;
}

Row measure(const nlohmann::json& base, const std::string& strategy, int steps, InterchangeFormat format) {
  Row row;
  row.strategy = strategy;
  Scenario sc = Scenario::from_json(with_strategy(base, strategy));
  const Cluster cluster(sc.cluster);
  const GateModel gate(sc.routing, sc.model, sc.parallelism.routed_shared(sc.model));
  const auto t0 = std::chrono::steady_clock::now();
  auto placement = std::make_shared<const Placement>(
      Placement::make(sc.placement, PlacementInputs{sc.parallelism.as_routed(sc.model), sc.parallelism.ep, cluster, gate, sc.workload.tokens(),
                                      expert_compute_per_token(sc.model, sc.gpu)}));
  row.place_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  const Bytes token_bytes = sc.model.precision.dispatch_bytes_per_token(sc.model.hidden);
  const Bytes expert_bytes = LayerOps(sc.model, sc.parallelism.attention_tp).expert_weight_bytes();
  bool first = true;
  for (int l : sc.model.moe_layer_list()) {
    const ExpectedRouting r = gate_expected_routing(gate, l, cluster.gpu_count(), sc.workload.tokens());
    const PlacementEvaluation e = evaluate(placement->layer(l), r, cluster, token_bytes, expert_bytes, sc.model.moe_layers(), placement->replica_choice());
    row.expected = first ? e : worst_of(row.expected, e);
    first = false;
  }
  row.expected.expert_memory_per_gpu = Bytes(0);
  for (int l : sc.model.moe_layer_list())
    row.expected.expert_memory_per_gpu += expert_bytes * placement->layer(l).slots_per_gpu();

  row.placement = placement_to_json(*placement, sc.parallelism.as_routed(sc.model), format);
  sc.placement.resolved = placement;
  const std::uint64_t seed = sc.routing.seed;
  // The most tokens one link carries in one MoE layer's dispatch, from the gate samples the
  // simulation draws (step i: seed + i, micro-batch 0).
  double worst_link = -1;
  for (int step = 0; step < steps; ++step) {
    RoutingSpec rs = sc.routing;
    rs.seed = seed + static_cast<std::uint64_t>(step);
    const GateModel g(rs, sc.model, sc.parallelism.routed_shared(sc.model));
    for (int l : sc.model.moe_layer_list()) {
      const RoutingSample sample = g.sample(l, 0, cluster.gpu_count(), sc.workload.tokens());
      const auto tokens = dispatch_link_tokens(build_dispatch(sample, placement->layer(l), cluster.gpus_per_node(), placement->replica_choice()), cluster);
      const auto it = std::max_element(tokens.begin(), tokens.end());
      if (static_cast<double>(*it) > worst_link) {
        worst_link = static_cast<double>(*it);
        row.busiest_link = cluster.link(static_cast<LinkId>(it - tokens.begin())).name;
      }
    }
  }
  for (int step = 0; step < steps; ++step) {
    sc.routing.seed = seed + static_cast<std::uint64_t>(step);
    Simulation sim(sc);
    const StepResult& r = sim.run();
    row.step_ms += r.step_time.to_ms() / steps;
    row.tokens_per_s_per_gpu += r.tokens_per_s_per_gpu() / steps;
    row.fits = row.fits && r.memory.fits();
    double exposed = 0, imbalance = 0;
    for (const LayerResult& l : r.layers) {
      exposed += l.exposed_comm_max.to_ms();
      if (!l.moe) continue;
      if (l.expert_tokens_mean > 0) imbalance = std::max(imbalance, static_cast<double>(l.expert_tokens_max) / l.expert_tokens_mean);
    }
    row.exposed_comm_ms += exposed / steps;
    row.gpu_max_over_mean += imbalance / steps;
  }
  row.max_link_tokens = std::max(0.0, worst_link);
  return row;
}

// Two horizontal bar charts side by side: step time and max link tokens per strategy.
std::string svg(const std::string& title, const std::vector<Row>& rows) {
  const int bar = 26, gap = 10, left = 130, width = 300, top = 56;
  const int height = top + static_cast<int>(rows.size()) * (bar + gap) + 30;
  std::string s = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" font-family=\"sans-serif\" font-size=\"12\">\n"
      "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<text x=\"10\" y=\"20\" font-size=\"14\">{}</text>\n",
      2 * (left + width + 90), height, title);
  auto panel = [&](int x0, const std::string& name, auto value, auto label) {
    double mx = 0;
    for (const Row& r : rows) mx = std::max(mx, value(r));
    s += fmt::format("<text x=\"{}\" y=\"44\" font-weight=\"bold\">{}</text>\n", x0 + left, name);
    for (std::size_t i = 0; i < rows.size(); ++i) {
      const int y = top + static_cast<int>(i) * (bar + gap);
      const double w = mx > 0 ? value(rows[i]) / mx * width : 0;
      s += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\n", x0 + left - 6, y + bar / 2 + 4, rows[i].strategy);
      s += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{:.1f}\" height=\"{}\" fill=\"{}\"/>\n", x0 + left, y, w, bar,
                       i == 0 ? "#888888" : "#3b75af");
      s += fmt::format("<text x=\"{:.1f}\" y=\"{}\">{}</text>\n", x0 + left + w + 4, y + bar / 2 + 4, label(rows[i]));
    }
  };
  panel(0, "step time (ms)", [](const Row& r) { return r.step_ms; }, [](const Row& r) { return fmt::format("{:.1f}", r.step_ms); });
  panel(left + width + 90, "max tokens on one link (dispatch)", [](const Row& r) { return r.max_link_tokens; },
        [](const Row& r) { return fmt::format("{:.0f}", r.max_link_tokens); });
  return s + "</svg>\n";
}

}  // namespace

int compare_command(const Args& args) {
  const CompareOptions o = parse(args);
  nlohmann::json doc = read_scenario_file(o.scenario);
  for (const auto& s : o.sets) apply_override(doc, s);
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<Row> rows;
  std::filesystem::create_directories(o.out);
  for (const std::string& name : o.placements) {
    rows.push_back(measure(doc, name, o.steps, o.format));
    // The placement file a serving system can load (--format).
    write_file(o.out + "/placement-" + name + ".json", rows.back().placement.dump() + "\n");
  }
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const Scenario sc = Scenario::from_json(doc);
  {  // The expected per-expert loads the routing-aware strategies were sized on, as load statistics.
    const Cluster cluster(sc.cluster);
    const GateModel gate(sc.routing, sc.model, sc.parallelism.routed_shared(sc.model));
    std::vector<std::vector<double>> loads;
    for (int l : sc.model.moe_layer_list())
      loads.push_back(gate_expected_routing(gate, l, cluster.gpu_count(), sc.workload.tokens()).expert_load());
    write_file(o.out + "/load-stats.json", load_stats_to_json(loads, sc.parallelism.as_routed(sc.model), o.format).dump() + "\n");
  }

  fmt::print("epsim compare: {} ({} nodes x {} GPUs, EP {}, {} experts, top-{}, routing {}), {} step{} per strategy\n\n",
             sc.name.empty() ? o.scenario : sc.name, sc.cluster.nodes, sc.cluster.gpus_per_node, sc.parallelism.ep,
             sc.model.routed_experts, sc.model.top_k, sc.routing.distribution, o.steps, o.steps > 1 ? "s" : "");
  fmt::print("{:<15} {:>10} {:>12} {:>12} {:<18} {:>8} {:>11} {:>12} {:>9} {:>8}\n", "strategy", "step ms", "tok/s/GPU",
             "max link tok", "busiest link", "max/mean", "exposed ms", "expected tok", "expert GB", "place s");
  for (const Row& r : rows)
    fmt::print("{:<15} {:>10.3f} {:>12.1f} {:>12.0f} {:<18} {:>8.3f} {:>11.3f} {:>12.0f} {:>9.2f} {:>8.2f}\n", r.strategy,
               r.step_ms, r.tokens_per_s_per_gpu, r.max_link_tokens, r.busiest_link, r.gpu_max_over_mean,
               r.exposed_comm_ms, r.expected.max_link_tokens, r.expected.expert_memory_per_gpu.to_gb(), r.place_s);
  fmt::print("\n  step ms, tok/s/GPU, exposed ms (summed over layers, worst GPU): simulated, mean over steps\n"
             "  max link tok / busiest link: most tokens one link carries in one MoE layer's dispatch, from the\n"
             "  simulated gate samples\n"
             "  max/mean: routed (token, expert) pairs of the busiest GPU over the mean, worst MoE layer\n"
             "  expected tok: the same link figure from the expected routing, no simulation; expert GB: routed-expert\n"
             "  weights per GPU (all MoE layers); place s: time to compute the placement\n");

  nlohmann::json j;
  j["scenario"] = sc.name;
  j["steps"] = o.steps;
  nlohmann::json list = nlohmann::json::array();
  const std::string base = sc.name.empty() ? "scenario" : sc.name;
  for (const Row& r : rows) {
    list.push_back({{"strategy", r.strategy},
                    {"step_time_ms", r.step_ms},
                    {"tokens_per_s_per_gpu", r.tokens_per_s_per_gpu},
                    {"max_link_tokens", r.max_link_tokens},
                    {"busiest_link", r.busiest_link},
                    {"gpu_load_max_over_mean", r.gpu_max_over_mean},
                    {"exposed_comm_ms", r.exposed_comm_ms},
                    {"memory_fits", r.fits},
                    {"expected",
                     {{"max_link_tokens", r.expected.max_link_tokens},
                      {"max_link_ms", r.expected.max_link_ms},
                      {"internode_tokens", r.expected.internode_tokens},
                      {"gpu_load_max_over_mean", r.expected.imbalance()},
                      {"expert_memory_per_gpu_gb", r.expected.expert_memory_per_gpu.to_gb()}}}});
  }
  j["strategies"] = list;
  write_file(o.out + "/compare.json", j.dump(2) + "\n");
  write_file(o.out + "/compare.svg", svg("epsim compare: " + base, rows));
  fmt::print("  compared {} strategies in {:.2f} s wall time\n  wrote {}/compare.json, {}/compare.svg, {}/placement-*.json and {}/load-stats.json ({} format)\n",
             rows.size(), wall, o.out, o.out, o.out, o.out, interchange_format_names()[static_cast<std::size_t>(o.format)]);
  return 0;
}

}  // namespace epsim::cli
