#include "tools/explore/sweep_spec.h"

#include <cmath>
#include <limits>
#include <map>

#include <fmt/format.h>

#include "models/limits.h"
#include "models/random_stream.h"
#include "sim/scenario.h"
#include "tools/explore/base_scenario.h"

namespace epsim::explore {

namespace {

const Schema& top_schema() {
  static const Schema s{"sweep", {
      {"name", "string", "", "", "sweep name, printed in the progress lines"},
      {"base", "any", "scenarios/seed.json", "", "the scenario every point starts from: a file (relative to the working directory, as `epsim run` reads it) or an inline scenario object"},
      {"set", "object", nlohmann::json::object(), "", "overrides applied to the base before the axes, {\"key.path\": value} as `epsim run --set`"},
      {"axes", "array", nlohmann::json::array(), "", "grid axes (see sweep.axes[].*): their values multiply, the last axis varies fastest"},
      {"random", "object", nlohmann::json::object(), "", "seeded random samples (see sweep.random.*); absent: none. Each sample multiplies with the grid"},
      {"steps", "integer", 1, "", "steps simulated per point, as `epsim run --steps`; the figures are the last step's"},
      {"skip_invalid", "boolean", false, "", "false: a point whose scenario is rejected stops the sweep before it starts (exit 2); true: it is recorded with its error and the sweep goes on"},
  }};
  return s;
}

const Schema& axis_schema() {
  static const Schema s{"sweep.axes[]", {
      {"key", "string", nullptr, "", "the scenario key the axis sets, as in `epsim keys` (e.g. parallelism.ep)"},
      {"values", "array", nullptr, "", "the values it takes, in order (any JSON: numbers, strings, objects)"},
      {"from", "number", nullptr, "", "instead of values: the first of an arithmetic range (integers if from, to and step are)"},
      {"to", "number", nullptr, "", "the range's last value (included when the steps land on it)"},
      {"step", "number", 1, "", "the range's increment, > 0"},
      {"zip", "array", nullptr, "", "instead of key: a list of {key, values} whose lists have one length and move together as one axis"},
  }};
  return s;
}

const Schema& zip_schema() {
  static const Schema s{"sweep.axes[].zip[]", {
      {"key", "string", nullptr, "", "a scenario key"},
      {"values", "array", nullptr, "", "its values, as long as every other list of the zip"},
  }};
  return s;
}

const Schema& random_schema() {
  static const Schema s{"sweep.random", {
      {"samples", "integer", nullptr, "", "random points per grid point, >= 1"},
      {"seed", "integer", 1, "", "seed of the draws: sample s of axis a comes from derive_seed(seed, {s, a}), so it does not depend on the sample count"},
      {"axes", "array", nullptr, "", "the random axes (see sweep.random.axes[].*)"},
  }};
  return s;
}

const Schema& random_axis_schema() {
  static const Schema s{"sweep.random.axes[]", {
      {"key", "string", nullptr, "", "the scenario key drawn"},
      {"uniform", "array", nullptr, "", "[low, high]: a number uniform in [low, high)"},
      {"log_uniform", "array", nullptr, "", "[low, high], 0 < low: a number whose logarithm is uniform"},
      {"int", "array", nullptr, "", "[low, high]: an integer uniform in [low, high], both included"},
      {"choice", "array", nullptr, "", "one of the listed values, each equally likely"},
  }};
  return s;
}

constexpr std::size_t kMaxPoints = 10'000'000;

std::vector<nlohmann::json> list(const ConfigObject& c, const std::string& field) {
  const nlohmann::json& v = c.raw(field);
  if (!v.is_array() || v.empty()) c.fail(field, "must be a non-empty array");
  return {v.begin(), v.end()};
}

std::vector<nlohmann::json> range(const ConfigObject& c) {
  if (!c.has("to")) c.fail("from", "a range needs both from and to");
  const nlohmann::json& f = c.raw("from");
  const nlohmann::json& t = c.raw("to");
  const nlohmann::json& s = c.raw("step");
  const double from = c.number("from"), to = c.number("to"), step = c.number("step");
  if (!(step > 0)) c.fail("step", "must be > 0");
  if (to < from) c.fail("to", fmt::format("must be >= from = {}", f.dump()));
  if ((to - from) / step >= static_cast<double>(kMaxPoints)) c.fail("to", "the range has too many values");
  std::vector<nlohmann::json> out;
  if (f.is_number_integer() && t.is_number_integer() && s.is_number_integer()) {
    const auto a = f.get<std::int64_t>(), b = t.get<std::int64_t>(), d = s.get<std::int64_t>();
    for (std::int64_t v = a; v <= b; v += d) out.emplace_back(v);
  } else {
    const auto n = static_cast<std::int64_t>(std::floor((to - from) / step * (1 + 1e-12)));
    for (std::int64_t i = 0; i <= n; ++i) out.emplace_back(from + static_cast<double>(i) * step);
  }
  return out;
}

GridAxis grid_axis(const nlohmann::json& j, const std::string& path) {
  ConfigObject c(j, path, axis_schema());
  GridAxis a;
  if (c.has("zip")) {
    if (c.has("key") || c.has("values") || c.has("from")) c.fail("zip", "a zip axis takes no key, values or range of its own");
    const std::vector<nlohmann::json> parts = list(c, "zip");
    for (std::size_t i = 0; i < parts.size(); ++i) {
      ConfigObject z(parts[i], c.path_of("zip") + fmt::format("[{}]", i), zip_schema());
      a.keys.push_back(z.string("key"));
      check_scenario_key(z, "key", a.keys.back());
      a.values.push_back(list(z, "values"));
      if (a.values.back().size() != a.values.front().size())
        z.fail("values", fmt::format("has {} values, the zip's first list {}", a.values.back().size(), a.values.front().size()));
    }
    return a;
  }
  a.keys.push_back(c.string("key"));
  check_scenario_key(c, "key", a.keys.back());
  if (c.has("values") == c.has("from")) c.fail("key", "an axis takes either values or a range (from, to, step)");
  a.values.push_back(c.has("values") ? list(c, "values") : range(c));
  return a;
}

RandomAxis random_axis(const nlohmann::json& j, const std::string& path) {
  ConfigObject c(j, path, random_axis_schema());
  RandomAxis a;
  a.key = c.string("key");
  check_scenario_key(c, "key", a.key);
  const std::vector<std::pair<std::string, RandomAxis::Law>> laws = {
      {"uniform", RandomAxis::Law::Uniform}, {"log_uniform", RandomAxis::Law::LogUniform},
      {"int", RandomAxis::Law::Int}, {"choice", RandomAxis::Law::Choice}};
  int given = 0;
  for (const auto& [field, law] : laws) {
    if (!c.has(field)) continue;
    ++given;
    a.law = law;
    const std::vector<nlohmann::json> v = list(c, field);
    if (law == RandomAxis::Law::Choice) {
      a.choices = v;
      continue;
    }
    if (v.size() != 2 || !v[0].is_number() || !v[1].is_number()) c.fail(field, "must be [low, high], two numbers");
    a.low = v[0].get<double>();
    a.high = v[1].get<double>();
    if (law == RandomAxis::Law::Int && !(v[0].is_number_integer() && v[1].is_number_integer()))
      c.fail(field, "must be two integers");
    if (a.high < a.low) c.fail(field, "needs low <= high");
    if (law == RandomAxis::Law::LogUniform && !(a.low > 0)) c.fail(field, "needs 0 < low");
  }
  if (given != 1) c.fail("key", "a random axis takes exactly one of uniform, log_uniform, int, choice");
  return a;
}

}  // namespace

std::string fnv1a_hex(const std::string& text) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char ch : text) {
    h ^= ch;
    h *= 0x100000001b3ULL;
  }
  return fmt::format("{:016x}", h);
}

