// Test helper: what a sequence of blocks of the layer program costs one GPU under the nominal
// model, each op at its roofline time plus the 1 us kernel gap (the step tests add the all-to-alls).
#pragma once

#include <vector>

#include "models/cost_model.h"
#include "models/layer_program.h"
#include "sim/scenario.h"

namespace epsim::test {

inline Time ops_time(const NominalCostModel& cost, const std::vector<LayerOp>& ops) {
  Time t = Time::zero();
  for (const LayerOp& o : ops) t += cost.time(o.work) + cost.kernel_gap();
  return t;
}

inline Time blocks_time(const Scenario& sc, const std::vector<Block>& blocks, const LayerShape& s) {
  const NominalCostModel cost(sc.gpu);
  const LayerOps ops(sc.model, sc.parallelism.attention_tp);
  const LayerProgram program(ops);
  Time t = Time::zero();
  for (Block b : blocks) t += ops_time(cost, program.block(b, s, Pass::Forward));
  return t;
}

// The routed experts' ops over `rows` rows of one expert (grouped), forward.
inline Time experts_time(const Scenario& sc, std::int64_t rows) {
  const LayerOps ops(sc.model, sc.parallelism.attention_tp);
  return ops_time(NominalCostModel(sc.gpu), LayerProgram(ops).experts(rows, 1, Pass::Forward));
}

}  // namespace epsim::test
