#include "sim/fault_spec.h"

#include <algorithm>
#include <functional>
#include <limits>

#include <fmt/format.h>

#include "models/limits.h"

namespace epsim {

const Schema& FaultSpec::schema() {
  static const Schema s{"faults", {
      {"gpu_compute", "object", nlohmann::json::object(), "",
       "GPU id -> its compute speed as a fraction of nominal, in [0.001, 1]: every compute task of that GPU takes 1 / factor "
       "as long (a throttled or degraded GPU), e.g. {\"17\": 0.5}"},
      {"link_bandwidth", "object", nlohmann::json::object(), "",
       "link name -> bandwidth factor, 0 or in [0.001, 1]; 0 = the link is down and routes avoid it (detours forward through "
       "other GPUs over NVLink and their NICs, or cross the spine: the fewest-hop live path). Names as report.json's "
       "top_links: gpuN.nvlink.up|down, gpuN.nic.up|down, leafN.up|down (a rail leaf's aggregated spine uplink); "
       "without .up/.down both directions, e.g. {\"gpu3.nic\": 0.5}"},
      {"failed_gpus", "array", nlohmann::json::array(), "",
       "GPU ids that are down: they hold no tokens (nor do the other GPUs of their attention TP group, which still serve "
       "their experts), send and forward nothing; their expert slots are empty, so their experts are served by live "
       "replicas (placement.strategy eplb with placement.redundant_slots or parallelism.slots_per_gpu) or lost. The "
       "workload per surviving GPU is unchanged; throughput counts the tokens of the GPUs that hold them. Needs "
       "parallelism.ep = all GPUs (one EP group)"},
      {"failed_nodes", "array", nlohmann::json::array(), "", "node ids that are down: every GPU of the node, as failed_gpus"},
      {"allow_lost_experts", "bool", false, "",
       "false: a failure that leaves an expert without a live replica stops the run (exit 2) naming the lost experts; "
       "true: the (token, expert) selections of lost experts are dropped and counted in the report"},
      {"replan_placement", "bool", false, "",
       "placement.strategy eplb: plan the slots over the live GPUs only (EPLB on the survivors, as a deployment that "
       "rebalances after the failure); false: the healthy placement with the failed GPUs' slots emptied"},
      {"kernel_jitter", "string", "none", "",
       "none | lognormal: every compute task's time (one op of the layer program) times an independent lognormal draw "
       "of mean 1 and coefficient of variation kernel_cv | measured: the same with each op's CV from its repeat spread in "
       "kernel_spread_file (range / d2(repetitions) / median, median over the file's cases; models/kernel_jitter.h; "
       "dense_* ops, which layer files do not time, take the shared expert's), kernel_cv for ops the file lacks. Draws are seeded by seed, the step and the task; `epsim run --steps N` reports "
       "the step-time distribution"},
      {"kernel_cv", "number", 0.0, "", "lognormal: the coefficient of variation of every compute task's time (0.05 = 5%), in [0, 10]; measured: for ops the file lacks; unread with kernel_jitter none"},
      {"kernel_spread_file", "string", "", "path",
       "measured: an epsim-layer/1 file (kernels/results/*-layer.json) whose ops carry us_min and us_max over the "
       "case's repetitions; unread otherwise"},
      {"seed", "integer", 1, "", "seed of the kernel jitter: step s, task t draws from derive_seed(seed, {s, t})"},
  }};
  return s;
}

namespace {
// A JSON array of integers in [0, limit).
std::vector<int> ids(const ConfigObject& c, const std::string& key, int limit, const std::string& what) {
  const nlohmann::json& v = c.raw(key);
  if (!v.is_array()) c.fail(key, "must be an array of " + what + " ids");
  std::vector<int> out;
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (!v[i].is_number_integer() || v[i].get<std::int64_t>() < 0 || v[i].get<std::int64_t>() >= limit)
      throw ConfigError(fmt::format("{}[{}]", c.path_of(key), i), json_text(v[i]),
                        fmt::format("must be a {} id, an integer in [0, {})", what, limit));
    out.push_back(v[i].get<int>());
  }
  return out;
}

// A JSON object whose values are numbers in [0.001, 1], or also 0 when `zero_allowed` (a factor
// below 1/1000 would only stretch a step past the simulator's range: models/limits.h kMinEfficiency).
void factors(const ConfigObject& c, const std::string& key, bool zero_allowed,
             const std::function<void(const std::string&, double, const std::string&)>& take) {
  const nlohmann::json& v = c.raw(key);
  if (!v.is_object()) c.fail(key, "must be an object");
  for (auto it = v.begin(); it != v.end(); ++it) {
    const std::string& name = it.key();
    const nlohmann::json& f = it.value();
    const std::string path = c.path_of(key) + "." + name;
    const double x = f.is_number() ? f.get<double>() : -1.0;
    const bool ok = x <= 1 && (x >= limits::kMinEfficiency || (zero_allowed && x == 0));
    if (!ok) throw ConfigError(path, json_text(f), zero_allowed ? "must be 0 (down) or a number in [0.001, 1]" : "must be a number in [0.001, 1]");
    take(name, f.get<double>(), path);
  }
}
}  // namespace