nlohmann::json RandomAxis::draw(std::uint64_t seed, std::size_t sample, std::size_t axis) const {
  RandomStream rng(derive_seed(seed, {static_cast<std::int64_t>(sample), static_cast<std::int64_t>(axis)}));
  switch (law) {
    case Law::Uniform: return low + (high - low) * rng.uniform();
    case Law::LogUniform: return std::exp(std::log(low) + (std::log(high) - std::log(low)) * rng.uniform());
    case Law::Int: {
      const auto lo = static_cast<std::int64_t>(low), hi = static_cast<std::int64_t>(high);
      return lo + rng.index(hi - lo + 1);
    }
    case Law::Choice: return choices[static_cast<std::size_t>(rng.index(static_cast<std::int64_t>(choices.size())))];
  }
  return nullptr;
}

std::vector<const Schema*> SweepSpec::schemas() {
  return {&top_schema(), &axis_schema(), &zip_schema(), &random_schema(), &random_axis_schema()};
}

SweepSpec SweepSpec::from_json(const nlohmann::json& j) {
  ConfigObject c(j, "", top_schema());
  SweepSpec s;
  s.name = c.string("name");
  s.base = base_scenario(c);
  const nlohmann::json& axes = c.raw("axes");
  if (!axes.is_array()) c.fail("axes", "must be an array of axes");
  for (std::size_t i = 0; i < axes.size(); ++i) s.grid.push_back(grid_axis(axes[i], fmt::format("axes[{}]", i)));
  if (c.has("random")) {
    ConfigObject r(c.raw("random"), "random", random_schema());
    s.samples = r.integer_in<std::size_t>("samples", 1, static_cast<std::int64_t>(kMaxPoints));
    s.seed = r.integer_in<std::uint64_t>("seed", 0, std::numeric_limits<std::int64_t>::max());
    const std::vector<nlohmann::json> raxes = list(r, "axes");
    for (std::size_t i = 0; i < raxes.size(); ++i) s.random.push_back(random_axis(raxes[i], fmt::format("random.axes[{}]", i)));
  }
  s.steps = c.integer_in<int>("steps", 1, limits::kSteps);
  s.skip_invalid = c.boolean("skip_invalid");
  std::size_t total = std::max<std::size_t>(1, s.samples);
  for (const GridAxis& a : s.grid) {
    total *= a.size();
    if (total > kMaxPoints) c.fail("axes", fmt::format("more than {} points", kMaxPoints));
  }
  const std::vector<std::string> keys = s.axis_keys();
  for (std::size_t i = 0; i < keys.size(); ++i)
    for (std::size_t k = 0; k < i; ++k)
      if (keys[i] == keys[k]) c.fail("axes", "two axes set " + keys[i]);
  return s;
}

