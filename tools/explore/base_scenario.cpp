#include "tools/explore/base_scenario.h"

#include "sim/scenario.h"

namespace epsim::explore {

void check_scenario_key(const ConfigObject& c, const std::string& field, const std::string& key) {
  for (const Schema* s : Scenario::all_schemas())
    for (const KeyDoc& k : s->keys)
      if ((s->section.empty() ? k.key : s->section + "." + k.key) == key) return;
  c.fail(field, "not a scenario key (`epsim keys` lists them)");
}

nlohmann::json base_scenario(const ConfigObject& c) {
  nlohmann::json doc;
  const nlohmann::json& base = c.raw("base");
  if (base.is_string()) doc = read_scenario_file(base.get<std::string>());
  else if (base.is_object()) doc = base;
  else c.fail("base", "must be a scenario file name or a scenario object");
  const nlohmann::json& set = c.raw("set");
  if (!set.is_object()) c.fail("set", "must be an object of {\"key.path\": value}");
  for (auto it = set.begin(); it != set.end(); ++it) {
    check_scenario_key(c, "set", it.key());
    apply_override(doc, it.key() + "=" + it.value().dump());
  }
  return doc;
}

}  // namespace epsim::explore
