// A measured whole layer (layer_measurement.h) priced op by op from a calibration profile, each op
// from its own recorded FLOPs, bytes and shape through the family op_family.h names: the
// calibration's accuracy on a layer with nothing of the simulator's op inventory in between.
#pragma once

#include <string>
#include <vector>

#include "models/calibrated_cost_model.h"
#include "models/layer_measurement.h"

namespace epsim {

struct PredictedLayerOp {
  std::string name;
  std::string family;  // "" when no family prices it (predicted zero)
  std::string why;     // the series used
  Time measured;
  Time predicted;
};

struct LayerPrediction {
  std::string label;
  Time measured_layer;    // the layer measured as one
  Time measured_ops;      // sum of the measured ops (events between ops)
  Time predicted;         // sum of the predicted ops
  std::vector<PredictedLayerOp> ops;
  double error_pct() const;  // predicted vs the layer measured as one, %
};

LayerPrediction predict_layer(const CalibratedCostModel& model, const MeasuredLayerCase& c);

}  // namespace epsim
