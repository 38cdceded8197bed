// The measurements `epsim-bench` writes (schema "epsim-bench/1", kernels/README.md), as read by
// the calibration: one row per (kernel, variant, shape) with its median time and FLOP/byte counts.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "models/units.h"

namespace epsim {

struct BenchRow {
  std::string kernel;
  std::string variant;
  std::map<std::string, std::int64_t> shape;
  Time median;
  double flops = 0;
  double bytes = 0;
  bool passed = true;
  std::string source;  // the file it came from
  std::string where;   // its JSON path there, for messages ("file.json:results[12]")

  // The shape value of `key`; throws InputError naming the row when it is missing.
  std::int64_t at(const std::string& key) const;
  std::string shape_text() const;  // "m=1024 n=4096 k=7168"
};

struct BenchFile {
  std::string path;
  std::string device;      // device.name
  int device_count = 0;
  int sm_count = 0;        // device.sm_count (0: not recorded)
  std::string date;        // UTC ISO-8601 of the run
  std::string git_commit;
  std::string libraries;   // "cublas 13.1.0, nccl 22809"
  std::vector<BenchRow> rows;
};

// A shape value: at most 2^53, so that it converts to a double exactly (curves use it as x).
inline constexpr std::int64_t kMaxShapeValue = std::int64_t{1} << 53;

// Throws InputError when the file cannot be read, is not epsim-bench/1, or a field is missing or
// breaks its rule (us_median > 0, flops and bytes >= 0, shape values integers in [0, 2^53]); the
// message names the file, the JSON path, the value and the rule.
BenchFile read_bench_file(const std::string& path);
BenchFile parse_bench_file(const nlohmann::json& doc, const std::string& path);
// Whether a parsed document is an epsim-bench/1 result (kernels/results also holds other schemas,
// e.g. the EP-layer runs, which the calibration does not read).
bool is_bench_document(const nlohmann::json& doc);

}  // namespace epsim
