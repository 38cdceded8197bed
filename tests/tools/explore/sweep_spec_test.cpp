#include <doctest/doctest.h>

#include "models/errors.h"
#include "tools/explore/sweep_spec.h"

using namespace epsim;
using namespace epsim::explore;
using nlohmann::json;

namespace {
json tiny_base() {
  return json{{"model", {{"layers", 2}, {"dense_layers", 1}, {"routed_experts", 4}, {"top_k", 2}}},
              {"cluster", {{"nodes", 2}, {"gpus_per_node", 2}}},
              {"workload", {{"tokens_per_gpu", 256}}}};
}
json spec_with(json axes) { return json{{"base", tiny_base()}, {"axes", std::move(axes)}}; }

std::string error_of(const json& spec) {
  try {
    SweepSpec::from_json(spec);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "(no error)";
}
}  // namespace

TEST_CASE("grid axes multiply, the last fastest; a zip moves its lists together") {
  const SweepSpec s = SweepSpec::from_json(spec_with(json::array({
      {{"key", "schedule.chunks"}, {"values", {1, 2}}},
      {{"zip", {{{"key", "schedule.overlap"}, {"values", {"serial", "dual-microbatch", "serial"}}},
                {{"key", "network.model"}, {"values", {"analytical", "flow", "flow"}}}}}}})));
  const auto p = s.points();
  REQUIRE(p.size() == 6);
  CHECK(s.axis_keys() == std::vector<std::string>{"schedule.chunks", "schedule.overlap", "network.model"});
  CHECK(p[0].axes == json{{"schedule.chunks", 1}, {"schedule.overlap", "serial"}, {"network.model", "analytical"}});
  CHECK(p[1].axes == json{{"schedule.chunks", 1}, {"schedule.overlap", "dual-microbatch"}, {"network.model", "flow"}});
  CHECK(p[3].axes == json{{"schedule.chunks", 2}, {"schedule.overlap", "serial"}, {"network.model", "analytical"}});
  CHECK(p[5].doc["schedule"]["chunks"] == 2);
  CHECK(p[5].doc["network"]["model"] == "flow");
  CHECK(p[5].doc["model"]["layers"] == 2);  // the base is kept
  for (std::size_t i = 0; i < p.size(); ++i) CHECK(p[i].index == i);
}

TEST_CASE("ranges: integers when every bound is, inclusive of `to`") {
  const auto ints = SweepSpec::from_json(spec_with(json::array({{{"key", "routing.seed"}, {"from", 3}, {"to", 11}, {"step", 4}}}))).points();
  REQUIRE(ints.size() == 3);  // 3, 7, 11
  CHECK(ints[2].axes["routing.seed"] == 11);
  CHECK(ints[2].axes["routing.seed"].is_number_integer());
  const auto reals = SweepSpec::from_json(spec_with(json::array({{{"key", "routing.zipf_s"}, {"from", 0.5}, {"to", 1.0}, {"step", 0.1}}}))).points();
  REQUIRE(reals.size() == 6);  // 0.5 ... 1.0: the last despite 0.1's rounding
  CHECK(reals[5].axes["routing.zipf_s"].get<double>() == doctest::Approx(1.0));
}

TEST_CASE("random samples: seeded, each sample independent of the sample count, multiplied with the grid") {
  auto spec = [](int samples) {
    json j = spec_with(json::array({{{"key", "schedule.chunks"}, {"values", {1, 2}}}}));
    j["random"] = {{"samples", samples}, {"seed", 7},
                   {"axes", {{{"key", "routing.seed"}, {"int", {1, 6}}},
                             {{"key", "routing.zipf_s"}, {"uniform", {0.5, 1.5}}},
                             {{"key", "cluster.nic_gbps"}, {"log_uniform", {100, 800}}},
                             {{"key", "network.model"}, {"choice", {"analytical", "flow"}}}}}};
    return SweepSpec::from_json(j);
  };
  const auto few = spec(3).points(), many = spec(50).points();
  REQUIRE(few.size() == 6);
  REQUIRE(many.size() == 100);
  for (int s = 0; s < 3; ++s) {
    CHECK(few[static_cast<std::size_t>(s)].axes == many[static_cast<std::size_t>(s)].axes);   // grid point 0
    CHECK(few[static_cast<std::size_t>(3 + s)].axes["routing.seed"] == many[static_cast<std::size_t>(50 + s)].axes["routing.seed"]);
  }
  bool both_models = false;
  for (const auto& p : many) {
    const auto seed = p.axes["routing.seed"].get<std::int64_t>();
    CHECK((seed >= 1 && seed <= 6));
    const double s = p.axes["routing.zipf_s"].get<double>(), nic = p.axes["cluster.nic_gbps"].get<double>();
    CHECK((s >= 0.5 && s < 1.5));
    CHECK((nic >= 100 && nic < 800));
    both_models = both_models || p.axes["network.model"] != many[0].axes["network.model"];
  }
  CHECK(both_models);
  CHECK(spec(3).points()[1].axes == few[1].axes);  // the same spec, the same draws
}

TEST_CASE("point ids: a hash of the point's document, stable, repeats numbered") {
  const SweepSpec s = SweepSpec::from_json(spec_with(json::array({{{"key", "schedule.chunks"}, {"values", {1, 2, 1}}}})));
  const auto p = s.points();
  CHECK(p[0].id == fnv1a_hex(p[0].doc.dump()));
  CHECK(p[0].id.size() == 16);
  CHECK(p[1].id != p[0].id);
  CHECK(p[2].id == p[0].id + "-2");
  CHECK(fnv1a_hex("") == "cbf29ce484222325");  // FNV-1a 64 offset basis: the hash of nothing
  CHECK(fnv1a_hex("a") == "af63dc4c8601ec8c");  // FNV-1a 64 test vector
  // `set` applies before the axes and changes every id.
  json j = spec_with(json::array({{{"key", "schedule.chunks"}, {"values", {1, 2, 1}}}}));
  j["set"] = {{"network.model", "flow"}};
  const auto q = SweepSpec::from_json(j).points();
  CHECK(q[0].doc["network"]["model"] == "flow");
  CHECK(q[0].id != p[0].id);
}

TEST_CASE("bad specifications name the JSON path, the value and the rule") {
  CHECK(error_of(spec_with(json::array({{{"key", "network.modle"}, {"values", {1}}}}))) ==
        "axes[0].key = \"network.modle\": not a scenario key (`epsim keys` lists them)");
  CHECK(error_of(spec_with(json::array({{{"key", "schedule.chunks"}}}))) ==
        "axes[0].key = \"schedule.chunks\": an axis takes either values or a range (from, to, step)");
  CHECK(error_of(spec_with(json::array({{{"key", "schedule.chunks"}, {"values", json::array()}}}))) ==
        "axes[0].values = []: must be a non-empty array");
  CHECK(error_of(spec_with(json::array({{{"zip", {{{"key", "schedule.chunks"}, {"values", {1, 2}}},
                                                  {{"key", "network.model"}, {"values", {"flow"}}}}}}}))) ==
        "axes[0].zip[1].values = [\"flow\"]: has 1 values, the zip's first list 2");
  CHECK(error_of(spec_with(json::array({{{"key", "schedule.chunks"}, {"from", 4}, {"to", 1}}}))) ==
        "axes[0].to = 1: must be >= from = 4");
  CHECK(error_of(spec_with(json::array({{{"key", "schedule.chunks"}, {"values", {1}}},
                                        {{"key", "schedule.chunks"}, {"values", {2}}}}))) ==
        "axes = [{\"key\":\"schedule.chunks\",\"values\":[1]},{\"key\":\"schedule.chunks\",\"values\":[2]}]: two axes set schedule.chunks");
  CHECK(error_of(json{{"base", tiny_base()}, {"axis", json::array()}}).rfind("axis = []: unknown key", 0) == 0);
  json r = spec_with(json::array());
  r["random"] = {{"samples", 2}, {"axes", {{{"key", "routing.zipf_s"}, {"uniform", {1}}}}}};
  CHECK(error_of(r) == "random.axes[0].uniform = [1]: must be [low, high], two numbers");
  r["random"] = {{"samples", 2}, {"axes", {{{"key", "routing.zipf_s"}, {"uniform", {0, 1}}, {"int", {0, 1}}}}}};
  CHECK(error_of(r) == "random.axes[0].key = \"routing.zipf_s\": a random axis takes exactly one of uniform, log_uniform, int, choice");
  CHECK(error_of(json{{"base", 3}}) == "base = 3: must be a scenario file name or a scenario object");
}
