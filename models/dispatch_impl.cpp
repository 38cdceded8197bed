#include "models/dispatch_impl.h"

#include <algorithm>
#include <stdexcept>

namespace epsim {

Time DispatchImpl::round_time(std::int64_t pieces, Bytes out, Bytes in, Time self) const {
  if (ideal()) return Time::zero();
  const double hi = static_cast<double>(std::max(out.count(), in.count()));
  const double lo = static_cast<double>(std::min(out.count(), in.count()));
  const double moved = bandwidth.bytes_per_second() > 0 ? (hi + reverse_share * lo) / bandwidth.bytes_per_second() : 0.0;
  return latency + piece_latency * static_cast<double>(pieces) + max(Time::seconds(moved), self);
}

std::vector<std::string> DispatchImpl::names() { return {"ideal", "nccl", "peer"}; }

// Where the numbers come from (E = 32 file unless said; "serial 1-chunk" = the cases where a round
// runs alone, so its phase time is the round's own; MB = 1e6 bytes):
//
// nccl  Dispatch phase vs bytes sent to the other GPU, serial 1-chunk uniform: 290 us at 14.9 MB,
//       461 at 58.8, 1122 at 235, 3850 at 940: a line of 233 us + 3.85 us/MB. The E = 16 file (32
//       pieces per round instead of 64): 187 us at 14.9 MB, 3549 us at 942 MB: 133 us + 3.63 us/MB.
//       The intercepts give 3.1 us per NCCL p2p op (100 us for 32 more pieces) and 35 us per round;
//       the slopes, one bandwidth for both files: 3.74 us/MB (the mean; E = 32 rounds are 2.6%
//       slower than it, E = 16 rounds 3% faster). zipf:1.2 at 16384 tokens (1118 MB out, 762 MB
//       back: 4445 us) against uniform (940 MB both ways: 3850 us) gives the reverse share: 0.07.
//       So 1.07 / bandwidth = 3.74 us/MB: 286 GB/s. (The profile's nccl_alltoall fit, 20.3 us +
//       578 GB/s algbw = 289 GB/s each way on 2 GPUs, is one send/recv per peer; the EP layer's
//       per-(peer, expert) pieces are what its ~230 us per round are made of.)
// peer  Serial 1-chunk uniform: 70 us at 14.9 MB, 229 at 58.8, 862 at 235, 3425 at 940: 16 us +
//       3.63 us/MB; E = 16 the same (69 us, 3439 us): no per-piece cost. zipf:1.2 at 16384 tokens
//       (1118 MB out, 762 MB back) takes 3744 us: with one-way bandwidth 370 GB/s (the profile's
//       peer_dispatch fit of the same kernel alone, 10.6 us + 370 GB/s, kernels/results/
//       h200x2-2026-11-29.json) the bytes coming back cost 0.342 of their one-way time (uniform:
//       (1 + 0.342) x 940 MB / 370 GB/s = 3409 us; zipf: 3739 us).
// count exchange  `dispatch_meta` on the GPU that arrives second (the other one waits for it):
//       14-17 us serial; then the host wakes and enqueues: dispatch starts a median 13.3 us (E = 32;
//       11.5 us E = 16) after the count exchange ends. 16 us + 12 us.
// comm_sms, hbm_share, round_stretch  The interference both ways while a round and a compute task
//       run on one GPU (sim/executor.h): GEMMs lose comm_sms of 132 SMs (by their SM-bound share)
//       and hbm_share of HBM bandwidth (by the rest); a round progresses at 1 / (1 + round_stretch)
//       while the GPU computes. Measured (kernels/results/README.md): peer rounds 1-3 of a 4-chunk
//       16384-token case take up to 2.3x round 0 (round_stretch 1.5 gives 2.5x while a GEMM runs
//       the whole round), NCCL 1190 -> 1490 us; GEMMs beside rounds 15-20% slower overall. peer:
//       comm_sms 64 = the kernel's 64 blocks (one per SM); nccl: 64 as well (NCCL's channels on
//       this pair are not recorded; the fit is flat between 48 and 64). hbm_share and round_stretch
//       fitted with `epsim validate` on the E = 32 file (every case of each implementation; the
//       serial 1-chunk ones do not depend on them), minimising the median with every case within
//       10%: peer 0.4 / 1.5 (40 of 40 within 10%, median 1.9%), nccl 0.2 / 0.7 (median 4.3%; its
//       256-token chunked cases are over-predicted: NCCL's per-piece cost, 3.1 us x 64 pieces, is
//       mostly host/proxy latency that GEMMs barely slow, but the executor stretches the whole
//       round). Checked on the -repeat, E = 16 and peer-blocks files.
DispatchImpl DispatchImpl::named(const std::string& name) {
  DispatchImpl d;
  d.name = name;
  if (name == "ideal") return d;
  d.count_exchange = Time::us(16);
  d.host_gap = Time::us(12);
  if (name == "nccl") {
    d.latency = Time::us(35);
    d.piece_latency = Time::us(3.1);
    d.bandwidth = Bandwidth::gb_per_s(286);
    d.reverse_share = 0.07;
    d.comm_sms = 64;
    d.hbm_share = 0.2;
    d.round_stretch = 0.7;
    return d;
  }
  if (name == "peer") {
    d.latency = Time::us(16);
    d.bandwidth = Bandwidth::gb_per_s(370);
    d.reverse_share = 0.342;
    d.comm_sms = 64;
    d.hbm_share = 0.4;
    d.round_stretch = 1.5;
    return d;
  }
  throw std::out_of_range(name);
}

}  // namespace epsim
