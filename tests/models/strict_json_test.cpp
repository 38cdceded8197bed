#include <doctest/doctest.h>

#include <functional>
#include <string>

#include "models/config.h"
#include "models/strict_json.h"

using namespace epsim;
using nlohmann::json;

namespace {
// The message of the ConfigError or InputError `f` throws.
std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const ConfigError& e) {
    return std::string("config: ") + e.what();
  } catch (const InputError& e) {
    return std::string("input: ") + e.what();
  }
  return "(no error)";
}
}  // namespace

TEST_CASE("strict JSON refuses duplicate keys with their path, as nlohmann would keep the last") {
  CHECK(message_of([] { parse_json_strict(R"({"model": {"layers": 3, "layers": 5}})", "s.json"); }) ==
        "config: s.json:model.layers = 3: duplicate key (each key may appear once in an object)");
  CHECK(message_of([] { parse_json_strict(R"({"a": [1, {"b": 1, "b": 1}]})", "s.json"); }) ==
        "config: s.json:a[1].b = 1: duplicate key (each key may appear once in an object)");
  // The same key in two different objects is fine.
  CHECK(parse_json_strict(R"({"a": {"k": 1}, "b": {"k": 2}})", "s.json") == json{{"a", {{"k", 1}}}, {"b", {{"k", 2}}}});
}

TEST_CASE("strict JSON refuses numbers that do not fit, naming the path and the text as written") {
  CHECK(message_of([] { parse_json_strict(R"({"gpu": {"peak_tflops": 1e999}})", "s.json"); }) ==
        "config: s.json:gpu.peak_tflops = 1e999: number out of range (not a finite double)");
  CHECK(message_of([] { parse_json_strict(R"({"x": [0, -1E+400]})", "s.json"); }) ==
        "config: s.json:x[1] = -1E+400: number out of range (not a finite double)");
  CHECK(message_of([] { parse_json_strict(R"({"layers": 18446744073709551616})", "s.json"); }) ==
        "config: s.json:layers = 18446744073709551616: integer out of range (beyond 64 bits)");
  // The extremes that do fit stay exact.
  CHECK(parse_json_strict("18446744073709551615", "s").get<std::uint64_t>() == 18446744073709551615ull);
  CHECK(parse_json_strict("-9223372036854775808", "s").get<std::int64_t>() == std::numeric_limits<std::int64_t>::min());
  CHECK(parse_json_strict("1.7976931348623157e308", "s").get<double>() == std::numeric_limits<double>::max());
}

TEST_CASE("strict JSON bounds nesting before parsing, with line and column") {
  const std::string ok = std::string(kMaxJsonDepth, '[') + std::string(kMaxJsonDepth, ']');
  CHECK(parse_json_strict(ok, "d.json").is_array());
  const std::string deep = "{\"a\":\n" + std::string(kMaxJsonDepth, '[') + std::string(kMaxJsonDepth, ']') + "}";
  // The object is level 1, so the 64th '[' (line 2, column 64) is level 65.
  CHECK(message_of([&] { parse_json_strict(deep, "d.json"); }) == "input: d.json:2:64: JSON nested deeper than 64 levels of arrays and objects");
  // Brackets inside strings do not count.
  CHECK(parse_json_strict("[\"" + std::string(1000, '[') + "\"]", "d.json").size() == 1);
  // A million levels (the issue's stack overflow) is refused at once.
  CHECK(message_of([] { parse_json_strict(std::string(1000000, '['), "d.json"); }).rfind("input: d.json:1:65:", 0) == 0);
}

TEST_CASE("strict JSON reports malformed text as input error; --set values fall back to text") {
  CHECK(message_of([] { parse_json_strict("{\"a\": 1,}", "m.json"); }).rfind("input: m.json: malformed JSON: ", 0) == 0);
  CHECK(!parse_json_strict_or_text("many", "--set x").has_value());
  CHECK(*parse_json_strict_or_text("[1, 2]", "--set x") == json{1, 2});
  CHECK(message_of([] { parse_json_strict_or_text("1e999", "--set model.layers"); }) ==
        "config: --set model.layers = 1e999: number out of range (not a finite double)");
}

TEST_CASE("apply_override refuses out-of-range and duplicate values instead of taking them as strings") {
  json doc = json::object();
  CHECK(message_of([&] { apply_override(doc, "model.layers=1e999"); }) ==
        "config: --set model.layers = 1e999: number out of range (not a finite double)");
  CHECK(message_of([&] { apply_override(doc, R"(model={"layers": 1, "layers": 2})"); }) ==
        "config: --set model:layers = 1: duplicate key (each key may appear once in an object)");
  apply_override(doc, "routing.distribution=zipf");
  CHECK(doc["routing"]["distribution"] == "zipf");
}
