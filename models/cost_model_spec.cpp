#include "models/cost_model_spec.h"

#include <filesystem>

#include "models/calibrated_cost_model.h"
#include "models/calibration_profile.h"

namespace epsim {

const Schema& CostModelSpec::schema() {
  static const Schema s{"cost_model", {
      {"calibration", "string", "", "",
       "empty: nominal roofline of the GPU (peak x mfu, HBM x efficiency); `h200-measured`: the shipped profile fitted "
       "from kernels/results (models/profiles/h200-measured.json); else the path of a profile written by `epsim calibrate`"},
      {"expert_gemms", "string", "grouped", "",
       "grouped: a GPU's routed experts priced as one op over all its expert slots at their mean tokens per expert | "
       "per-expert: one MLP per expert slot at that slot's own tokens, summed (a loop of cuBLAS GEMMs, as kernels/ep_layer.cu runs; "
       "skewed loads price each expert at its own size)"},
  }};
  return s;
}

CostModelSpec CostModelSpec::from_json(const nlohmann::json& j, const std::string& path) {
  const nlohmann::json obj = j.is_null() ? nlohmann::json::object() : j;
  ConfigObject c(obj, path, schema());
  CostModelSpec s;
  s.calibration = c.string("calibration");
  s.per_expert_gemms = c.choice("expert_gemms", {"grouped", "per-expert"}) == "per-expert";
  return s;
}

std::vector<std::string> calibration_presets() { return {"h200-measured"}; }

std::string resolve_calibration(const std::string& calibration) {
  namespace fs = std::filesystem;
  const std::string value = "\"" + calibration + "\"";
  for (const auto& preset : calibration_presets()) {
    if (calibration != preset) continue;
    const std::vector<fs::path> dirs = {fs::path(EPSIM_PROFILE_DIR), fs::path("models/profiles")};
    for (const auto& d : dirs)
      if (fs::exists(d / (preset + ".json"))) return (d / (preset + ".json")).string();
    throw ConfigError("cost_model.calibration", value,
                      "shipped profile not found (looked in " + std::string(EPSIM_PROFILE_DIR) + " and ./models/profiles)");
  }
  if (!fs::exists(calibration))
    throw ConfigError("cost_model.calibration", value, "must be a preset (h200-measured) or an existing profile file");
  return calibration;
}

std::unique_ptr<CostModel> make_cost_model(const CostModelSpec& spec, const GpuSpec& gpu) {
  if (spec.calibration.empty()) return std::make_unique<NominalCostModel>(gpu);
  const std::string path = resolve_calibration(spec.calibration);
  try {
    const std::string label = spec.calibration.find('/') == std::string::npos && spec.calibration.find(".json") == std::string::npos
                                  ? spec.calibration
                                  : std::filesystem::path(spec.calibration).stem().string();
    return std::make_unique<CalibratedCostModel>(CalibrationProfile::load(path), label, gpu);
  } catch (const InputError& e) {
    throw ConfigError("cost_model.calibration", "\"" + spec.calibration + "\"", e.what());
  }
}

}  // namespace epsim
