#include "sim/report.h"

#include <fstream>

#include <fmt/format.h>

#include "models/errors.h"

namespace epsim {

namespace {
double ms(Time t) { return t.to_ms(); }
}  // namespace

nlohmann::json report_json(const Simulation& sim, const Provenance& provenance) {
  const StepResult& r = sim.result();
  const Cluster& cl = sim.cluster();
  nlohmann::json j;
  if (!provenance.version.empty()) j["version"] = provenance.version;
  if (!provenance.command.empty()) j["command"] = provenance.command;
  if (!provenance.scenario.is_null()) j["resolved_scenario"] = provenance.scenario;
  j["scenario"] = r.scenario;
  j["network"] = r.network;
  j["cost_model"] = r.cost_model;
  j["gpus"] = r.gpus;
  j["nodes"] = cl.node_count();
  j["step_time_ms"] = ms(r.step_time);
  j["tokens_per_gpu"] = r.tokens_per_gpu;
  j["tokens_per_s_per_gpu"] = r.tokens_per_s_per_gpu();
  j["tokens_per_s_per_node"] = r.tokens_per_s_per_node();
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
  const MemoryReport& m = r.memory;
  j["memory"] = {
      {"per_gpu_gb", m.total().to_gb()},     {"capacity_gb", m.capacity.to_gb()},
      {"fits", m.fits()},                    {"weights_gb", m.weights().to_gb()},
      {"attention_weights_gb", m.attention_weights.to_gb()}, {"dense_weights_gb", m.dense_weights.to_gb()},
      {"expert_weights_gb", m.expert_weights.to_gb()},       {"shared_weights_gb", m.shared_weights.to_gb()},
      {"other_weights_gb", m.other_weights.to_gb()},         {"kv_cache_gb", m.kv_cache.to_gb()},
      {"activations_gb", m.activations.to_gb()},
  };
  nlohmann::json layers = nlohmann::json::array();
  for (const LayerResult& l : r.layers) {
    nlohmann::json lj = {
        {"layer", l.layer}, {"moe", l.moe}, {"time_ms", ms(l.end - l.start)},
        {"compute_ms", ms(l.compute_max)}, {"compute_mean_ms", ms(l.compute_mean)},
        {"dispatch_ms", ms(l.dispatch)}, {"combine_ms", ms(l.combine)}, {"tp_comm_ms", ms(l.tp_comm)},
        {"exposed_comm_ms", ms(l.exposed_comm_max)}, {"exposed_comm_mean_ms", ms(l.exposed_comm_mean)},
    };
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
  nlohmann::json links = nlohmann::json::array();
  for (LinkId id : busiest_links(r, 16)) {
    const auto& c = r.links[static_cast<std::size_t>(id)];
    const Link& l = cl.link(id);
    links.push_back({{"link", l.name}, {"kind", to_string(l.kind)}, {"gb", c.bytes.to_gb()}, {"busy_ms", ms(c.busy)},
                     {"utilisation", c.busy.to_seconds() / r.step_time.to_seconds()}, {"peak_flows", c.peak_flows}});
  }
  j["top_links"] = links;
  return j;
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary);
  if (!f) throw InputError(path + ": cannot write file");
  f << text;
  if (!f) throw InputError(path + ": write failed");
}

}  // namespace epsim