FaultSpec FaultSpec::from_json(const nlohmann::json& j, const std::string& path, const ClusterSpec& cluster) {
  const nlohmann::json obj = j.is_null() ? nlohmann::json::object() : j;
  ConfigObject c(obj, path, schema());
  FaultSpec f;
  const int gpus = cluster.gpu_count();
  factors(c, "gpu_compute", false, [&](const std::string& name, double v, const std::string& at) {
    const bool digits = !name.empty() && name.size() < 10 && name.find_first_not_of("0123456789") == std::string::npos &&
                        (name.size() == 1 || name[0] != '0');
    if (!digits || std::stoi(name) >= gpus)
      throw ConfigError(at, json_text(v), fmt::format("the key must be a GPU id, an integer in [0, {})", gpus));
    f.gpu_compute[std::stoi(name)] = v;
  });
  factors(c, "link_bandwidth", true, [&](const std::string& name, double v, const std::string& at) {
    if (!cluster.has_link(name) && !(cluster.has_link(name + ".up") && cluster.has_link(name + ".down")))
      throw ConfigError(at, json_text(v),
                        fmt::format("names no link: links are gpuN.nvlink.up|down and gpuN.nic.up|down with N < {}{}, as "
                                    "report.json's top_links names them (without .up/.down: both directions)",
                                    gpus, cluster.gpus_per_node * cluster.leaves_per_rail() > 1
                                              ? fmt::format(", and leafN.up|down with N < {}", cluster.gpus_per_node * cluster.leaves_per_rail())
                                              : ""));
    f.link_bandwidth[name] = v;
  });
  f.failed_gpus = ids(c, "failed_gpus", gpus, "GPU");
  f.failed_nodes = ids(c, "failed_nodes", cluster.nodes, "node");
  f.allow_lost_experts = c.boolean("allow_lost_experts");
  f.replan_placement = c.boolean("replan_placement");
  f.kernel_jitter = c.choice("kernel_jitter", {"none", "lognormal", "measured"});
  f.kernel_cv = c.number_in("kernel_cv", 0.0, 10.0);
  f.kernel_spread_file = c.string("kernel_spread_file");
  f.seed = c.integer_in<std::uint64_t>("seed", 0, std::numeric_limits<std::int64_t>::max());
  if (f.kernel_jitter == "measured" && f.kernel_spread_file.empty())
    throw ConfigError(c.path_of("kernel_spread_file"), "\"\"", "kernel_jitter = measured needs a layer file (kernels/results/*-layer.json)");
  if (static_cast<int>(f.down_gpus(cluster.gpus_per_node).size()) == gpus)
    throw ConfigError(f.failure_key().first, f.failure_key().second, "leaves no GPU alive");
  return f;
}

std::vector<int> FaultSpec::down_gpus(int gpus_per_node) const {
  std::vector<int> out = failed_gpus;
  for (int n : failed_nodes)
    for (int r = 0; r < gpus_per_node; ++r) out.push_back(n * gpus_per_node + r);
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

std::map<std::string, double> FaultSpec::link_factors(const ClusterSpec& cluster) const {
  std::map<std::string, double> out;
  for (const auto& [name, f] : link_bandwidth) {
    if (cluster.has_link(name)) {
      out[name] = f;
      continue;
    }
    out[name + ".up"] = f;
    out[name + ".down"] = f;
  }
  return out;
}

std::pair<std::string, std::string> FaultSpec::failure_key() const {
  const bool nodes = !failed_nodes.empty();
  return {"faults." + std::string(nodes ? "failed_nodes" : "failed_gpus"),
          json_text(nlohmann::json(nodes ? failed_nodes : failed_gpus))};
}

double FaultSpec::speed(int gpu) const {
  const auto it = gpu_compute.find(gpu);
  return it == gpu_compute.end() ? 1.0 : it->second;
}

bool FaultSpec::any() const {
  return !gpu_compute.empty() || !link_bandwidth.empty() || !failed_gpus.empty() || !failed_nodes.empty() ||
         kernel_jitter != "none";
}

}  // namespace epsim
