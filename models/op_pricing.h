// An op of the layer program priced by a cost model: its time (the model's price plus its kernel
// gap per kernel launched), recorded in a pricing ledger when one is given. The step builder, the
// `--ops` listing and `epsim validate` price ops through these, so the three agree.
#pragma once

#include <cstdint>
#include <vector>

#include "models/cost_model.h"
#include "models/layer_program.h"
#include "models/pricing_ledger.h"

namespace epsim {

struct PricedOp {
  LayerOp op;  // per-expert GEMMs: the work summed over the experts
  Time time;
};

PricedOp price_op(const LayerOp& op, const CostModel& cost, PricingLedger* ledger = nullptr);

// The routed experts' ops with one GEMM per expert at that expert's own rows (`rows_per_expert`;
// empty experts launch nothing), the GEMM ops' times and work summed over the experts, the
// elementwise ops once over all the rows (one kernel each, as kernels/ep_layer.cu runs them).
// Empty when no expert has rows.
std::vector<PricedOp> price_experts_per_expert(const LayerProgram& program, const std::vector<std::int64_t>& rows_per_expert,
                                               Pass pass, const CostModel& cost, PricingLedger* ledger = nullptr);

}  // namespace epsim
