#include "sim/report.h"

#include <cmath>
#include <fstream>

#include <fmt/format.h>

#include "models/errors.h"
#include "sim/fault_report.h"
#include "sim/step_distribution.h"
#include "models/hf_config.h"

namespace epsim {

namespace {
double ms(Time t) { return t.to_ms(); }

nlohmann::json memory_json(const MemoryReport& m) {
  nlohmann::json j = {
      {"per_gpu_gb", m.total().to_gb()},     {"capacity_gb", m.capacity.to_gb()},
      {"fits", m.fits()},                    {"weights_gb", m.weights().to_gb()},
      {"attention_weights_gb", m.attention_weights.to_gb()}, {"dense_weights_gb", m.dense_weights.to_gb()},
      {"expert_weights_gb", m.expert_weights.to_gb()},       {"shared_weights_gb", m.shared_weights.to_gb()},
      {"other_weights_gb", m.other_weights.to_gb()},         {"kv_cache_gb", m.kv_cache.to_gb()},
      {"activations_gb", m.activations.to_gb()},
  };
  if (m.comm_buffers.count() > 0) j["comm_buffers_gb"] = m.comm_buffers.to_gb();
  return j;
}

nlohmann::json pipeline_json(const PipelineResult& p) {
  nlohmann::json ranks = nlohmann::json::array();
  for (const PipelineRankResult& r : p.per_rank) {
    nlohmann::json m = memory_json(r.memory);
    m["optimizer_gb"] = r.memory.optimizer.to_gb();
    ranks.push_back({{"rank", r.rank}, {"stages", r.stages}, {"layers", r.layers}, {"busy_ms", ms(r.busy)},
                     {"bubble_ms", ms(r.bubble)}, {"bubble_fraction", r.bubble_fraction},
                     {"activation_chunks", r.peak_chunks}, {"memory", m}});
  }
  return {{"schedule", p.schedule}, {"ranks", p.ranks}, {"micro_batches", p.micro_batches}, {"virtual_stages", p.stages},
          {"bubble_ms", ms(p.bubble)}, {"bubble_fraction", p.bubble_fraction}, {"per_rank", ranks}};
}
}  // namespace

nlohmann::json report_json(const Simulation& sim, const Provenance& provenance) {
  const StepResult& r = sim.result();
  const Cluster& cl = sim.cluster();
  nlohmann::json j;
  if (!provenance.version.empty()) j["version"] = provenance.version;
  if (!provenance.command.empty()) j["command"] = provenance.command;
  if (!provenance.scenario.is_null()) j["resolved_scenario"] = provenance.scenario;
  j["scenario"] = r.scenario;
  // A model read from a config.json: which keys were used and which ignored (models/hf_config.h).
  if (const HfImport* hf = sim.scenario().model.hf_import.get()) j["hf_config"] = hf->to_json();
  j["network"] = r.network;
  j["cost_model"] = r.cost_model;
  j["gpus"] = r.gpus;
  j["nodes"] = cl.node_count();
  j["step_time_ms"] = ms(r.step_time);
  j["tokens_per_gpu"] = r.tokens_per_gpu;
  j["tokens_per_s_per_gpu"] = r.tokens_per_s_per_gpu();
  j["tokens_per_s_per_node"] = r.tokens_per_s_per_node();
  const Workload& w = sim.scenario().workload;
  if (w.prefix_hit > 0) {
    j["prefix_cache"] = {{"prefix_hit", w.prefix_hit},
                         {"cached_tokens_per_sequence", w.prefix_tokens()},
                         {"computed_tokens_per_gpu", r.computed_tokens_per_gpu},
                         {"computed_tokens_per_s_per_gpu", r.computed_tokens_per_s_per_gpu()}};
  }
  if (w.mtp_tokens > 0) {
    j["mtp"] = {{"draft_tokens", w.mtp_tokens},
                {"acceptance", w.mtp_acceptance},
                {"tokens_per_sequence", r.output_tokens_per_gpu / static_cast<double>(w.batch_per_gpu)},
                {"accepted_tokens_per_gpu", r.output_tokens_per_gpu},
                {"verified_tokens_per_gpu", r.computed_tokens_per_gpu}};
  }
  j["events"] = r.events;
  j["network_replay"] = {{"hits", r.replay.hits},       {"misses", r.replay.misses},   {"stored", r.replay.stored},
                         {"replayed", r.replay.replayed}, {"solved", r.replay.solved}, {"materialised", r.replay.materialised}};
  nlohmann::json bound = {{"layer", r.bound_layer}, {"layer_ms", ms(r.bound_layer_time)}, {"gpu", r.bound_gpu},
                          {"gpu_straggle_ms", ms(r.bound_gpu_straggle)}};
  if (r.bound_link >= 0) {
    bound["link"] = cl.link(r.bound_link).name;
    bound["link_mb"] = r.bound_link_bytes.to_mb();
  }
  j["bound_by"] = bound;
  j["pricing"] = r.pricing;
  j["ops"] = to_json(sim.layer_ops());
  j["memory"] = memory_json(r.memory);
  if (r.pipeline) j["pipeline"] = pipeline_json(*r.pipeline);
  nlohmann::json layers = nlohmann::json::array();
  for (const LayerResult& l : r.layers) {
    nlohmann::json lj = {
        {"layer", l.layer}, {"moe", l.moe}, {"time_ms", ms(l.end - l.start)},
        {"compute_ms", ms(l.compute_max)}, {"compute_mean_ms", ms(l.compute_mean)},
        {"dispatch_ms", ms(l.dispatch)}, {"combine_ms", ms(l.combine)}, {"tp_comm_ms", ms(l.tp_comm)},
        {"exposed_comm_ms", ms(l.exposed_comm_max)}, {"exposed_comm_mean_ms", ms(l.exposed_comm_mean)},
    };
    if (l.mtp) lj["mtp"] = true;
    if (l.moe) {
      lj["expert_tokens_max"] = l.expert_tokens_max;
      lj["expert_tokens_mean"] = l.expert_tokens_mean;
      lj["expert_tokens_max_gpu"] = l.expert_tokens_max_gpu;
      lj["straggler_gpu"] = l.straggler_gpu;
      if (l.busiest_link >= 0) {
        lj["busiest_link"] = cl.link(l.busiest_link).name;
        lj["busiest_link_mb"] = l.busiest_link_bytes.to_mb();
      }
    }
    layers.push_back(lj);
  }
  j["layers"] = layers;
  nlohmann::json gpus = nlohmann::json::array();
  for (const GpuResult& g : r.per_gpu)
    gpus.push_back({{"compute_ms", ms(g.compute_busy)}, {"comm_ms", ms(g.comm_busy)}, {"exposed_comm_ms", ms(g.exposed_comm)}});
  j["per_gpu"] = gpus;
  // The busiest links of the whole step, by bytes (ties: lower link id first).
  // Kernel links (a GPU's communication SMs, not a wire) are left out (busiest_links).
  nlohmann::json links = nlohmann::json::array();
  for (LinkId id : busiest_links(r, cl, 16)) {
    const auto& c = r.links[static_cast<std::size_t>(id)];
    const Link& l = cl.link(id);
    links.push_back({{"link", l.name}, {"kind", to_string(l.kind)}, {"gb", c.bytes.to_gb()}, {"busy_ms", ms(c.busy)},
                     {"utilisation", c.busy.to_seconds() / r.step_time.to_seconds()}, {"peak_flows", c.peak_flows}});
  }
  j["top_links"] = links;
  const TrafficByClass t = traffic_by_class(sim);
  j["traffic_gb"] = {{"nvlink", t.nvlink}, {"infiniband", t.infiniband}, {"spine", t.spine}};
  // NVLink domains larger than a node (cluster.nvlink_domain): whether each EP group lies inside one.
  if (cl.domain_size() > cl.gpus_per_node()) {
    const int ep = sim.scenario().parallelism.ep;
    j["nvlink_domain"] = {{"gpus", cl.domain_size()}, {"domains", cl.gpu_count() / cl.domain_size()},
                          {"ep_group_inside", cl.domain_size() % ep == 0}};
  }
  if (nlohmann::json f = faults_json(sim); !f.is_null()) j["faults"] = f;
  if (sim.history().size() > 1) j["steps"] = to_json(step_distribution(sim.history(), sim.straggle_total()));
  return j;
}

TrafficByClass traffic_by_class(const Simulation& sim) {
  const StepResult& r = sim.result();
  const Cluster& cl = sim.cluster();
  TrafficByClass t;
  for (std::size_t i = 0; i < r.links.size(); ++i) {
    const LinkKind k = cl.link(static_cast<LinkId>(i)).kind;
    const double gb = r.links[i].bytes.to_gb();
    if (k == LinkKind::NvlinkUp) t.nvlink += gb;
    if (k == LinkKind::NicUp) t.infiniband += gb;
    if (k == LinkKind::LeafUp) t.spine += gb;
  }
  return t;
}

namespace {
double ms_ns(Time t) { return static_cast<double>((t.picoseconds() + 500) / 1000) / 1e6; }  // to the ns

nlohmann::json gpu_layer_json(const StepResult& r) {
  nlohmann::json compute = nlohmann::json::array(), exposed = nlohmann::json::array();
  for (const LayerResult& l : r.layers) {
    nlohmann::json c = nlohmann::json::array(), e = nlohmann::json::array();
    for (Time t : l.compute_by_gpu) c.push_back(ms_ns(t));
    for (Time t : l.exposed_comm_by_gpu) e.push_back(ms_ns(t));
    compute.push_back(std::move(c));
    exposed.push_back(std::move(e));
  }
  return {{"compute_ms", std::move(compute)}, {"exposed_comm_ms", std::move(exposed)}};
}

nlohmann::json link_timeline_json(const StepResult& r, const Cluster& cl) {
  const LinkTimeline& tl = r.link_timeline;
  nlohmann::json links = nlohmann::json::array();
  for (LinkId id : busiest_links(r, cl, 8)) {
    if (tl.empty() || r.links[static_cast<std::size_t>(id)].bytes.count() == 0) continue;
    const Link& l = cl.link(id);
    nlohmann::json u = nlohmann::json::array();
    for (int b = 0; b < tl.bins_used(); ++b) u.push_back(std::round(tl.utilisation(id, b, l.bandwidth) * 1e4) / 1e4);
    links.push_back({{"link", l.name}, {"kind", to_string(l.kind)}, {"gb_per_s", l.bandwidth.to_gb_per_s()}, {"utilisation", std::move(u)}});
  }
  return {{"bin_ms", tl.empty() ? 0.0 : tl.width().to_ms()}, {"links", std::move(links)}};
}

nlohmann::json placement_json(const StepResult& r) {
  // The MoE layer whose busiest GPU is furthest above the mean (the first of equals).
  int worst = -1;
  double imbalance = -1;
  for (const LayerResult& l : r.layers)
    if (l.moe && l.expert_tokens_mean > 0 && static_cast<double>(l.expert_tokens_max) / l.expert_tokens_mean > imbalance) {
      imbalance = static_cast<double>(l.expert_tokens_max) / l.expert_tokens_mean;
      worst = l.layer;
    }
  if (worst < 0 || !r.placement) return nullptr;
  const LayerPlacement& p = r.placement->layer(worst);
  nlohmann::json experts = nlohmann::json::array();
  for (int g = 0; g < r.gpus; ++g) {
    nlohmann::json on = nlohmann::json::array();
    const int first = (g % p.ep()) * p.slots_per_gpu();
    for (int s = first; s < first + p.slots_per_gpu(); ++s) on.push_back(p.expert_at(s));
    experts.push_back(std::move(on));
  }
  return {{"strategy", r.placement->strategy()},
          {"layer", worst},
          {"experts_by_gpu", std::move(experts)},
          {"tokens_by_gpu", r.layers[static_cast<std::size_t>(worst)].expert_tokens_by_gpu}};
}
}  // namespace

nlohmann::json report_detail_json(const Simulation& sim) {
  const StepResult& r = sim.result();
  return {{"gpus", r.gpus},
          {"gpus_per_node", r.gpus_per_node},
          {"step_time_ms", ms(r.step_time)},
          {"gpu_layer", gpu_layer_json(r)},
          {"link_timeline", link_timeline_json(r, sim.cluster())},
          {"placement", placement_json(r)}};
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary);
  if (!f) throw InputError(path + ": cannot write file");
  f << text;
  if (!f) throw InputError(path + ": write failed");
}

}  // namespace epsim
