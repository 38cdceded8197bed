// The step as a Chrome trace (trace event format; opens in Perfetto and chrome://tracing).
//
// A process per GPU: thread 0 its compute stream; threads 1, 2, ... its communication, one lane per
// set of collectives that overlap in time (a GPU can be in a dispatch and a TP collective at once),
// so that no two slices on one thread overlap. Timestamps and durations are whole nanoseconds
// (written as microseconds with three decimals; times are rounded to the nanosecond before the
// subtraction, so back-to-back slices share their boundary exactly). Slice args: layer,
// micro-batch; compute: FLOPs, HBM bytes, tokens; communication: bytes sent and received, and the
// routed (token, expert) pairs a dispatch brought or a combine returned. Two counter processes: the
// utilisation of each all-to-all's busiest link over its lifetime, and the busiest links of the step
// over time (sim/link_timeline.h).
#pragma once

#include <string>
#include <vector>

#include "sim/simulation.h"

namespace epsim {

struct TraceOptions {
  std::vector<int> gpus;    // GPUs to show (ascending); empty: every GPU
  std::vector<int> layers;  // layers to show (the LM head is layer model.layers); empty: every layer
  int top_links = 8;        // counter tracks for this many of the step's busiest links (by bytes)
};

std::string chrome_trace(const Simulation& sim, const TraceOptions& options = {});

// The busiest links of the step by bytes (ties: the lower id first), at most `count` (idle links
// included when fewer are busy); kernel links (a GPU's communication SMs, not a wire) left out.
std::vector<LinkId> busiest_links(const StepResult& r, const Cluster& cluster, std::size_t count);

}  // namespace epsim
