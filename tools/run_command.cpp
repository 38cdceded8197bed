// epsim run: scenario -> simulation -> summary table, report.json, trace.json.
#include <chrono>

#include <boost/program_options.hpp>
#include <fmt/format.h>

#include "models/config.h"
#include "sim/fault_report.h"
#include "models/hf_config.h"
#include "models/limits.h"
#include "sim/report.h"
#include "sim/step_distribution.h"
#include "sim/resolved_scenario.h"
#include "sim/serving/serving_spec.h"
#include "sim/simulation.h"
#include "tools/commands.h"
#include "tools/output_paths.h"
#include "tools/overflow_keys.h"
#include "tools/index_list.h"
#include "tools/version.h"

namespace po = boost::program_options;

namespace epsim::cli {

namespace {

struct RunOptions {
  std::string scenario = "scenarios/seed.json";
  std::vector<std::string> sets;
  std::string out = "out";
  bool trace = true;
  bool ops = false;  // --ops: one dense and one MoE layer's ops (sim/layer_listing.h)
  int steps = 1;
  std::string trace_gpus, trace_layers;  // "0-3,7"; empty: all
};

RunOptions parse(const Args& args) {
  RunOptions o;
  po::options_description desc;
  desc.add_options()("scenario", po::value(&o.scenario))("set", po::value(&o.sets)->composing())(
      "out", po::value(&o.out))("no-trace", po::bool_switch())("steps", po::value(&o.steps))(
      "trace-gpus", po::value(&o.trace_gpus))("trace-layers", po::value(&o.trace_layers))(
      "ops", po::bool_switch(&o.ops));
  po::positional_options_description pos;
  pos.add("scenario", 1);
  po::variables_map vm;
  po::store(po::command_line_parser(args).options(desc).positional(pos).run(), vm);
  po::notify(vm);
  o.trace = !vm["no-trace"].as<bool>();
  if (o.steps < 1 || o.steps > limits::kSteps)
    throw UsageError("--steps " + std::to_string(o.steps) + ": must be in [1, " + std::to_string(limits::kSteps) + "]");
  return o;
}

std::string fmt_ms(Time t) { return fmt::format("{:.3f}", t.to_ms()); }

// Consecutive layers with identical figures print as one row ("3-60").
void print_layers(const StepResult& r) {
  fmt::print("\n{:>7} {:>5} {:>10} {:>10} {:>10} {:>10} {:>10} {:>12} {:>9}\n", "layer", "kind", "time ms",
             "compute", "dispatch", "combine", "tp comm", "exposed comm", "max/mean");
  auto row = [](const LayerResult& l) {
    const double imb = l.moe && l.expert_tokens_mean > 0 ? static_cast<double>(l.expert_tokens_max) / l.expert_tokens_mean : 0.0;
    return fmt::format("{:>5} {:>10} {:>10} {:>10} {:>10} {:>10} {:>12} {:>9}", l.mtp ? "mtp" : l.moe ? "moe" : "dense",
                       fmt_ms(l.end - l.start), fmt_ms(l.compute_max), fmt_ms(l.dispatch), fmt_ms(l.combine),
                       fmt_ms(l.tp_comm), fmt_ms(l.exposed_comm_max), l.moe ? fmt::format("{:.3f}", imb) : "-");
  };
  std::size_t i = 0;
  while (i < r.layers.size()) {
    std::size_t j = i + 1;
    while (j < r.layers.size() && row(r.layers[j]) == row(r.layers[i])) ++j;
    const std::string name = j - i == 1 ? fmt::format("{}", i) : fmt::format("{}-{}", i, j - 1);
    fmt::print("{:>7} {}\n", name, row(r.layers[i]));
    i = j;
  }
}

// parallelism.pp > 1: the schedule's bubble and each rank's memory.
void print_pipeline(const PipelineResult& p, const Scenario& sc) {
  fmt::print("\n  pipeline {}: {} ranks x {} GPUs, {} micro-batches of {} tokens per GPU, {} virtual stages\n", p.schedule,
             p.ranks, sc.cluster.gpu_count() / p.ranks, p.micro_batches, sc.workload.tokens() / p.micro_batches, p.stages);
  fmt::print("  bubble {:.3f} ms ({:.1f}% of the step) on the worst rank\n", p.bubble.to_ms(), 100.0 * p.bubble_fraction);
  fmt::print("  {:>6} {:>14} {:>11} {:>9} {:>12} {:>14} {:>11}\n", "rank", "layers", "bubble ms", "bubble %", "act. chunks",
             "activations GB", "memory GB");
  for (const PipelineRankResult& r : p.per_rank)
    fmt::print("  {:>6} {:>14} {:>11.3f} {:>9.1f} {:>12g} {:>14.2f} {:>11.2f}{}\n", r.rank, r.layers, r.bubble.to_ms(),
               100.0 * r.bubble_fraction, r.peak_chunks, r.memory.activations.to_gb(), r.memory.total().to_gb(),
               r.memory.fits() ? "" : " (does not fit)");
}

std::string workload_line(const Workload& w) {
  if (w.mode == Mode::Decode) {
    if (w.mtp_tokens == 0) return fmt::format("decode of {} tokens per GPU", w.batch_per_gpu);
    return fmt::format("decode of {} sequences per GPU with {} MTP draft(s) each at acceptance {} ({} tokens per sequence "
                       "through every layer, {:.3f} accepted)",
                       w.batch_per_gpu, w.mtp_tokens, w.mtp_acceptance, 1 + w.mtp_tokens,
                       w.output_tokens() / static_cast<double>(w.batch_per_gpu));
  }
  if (w.mode == Mode::Training) return fmt::format("training step of {} tokens per GPU", w.tokens());
  if (w.prefix_hit == 0) return fmt::format("prefill of {} tokens per GPU", w.tokens_per_gpu);
  return fmt::format("prefill of {} tokens per GPU, prefix hit {}: {} of each sequence's {} cached, {} computed per GPU",
                     w.tokens_per_gpu, w.prefix_hit, w.prefix_tokens(), w.seq_len, w.tokens());
}

// parallelism.attention_tp: data parallel (1) or tensor parallel, and what the gather and scatter
// around attention cost (the worst layer's TP collectives).
std::string attention_line(const Scenario& sc, const StepResult& r) {
  const int tp = sc.parallelism.attention_tp;
  const std::int64_t units = sc.workload.mode == Mode::Decode ? sc.workload.batch_per_gpu : sc.workload.tokens();
  const char* what = sc.workload.mode == Mode::Decode ? "sequences" : "tokens";
  if (sc.model.attention == AttentionKind::None) return "no attention";
  if (tp == 1) return fmt::format("attention data parallel: every GPU serves its own {} {} with the whole attention", units, what);
  Time gather_scatter = Time::zero();
  for (const LayerResult& l : r.layers) gather_scatter = max(gather_scatter, l.tp_comm);
  return fmt::format("attention TP {} in each node: a group of {} GPUs serves {} x {} {}, 1/{} of the heads on each; "
                     "all-gather before and reduce-scatter after attention, {:.3f} ms per layer",
                     tp, tp, tp, units, what, tp, gather_scatter.to_ms());
}

void print_summary(const Simulation& sim, double wall_s) {
  const StepResult& r = sim.result();
  const Scenario& sc = sim.scenario();
  const MemoryReport& m = r.memory;
  fmt::print("epsim: {}{}\n", sc.name.empty() ? "(unnamed scenario)" : sc.name,
             sc.description.empty() ? "" : " -- " + sc.description);
  fmt::print("  model {} ({} layers, {} routed experts, top-{}), GPU {}, {} nodes x {} GPUs, EP {}, attention TP {}\n",
             sc.model.name, sc.model.layers, sc.model.routed_experts, sc.model.top_k, sc.gpu.name, sc.cluster.nodes,
             sc.cluster.gpus_per_node, sc.parallelism.ep, sc.parallelism.attention_tp);
  if (const HfImport* hf = sc.model.hf_import.get()) {
    fmt::print("  config.json {} ({}): {} keys used, {} ignored\n", hf->file, hf->model_type.empty() ? "no model_type" : hf->model_type,
               hf->used(), hf->ignored());
    for (const HfKeyUse& k : hf->keys) fmt::print("    {}\n", k.line());
  }
  fmt::print("  {}\n", attention_line(sc, r));
  fmt::print("  {}; network {}; cost model {}; schedule {}\n", workload_line(sc.workload), r.network, r.cost_model,
             sc.schedule.overlap);
  fmt::print("\n  step time           {:>12.3f} ms\n", r.step_time.to_ms());
  fmt::print("  tokens/s per GPU    {:>12.1f}{}\n", r.tokens_per_s_per_gpu(),
             sc.workload.mtp_tokens > 0 ? " (accepted tokens)" : sc.workload.prefix_hit > 0 ? " (input tokens, cached ones included)" : "");
  if (sc.workload.prefix_hit > 0) fmt::print("  computed tokens/s   {:>12.1f} per GPU\n", r.computed_tokens_per_s_per_gpu());
  fmt::print("  tokens/s per node   {:>12.1f}\n", r.tokens_per_s_per_node());
  if (const Cluster& cl = sim.cluster(); cl.domain_size() > cl.gpus_per_node()) {
    // NVLink domains beyond a node (GB200 NVL72): does each EP group stay inside one?
    const TrafficByClass t = traffic_by_class(sim);
    const int ep = sc.parallelism.ep;
    fmt::print("  NVLink domain       {:>12} GPUs ({} nodes of {}); EP {} {}; traffic {:.3f} GB on NVLink, {:.3f} GB on InfiniBand\n",
               cl.domain_size(), cl.domain_size() / cl.gpus_per_node(), cl.gpus_per_node(), ep,
               cl.domain_size() % ep == 0 ? "inside one domain: dispatch and combine stay on NVLink" : "spans domains: dispatch crosses InfiniBand",
               t.nvlink, t.infiniband);
  }
  fmt::print("  memory per GPU      {:>12.2f} GB of {:.2f} GB: {}\n", m.total().to_gb(), m.capacity.to_gb(),
             m.fits() ? "fits" : "DOES NOT FIT");
  fmt::print("    weights {:.2f} (attention {:.2f}, dense {:.2f}, experts {:.2f}, shared {:.2f}, other {:.2f}), "
             "KV cache {:.2f}, activations {:.2f}{}\n",
             m.weights().to_gb(), m.attention_weights.to_gb(), m.dense_weights.to_gb(), m.expert_weights.to_gb(),
             m.shared_weights.to_gb(), m.other_weights.to_gb(), m.kv_cache.to_gb(), m.activations.to_gb(),
             m.comm_buffers.count() > 0 ? fmt::format(", comm buffers {:.2f}", m.comm_buffers.to_gb()) : "");
  if (const auto faults = fault_lines(sim); !faults.empty()) {
    fmt::print("\n  faults:\n");
    for (const auto& line : faults) fmt::print("    {}\n", line);
    if (r.serving_gpus < r.gpus) fmt::print("    tokens/s of the cluster {:.1f} ({} GPUs hold tokens)\n", r.tokens_per_s(), r.serving_gpus);
  }
  if (r.pipeline) print_pipeline(*r.pipeline, sc);
  fmt::print("\n  priced by:\n");
  for (const auto& line : r.pricing_lines) fmt::print("    {}\n", line);
  print_layers(r);
  fmt::print("\n  (times in ms; compute and exposed comm: worst GPU; max/mean: routed tokens per GPU)\n");
  fmt::print("\n  bound by: layer {} ({:.3f} ms on the critical path); GPU {}", r.bound_layer, r.bound_layer_time.to_ms(), r.bound_gpu);
  if (r.bound_gpu_straggle > Time::zero()) fmt::print(" (the others waited {:.3f} ms for it at barriers)", r.bound_gpu_straggle.to_ms());
  if (r.bound_link >= 0)
    fmt::print("; link {} ({:.1f} MB in the longest all-to-all on the path)", sim.cluster().link(r.bound_link).name,
               r.bound_link_bytes.to_mb());
  fmt::print("\n");
  fmt::print("  simulated {} events in {:.3f} s wall time; network: {} of {} keyed all-to-alls replayed, {} replays taken back\n",
             r.events, wall_s, r.replay.hits, r.replay.hits + r.replay.misses, r.replay.materialised);
  const SolverWork& w = r.solver;
  if (w.solves > 0)
    fmt::print("  flow solver: {} flows solved, {} re-solves ({} from level 0), {} flows re-filled ({} at a new rate), {} "
               "completed early by the window\n",
               w.flows, w.solves, w.full_fills, w.flows_refilled, w.rates_changed, w.early);
}

void print_steps(const Simulation& sim) {
  const std::vector<StepSummary>& steps = sim.history();
  fmt::print("{:>6} {:>12} {:>14} {:>14} {:>10} {:>14}\n", "step", "step ms", "max/mean worst", "max/mean avg", "dropped",
             "barrier wait");
  for (const StepSummary& s : steps)
    fmt::print("{:>6} {:>12.3f} {:>14.3f} {:>14.3f} {:>10} {:>14.3f}\n", s.step, s.step_time.to_ms(), s.imbalance_worst,
               s.imbalance_mean, s.dropped + s.lost, s.barrier_wait.to_ms());
  fmt::print("  (max/mean: routed tokens per expert; dropped: by the capacity factor and with lost experts; barrier wait:\n"
             "   on the critical path, how long barriers waited for their slowest GPU (ms); the summary below is the last step)\n");
  const StepDistribution d = step_distribution(steps, sim.straggle_total());
  fmt::print("  over {} steps: p50 {:.3f} ms, p99 {:.3f} ms (mean {:.3f}, min {:.3f}, max {:.3f}); tail p99 - p50 {:.3f} ms, "
             "barrier waits {:.3f} ms of it ({:.3f} ms at the p99 step, {:.3f} at the p50 step)\n",
             d.steps, d.p50.to_ms(), d.p99.to_ms(), d.mean.to_ms(), d.min.to_ms(), d.max.to_ms(), d.tail().to_ms(),
             d.tail_from_barriers().to_ms(), d.wait_p99.to_ms(), d.wait_p50.to_ms());
  if (!d.stragglers.empty()) {
    fmt::print("  barriers waited most for:");
    for (const auto& s : d.stragglers)
      fmt::print(" GPU {} ({:.3f} ms, {:.0f}%)", s.gpu, s.wait.to_ms(), 100.0 * (s.wait / d.straggle_total));
    fmt::print("\n");
  }
  fmt::print("\n");
}

}  // namespace

int run_command(const Args& args) {
  const RunOptions o = parse(args);
  nlohmann::json doc = read_scenario_file(o.scenario);
  for (const auto& s : o.sets) apply_override(doc, s);
  return with_scale_keys(doc, [&] {
    Scenario scenario = Scenario::from_json(doc);
    serving::check_serving_section(doc);
    require_writable_dir("--out", o.out);  // before the simulation, not after it
    const auto t0 = std::chrono::steady_clock::now();
    Simulation sim(std::move(scenario));
    TraceOptions trace;
    if (!o.trace_gpus.empty()) trace.gpus = parse_index_list("--trace-gpus", o.trace_gpus, sim.cluster().gpu_count(), "GPU");
    if (!o.trace_layers.empty())  // the LM head is layer model.layers
      trace.layers = parse_index_list("--trace-layers", o.trace_layers, sim.scenario().model.layers + 1, "layer");
    sim.run_steps(o.steps);
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (o.steps > 1) print_steps(sim);
    Provenance provenance{version(), {"epsim", "run"}, resolved_scenario(doc)};
    provenance.command.insert(provenance.command.end(), args.begin(), args.end());
    write_file(o.out + "/report.json", report_json(sim, provenance).dump(2) + "\n");
    write_file(o.out + "/detail.json", report_detail_json(sim).dump() + "\n");
    if (o.trace) write_file(o.out + "/trace.json", chrome_trace(sim, trace));
    print_summary(sim, wall);
    fmt::print("  wrote {}/report.json, {}/detail.json{}\n", o.out, o.out, o.trace ? " and " + o.out + "/trace.json" : "");
    if (o.ops) fmt::print("\n{}", ops_table(sim.layer_ops()));
    return 0;
  });
}

}  // namespace epsim::cli
