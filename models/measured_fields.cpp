#include "models/measured_fields.h"

#include <cmath>

#include <fmt/format.h>

#include "models/config.h"
#include "models/errors.h"

namespace epsim {

namespace {
[[noreturn]] void bad(const std::string& where, const char* key, const nlohmann::json& v, const std::string& rule) {
  throw InputError(where + "." + key + " = " + json_text(v) + ": " + rule);
}
}  // namespace

const nlohmann::json& measured_field(const nlohmann::json& j, const char* key, const std::string& where) {
  if (!j.is_object()) throw InputError(where + " = " + json_text(j) + ": must be a JSON object");
  const auto it = j.find(key);
  if (it == j.end()) throw InputError(where + "." + key + ": missing (a measured file needs it)");
  return *it;
}

std::int64_t measured_int(const nlohmann::json& j, const char* key, const std::string& where, std::int64_t min,
                          std::int64_t max) {
  const auto& v = measured_field(j, key, where);
  const bool in_range = v.is_number_integer() && (v.is_number_unsigned() ? v.get<std::uint64_t>() <= static_cast<std::uint64_t>(max)
                                                                         : v.get<std::int64_t>() >= min && v.get<std::int64_t>() <= max);
  if (!in_range) bad(where, key, v, fmt::format("must be an integer in [{}, {}]", min, max));
  return v.get<std::int64_t>();
}

double measured_number(const nlohmann::json& j, const char* key, const std::string& where, double min, bool strictly_above) {
  const auto& v = measured_field(j, key, where);
  const double d = v.is_number() ? v.get<double>() : std::nan("");
  if (!std::isfinite(d) || d < min || (strictly_above && d == min))
    bad(where, key, v, fmt::format("must be a number {} {:g}", strictly_above ? ">" : ">=", min));
  return d;
}

std::string measured_string(const nlohmann::json& j, const char* key, const std::string& where) {
  const auto& v = measured_field(j, key, where);
  if (!v.is_string()) bad(where, key, v, "must be a string");
  return v.get<std::string>();
}

std::string measured_string_or(const nlohmann::json& j, const char* key, const std::string& where, const std::string& fallback) {
  return j.is_object() && j.contains(key) ? measured_string(j, key, where) : fallback;
}

std::int64_t measured_int_or(const nlohmann::json& j, const char* key, const std::string& where, std::int64_t min,
                             std::int64_t max, std::int64_t fallback) {
  return j.is_object() && j.contains(key) ? measured_int(j, key, where, min, max) : fallback;
}

}  // namespace epsim
