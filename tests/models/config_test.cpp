#include <doctest/doctest.h>

#include <functional>

#include "tests/models/error_of.h"
#include "models/gpu_spec.h"
#include "models/moe_model.h"

using namespace epsim;
using nlohmann::json;

using epsim::testing::error_of;

TEST_CASE("unknown keys, wrong types and impossible values name path, value and rule") {
  CHECK(error_of([] { MoeModelSpec::from_json(json{{"layerz", 3}}, "model"); }).rfind("model.layerz = 3: unknown key", 0) == 0);
  CHECK(error_of([] { MoeModelSpec::from_json(json{{"top_k", 300}}, "model"); }) ==
        "model.top_k = 300: must be in [1, routed_experts = 256]");
  CHECK(error_of([] { MoeModelSpec::from_json(json{{"hidden", "big"}}, "model"); }) == "model.hidden = \"big\": must be an integer in [1, 65536]");
  CHECK(error_of([] { MoeModelSpec::from_json(json{{"hidden", 0}}, "model"); }) == "model.hidden = 0: must be an integer in [1, 65536]");
  CHECK(error_of([] { GpuSpec::from_json(json{{"mfu", 1.5}}, "gpu"); }) == "gpu.mfu = 1.5: must be in [0.001, 1]");
  CHECK(error_of([] { GpuSpec::from_json(json{{"preset", "a100"}}, "gpu"); }).rfind("gpu.preset = \"a100\": unknown GPU preset", 0) == 0);
}

TEST_CASE("integer keys are range-checked before narrowing: 2^32 + 1 is refused, not read as 1") {
  // model.layers is an int; 4294967297 used to wrap to 1 and run a one-layer model.
  CHECK(error_of([] { MoeModelSpec::from_json(json{{"layers", 4294967297ll}}, "model"); }) ==
        "model.layers = 4294967297: must be an integer in [1, 1024]");
  CHECK(error_of([] { MoeModelSpec::from_json(json{{"layers", 9223372036854775808ull}}, "model"); }) ==
        "model.layers = 9223372036854775808: must be an integer in [1, 1024]");
  CHECK(error_of([] { MoeModelSpec::from_json(json{{"layers", -1}}, "model"); }) == "model.layers = -1: must be an integer in [1, 1024]");
  CHECK(error_of([] { MoeModelSpec::from_json(json{{"layers", 3.0}}, "model"); }) == "model.layers = 3.0: must be an integer in [1, 1024]");
  CHECK(MoeModelSpec::from_json(json{{"layers", 1024}, {"dense_layers", 0}}, "model").layers == 1024);
  // The unbounded form keeps its messages (other keys and helpers use it).
  static const Schema s{"x", {{"n", "integer", 5, "", ""}}};
  CHECK(ConfigObject(json{{"n", 9223372036854775807ll}}, "x", s).integer("n", 0) == 9223372036854775807ll);
  CHECK(error_of([] { (void)ConfigObject(json{{"n", 9223372036854775808ull}}, "x", s).integer("n", 0); }) ==
        "x.n = 9223372036854775808: must be an integer >= 0");
  CHECK(error_of([] { (void)ConfigObject(json{{"n", -1}}, "x", s).integer("n", 0); }) == "x.n = -1: must be >= 0");
}

TEST_CASE("rates are finite and inside their documented range, so 1e-300 is refused where it is read") {
  CHECK(error_of([] { GpuSpec::from_json(json{{"peak_tflops", 1e-300}}, "gpu"); }) ==
        "gpu.peak_tflops = 1e-300: must be in [0.001, 1e+07] TFLOPS");
  CHECK(error_of([] { GpuSpec::from_json(json{{"memory_gb", 1e300}}, "gpu"); }) == "gpu.memory_gb = 1e+300: must be in [0.001, 1e+06] GB");
  CHECK(GpuSpec::from_json(json{{"peak_tflops", 0.001}}, "gpu").peak_bf16.to_tflops() == doctest::Approx(0.001));
}
