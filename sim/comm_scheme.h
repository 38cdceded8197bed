// Communication schemes: how a dispatch (or its mirror, the combine) becomes network flows.
//
// direct: one flow per (source, destination) GPU pair carrying the distinct tokens the source sends
// there, on the cluster's direct route (inter-node traffic leaves through the source GPU's own NIC),
// as NCCL's all-to-all. Combine mirrors dispatch: the same bytes from destination back to source.
//
// hierarchical: a token bound for several experts on one remote node crosses InfiniBand once, to
// the GPU of that node on the source's rail (one NIC hop, no spine crossing between rails), which
// fans it out over NVLink to the GPUs holding its experts, as DeepEP's normal (high-throughput)
// kernels do. Flows: src -> relay over IB carrying the distinct tokens src sends to the node
// (node_unique); relay -> every GPU of its node over NVLink carrying what it forwards there, merged
// with its own intra-node traffic into one flow per NVLink pair. Forwarding is pipelined with the IB
// transfer (DeepEP forwards chunk by chunk), so all flows start together. Combine mirrors it.
//
// per-token: one message per (token, expert) pair, no deduplication, on direct routes, as the
// low-latency kernels do: a pair (src, dst) carries copies x token bytes instead of the distinct
// tokens. Combine mirrors it.
#pragma once

#include <string>
#include <vector>

#include "models/dispatch_impl.h"
#include "placement/dispatch_matrix.h"
#include "sim/network.h"
#include "topology/cluster.h"

namespace epsim {

enum class CommScheme { Direct, Hierarchical, PerToken };
CommScheme comm_scheme_from_string(const std::string& name);  // throws std::out_of_range
std::vector<std::string> comm_scheme_names();

// Flows with the GPUs at their ends: the executor tracks, per GPU, when its part of a collective
// is over (everything it sends and receives has arrived).
struct CommPlan {
  std::vector<FlowSpec> flows;
  std::vector<GpuId> src, dst;
  // Per GPU (empty: none): the implementation's own work in this round (network.dispatch_impl),
  // at full speed, its fixed and moving parts; the executor slows each by its own factor while
  // that GPU computes. The GPU's part ends when both this and its flows are done.
  std::vector<RoundWork> rounds;
  void add(const Cluster& cluster, GpuId from, GpuId to, Bytes bytes);
};

CommPlan dispatch_plan(CommScheme scheme, const Cluster& cluster, const DispatchMatrix& m, Bytes token_bytes);
CommPlan combine_plan(CommScheme scheme, const Cluster& cluster, const DispatchMatrix& m, Bytes token_bytes);

}  // namespace epsim
