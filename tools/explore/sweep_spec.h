// A sweep specification (JSON): a base scenario, overrides, and axes over any scenario keys.
//
//   {"name": "ep-chunks", "base": "scenarios/seed.json", "set": {"network.model": "analytical"},
//    "axes": [{"key": "parallelism.ep", "values": [64, 128, 256]},
//             {"zip": [{"key": "schedule.overlap", "values": ["serial", "dual-microbatch"]},
//                      {"key": "schedule.chunks", "values": [1, 4]}]},
//             {"key": "routing.seed", "from": 1, "to": 10}],
//    "random": {"samples": 20, "seed": 7,
//               "axes": [{"key": "routing.zipf_s", "uniform": [0.5, 1.5]}]}}
//
// Grid axes multiply (the last varies fastest); a zip moves its lists together as one axis; each
// random sample draws every random axis from its own seeded stream (sample s is the same whatever
// the number of samples), and the samples multiply with the grid. Keys are declared in schemas()
// (`epsim keys --sweep`) and documented in scenarios/README.md.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "models/config.h"

namespace epsim::explore {

// One point: the scenario document it runs and what the axes set in it.
struct SweepPoint {
  std::size_t index = 0;    // position in the sweep's order
  std::string id;           // stable: a hash of `doc` (then -2, -3... for repeats of one document)
  nlohmann::json axes;      // {"key.path": value} for every axis key (axis_keys() gives their order)
  nlohmann::json doc;       // base + set + the axes' values
};

// One grid dimension: a single key, or a zip of several keys whose lists move together.
struct GridAxis {
  std::vector<std::string> keys;
  std::vector<std::vector<nlohmann::json>> values;  // values[k][i]: key k's i-th value
  std::size_t size() const { return values.empty() ? 0 : values.front().size(); }
};

struct RandomAxis {
  enum class Law { Uniform, LogUniform, Int, Choice };
  std::string key;
  Law law = Law::Uniform;
  double low = 0, high = 0;                  // Uniform, LogUniform (low > 0): [low, high); Int: [low, high]
  std::vector<nlohmann::json> choices;       // Choice
  nlohmann::json draw(std::uint64_t seed, std::size_t sample, std::size_t axis) const;
};

struct SweepSpec {
  std::string name;
  nlohmann::json base;     // the scenario document, `set` applied
  std::vector<GridAxis> grid;
  std::vector<RandomAxis> random;
  std::size_t samples = 0;  // random samples per grid point (0: no random axes)
  std::uint64_t seed = 1;
  int steps = 1;
  bool skip_invalid = false;

  // `j` is the specification; a string `base` is read as a scenario file (relative to the working
  // directory, as `epsim run` reads it). Throws ConfigError naming the spec's JSON path.
  static SweepSpec from_json(const nlohmann::json& j);
  std::vector<std::string> axis_keys() const;  // grid keys, then random keys
  std::vector<SweepPoint> points() const;
  static std::vector<const Schema*> schemas();
};

// 16 hex digits of the FNV-1a 64 hash of `text`.
std::string fnv1a_hex(const std::string& text);

}  // namespace epsim::explore
