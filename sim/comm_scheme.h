// Communication schemes: how a dispatch (or its mirror, the combine) becomes network flows.
//
// direct: one flow per (source, destination) GPU pair carrying the distinct tokens the source sends
// there, on the cluster's direct route (inter-node traffic leaves through the source GPU's own NIC),
// as NCCL's all-to-all. Combine mirrors dispatch: the same bytes from destination back to source.
#pragma once

#include <string>
#include <vector>

#include "placement/dispatch_matrix.h"
#include "sim/network.h"
#include "topology/cluster.h"

namespace epsim {

enum class CommScheme { Direct };
CommScheme comm_scheme_from_string(const std::string& name);  // throws std::out_of_range
std::vector<std::string> comm_scheme_names();

// Flows with the GPUs at their ends: the executor tracks, per GPU, when its part of a collective
// is over (everything it sends and receives has arrived).
struct CommPlan {
  std::vector<FlowSpec> flows;
  std::vector<GpuId> src, dst;
  void add(const Cluster& cluster, GpuId from, GpuId to, Bytes bytes);
};

CommPlan dispatch_plan(CommScheme scheme, const Cluster& cluster, const DispatchMatrix& m, Bytes token_bytes);
CommPlan combine_plan(CommScheme scheme, const Cluster& cluster, const DispatchMatrix& m, Bytes token_bytes);

}  // namespace epsim
