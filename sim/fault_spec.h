// The `faults` section of a scenario: what is slow or broken in the deployment (a throttled GPU, a
// degraded or dead link, failed GPUs and nodes) and how noisy its kernels are. The fabric's part
// goes to the cluster (ClusterSpec::link_factors, failed_gpus), the rest to the step builder
// (compute speed, jitter) and the placement (failed GPUs' slots, re-planning).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "models/config.h"
#include "topology/cluster_spec.h"

namespace epsim {

struct FaultSpec {
  std::map<int, double> gpu_compute;             // GPU -> speed factor in (0, 1]
  std::map<std::string, double> link_bandwidth;  // as written: a link name, or one without .up/.down
  std::vector<int> failed_gpus;                  // as written
  std::vector<int> failed_nodes;
  bool allow_lost_experts = false;
  bool replan_placement = false;
  std::string kernel_jitter = "none";  // none | lognormal | measured
  double kernel_cv = 0;
  std::string kernel_spread_file;
  std::uint64_t seed = 1;

  // Every GPU that is down: failed_gpus and the GPUs of failed_nodes, ascending, once each.
  std::vector<int> down_gpus(int gpus_per_node) const;
  // The bandwidth factor of every affected link by its full name (a name without its direction
  // stands for both).
  std::map<std::string, double> link_factors(const ClusterSpec& cluster) const;
  // The JSON path and value naming the failures (for messages): failed_nodes when given, else failed_gpus.
  std::pair<std::string, std::string> failure_key() const;
  double speed(int gpu) const;  // compute speed factor of `gpu` (1 unless slowed)
  bool any() const;             // anything at all set

  static const Schema& schema();
  // Checks GPU, node and link names against the cluster.
  static FaultSpec from_json(const nlohmann::json& j, const std::string& path, const ClusterSpec& cluster);
};

}  // namespace epsim
