#include "sim/simulation.h"

#include "models/apportion.h"
#include "models/dispatch_impl.h"

#include <algorithm>

#include "models/errors.h"
#include "sim/analytical_network.h"
#include "sim/critical_path.h"
#include "sim/dispatch_mode.h"
#include "sim/executor.h"
#include "sim/flow_network.h"
#include "sim/simulator.h"
#include "sim/step_builder.h"
#include "sim/step_metrics.h"

namespace epsim {

std::unique_ptr<Network> make_network(const NetworkSpec& spec, Simulator& sim, const Cluster& cluster) {
  if (spec.model == "analytical") return std::make_unique<AnalyticalNetwork>(sim, cluster, spec.replay);
  if (spec.model == "flow") return std::make_unique<FlowNetwork>(sim, cluster.links(), spec.replay, spec.completion_window);
  throw ConfigError("network.model", "\"" + spec.model + "\"", "unknown network model");
}

namespace {
// Experts without a live replica in any layer's table, ascending.
std::vector<int> lost_experts(const Placement& placement) {
  std::vector<int> lost;
  for (const auto& table : placement.lost_experts())
    for (int e : table)
      if (std::find(lost.begin(), lost.end(), e) == lost.end()) lost.push_back(e);
  std::sort(lost.begin(), lost.end());
  return lost;
}

// Failed GPUs that held the only replica of an expert: refused unless faults.allow_lost_experts.
void check_lost_experts(const Scenario& sc, const std::vector<int>& lost) {
  if (lost.empty() || sc.faults.allow_lost_experts) return;
  std::string list;
  for (std::size_t i = 0; i < lost.size() && i < 16; ++i) list += (i ? ", " : "") + std::to_string(lost[i]);
  if (lost.size() > 16) list += ", ...";
  const auto [key, value] = sc.faults.failure_key();
  throw ConfigError(key, value,
                    std::to_string(lost.size()) + " expert(s) lose their only replica (" + list +
                        "): give them redundant slots (placement.strategy eplb with placement.redundant_slots or "
                        "parallelism.slots_per_gpu; faults.replan_placement re-plans them over the live GPUs), or set "
                        "faults.allow_lost_experts = true to drop their tokens");
}

// The scenario's cluster with one kernel link per GPU when its dispatch kernels are SM-bound.
ClusterSpec with_kernel_links(const Scenario& sc, const CostModel& cost) {
  ClusterSpec spec = sc.cluster;
  spec.kernel_rate = kernel_rate(sc, engine_rates(sc, cost));
  return spec;
}
}  // namespace

Simulation::Simulation(Scenario scenario)
    : scenario_(std::move(scenario)), cost_(make_cost_model(scenario_.cost_model, scenario_.gpu)),
      cluster_(with_kernel_links(scenario_, *cost_)),
      gate_(scenario_.routing, scenario_.model, scenario_.parallelism.routed_shared(scenario_.model)),
      jitter_(make_kernel_jitter(scenario_.faults)) {}

std::vector<StepSummary> Simulation::run_steps(int steps) {
  std::vector<StepSummary> out;
  for (int step = 0; step < steps; ++step) {
    gate_.begin_step(step);
    const StepResult& r = run();
    StepSummary s{step, r.step_time, 1.0, 0.0, 0, r.lost_selections, r.barrier_wait, r.alltoall_wait};
    int moe = 0;
    for (int l = 0; l < scenario_.model.layers; ++l) {
      const LayerLoad& load = loads_[static_cast<std::size_t>(l)];
      if (load.per_expert.empty()) continue;
      const double imb = max_over_mean(load.per_expert);
      s.imbalance_worst = std::max(s.imbalance_worst, imb);
      s.imbalance_mean += imb;
      s.dropped += load.dropped;
      ++moe;
      gate_.observe(l, load.per_expert);
    }
    s.imbalance_mean = moe > 0 ? s.imbalance_mean / moe : 1.0;
    out.push_back(s);
    history_.push_back(s);
    straggle_total_.resize(r.straggle.size());
    for (std::size_t g = 0; g < r.straggle.size(); ++g) straggle_total_[g] += r.straggle[g];
  }
  return out;
}

OpsReport Simulation::layer_ops() const {
  const Scenario& sc = scenario_;
  std::int64_t rows = 0;
  for (const LayerResult& l : result_.layers)
    if (l.moe) {
      rows = l.expert_tokens_max / sc.schedule.micro_batches();
      break;
    }
  return list_layer_ops(sc, *cost_, rows);
}

namespace {
// Per rank: its stages' weights, and the activation chunks its schedule holds at the peak (each the
// working set of its stage's layers at one micro-batch's tokens). Returns the fullest rank's.
MemoryReport pipeline_memory(PipelineResult& result, const PipelineRun& run, const LayerOps& ops, const Parallelism& par,
                             const Scenario& sc) {
  const PipelineSchedule& s = run.schedule;
  const std::vector<double> held = peak_held(s, [&](int stage) { return static_cast<double>(run.stage_layers(stage)); });
  MemoryReport fullest;
  for (PipelineRankResult& rr : result.per_rank) {
    ModelShare share;
    share.embedding = share.lm_head = false;
    for (int v : rr.stages) {
      for (int l = run.stage_first_layer[static_cast<std::size_t>(v)]; l < run.stage_first_layer[static_cast<std::size_t>(v) + 1]; ++l) {
        ++(sc.model.is_moe(l) ? share.moe_layers : share.dense_layers);
        if (sc.model.window_of(l) > 0) ++share.window_layers;
      }
      share.embedding = share.embedding || v == 0;
      share.lm_head = share.lm_head || (v == s.stages - 1 && sc.model.vocab > 0);
    }
    share.activation_layers = held[static_cast<std::size_t>(rr.rank)];
    share.activation_tokens = equal_share(sc.workload.tokens(), 0, s.micro_batches);
    rr.memory = estimate_memory(ops, par, sc.workload, sc.gpu, share);
    if (rr.memory.total() > fullest.total()) fullest = rr.memory;
  }
  return fullest;
}
}  // namespace

const StepResult& Simulation::run() {
  const Scenario& sc = scenario_;
  const GateModel& gate = gate_;
  const auto placement_ptr = std::make_shared<const Placement>(Placement::make(
      sc.placement, PlacementInputs{sc.parallelism.as_routed(sc.model), sc.parallelism.ep, cluster_, gate, sc.workload.tokens(),
                                    expert_compute_per_token(sc.model, sc.gpu), sc.cluster.failed_gpus, sc.faults.replan_placement}));
  const Placement& placement = *placement_ptr;
  std::vector<int> lost = lost_experts(placement);
  check_lost_experts(sc, lost);
  if (sc.parallelism.slots_per_gpu > 0)
    for (const LayerPlacement& t : placement.tables())
      if (t.slots_per_gpu() != sc.parallelism.slots_per_gpu)
        throw ConfigError("placement.file", "\"" + sc.placement.file + "\"",
                          "holds " + std::to_string(t.slots_per_gpu()) + " slots per GPU; parallelism.slots_per_gpu = " +
                              std::to_string(sc.parallelism.slots_per_gpu));
  StepBuilder builder(sc, cluster_, *cost_, gate, placement, ComputeFaults(sc, jitter_, gate.step()));
  graph_ = builder.build();

  Simulator sim;
  auto net = make_network(sc.network, sim, cluster_);
  const DispatchImpl impl = DispatchImpl::named(sc.network.dispatch_impl);
  const NetworkSpec::Interference k = sc.network.interference();
  SmSharing sharing{sc.gpu.sms, sc.schedule.comm_sms, k.hbm_share, k.round_stretch, k.fixed_stretch, impl.executor_rounds(),
                    k.fixed_sm_share, impl.every_kernel};
  LinkTimeline timeline(cluster_.links().size());
  Executor exec(sim, *net, graph_, sharing, &cluster_.links(), &timeline);
  StepResult& r = result_;
  r = StepResult{};
  r.placement = placement_ptr;
  r.scenario = sc.name;
  r.network = net->name() + "/" + sc.network.scheme;
  r.cost_model = cost_->name();
  r.gpus = cluster_.gpu_count();
  r.gpus_per_node = cluster_.gpus_per_node();
  r.step_time = exec.run();
  r.events = sim.events_executed();
  r.replay = net->replay_stats();
  r.solver = net->solver_work().value_or(SolverWork{});
  const Workload& w = sc.workload;
  r.tokens_per_gpu = w.mode == Mode::Prefill ? w.tokens_per_gpu : w.mode == Mode::Decode ? w.batch_per_gpu : w.tokens();
  r.computed_tokens_per_gpu = w.tokens();
  r.output_tokens_per_gpu = w.output_tokens();
  // Failed GPUs (and the rest of their attention TP groups) hold no tokens: per-GPU throughput is
  // the tokens of those that do, over every GPU.
  r.failed_gpus = sc.cluster.failed_gpus;
  r.lost_experts = std::move(lost);
  r.serving_gpus = 0;
  for (int g = 0; g < r.gpus; ++g) r.serving_gpus += sc.serves_tokens(g) ? 1 : 0;
  const double share = static_cast<double>(r.serving_gpus) / r.gpus;
  if (r.serving_gpus < r.gpus) {
    r.output_tokens_per_gpu *= share;
    r.computed_tokens_per_gpu = static_cast<std::int64_t>(static_cast<double>(r.computed_tokens_per_gpu) * share);
  }
  r.links = net->counters();
  r.link_timeline = std::move(timeline);
  // Expert weights per GPU: its physical slots (redundant experts add slots), worst layer.
  Parallelism par = sc.parallelism;
  for (int l = 0; l < sc.model.layers; ++l)
    if (sc.model.is_moe(l)) par.experts_per_gpu = std::max(par.experts_per_gpu, placement.layer(l).slots_per_gpu());
  const LayerOps ops(sc.model, sc.parallelism.attention_tp);
  r.memory = estimate_memory(ops, par, sc.workload, sc.gpu);
  const Bytes comm_buffers = low_latency_buffers(sc, comm_setup(sc, engine_rates(sc, *cost_), is_calibrated(*cost_)), par.experts_per_gpu);
  r.memory.comm_buffers = comm_buffers;
  if (sc.parallelism.pp > 1) {
    pipeline_ = builder.pipeline();
    r.pipeline = pipeline_metrics(graph_, pipeline_, r.step_time);
    r.memory = pipeline_memory(*r.pipeline, builder.pipeline(), ops, par, sc);
    r.memory.comm_buffers = comm_buffers;
    // Every token passes through all pp ranks: the cluster finishes G / pp x tokens_per_gpu a step.
    r.output_tokens_per_gpu = w.output_tokens() / sc.parallelism.pp;
  }
  loads_ = builder.loads();
  for (const LayerLoad& load : loads_) {
    r.lost_selections += load.lost;
    for (std::int64_t e : load.per_expert) r.selections += e;
  }
  r.selections += r.lost_selections;
  r.pricing_lines = builder.pricing().lines();
  r.pricing = builder.pricing().to_json();
  const int layers = sc.model.layers + w.mtp_tokens;  // the MTP module's layer once per draft pass
  collect_metrics(graph_, loads_, layers, r);
  // Routed tokens per GPU: the mean over the live GPUs (failed ones hold no slot).
  if (!r.failed_gpus.empty())
    for (std::size_t l = 0; l < r.layers.size(); ++l) {
      if (!r.layers[l].moe) continue;
      r.layers[l].expert_tokens_mean *= static_cast<double>(r.gpus) / static_cast<double>(r.gpus - static_cast<int>(r.failed_gpus.size()));
    }
  for (std::size_t l = static_cast<std::size_t>(sc.model.layers); l < r.layers.size(); ++l) r.layers[l].mtp = true;
  std::vector<char> idle(static_cast<std::size_t>(r.gpus), 0);
  for (int g : r.failed_gpus) idle[static_cast<std::size_t>(g)] = 1;
  const CriticalPath cp = critical_path(graph_, r.gpus, layers, &idle);
  r.barrier_wait = cp.barrier_wait;
  r.alltoall_wait = cp.alltoall_wait;
  r.straggle = cp.straggle;
  r.bound_layer = cp.layer;
  r.bound_layer_time = cp.layer_time;
  r.bound_gpu = cp.gpu;
  r.bound_gpu_straggle = cp.gpu_straggle;
  if (cp.collective >= 0) {
    r.bound_link = graph_.info(cp.collective).traffic.busiest_link;
    r.bound_link_bytes = graph_.info(cp.collective).traffic.busiest_bytes;
  }
  for (std::size_t l = 0; l < r.layers.size(); ++l) r.layers[l].straggler_gpu = cp.straggler_by_layer[l];
  return r;
}

}  // namespace epsim
