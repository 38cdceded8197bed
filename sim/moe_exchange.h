// One MoE dispatch and one combine of a scenario's first MoE layer, each alone on the network (no
// compute, no other traffic): per rank the time its part took and the tokens it moved, in the
// convention of MoE communication libraries' benchmarks (DeepEP's tests): bytes of the tokens a
// rank sends in the dispatch and receives in the combine, over RDMA and over NVLink apart, divided
// by its time. `epsim net --pattern moe` prints it.
//
// Bytes are payload (the token bytes of the mode, precision.dispatch / precision.combine), not
// what the engines put on the wire. normal: RDMA = the distinct tokens the rank sends to (receives
// from) each remote node, NVLink = those for the other GPUs of its own node; low_latency: every
// (token, expert) copy, to remote GPUs over RDMA, to its node's GPUs over NVLink. Other
// implementations: direct pairs (distinct tokens per GPU). A rank's time is when its part ended:
// everything it sends and receives has arrived (for normal, the tokens it forwards too).
#pragma once

#include <vector>

#include "models/transfer_engine.h"
#include "sim/dispatch_mode.h"
#include "sim/scenario.h"

namespace epsim {

struct RankExchange {
  Time time;
  Bytes rdma;    // payload over InfiniBand
  Bytes nvlink;  // payload over NVLink
  double rdma_gbps() const { return time > Time::zero() ? static_cast<double>(rdma.count()) / time.to_seconds() * 1e-9 : 0.0; }
  double nvlink_gbps() const { return time > Time::zero() ? static_cast<double>(nvlink.count()) / time.to_seconds() * 1e-9 : 0.0; }
};

struct MoeExchange {
  std::vector<RankExchange> dispatch, combine;  // per GPU
  EngineRates rates;                            // the engines that priced it
  CommSetup setup;
  Bandwidth kernel_rate;                        // per GPU (0: no kernel links)
};

// Throws ConfigError / InputError as a simulation of the scenario would.
MoeExchange moe_exchange(const Scenario& scenario);

}  // namespace epsim
