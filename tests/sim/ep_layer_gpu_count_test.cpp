// `epsim validate` for any GPU count (issue 9 brings EP = 8 measurements on one NVSwitch node): a
// measured two-GPU case re-shaped for 8 GPUs (its two sources' routing repeated 4 times: every
// expert gets 4x the tokens, each GPU holds 4 experts instead of 16) must build an 8-GPU, one-node
// scenario and simulate it. Physical checks only (no 8-GPU measurement exists yet): each GPU still
// computes the same (token, expert) pairs, and sends 7/8 of them away instead of 1/2, so the
// dispatch takes longer than in the two-GPU case.
#include <doctest/doctest.h>

#include <string>

#include "models/config.h"
#include "sim/ep_layer_validation.h"

using namespace epsim;

namespace {
nlohmann::json two_gpu_case() {
  const auto doc = read_json_file(std::string(EPSIM_SOURCE_DIR) + "/kernels/results/ep2-h200x2-2026-11-29.json");
  nlohmann::json file = {{"schema", doc["schema"]}, {"cases", nlohmann::json::array({doc["cases"][0]})}};
  return file;
}

nlohmann::json as_eight_gpus(nlohmann::json file) {
  auto& c = file["cases"][0];
  c["options"]["gpus"] = 8;
  c["options"]["experts_per_gpu"] = 4;
  auto& layers = c["trace"]["layers"];
  for (auto& layer : layers) {
    const auto two = layer["sources"];
    nlohmann::json eight = nlohmann::json::array();
    for (int k = 0; k < 4; ++k)
      for (const auto& row : two) eight.push_back(row);
    layer["sources"] = eight;
  }
  c.erase("routing");  // per-micro-batch counts of the two-GPU run: not this shape
  return file;
}

double phase(const CaseComparison& c, const std::string& name) {
  for (const auto& p : c.phases)
    if (p.phase == name) return p.predicted_us;
  return -1;
}
}  // namespace

TEST_CASE("validate builds and simulates an EP = 8 case on one 8-GPU node") {
  const nlohmann::json two = two_gpu_case();
  const nlohmann::json eight = as_eight_gpus(two);
  const Scenario sc = ep_layer_scenario(eight["cases"][0], "ep8:cases[0]");
  CHECK(sc.cluster.nodes == 1);
  CHECK(sc.cluster.gpus_per_node == 8);
  const FileValidation v2 = validate_ep_layer(two, "ep2");
  const FileValidation v8 = validate_ep_layer(eight, "ep8");
  REQUIRE(v8.cases.size() == 1);
  const CaseComparison& c2 = v2.cases[0];
  const CaseComparison& c8 = v8.cases[0];
  CHECK(c8.predicted_us > 0);
  CHECK(phase(c8, "dispatch_data") > phase(c2, "dispatch_data"));
  CHECK(phase(c8, "experts") > 0);
}
