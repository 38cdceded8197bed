#pragma once
// The "base" and "set" keys every exploration specification (sweep, search) shares: a scenario file
// name or object, then {"key.path": value} overrides of declared scenario keys.
#include <string>

#include <nlohmann/json.hpp>

#include "models/config.h"

namespace epsim::explore {

// Fails on `field` of `c` unless `key` is a declared scenario key ("section.key" or a top-level key).
void check_scenario_key(const ConfigObject& c, const std::string& field, const std::string& key);

// The base scenario of `c` ("base": a file, whose paths resolve against its folder, or an object)
// with its "set" overrides applied.
nlohmann::json base_scenario(const ConfigObject& c);

}  // namespace epsim::explore
