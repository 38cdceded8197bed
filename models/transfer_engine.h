// What a real dispatch or combine reaches of the line rate: per transfer engine and link class, the
// protocol efficiency, a message-rate limit and a fixed cost per round; and what one SM of a
// communication kernel moves (a kernel on S SMs moves at most S times that).
//
// Engines:
//   nvlink_sm  NVLink by SM stores (a kernel writing through peer pointers: DeepEP's intranode and
//              forwarding kernels, the project's peer dispatch);
//   nvlink_ce  NVLink by the copy engine (cudaMemcpyPeerAsync; no SMs);
//   rdma       RDMA over InfiniBand, GPU-initiated (IBGDA: DeepEP's internode and low-latency kernels);
//   nccl       NCCL's all-to-all on NVLink (network.dispatch_impl = ideal under a calibrated profile).
// A flow of `payload` bytes in messages of `message` bytes over a link of line rate B costs the link
//   wire = payload x max(1 / efficiency, B / (message_rate x message))
// bytes (protocol overhead, or the message rate when messages are small), so both network models
// price it without knowing engines: a max-min share of the wire bytes is the achievable rate.
//
// Defaults and their public sources (models/transfer_engine.cpp); a calibrated profile replaces the
// NVLink ones with what was measured (CalibrationProfile links and sm_rates), scenario keys
// (network.*) replace any of them.
#pragma once

#include <map>
#include <string>

#include "models/calibration_profile.h"
#include "models/units.h"

namespace epsim {

struct TransferEngine {
  double efficiency = 1.0;    // payload over line rate with large messages, in (0, 1]
  double message_rate = 0.0;  // messages per second through one GPU's port (0: no limit)
  Time round;                 // fixed cost of one round on one GPU (launch, notification, barrier)

  // Link bytes for `payload` bytes in messages of `message` bytes over a link of line rate `line`.
  Bytes wire_bytes(Bytes payload, Bytes message, Bandwidth line) const;
};

struct EngineRates {
  TransferEngine nvlink_sm, nvlink_ce, rdma, nccl;
  Bandwidth per_sm;           // bytes per second one SM of a dispatch/combine kernel moves (0: unbounded)
  std::string source;         // "defaults (public figures)", "calibrated(h200-measured)", ...

  // The sourced defaults (no measurement of this project).
  static EngineRates defaults();
  // The defaults with the NVLink engines replaced by a profile's measurements: nvlink_sm from its
  // `peer_dispatch` line and sm_rates, nvlink_ce from `p2p_copy`, nccl from `nccl_alltoall` (each
  // relative to `nvlink`, the line rate they were measured on). Terms the profile lacks keep the
  // defaults.
  static EngineRates calibrated(const CalibrationProfile& profile, const std::string& label, Bandwidth nvlink);
};

}  // namespace epsim
