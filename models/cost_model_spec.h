// Which cost model prices the ops: the nominal roofline of the GPU preset, or a calibrated profile
// fitted from kernel measurements (`epsim calibrate`).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "models/config.h"
#include "models/cost_model.h"
#include "models/gpu_spec.h"

namespace epsim {

struct CostModelSpec {
  std::string calibration;  // empty: nominal; else a profile path or a shipped preset name
  bool per_expert_gemms = false;  // expert_gemms = per-expert: one MLP per expert slot, summed

  static const Schema& schema();
  static CostModelSpec from_json(const nlohmann::json& j, const std::string& path);
};

// Throws ConfigError (path "cost_model.calibration") when the profile cannot be used.
std::unique_ptr<CostModel> make_cost_model(const CostModelSpec& spec, const GpuSpec& gpu);

// Shipped profile names ("h200-measured"), and the file a calibration value names: a preset
// resolves to models/profiles/<name>.json of the source tree (then ./models/profiles), anything
// else is a path. Throws ConfigError when no such file exists.
std::vector<std::string> calibration_presets();
std::string resolve_calibration(const std::string& calibration);
// `measured`: the shipped profile measured on the GPU preset's kind (h100-seed, h100-sxm:
// h100-measured; h200: h200-measured); any other value is returned unchanged. Throws ConfigError
// for `measured` on a preset no GPU of which was measured (h800).
std::string calibration_for(const std::string& calibration, const GpuSpec& gpu);

}  // namespace epsim
