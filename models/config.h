// Strict, self-documenting reading of JSON configuration.
//
// Every key is declared once in a Schema (name, type, default, unit, meaning). A ConfigObject reads
// one JSON object against its schema: unknown keys, missing required keys, wrong types and values
// outside a rule throw ConfigError naming the full JSON path, the value and the rule. The same
// schemas print the key reference (`epsim keys`) that scenarios/README.md documents.
#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "models/errors.h"

namespace epsim {

struct KeyDoc {
  std::string key;
  std::string type;            // "number", "integer", "string", "bool", "object", "array", "any"
  nlohmann::json default_value;  // null: required
  std::string unit;
  std::string meaning;
};

struct Schema {
  std::string section;  // JSON path of the object this schema describes ("network")
  std::vector<KeyDoc> keys;
  const KeyDoc* find(std::string_view key) const;
};

std::string json_text(const nlohmann::json& v);

class ConfigObject {
 public:
  // Throws ConfigError if `j` is not an object or holds a key `schema` does not declare.
  ConfigObject(const nlohmann::json& j, std::string path, const Schema& schema);

  bool has(std::string_view key) const;
  double number(std::string_view key) const;
  double positive(std::string_view key) const;             // > 0
  double non_negative(std::string_view key) const;         // >= 0
  double fraction(std::string_view key) const;             // in (0, 1]
  std::int64_t integer(std::string_view key, std::int64_t min_value) const;  // in [min_value, 2^63 - 1]
  // The integer at `key`, checked to lie in [min_value, max_value] before it is narrowed to T, so a
  // value such as 2^32 + 1 is refused rather than wrapped. The message gives the path, the value as
  // written and the range. T must hold the whole range (a bug otherwise: SimulationError).
  template <typename T>
  T integer_in(std::string_view key, std::int64_t min_value, std::int64_t max_value) const {
    if (min_value < static_cast<std::int64_t>(std::numeric_limits<T>::min()) ||
        static_cast<std::uint64_t>(max_value) > static_cast<std::uint64_t>(std::numeric_limits<T>::max()))
      throw SimulationError("ConfigObject::integer_in: range of " + path_of(key) + " does not fit its type");
    return static_cast<T>(checked_integer(key, min_value, max_value, false));
  }
  // A finite number in [min_value, max_value]; the message gives the range and `unit`.
  double number_in(std::string_view key, double min_value, double max_value, std::string_view unit = "") const;
  std::string choice(std::string_view key, const std::vector<std::string>& allowed) const;
  std::string string(std::string_view key) const;
  bool boolean(std::string_view key) const;
  // The raw value (default if absent) and its path, for sections that parse arrays themselves.
  const nlohmann::json& raw(std::string_view key) const;
  std::string path_of(std::string_view key) const;
  [[noreturn]] void fail(std::string_view key, const std::string& rule) const;

 private:
  const nlohmann::json& value(std::string_view key) const;
  // `unbounded`: integer()'s messages ("must be >= min"), else the range's.
  std::int64_t checked_integer(std::string_view key, std::int64_t min_value, std::int64_t max_value, bool unbounded) const;
  const nlohmann::json& j_;
  std::string path_;
  const Schema& schema_;
};

// Applies `key.path=value` to a scenario document; value is parsed as JSON when it is valid JSON
// (strictly: models/strict_json.h), else taken as a string. Intermediate objects are created.
void apply_override(nlohmann::json& doc, const std::string& assignment);

// Parses a JSON file strictly (models/strict_json.h: bounded nesting, no duplicate keys, numbers in
// range); throws InputError naming the file and the parser's line and column, or ConfigError naming
// the file, the JSON path and the value.
// Only regular files of at most kMaxJsonFileBytes are read (the largest shipped routing trace is 200 kB).
inline constexpr std::uintmax_t kMaxJsonFileBytes = std::uintmax_t{256} << 20;
nlohmann::json read_json_file(const std::string& path);

}  // namespace epsim
