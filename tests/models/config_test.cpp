#include <doctest/doctest.h>

#include <functional>

#include "models/gpu_spec.h"
#include "models/moe_model.h"

using namespace epsim;
using nlohmann::json;

static std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "(no error)";
}

TEST_CASE("unknown keys, wrong types and impossible values name path, value and rule") {
  CHECK(error_of([] { MoeModelSpec::from_json(json{{"layerz", 3}}, "model"); }).rfind("model.layerz = 3: unknown key", 0) == 0);
  CHECK(error_of([] { MoeModelSpec::from_json(json{{"top_k", 300}}, "model"); }) ==
        "model.top_k = 300: must be in [1, routed_experts = 256]");
  CHECK(error_of([] { MoeModelSpec::from_json(json{{"hidden", "big"}}, "model"); }) == "model.hidden = \"big\": must be an integer");
  CHECK(error_of([] { MoeModelSpec::from_json(json{{"hidden", 0}}, "model"); }) == "model.hidden = 0: must be >= 1");
  CHECK(error_of([] { GpuSpec::from_json(json{{"mfu", 1.5}}, "gpu"); }) == "gpu.mfu = 1.5: must be in (0, 1]");
  CHECK(error_of([] { GpuSpec::from_json(json{{"preset", "a100"}}, "gpu"); }).rfind("gpu.preset = \"a100\": unknown GPU preset", 0) == 0);
}
