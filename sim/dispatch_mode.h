// How a dispatch or combine becomes flows under each `network.dispatch_impl`, and what the transfer
// engines (models/transfer_engine.h) make of them. Both networks price the result unchanged: an
// engine's protocol efficiency and message rate become the bytes a flow puts on the wire, its
// fixed cost per round becomes latency every flow of the round waits, and SM-bound kernels route
// their flows through the sending GPU's kernel link (topology/cluster.h), whose bandwidth is
// schedule.comm_sms x comm_gbps_per_sm.
//
//   ideal        network.scheme's flows. Nominal cost model: at line rate, nothing added (as it
//                always was). Calibrated cost model: NVLink flows at NCCL's measured all-to-all
//                rate and every flow after NCCL's measured round cost; InfiniBand flows at the
//                RDMA efficiency (nothing was measured across nodes here).
//   nccl, peer   network.scheme's flows at line rate; the executor's rounds price the kernels
//                (models/dispatch_impl.h), peer's moving rate capped at comm_sms x per-SM rate.
//   TP collectives (every implementation) are NCCL's: under a calibrated cost model at NCCL's
//                measured NVLink rate after its round cost, else at line rate.
//   normal       hierarchical flows (DeepEP's throughput kernels): InfiniBand once per destination
//                node to the GPU of the same rail (rdma), NVLink from there (nvlink_sm, or nvlink_ce
//                with network.nvlink_engine = copy_engine); the combine reduces at that GPU before
//                InfiniBand. Flows moved by SMs cross the sender's kernel link. The RDMA and NVLink
//                stages are pipelined in chunks of a few tokens: as flows both stages run at once
//                (the limit of fine chunks; the fill of one chunk, microseconds, is left out), and
//                a GPU's part ends when everything it sends and receives has arrived, the
//                InfiniBand tokens it forwards included. Dispatch tokens in precision.dispatch,
//                combine in precision.combine.
//   low_latency  per-token flows (DeepEP's decode kernels): every (token, expert) copy straight to
//                the expert's GPU, rdma across nodes (one message a token), nvlink_sm within; no
//                kernel link (no SMs held). Tokens as in normal.
#pragma once

#include <optional>

#include "models/cost_model.h"
#include "models/transfer_engine.h"
#include "placement/dispatch_matrix.h"
#include "sim/comm_scheme.h"
#include "sim/scenario.h"
#include "topology/cluster.h"

namespace epsim {

struct CommSetup {
  CommScheme scheme = CommScheme::Direct;
  std::optional<TransferEngine> nvlink;   // engine on routes within a node (none: line rate)
  std::optional<TransferEngine> network;  // engine on routes through a NIC (none: line rate)
  bool kernel_links = false;              // SM-moved flows cross the sender's kernel link
  bool nvlink_by_sms = true;              // the NVLink engine uses SMs (false: the copy engine)
  Bytes dispatch_token, combine_token;    // bytes of one token each way (also the message size)
};

// The engines of a scenario: the defaults, or a calibrated profile's (when `cost` is calibrated),
// then every network.* engine key the scenario sets.
EngineRates engine_rates(const Scenario& scenario, const CostModel& cost);
// How the scenario's dispatch and combine become flows (`calibrated`: cost is a calibrated model).
CommSetup comm_setup(const Scenario& scenario, const EngineRates& rates, bool calibrated);
// What one GPU's communication kernels move per second under dispatch_impl normal (comm_sms x per
// SM rate); 0 otherwise (no kernel links).
Bandwidth kernel_rate(const Scenario& scenario, const EngineRates& rates);
// dispatch_impl low_latency: its fixed receive buffers on one GPU, sized for the most tokens each
// can get (DeepEP allocates them once for the largest batch): every local expert slot a buffer per
// source GPU of its EP group for all that source's tokens (dispatch), and every token's top_k
// expert outputs coming back (combine). 0 for the other implementations.
Bytes low_latency_buffers(const Scenario& scenario, const CommSetup& setup, int slots_per_gpu);
// Whether `cost` is a calibrated cost model.
bool is_calibrated(const CostModel& cost);

// The flows of one dispatch (outbound) or combine of `m` under `setup`.
CommPlan comm_plan(const CommSetup& setup, const Cluster& cluster, const DispatchMatrix& m, bool outbound);
// What setup's engines make of `plan`'s flows (messages of `message` bytes): wire bytes, the round
// cost as latency, the kernel link first where SMs move them.
void apply_engines(CommPlan& plan, const Cluster& cluster, const CommSetup& setup, Bytes message);

}  // namespace epsim
