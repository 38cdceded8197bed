#include <fmt/format.h>

#include "sim/scenario.h"
#include "sim/serving/serving_spec.h"
#include "tools/commands.h"
#include "tools/explore/search_spec.h"
#include "tools/explore/sweep_spec.h"

namespace epsim::cli {

namespace {
// A '|' inside a markdown table cell must be escaped.
std::string cell(const std::string& s) {
  std::string out;
  for (char ch : s) {
    if (ch == '|') out += '\\';
    out += ch;
  }
  return out;
}
}  // namespace

int keys_command(const Args& args) {
  const bool sweep = args.size() == 1 && args[0] == "--sweep";
  const bool search = args.size() == 1 && args[0] == "--search";
  if (!args.empty() && !sweep && !search) throw UsageError("keys takes no arguments but --sweep or --search");
  std::vector<const Schema*> schemas = sweep ? explore::SweepSpec::schemas() : search ? explore::SearchSpec::schemas() : Scenario::all_schemas();
  if (!sweep && !search)
    for (const Schema* s : serving::ServingSpec::schemas()) schemas.push_back(s);
  for (const Schema* s : schemas) {
    fmt::print("\n### {}\n\n| key | type | default | unit | meaning |\n|---|---|---|---|---|\n",
               s->section.empty() ? "top level" : s->section);
    for (const KeyDoc& k : s->keys) {
      const std::string path = s->section.empty() ? k.key : s->section + "." + k.key;
      const std::string def = k.default_value.is_null() ? "(see meaning)" : k.default_value.dump();
      fmt::print("| `{}` | {} | `{}` | {} | {} |\n", path, k.type, cell(def), k.unit, cell(k.meaning));
    }
  }
  return 0;
}

}  // namespace epsim::cli
