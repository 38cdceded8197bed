#include "models/layer_prediction.h"

namespace epsim {

double LayerPrediction::error_pct() const { return (predicted / measured_layer - 1.0) * 100.0; }

LayerPrediction predict_layer(const CalibratedCostModel& model, const MeasuredLayerCase& c) {
  LayerPrediction p;
  p.label = c.label;
  p.measured_layer = c.layer;
  p.predicted = Time::zero();
  p.measured_ops = Time::zero();
  for (const auto& op : c.ops) {
    PredictedLayerOp o;
    o.name = op.name;
    o.measured = op.measured;
    o.predicted = Time::zero();
    const FamilyQuery q = family_for_op(op.name, op.precision, op.shape, op.flops, op.bytes);
    if (!q.family.empty() && model.has_family(q.family)) {
      o.family = q.family;
      o.predicted = model.time_family(q, op.flops, op.bytes, &o.why);
    }
    p.predicted = p.predicted + o.predicted;
    p.measured_ops = p.measured_ops + o.measured;
    p.ops.push_back(std::move(o));
  }
  return p;
}

}  // namespace epsim