std::vector<std::string> SweepSpec::axis_keys() const {
  std::vector<std::string> keys;
  for (const GridAxis& a : grid) keys.insert(keys.end(), a.keys.begin(), a.keys.end());
  for (const RandomAxis& a : random) keys.push_back(a.key);
  return keys;
}

std::vector<SweepPoint> SweepSpec::points() const {
  std::size_t grid_points = 1;
  for (const GridAxis& a : grid) grid_points *= a.size();
  const std::size_t per_grid = random.empty() ? 1 : samples;
  std::vector<SweepPoint> out;
  out.reserve(grid_points * per_grid);
  std::map<std::string, int> seen;  // document hash -> times seen
  const std::vector<std::string> keys = axis_keys();
  for (std::size_t g = 0; g < grid_points; ++g) {
    SweepPoint grid_point;
    grid_point.axes = nlohmann::json::object();
    std::size_t rest = g;  // mixed-radix digits of g, the last axis fastest
    std::vector<std::size_t> digit(grid.size());
    for (std::size_t a = grid.size(); a-- > 0;) {
      digit[a] = rest % grid[a].size();
      rest /= grid[a].size();
    }
    for (std::size_t a = 0; a < grid.size(); ++a)
      for (std::size_t k = 0; k < grid[a].keys.size(); ++k) grid_point.axes[grid[a].keys[k]] = grid[a].values[k][digit[a]];
    for (std::size_t s = 0; s < per_grid; ++s) {
      SweepPoint p;
      p.index = out.size();
      p.axes = grid_point.axes;
      for (std::size_t a = 0; a < random.size(); ++a) p.axes[random[a].key] = random[a].draw(seed, s, a);
      p.doc = base;
      for (const std::string& key : keys) apply_override(p.doc, key + "=" + p.axes[key].dump());
      p.id = fnv1a_hex(p.doc.dump());
      const int n = ++seen[p.id];
      if (n > 1) p.id += fmt::format("-{}", n);
      out.push_back(std::move(p));
    }
  }
  return out;
}

}  // namespace epsim::explore
