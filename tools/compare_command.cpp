// epsim compare: scenarios x placement strategies (x fault states with --faults: healthy, degraded,
// degraded with the placement re-planned), the same routing samples; a table, compare.json,
// compare.svg, each row's placement and the expected expert loads, in EPLB's JSON layout or a
// serving system's (--format, placement/interchange.h).
#include <algorithm>
#include <cmath>
#include <chrono>
#include <memory>
#include <sstream>

#include <boost/program_options.hpp>
#include <fmt/format.h>

#include "models/config.h"
#include "models/layer_ops.h"
#include "models/limits.h"
#include "placement/dispatch_matrix.h"
#include "placement/evaluation.h"
#include "placement/gate_routing.h"
#include "placement/interchange.h"
#include "sim/fault_spec.h"
#include "sim/report.h"
#include "sim/simulation.h"
#include "tools/commands.h"
#include "tools/output_paths.h"
#include "tools/overflow_keys.h"

namespace po = boost::program_options;

namespace epsim::cli {

namespace {

struct CompareOptions {
  std::vector<std::string> scenarios;
  std::vector<std::string> placements;
  std::vector<std::string> sets;
  int steps = 1;
  std::string out = "out";
  std::string faults;  // a faults section: inline JSON or a file (empty: no fault dimension)
  InterchangeFormat format = InterchangeFormat::eplb;  // of placement-<row>.json and load-stats.json
};

// The strategy name that keeps each scenario's own placement section.
constexpr const char* kOwnPlacement = "scenario";

CompareOptions parse(const Args& args) {
  CompareOptions o;
  std::string list;
  std::string format = "eplb";
  po::options_description desc;
  desc.add_options()("scenario", po::value(&o.scenarios)->composing())("placements", po::value(&list))(
      "steps", po::value(&o.steps))("out", po::value(&o.out))("set", po::value(&o.sets)->composing())(
      "faults", po::value(&o.faults))("format", po::value(&format));
  po::positional_options_description pos;
  pos.add("scenario", -1);
  po::variables_map vm;
  po::store(po::command_line_parser(args).options(desc).positional(pos).run(), vm);
  po::notify(vm);
  if (o.steps < 1 || o.steps > limits::kSteps)
    throw UsageError("--steps " + std::to_string(o.steps) + ": must be in [1, " + std::to_string(limits::kSteps) + "]");
  if (o.scenarios.empty()) o.scenarios.push_back("scenarios/seed.json");
  // One scenario: the placement strategies side by side; several: each with its own placement.
  if (list.empty()) list = o.scenarios.size() == 1 ? "contiguous,round_robin,topology_aware,eplb" : kOwnPlacement;
  o.format = interchange_format(format, "--format");
  std::stringstream ss(list);
  for (std::string item; std::getline(ss, item, ',');)
    if (!item.empty()) o.placements.push_back(item);
  if (o.placements.empty()) throw UsageError("--placements needs at least one strategy");
  return o;
}

// The fault dimension: each (scenario, strategy) healthy, degraded, and (eplb) re-planned.
enum class FaultState { AsGiven, Healthy, Degraded, Replanned };

const char* state_name(FaultState s) {
  switch (s) {
    case FaultState::AsGiven: return "";
    case FaultState::Healthy: return "healthy";
    case FaultState::Degraded: return "degraded";
    case FaultState::Replanned: return "replanned";
  }
  return "";
}

// --faults: inline JSON (starting with '{'), a file holding the faults section, or a scenario file
// whose faults section is taken.
nlohmann::json faults_section(const std::string& arg) {
  if (!arg.empty() && arg.front() == '{') {
    nlohmann::json j = nlohmann::json::parse(arg, nullptr, false);
    if (j.is_discarded() || !j.is_object()) throw ConfigError("--faults", "\"" + arg + "\"", "must be a JSON object (the faults section) or a file");
    return j;
  }
  const nlohmann::json doc = read_scenario_file(arg);
  // A whole scenario lends its faults section.
  if (doc.is_object() && doc.contains("faults") && doc["faults"].is_object()) return doc["faults"];
  return doc;
}

// The document's own faults section (e.g. noisy kernels from --set) stays in every state; the
// healthy state drops what breaks the deployment, the degraded one adds --faults on top.
nlohmann::json with_faults(nlohmann::json doc, FaultState state, const nlohmann::json& faults) {
  if (state == FaultState::AsGiven) return doc;
  nlohmann::json& f = doc["faults"];
  if (!f.is_object()) f = nlohmann::json::object();
  for (const char* key : {"gpu_compute", "link_bandwidth", "failed_gpus", "failed_nodes", "allow_lost_experts", "replan_placement"})
    f.erase(key);
  if (state == FaultState::Healthy) return doc;
  f.update(faults);
  if (state == FaultState::Replanned) f["replan_placement"] = true;
  return doc;
}

struct Row {
  std::string label;  // [scenario] strategy [state]
  std::string strategy;
  std::string error;  // a degraded state the scenario refuses (lost experts), else empty
  double p99_ms = 0, tokens_per_s = 0;
  int serving_gpus = 0, gpus = 0;
  double lost_share = 0;
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
  if (strategy == kOwnPlacement) return doc;
  nlohmann::json& p = doc["placement"];
  if (!p.is_object()) p = nlohmann::json::object();
  p["strategy"] = strategy;
  if (strategy != "eplb") p.erase("redundant_slots");
  if (strategy != "colocated") p.erase("colocate");
  return doc;
}

Row measure(const nlohmann::json& base, const std::string& strategy, int steps, InterchangeFormat format) {
  Row row;
  Scenario sc = Scenario::from_json(with_strategy(base, strategy));
  row.strategy = sc.placement.strategy;
  const Cluster cluster(sc.cluster);
  const GateModel gate(sc.routing, sc.model, sc.parallelism.routed_shared(sc.model));
  const auto t0 = std::chrono::steady_clock::now();
  auto placement = std::make_shared<const Placement>(
      Placement::make(sc.placement, PlacementInputs{sc.parallelism.as_routed(sc.model), sc.parallelism.ep, cluster, gate, sc.workload.tokens(),
                                      expert_compute_per_token(sc.model, sc.gpu), sc.cluster.failed_gpus, sc.faults.replan_placement}));
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
  const std::uint64_t fault_seed = sc.faults.seed;
  std::vector<double> step_ms;
  for (int step = 0; step < steps; ++step) {
    sc.routing.seed = seed + static_cast<std::uint64_t>(step);
    sc.faults.seed = fault_seed + static_cast<std::uint64_t>(step);  // noisy kernels: new draws per step
    Simulation sim(sc);
    const StepResult& r = sim.run();
    step_ms.push_back(r.step_time.to_ms());
    row.step_ms += r.step_time.to_ms() / steps;
    row.tokens_per_s_per_gpu += r.tokens_per_s_per_gpu() / steps;
    row.tokens_per_s += r.tokens_per_s() / steps;
    row.serving_gpus = r.serving_gpus;
    row.gpus = r.gpus;
    row.lost_share += (r.selections > 0 ? static_cast<double>(r.lost_selections) / static_cast<double>(r.selections) : 0.0) / steps;
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
  std::sort(step_ms.begin(), step_ms.end());  // nearest-rank p99, as epsim run --steps reports it
  row.p99_ms = step_ms[static_cast<std::size_t>(std::ceil(0.99 * static_cast<double>(steps))) - 1];
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
      s += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\n", x0 + left - 6, y + bar / 2 + 4, rows[i].label);
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


// The rows of one (scenario, strategy): one per fault state.
void measure_states(const nlohmann::json& doc, const std::string& prefix, const std::string& strategy,
                    const CompareOptions& o, const nlohmann::json& faults, std::vector<Row>& rows) {
  std::vector<FaultState> states = {FaultState::AsGiven};
  if (!o.faults.empty()) {
    states = {FaultState::Healthy, FaultState::Degraded};
    const nlohmann::json placed = with_strategy(doc, strategy);
    if (placed.contains("placement") && placed["placement"].value("strategy", "") == "eplb") states.push_back(FaultState::Replanned);
  }
  for (FaultState state : states) {
    const nlohmann::json variant = with_faults(doc, state, faults);
    Row row;
    try {
      row = measure(variant, strategy, o.steps, o.format);
    } catch (const ConfigError& e) {
      if (state != FaultState::Degraded && state != FaultState::Replanned) throw;
      row.strategy = strategy;
      row.error = e.rule();  // refused: e.g. experts left without a replica
    }
    row.label = prefix + row.strategy + (state == FaultState::AsGiven ? "" : std::string(" ") + state_name(state));
    if (!row.error.empty()) row.strategy = strategy;
    rows.push_back(std::move(row));
    if (rows.back().error.empty()) {
      std::string file = rows.back().label;
      std::replace(file.begin(), file.end(), ' ', '-');
      // The placement file a serving system can load (EPLB layout).
      write_file(o.out + "/placement-" + file + ".json", rows.back().placement.dump() + "\n");
    }
  }
}

void print_rows(const std::vector<Row>& rows) {
  std::size_t w = 15;
  for (const Row& r : rows) w = std::max(w, r.label.size() + 1);
  fmt::print("{:<{}} {:>10} {:>12} {:>12} {:<18} {:>8} {:>11} {:>12} {:>9} {:>8}\n", "strategy", w, "step ms", "tok/s/GPU",
             "max link tok", "busiest link", "max/mean", "exposed ms", "expected tok", "expert GB", "place s");
  for (const Row& r : rows) {
    if (!r.error.empty()) {
      fmt::print("{:<{}} refused: {}\n", r.label, w, r.error);
      continue;
    }
    fmt::print("{:<{}} {:>10.3f} {:>12.1f} {:>12.0f} {:<18} {:>8.3f} {:>11.3f} {:>12.0f} {:>9.2f} {:>8.2f}\n", r.label, w,
               r.step_ms, r.tokens_per_s_per_gpu, r.max_link_tokens, r.busiest_link, r.gpu_max_over_mean,
               r.exposed_comm_ms, r.expected.max_link_tokens, r.expected.expert_memory_per_gpu.to_gb(), r.place_s);
  }
}

// With faults or noisy steps: the step's distribution and what the cluster delivers.
void print_fault_rows(const std::vector<Row>& rows, int steps) {
  std::size_t w = 15;
  for (const Row& r : rows) w = std::max(w, r.label.size() + 1);
  fmt::print("\n{:<{}} {:>10} {:>10} {:>12} {:>14} {:>12} {:>8}\n", "", w, "step ms", "p99 ms", "tok/s/GPU", "tok/s cluster",
             "GPUs w/ tok", "lost %");
  for (const Row& r : rows)
    if (r.error.empty())
      fmt::print("{:<{}} {:>10.3f} {:>10.3f} {:>12.1f} {:>14.0f} {:>8}/{:<3} {:>8.3f}\n", r.label, w, r.step_ms, r.p99_ms,
                 r.tokens_per_s_per_gpu, r.tokens_per_s, r.serving_gpus, r.gpus, 100 * r.lost_share);
  fmt::print("  step ms: mean over {} step(s); p99: nearest rank; tok/s/GPU: over every GPU, failed ones included; lost %: "
             "(token, expert) selections of experts without a live replica, dropped\n",
             steps);
}

int compare(const CompareOptions& o, const std::vector<nlohmann::json>& docs, const nlohmann::json& faults) {
  // Every scenario's strategy variants (and --faults against its cluster) are checked before
  // the first simulation and before --out is made; a placement that is not an object is refused
  // first (with_strategy would paper over it).
  // --faults itself is checked against each scenario's cluster (GPU, node and link names): only a
  // well-formed fault state may be refused later (experts left without a replica).
  for (const nlohmann::json& doc : docs) {
    if (doc.is_object() && doc.contains("placement") && !doc["placement"].is_object())
      throw ConfigError("placement", json_text(doc["placement"]), "must be a JSON object");
    const Scenario sc = Scenario::from_json(with_strategy(doc, o.placements.front()));
    for (const std::string& name : o.placements) (void)Scenario::from_json(with_strategy(doc, name));
    if (!o.faults.empty()) (void)FaultSpec::from_json(faults, "--faults", sc.cluster);
  }
  require_writable_dir("--out", o.out);
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<Row> rows;
  std::vector<Scenario> scenarios;
  for (std::size_t i = 0; i < docs.size(); ++i) {
    const nlohmann::json& doc = docs[i];
    const std::string& path = o.scenarios[i];
    scenarios.push_back(Scenario::from_json(with_strategy(doc, o.placements.front())));
    const std::string prefix = o.scenarios.size() > 1 ? (scenarios.back().name.empty() ? path : scenarios.back().name) + " " : "";
    for (const std::string& name : o.placements) measure_states(doc, prefix, name, o, faults, rows);
  }
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const Scenario& sc = scenarios.front();
  {  // The expected per-expert loads the routing-aware strategies were sized on (the first scenario's), as load statistics.
    const Cluster cluster(sc.cluster);
    const GateModel gate(sc.routing, sc.model, sc.parallelism.routed_shared(sc.model));
    std::vector<std::vector<double>> loads;
    for (int l : sc.model.moe_layer_list())
      loads.push_back(gate_expected_routing(gate, l, cluster.gpu_count(), sc.workload.tokens()).expert_load());
    write_file(o.out + "/load-stats.json", load_stats_to_json(loads, sc.parallelism.as_routed(sc.model), o.format).dump() + "\n");
  }

  fmt::print("epsim compare: {} ({} nodes x {} GPUs, EP {}, {} experts, top-{}, routing {}), {} step{} per strategy\n\n",
             sc.name.empty() ? o.scenarios.front() : sc.name, sc.cluster.nodes, sc.cluster.gpus_per_node, sc.parallelism.ep,
             sc.model.routed_experts, sc.model.top_k, sc.routing.distribution, o.steps, o.steps > 1 ? "s" : "");
  print_rows(rows);
  fmt::print("\n  step ms, tok/s/GPU, exposed ms (summed over layers, worst GPU): simulated, mean over steps\n"
             "  max link tok / busiest link: most tokens one link carries in one MoE layer's dispatch, from the\n"
             "  simulated gate samples\n"
             "  max/mean: routed (token, expert) pairs of the busiest GPU over the mean, worst MoE layer\n"
             "  expected tok: the same link figure from the expected routing, no simulation; expert GB: routed-expert\n"
             "  weights per GPU (all MoE layers); place s: time to compute the placement\n");
  if (!o.faults.empty() || o.steps > 1) print_fault_rows(rows, o.steps);

  nlohmann::json j;
  j["scenario"] = sc.name;
  j["steps"] = o.steps;
  if (!o.faults.empty()) j["faults"] = faults;
  nlohmann::json list = nlohmann::json::array();
  const std::string base = sc.name.empty() ? "scenario" : sc.name;
  for (const Row& r : rows) {
    if (!r.error.empty()) {
      list.push_back({{"label", r.label}, {"strategy", r.strategy}, {"error", r.error}});
      continue;
    }
    list.push_back({{"label", r.label},
                    {"strategy", r.strategy},
                    {"step_time_ms", r.step_ms},
                    {"step_time_p99_ms", r.p99_ms},
                    {"tokens_per_s_per_gpu", r.tokens_per_s_per_gpu},
                    {"tokens_per_s", r.tokens_per_s},
                    {"serving_gpus", r.serving_gpus},
                    {"lost_share", r.lost_share},
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
  std::vector<Row> drawn;
  for (const Row& r : rows)
    if (r.error.empty()) drawn.push_back(r);
  write_file(o.out + "/compare.svg", svg("epsim compare: " + base, drawn));
  fmt::print("  compared {} rows in {:.2f} s wall time\n  wrote {}/compare.json, {}/compare.svg, {}/placement-*.json and {}/load-stats.json ({} format)\n",
             rows.size(), wall, o.out, o.out, o.out, o.out, interchange_format_names()[static_cast<std::size_t>(o.format)]);
  return 0;
}

}  // namespace

int compare_command(const Args& args) {
  const CompareOptions o = parse(args);
  const nlohmann::json faults = o.faults.empty() ? nlohmann::json() : faults_section(o.faults);
  std::vector<nlohmann::json> docs;
  for (const std::string& path : o.scenarios) {
    docs.push_back(read_scenario_file(path));
    for (const auto& s : o.sets) apply_override(docs.back(), s);
  }
  return with_scale_keys(docs.front(), [&] { return compare(o, docs, faults); });
}

}  // namespace epsim::cli
