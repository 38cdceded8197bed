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
      gate_(scenario_.routing, scenario_.model, scenario_.parallelism.routed_shared(scenario_.model)) {}

std::vector<StepSummary> Simulation::run_steps(int steps) {
  std::vector<StepSummary> out;
  for (int step = 0; step < steps; ++step) {
    gate_.begin_step(step);
    const StepResult& r = run();
    StepSummary s{step, r.step_time, 1.0, 0.0, 0};
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
  const auto placement_ptr = std::make_shared<const Placement>(Placement::make(sc.placement, PlacementInputs{sc.parallelism.as_routed(sc.model), sc.parallelism.ep, cluster_, gate, sc.workload.tokens(),
                                                                        expert_compute_per_token(sc.model, sc.gpu)}));
  const Placement& placement = *placement_ptr;
  if (sc.parallelism.slots_per_gpu > 0)
    for (const LayerPlacement& t : placement.tables())
      if (t.slots_per_gpu() != sc.parallelism.slots_per_gpu)
        throw ConfigError("placement.file", "\"" + sc.placement.file + "\"",
                          "holds " + std::to_string(t.slots_per_gpu()) + " slots per GPU; parallelism.slots_per_gpu = " +
                              std::to_string(sc.parallelism.slots_per_gpu));
  StepBuilder builder(sc, cluster_, *cost_, gate, placement);
  graph_ = builder.build();

  Simulator sim;
  auto net = make_network(sc.network, sim, cluster_);
  const DispatchImpl impl = DispatchImpl::named(sc.network.dispatch_impl);
  SmSharing sharing{sc.gpu.sms, sc.schedule.comm_sms, impl.hbm_share, impl.round_stretch, impl.fixed_stretch};
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
  const Workload& w = sc.workload;
  r.tokens_per_gpu = w.mode == Mode::Prefill ? w.tokens_per_gpu : w.mode == Mode::Decode ? w.batch_per_gpu : w.tokens();
  r.computed_tokens_per_gpu = w.tokens();
  r.output_tokens_per_gpu = w.output_tokens();
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
  r.pricing_lines = builder.pricing().lines();
  r.pricing = builder.pricing().to_json();
  const int layers = sc.model.layers + w.mtp_tokens;  // the MTP module's layer once per draft pass
  collect_metrics(graph_, loads_, layers, r);
  for (std::size_t l = static_cast<std::size_t>(sc.model.layers); l < r.layers.size(); ++l) r.layers[l].mtp = true;
  const CriticalPath cp = critical_path(graph_, r.gpus, layers);
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
