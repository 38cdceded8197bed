#include "models/transfer_engine.h"

#include <algorithm>
#include <cmath>

namespace epsim {

Bytes TransferEngine::wire_bytes(Bytes payload, Bytes message, Bandwidth line) const {
  if (payload.count() <= 0) return payload;
  double per_byte = 1.0 / efficiency;
  if (message_rate > 0 && message.count() > 0)
    per_byte = std::max(per_byte, line.bytes_per_second() / (message_rate * static_cast<double>(message.count())));
  return Bytes(checked_int64(std::ceil(static_cast<double>(payload.count()) * per_byte - 1e-9), "transfer bytes (double) -> Bytes"));
}

// Sources (public figures; nothing here was measured by this project):
// nvlink_sm  efficiency 0.956: DeepEP's normal kernels, intranode EP 8 on H800 (~160 GB/s NVLink):
//            dispatch 153 GB/s, combine 158 GB/s (github.com/deepseek-ai/DeepEP, docs/legacy.md,
//            "Normal kernels with NVLink and RDMA forwarding"): 153 / 160. No published fixed cost: 0
//            (a calibrated profile gives the measured one).
// per_sm     20 GB/s: the least per-SM rate at which DeepEP V1's published normal-kernel runs, on
//            its default 20 SMs (Buffer.num_sms = 20, deep_ep/buffer.py), are not SM-bound in this
//            model. Intranode EP 8 (153 GB/s of NVLink) needs 7.65 GB/s per SM; internode EP 16
//            (43 GB/s of RDMA; 4096 FP8 tokens, top-8 of 256 in 8 groups / 4) needs 20: below it
//            the flow network's fair share of the kernel link slows the RDMA stage (19 GB/s per SM:
//            40.5 GB/s; 20 and above: 41.8, what the RDMA efficiency allows; tests/sim/
//            dispatch_mode_test.cpp).
// nvlink_ce  no published figure: line rate, no fixed cost (calibrated: the measured p2p copy).
// rdma       DeepEP's low-latency kernels on H800 + ConnectX-7 400 Gb/s (~50 GB/s), EP 256, 128
//            tokens of hidden 7168, top-8 (docs/legacy.md, "Low-latency kernels with pure RDMA"):
//            dispatch (FP8, 7,392 B a token: 7.57 MB) 194 us, combine (BF16, 14,336 B: 14.68 MB)
//            360 us. Their difference, 7.11 MB in 166 us, is the moving rate: 42.9 GB/s, efficiency
//            0.86 of 50 GB/s; what is left of the dispatch, 194 - 7.57 MB / 42.9 GB/s = 18 us, the
//            fixed cost of a round. Message rate: ConnectX-7 adapters are specified at up to 330 M
//            messages per second (NVIDIA ConnectX-7 product brief; binds only for messages under
//            ~150 B at 400 Gb/s).
// nccl       line rate, no fixed cost: what `ideal` always priced (calibrated: NCCL's measured
//            all-to-all).
EngineRates EngineRates::defaults() {
  EngineRates r;
  r.nvlink_sm.efficiency = 153.0 / 160.0;
  r.rdma.efficiency = 0.86;
  r.rdma.message_rate = 330e6;
  r.rdma.round = Time::us(18);
  r.per_sm = Bandwidth::gb_per_s(20.0);
  r.source = "defaults (public figures, models/transfer_engine.cpp)";
  return r;
}

EngineRates EngineRates::calibrated(const CalibrationProfile& profile, const std::string& label, Bandwidth nvlink) {
  EngineRates r = defaults();
  const double line = nvlink.bytes_per_second();
  auto from_link = [&](TransferEngine& e, const char* name, double share) {
    const LatencyBandwidthFit* fit = profile.link(name);
    if (fit == nullptr || line <= 0) return;
    e.efficiency = std::clamp(fit->bandwidth.bytes_per_second() * share / line, 1e-3, 1.0);
    e.round = fit->latency;
  };
  from_link(r.nvlink_sm, "peer_dispatch", 1.0);
  from_link(r.nvlink_ce, "p2p_copy", 1.0);
  // nccl_alltoall is fitted as algbw on 2 GPUs (the per-rank buffer includes the rank's own half):
  // what crosses NVLink each way is half of it.
  from_link(r.nccl, "nccl_alltoall", 0.5);
  if (auto it = profile.sm_rates.find("peer_dispatch"); it != profile.sm_rates.end()) r.per_sm = it->second.per_sm;
  r.source = "calibrated(" + label + ") NVLink, defaults for InfiniBand";
  return r;
}

}  // namespace epsim
