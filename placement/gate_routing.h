// The expected routing matrix of one MoE layer, as the gate model predicts it.
#pragma once

#include <cstdint>

#include "models/gate_model.h"
#include "placement/expected_routing.h"

namespace epsim {

// Every one of `sources` GPUs with `tokens` tokens: the gate's per-token selection probabilities
// when it exposes them (exact, the same for every source), except for traces, which may differ per
// source GPU: those (and gates without probabilities) give the mean of four samples (micro-batches 0-3).
ExpectedRouting gate_expected_routing(const GateModel& gate, int layer, int sources, std::int64_t tokens);

}  // namespace epsim
