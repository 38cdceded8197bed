// Throughput of a communication kernel against the SMs it runs on, fitted from measurements: a
// kernel on S SMs moves min(S x per_sm, ceiling) (issue 15: the dispatch is SM-bound below the
// knee ceiling / per_sm, link-bound above it).
//
// Points: the project's peer dispatch (kernels/comm.cu) one way (own_0to1; the SM sweep
// EPSIM_DISPATCH_SMS writes family peer_dispatch_sms, earlier runs varied the CTAs as blocks), one
// CTA per SM (blocks <= the GPU's SMs), at its largest measured size of at least 64 MiB (bandwidth-
// bound rounds, not latency), fastest variant per SM count.
// Fit: ceiling = the fastest point; per_sm = the median of throughput / S over the points below
// 95% of the ceiling (the SM-bound ones); with none of them, ceiling / (fewest SMs measured), a
// lower bound.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "models/bench_results.h"
#include "models/units.h"

namespace epsim {

struct SmRateFit {
  Bandwidth per_sm;
  Bandwidth ceiling;
  std::vector<std::pair<int, double>> points;  // (SMs, GB/s) the fit used
  int knee_sms() const;                        // ceiling / per_sm, rounded up
};

// Empty (no points) when the files hold fewer than 2 SM counts of the peer dispatch.
SmRateFit fit_sm_rate(const std::vector<BenchFile>& files);

}  // namespace epsim
