// Checked reading of the measured files epsim takes (epsim-bench/1 kernel results for calibrate,
// epsim-ep-layer/1 cases for validate). They carry keys epsim does not read, so unlike a scenario's
// ConfigObject no key is unknown; every key that is read is required, typed and range-checked, and
// a failure throws InputError naming the file and JSON path, the value as written and the rule:
//   kernels/results/x.json:results[3].us_median = 0: must be a number > 0
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace epsim {

// `j[key]`; throws when `j` is not an object or lacks `key`. `where` is the path of `j`.
const nlohmann::json& measured_field(const nlohmann::json& j, const char* key, const std::string& where);
// An integer in [min, max].
std::int64_t measured_int(const nlohmann::json& j, const char* key, const std::string& where, std::int64_t min,
                          std::int64_t max);
// A finite number >= min (> min when `strictly_above`).
double measured_number(const nlohmann::json& j, const char* key, const std::string& where, double min, bool strictly_above);
std::string measured_string(const nlohmann::json& j, const char* key, const std::string& where);
// The same for an optional key: `fallback` when absent.
std::string measured_string_or(const nlohmann::json& j, const char* key, const std::string& where, const std::string& fallback);
std::int64_t measured_int_or(const nlohmann::json& j, const char* key, const std::string& where, std::int64_t min,
                             std::int64_t max, std::int64_t fallback);

}  // namespace epsim
