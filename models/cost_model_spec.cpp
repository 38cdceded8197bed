#include "models/cost_model_spec.h"

namespace epsim {

const Schema& CostModelSpec::schema() {
  static const Schema s{"cost_model", {
      {"calibration", "string", "", "", "empty: nominal roofline of the GPU (peak x mfu, HBM x efficiency); else a calibrated profile"},
  }};
  return s;
}

CostModelSpec CostModelSpec::from_json(const nlohmann::json& j, const std::string& path) {
  const nlohmann::json obj = j.is_null() ? nlohmann::json::object() : j;
  ConfigObject c(obj, path, schema());
  CostModelSpec s;
  s.calibration = c.string("calibration");
  return s;
}

std::unique_ptr<CostModel> make_cost_model(const CostModelSpec& spec, const GpuSpec& gpu) {
  if (spec.calibration.empty()) return std::make_unique<NominalCostModel>(gpu);
  throw ConfigError("cost_model.calibration", "\"" + spec.calibration + "\"", "calibrated profiles are not supported yet");
}

}  // namespace epsim
