// What the cluster is made of: nodes of G GPUs, NVLink domains of one or more nodes on one NVSwitch
// fabric (an HGX node; a GB200 NVL72 rack of 18 nodes of 4), one NIC per GPU, a rail-optimised
// two-tier fat-tree (GPU i of every node on rail i: one leaf per rail per group of `nodes_per_leaf`
// nodes; leaves joined through a spine layer whose uplinks are thinned by `oversubscription`).
#pragma once

#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "models/config.h"
#include "models/units.h"

namespace epsim {

struct ClusterSpec {
  int nodes = 32;
  int gpus_per_node = 8;
  int nvlink_domain = 0;                        // GPUs on one NVSwitch fabric; 0: the node (gpus_per_node)
  Bandwidth nvlink = Bandwidth::gb_per_s(450);  // per GPU, each way
  Bandwidth nic = Bandwidth::gbit_per_s(400);   // per GPU, each way
  int nodes_per_leaf = 32;                      // nodes under one rail leaf switch
  double oversubscription = 1.0;                // leaf downlink : uplink bandwidth
  Time nvlink_latency = Time::us(0.5);          // per NVLink link (GPU->NVSwitch, NVSwitch->GPU)
  Time nic_latency = Time::us(1.0);             // per NIC link (GPU<->leaf)
  Time spine_latency = Time::us(0.5);           // per leaf<->spine link
  // rail: a flow between GPUs of different rails crosses the spine | rail_pxn: it first crosses
  // NVLink to the GPU of its own node on the destination's rail, then stays on that rail.
  std::string topology = "rail";
  // Not a key: what one GPU's communication kernels move per second (schedule.comm_sms x the per-SM
  // rate, network.dispatch_impl normal); > 0 adds a `Kernel` link per GPU that the dispatch's flows
  // cross (topology/cluster.h).
  Bandwidth kernel_rate;
  // Not keys: the scenario's faults as the fabric sees them (sim/fault_spec.h fills them). A link's
  // bandwidth factor by its name ("gpu3.nic.up", "leaf2.down"): the link runs at factor x its
  // bandwidth; 0 = down, and routes avoid it. Failed GPUs forward nothing (no detour crosses them).
  std::map<std::string, double> link_factors;
  std::vector<int> failed_gpus;  // ascending

  int gpu_count() const { return nodes * gpus_per_node; }
  int domain_size() const { return nvlink_domain > 0 ? nvlink_domain : gpus_per_node; }
  int leaves_per_rail() const { return (nodes + nodes_per_leaf - 1) / nodes_per_leaf; }
  // Whether `name` names a link the cluster builds ("gpuN.nvlink.up|down", "gpuN.nic.up|down",
  // "leafN.up|down" when there is a spine), as the report's top_links names them.
  bool has_link(const std::string& name) const;

  static const Schema& schema();
  // `default_nvlink` comes from the GPU preset when the scenario gives no cluster.nvlink_gbps.
  static ClusterSpec from_json(const nlohmann::json& j, const std::string& path, Bandwidth default_nvlink);
};

}  // namespace epsim
