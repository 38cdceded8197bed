#include "models/op_pricing.h"

namespace epsim {

PricedOp price_op(const LayerOp& op, const CostModel& cost, PricingLedger* ledger) {
  if (ledger != nullptr) ledger->record(op.work, cost);
  return {op, cost.time(op.work) + cost.kernel_gap() * static_cast<double>(op.work.kernels)};
}

std::vector<PricedOp> price_experts_per_expert(const LayerProgram& program, const std::vector<std::int64_t>& rows_per_expert,
                                               Pass pass, const CostModel& cost, PricingLedger* ledger) {
  std::int64_t rows = 0;
  std::vector<std::vector<LayerOp>> per_expert;  // the same ops at each non-empty expert's rows
  for (std::int64_t n : rows_per_expert)
    if (n > 0) {
      rows += n;
      per_expert.push_back(program.experts(n, 1, pass, true));
    }
  if (rows == 0) return {};
  const std::vector<LayerOp> ops = program.experts(rows, static_cast<int>(rows_per_expert.size()), pass, true);
  std::vector<PricedOp> out;
  for (std::size_t i = 0; i < ops.size(); ++i) {
    if (ops[i].work.op != OpClass::ExpertGemm) {
      out.push_back(price_op(ops[i], cost, ledger));
      continue;
    }
    PricedOp sum{ops[i], Time::zero()};
    sum.op.work.flops = Flops(0);
    sum.op.work.bytes = Bytes(0);
    sum.op.work.kernels = 0;
    for (const auto& list : per_expert) {
      const PricedOp one = price_op(list[i], cost, ledger);
      sum.time += one.time;
      sum.op.work.flops += one.op.work.flops;
      sum.op.work.bytes += one.op.work.bytes;
      sum.op.work.kernels += one.op.work.kernels;
    }
    out.push_back(sum);
  }
  return out;
}

}  // namespace epsim
