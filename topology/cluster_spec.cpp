#include "topology/cluster_spec.h"

#include "models/limits.h"

namespace epsim {

const Schema& ClusterSpec::schema() {
  static const Schema s{"cluster", {
      {"preset", "string", "hgx", "",
       "the system: hgx: nodes of 8 GPUs, each node one NVLink domain (HGX/DGX H100, H800, H200, H20, B200) | "
       "gb200-nvl72: nodes (compute trays) of 4 GPUs, 18 of them (72 GPUs) in one NVLink domain, InfiniBand between "
       "racks; the keys below override it"},
      {"nodes", "integer", 32, "", "number of nodes"},
      {"gpus", "integer", nullptr, "", "total GPUs, instead of nodes: must be a multiple of gpus_per_node"},
      {"gpus_per_node", "integer", nullptr, "", "GPUs per node, one NIC each; also the number of rails (default: preset: hgx 8, gb200-nvl72 4)"},
      {"nvlink_domain", "integer", nullptr, "GPUs",
       "GPUs joined by one NVLink switch fabric: any two of them talk over NVLink, across nodes too; a multiple of "
       "gpus_per_node that divides the GPU count (default: preset: hgx the node, gb200-nvl72 72)"},
      {"nvlink_gbps", "number", nullptr, "GB/s", "NVLink bandwidth per GPU, each way (default: the GPU preset's)"},
      {"nic_gbps", "number", 400, "Gb/s", "NIC (InfiniBand) bandwidth per GPU, each way; one NIC per GPU"},
      {"nodes_per_leaf", "integer", 32, "", "nodes under one rail leaf switch; more nodes add leaves per rail"},
      {"oversubscription", "number", 1.0, "", "leaf downlink:uplink bandwidth ratio (1 = non-blocking)"},
      {"nvlink_latency_us", "number", 0.5, "us", "latency of one NVLink link (a GPU-to-GPU message crosses two)"},
      {"nic_latency_us", "number", 1.0, "us", "latency of one NIC link (GPU<->leaf)"},
      {"spine_latency_us", "number", 0.5, "us", "latency of one leaf<->spine link"},
      {"topology", "string", "rail", "",
       "the rail-optimised fabric (GPU i of every node on rail leaf i) and how traffic between rails is routed: rail: "
       "from the source GPU's NIC across the spine to the destination's rail | rail_pxn: first over NVLink to the GPU "
       "of the source's node on the destination's rail, then on that rail (no spine crossing; NCCL's PXN)"},
  }};
  return s;
}

namespace {
// "<prefix><N><suffix>" with 0 <= N < limit.
bool indexed(const std::string& name, const std::string& prefix, const std::string& suffix, int limit) {
  if (name.size() <= prefix.size() + suffix.size() || name.compare(0, prefix.size(), prefix) != 0 ||
      name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0)
    return false;
  const std::string digits = name.substr(prefix.size(), name.size() - prefix.size() - suffix.size());
  if (digits.size() > 9 || digits.find_first_not_of("0123456789") != std::string::npos) return false;
  if (digits.size() > 1 && digits[0] == '0') return false;
  return std::stoi(digits) < limit;
}
}  // namespace

bool ClusterSpec::has_link(const std::string& name) const {
  for (const char* suffix : {".nvlink.up", ".nvlink.down", ".nic.up", ".nic.down"})
    if (indexed(name, "gpu", suffix, gpu_count())) return true;
  const int leaves = gpus_per_node * leaves_per_rail();
  return leaves > 1 && (indexed(name, "leaf", ".up", leaves) || indexed(name, "leaf", ".down", leaves));
}

ClusterSpec ClusterSpec::from_json(const nlohmann::json& j, const std::string& path, Bandwidth default_nvlink) {
  // nvlink_gbps has no fixed default: it comes from the GPU preset, so read it by hand.
  nlohmann::json copy = j.is_null() ? nlohmann::json::object() : j;
  const bool nvlink_given = copy.is_object() && copy.contains("nvlink_gbps");
  ConfigObject c(copy, path, schema());
  ClusterSpec s;
  const std::string preset = c.choice("preset", {"hgx", "gb200-nvl72"});
  s.gpus_per_node = preset == "gb200-nvl72" ? 4 : 8;
  s.nvlink_domain = preset == "gb200-nvl72" ? 72 : 0;
  s.nodes = c.integer_in<int>("nodes", 1, limits::kGpus);
  if (c.has("gpus_per_node")) s.gpus_per_node = c.integer_in<int>("gpus_per_node", 1, limits::kGpus);
  if (c.has("gpus")) {
    const std::int64_t gpus = c.integer_in<std::int64_t>("gpus", 1, limits::kGpus);
    if (gpus % s.gpus_per_node != 0)
      c.fail("gpus", "must be a multiple of cluster.gpus_per_node = " + std::to_string(s.gpus_per_node));
    if (c.has("nodes") && gpus != static_cast<std::int64_t>(s.nodes) * s.gpus_per_node)
      c.fail("gpus", "must equal nodes x gpus_per_node = " + std::to_string(s.nodes * s.gpus_per_node) + " when both are given");
    s.nodes = static_cast<int>(gpus / s.gpus_per_node);
  }
  using namespace limits;
  s.nvlink = nvlink_given ? Bandwidth::gb_per_s(c.number_in("nvlink_gbps", kMinRate, kMaxRate, "GB/s")) : default_nvlink;
  s.nic = Bandwidth::gbit_per_s(c.number_in("nic_gbps", kMinRate, kMaxRate, "Gb/s"));
  s.nodes_per_leaf = c.integer_in<int>("nodes_per_leaf", 1, limits::kGpus);
  s.oversubscription = c.number_in("oversubscription", 1.0, kMaxOversubscription, "(1 = non-blocking)");
  s.nvlink_latency = Time::us(c.number_in("nvlink_latency_us", 0.0, kMaxLatencyUs, "us"));
  s.nic_latency = Time::us(c.number_in("nic_latency_us", 0.0, kMaxLatencyUs, "us"));
  s.spine_latency = Time::us(c.number_in("spine_latency_us", 0.0, kMaxLatencyUs, "us"));
  s.topology = c.choice("topology", {"rail", "rail_pxn"});
  if (static_cast<std::int64_t>(s.nodes) * s.gpus_per_node > limits::kGpus)
    c.fail(c.has("gpus") ? "gpus" : c.has("nodes") ? "nodes" : "gpus_per_node",
           "nodes x gpus_per_node = " + std::to_string(static_cast<std::int64_t>(s.nodes) * s.gpus_per_node) + " GPUs: must be <= " +
               std::to_string(limits::kGpus) + " (routes and traffic matrices hold GPUs^2 entries)");
  if (c.has("nvlink_domain")) s.nvlink_domain = c.integer_in<int>("nvlink_domain", 1, limits::kGpus);
  const std::string domain_key = c.has("nvlink_domain") ? "nvlink_domain" : "preset";
  if (s.domain_size() % s.gpus_per_node != 0)
    c.fail(domain_key, "the NVLink domain (" + std::to_string(s.domain_size()) + " GPUs) must be a multiple of gpus_per_node = " +
                           std::to_string(s.gpus_per_node));
  if (s.gpu_count() % s.domain_size() != 0)
    c.fail(domain_key, "the NVLink domain (" + std::to_string(s.domain_size()) + " GPUs) must divide the GPU count (" +
                           std::to_string(s.gpu_count()) + ")");
  return s;
}

}  // namespace epsim
