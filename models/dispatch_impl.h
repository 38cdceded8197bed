// How the MoE dispatch and combine are implemented on the GPUs (`network.dispatch_impl`), as far
// as their cost goes: the fixed cost of one all-to-all round, the rate its kernel moves bytes at,
// the SMs it holds, and the count exchange that precedes the rounds.
//
//   ideal  the all-to-all is only its flows on the links (the network model prices them); no count
//          exchange, no permute or unpermute, no per-round cost. What every scenario did before.
//   nccl   kernels/ep_layer.cu --dispatch nccl: per round one ncclGroupStart/End of one ncclSend per
//          non-empty (destination, expert) piece and one ncclRecv per non-empty (source, local
//          expert) piece, self included.
//   peer   kernels/ep_layer.cu --dispatch peer: one own kernel (64 blocks) storing each row through
//          peer pointers, then a counter wait; no per-piece cost; its stores to its own GPU run
//          at a measured 1240 GB/s (self_bandwidth), not at a device copy's rate.
//   normal, low_latency  DeepEP's two kernel families, modelled as flows at the transfer engines'
//          achievable rates (sim/dispatch_mode.h): only the SMs they hold are set here (normal:
//          DeepEP's default 20; low_latency: none, its receive completes in the background).
// Both real implementations first permute the rows by expert (an HBM gather), exchange the
// per-expert counts (ncclAllGather + copy to the host, which then enqueues the rounds) and after
// the combine unpermute (weighted sum of the top-k outputs); the step builder emits those ops.
//
// One GPU's part of a round, in two parts done one after the other:
//   fixed   latency + piece_latency x pieces: launch, host and proxy work that hardly depends on
//           bytes; beside compute it progresses at 1 / (1 + fixed_stretch);
//   moving  max((max(out, in) + reverse_share x min(out, in)) / bandwidth, self copy): the bytes;
//           beside compute it progresses at 1 / (1 + round_stretch);
// out and in the bytes it sends to and receives from other GPUs, self copy the rows it sends to
// itself: bytes / self_bandwidth where the implementation's own local stores were measured, else
// a device copy of those bytes (the cost model's).
// Every constant is fitted to kernels/results/ep2-h200x2-2026-11-29.json (E = 32) and checked on
// the other ep*-h200x2 files; dispatch_impl.cpp says which cases. The interference constants
// (comm_sms, fixed_sm_share, round_stretch, fixed_stretch, hbm_share) are chosen by
// tools/fit_interference.py, which prints its grid and choice.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "models/units.h"

namespace epsim {

// One GPU's work in one round at full speed (sim/executor.h runs it: fixed, then moving).
struct RoundWork {
  Time fixed;   // latency + per-piece cost
  Time moving;  // the bytes
  Time total() const { return fixed + moving; }
};

struct DispatchImpl {
  std::string name = "ideal";
  Time latency;                // per round, per GPU
  Time piece_latency;          // per non-empty (peer, expert) piece the GPU sends or receives
  Bandwidth bandwidth;         // one direction of one GPU, nothing coming back (0: not modelled)
  double reverse_share = 0;    // bytes moving the other way cost this share of their time
  Time count_exchange;         // per micro-batch and MoE layer: the counts all-gather and copy to the host
  Time host_gap;               // the host reading the counts and enqueuing the rounds (once per layer)
  int comm_sms = 24;           // SMs its kernels hold while a round runs (schedule.comm_sms default)
  double hbm_share = 0;        // HBM bandwidth share its traffic takes from HBM-bound compute meanwhile
  double round_stretch = 0;    // a round's moving part progresses at 1 / (1 + this) while its GPU computes
  double fixed_stretch = 0;    // its fixed part (latency, pieces) at 1 / (1 + this)
  double fixed_sm_share = 1;   // during a round's fixed part compute loses this share of comm_sms (moving part: all)
  bool every_kernel = false;   // compute beside a round loses the SMs' share whatever its roofline bound
  Bandwidth self_bandwidth;    // rows a GPU routes to itself (0: a device copy, the cost model's)

  bool ideal() const { return name == "ideal"; }
  // nccl and peer: the measured EP layer's program (permute, count exchange, rounds the executor
  // runs on each GPU, unpermute). ideal, normal and low_latency are flows only (sim/dispatch_mode.h
  // shapes the last two's).
  bool executor_rounds() const { return name == "nccl" || name == "peer"; }
  // One GPU's part of a round that moves `out` bytes to and `in` bytes from other GPUs in
  // `pieces` non-empty pieces, and its `own` rows for itself at the same time as the cross-GPU
  // bytes move (`device_copy`: the cost model's device copy of them, used without self_bandwidth).
  RoundWork round_work(std::int64_t pieces, Bytes out, Bytes in, Bytes own = Bytes(0), Time device_copy = Time::zero()) const;

  static std::vector<std::string> names();
  static DispatchImpl named(const std::string& name);  // throws std::out_of_range
};

}  // namespace epsim
