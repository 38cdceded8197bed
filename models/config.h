// Strict, self-documenting reading of JSON configuration.
//
// Every key is declared once in a Schema (name, type, default, unit, meaning). A ConfigObject reads
// one JSON object against its schema: unknown keys, missing required keys, wrong types and values
// outside a rule throw ConfigError naming the full JSON path, the value and the rule. The same
// schemas print the key reference (`epsim keys`) that scenarios/README.md documents.
#pragma once

#include <cstdint>
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
  std::int64_t integer(std::string_view key, std::int64_t min_value) const;
  std::string choice(std::string_view key, const std::vector<std::string>& allowed) const;
  std::string string(std::string_view key) const;
  bool boolean(std::string_view key) const;
  // The raw value (default if absent) and its path, for sections that parse arrays themselves.
  const nlohmann::json& raw(std::string_view key) const;
  std::string path_of(std::string_view key) const;
  [[noreturn]] void fail(std::string_view key, const std::string& rule) const;

 private:
  const nlohmann::json& value(std::string_view key) const;
  const nlohmann::json& j_;
  std::string path_;
  const Schema& schema_;
};

// Applies `key.path=value` to a scenario document; value is parsed as JSON when it is valid JSON,
// else taken as a string. Intermediate objects are created.
void apply_override(nlohmann::json& doc, const std::string& assignment);

// Parses a JSON file; throws InputError naming the file and the parser's line and column.
nlohmann::json read_json_file(const std::string& path);

}  // namespace epsim
