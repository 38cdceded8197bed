#include "models/cost_model_spec.h"

#include <filesystem>

#include "models/calibrated_cost_model.h"
#include "models/calibration_profile.h"

namespace epsim {

const Schema& CostModelSpec::schema() {
  static const Schema s{"cost_model", {
      {"calibration", "string", "", "",
       "empty: nominal roofline of the GPU (peak x mfu, HBM x efficiency); `measured`: the shipped profile measured on the "
       "GPU preset's kind (h100-seed, h100-sxm: h100-measured; h200: h200-measured); `h100-measured`, `h200-measured`: that "
       "shipped profile (models/profiles/<name>.json, fitted from kernels/results); else the path of a profile written by "
       "`epsim calibrate`"},
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

std::vector<std::string> calibration_presets() { return {"h200-measured", "h100-measured"}; }

std::string calibration_for(const std::string& calibration, const GpuSpec& gpu) {
  if (calibration != "measured") return calibration;
  if (gpu.name == "h100-seed" || gpu.name == "h100-sxm") return "h100-measured";
  if (gpu.name == "h200") return "h200-measured";
  throw ConfigError("cost_model.calibration", "\"measured\"",
                    "no shipped profile was measured on GPU preset " + gpu.name + " (measured: h100-seed/h100-sxm, h200)");
}

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
    throw ConfigError("cost_model.calibration", value,
                      "must be measured, a preset (h200-measured, h100-measured) or an existing profile file");
  return calibration;
}

std::unique_ptr<CostModel> make_cost_model(const CostModelSpec& spec, const GpuSpec& gpu) {
  if (spec.calibration.empty()) return std::make_unique<NominalCostModel>(gpu);
  const std::string calibration = calibration_for(spec.calibration, gpu);
  const std::string path = resolve_calibration(calibration);
  try {
    const std::string label = calibration.find('/') == std::string::npos && calibration.find(".json") == std::string::npos
                                  ? calibration
                                  : std::filesystem::path(calibration).stem().string();
    return std::make_unique<CalibratedCostModel>(CalibrationProfile::load(path), label, gpu);
  } catch (const InputError& e) {
    throw ConfigError("cost_model.calibration", "\"" + spec.calibration + "\"", e.what());
  }
}

}  // namespace epsim
