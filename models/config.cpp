#include "models/config.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "models/strict_json.h"

namespace epsim {

const KeyDoc* Schema::find(std::string_view key) const {
  for (const auto& k : keys)
    if (k.key == key) return &k;
  return nullptr;
}

std::string json_text(const nlohmann::json& v) {
  std::string s = v.dump();
  return s.size() > 80 ? s.substr(0, 77) + "..." : s;
}

static std::string join_path(const std::string& base, std::string_view key) {
  return base.empty() ? std::string(key) : base + "." + std::string(key);
}

ConfigObject::ConfigObject(const nlohmann::json& j, std::string path, const Schema& schema)
    : j_(j), path_(std::move(path)), schema_(schema) {
  if (!j_.is_object()) throw ConfigError(path_.empty() ? "(top level)" : path_, json_text(j_), "must be a JSON object");
  for (const auto& [k, v] : j_.items()) {
    if (!schema_.find(k)) {
      std::string known;
      for (const auto& d : schema_.keys) known += (known.empty() ? "" : ", ") + d.key;
      throw ConfigError(join_path(path_, k), json_text(v), "unknown key (known here: " + known + ")");
    }
  }
}

bool ConfigObject::has(std::string_view key) const { return j_.contains(std::string(key)); }

std::string ConfigObject::path_of(std::string_view key) const { return join_path(path_, key); }

void ConfigObject::fail(std::string_view key, const std::string& rule) const {
  throw ConfigError(path_of(key), json_text(value(key)), rule);
}

const nlohmann::json& ConfigObject::value(std::string_view key) const {
  const KeyDoc* doc = schema_.find(key);
  if (!doc) throw SimulationError("schema " + schema_.section + " does not declare key " + std::string(key));
  auto it = j_.find(std::string(key));
  if (it != j_.end()) return *it;
  if (doc->default_value.is_null()) throw ConfigError(path_of(key), "(missing)", "required key");
  return doc->default_value;
}

const nlohmann::json& ConfigObject::raw(std::string_view key) const { return value(key); }

double ConfigObject::number(std::string_view key) const {
  const auto& v = value(key);
  if (!v.is_number()) fail(key, "must be a number");
  const double d = v.get<double>();
  if (!std::isfinite(d)) fail(key, "must be finite");
  return d;
}

double ConfigObject::positive(std::string_view key) const {
  const double d = number(key);
  if (!(d > 0)) fail(key, "must be > 0");
  return d;
}

double ConfigObject::non_negative(std::string_view key) const {
  const double d = number(key);
  if (d < 0) fail(key, "must be >= 0");
  return d;
}

double ConfigObject::fraction(std::string_view key) const {
  const double d = number(key);
  if (!(d > 0 && d <= 1)) fail(key, "must be in (0, 1]");
  return d;
}

std::int64_t ConfigObject::checked_integer(std::string_view key, std::int64_t min_value, std::int64_t max_value,
                                           bool unbounded) const {
  const auto& v = value(key);
  const std::string range = unbounded ? "must be an integer >= " + std::to_string(min_value)
                                      : "must be an integer in [" + std::to_string(min_value) + ", " + std::to_string(max_value) + "]";
  if (!v.is_number_integer()) fail(key, unbounded ? "must be an integer" : range);
  // nlohmann holds non-negative literals as uint64: compare before any conversion.
  if (v.is_number_unsigned() && v.get<std::uint64_t>() > static_cast<std::uint64_t>(max_value)) fail(key, range);
  const auto i = v.get<std::int64_t>();
  if (i < min_value || i > max_value) fail(key, unbounded ? "must be >= " + std::to_string(min_value) : range);
  return i;
}

std::int64_t ConfigObject::integer(std::string_view key, std::int64_t min_value) const {
  return checked_integer(key, min_value, std::numeric_limits<std::int64_t>::max(), true);
}

double ConfigObject::number_in(std::string_view key, double min_value, double max_value, std::string_view unit) const {
  const double d = number(key);
  if (!(d >= min_value && d <= max_value))
    fail(key, fmt::format("must be in [{:g}, {:g}]{}{}", min_value, max_value, unit.empty() ? "" : " ", unit));
  return d;
}

std::string ConfigObject::string(std::string_view key) const {
  const auto& v = value(key);
  if (!v.is_string()) fail(key, "must be a string");
  return v.get<std::string>();
}

std::string ConfigObject::choice(std::string_view key, const std::vector<std::string>& allowed) const {
  const std::string s = string(key);
  for (const auto& a : allowed)
    if (a == s) return s;
  std::string list;
  for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
  fail(key, "must be one of: " + list);
}

bool ConfigObject::boolean(std::string_view key) const {
  const auto& v = value(key);
  if (!v.is_boolean()) fail(key, "must be true or false");
  return v.get<bool>();
}

void apply_override(nlohmann::json& doc, const std::string& assignment) {
  const auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0)
    throw ConfigError("--set", "\"" + assignment + "\"", "must look like key.path=value");
  const std::string path = assignment.substr(0, eq);
  const std::string text = assignment.substr(eq + 1);
  std::optional<nlohmann::json> parsed = parse_json_strict_or_text(text, "--set " + path);
  nlohmann::json value = parsed ? std::move(*parsed) : nlohmann::json(text);
  nlohmann::json* node = &doc;
  std::size_t start = 0;
  while (true) {
    const auto dot = path.find('.', start);
    const std::string part = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (part.empty()) throw ConfigError("--set", "\"" + assignment + "\"", "empty component in key path");
    if (!node->is_object()) throw ConfigError(path.substr(0, start ? start - 1 : 0), json_text(*node), "is not an object, cannot set " + path);
    if (dot == std::string::npos) {
      (*node)[part] = value;
      return;
    }
    node = &(*node)[part];
    if (node->is_null()) *node = nlohmann::json::object();
    start = dot + 1;
  }
}

nlohmann::json read_json_file(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const auto status = fs::status(path, ec);
  if (fs::is_directory(status)) throw InputError(path + ": cannot open file: it is a directory");
  // A device or pipe (/dev/zero) could be read forever: only regular files, of bounded size.
  if (fs::exists(status) && !fs::is_regular_file(status)) throw InputError(path + ": cannot open file: not a regular file");
  if (fs::exists(status) && fs::file_size(path, ec) > kMaxJsonFileBytes)
    throw InputError(path + ": file larger than " + std::to_string(kMaxJsonFileBytes >> 20) + " MiB; not read");
  std::ifstream in(path);
  if (!in) throw InputError(path + ": cannot open file");
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_json_strict(ss.str(), path);
}

}  // namespace epsim
