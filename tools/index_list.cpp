#include "tools/index_list.h"

#include <algorithm>
#include <charconv>
#include <sstream>

#include <fmt/format.h>

#include "models/errors.h"

namespace epsim::cli {

namespace {
bool to_int(const std::string& s, int& v) {
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() && end == s.data() + s.size() && !s.empty();
}
}  // namespace

std::vector<int> parse_index_list(const std::string& option, const std::string& text, int limit, const std::string& what) {
  auto fail = [&](const std::string& rule) { throw ConfigError(option, "\"" + text + "\"", rule); };
  std::vector<int> out;
  std::stringstream ss(text);
  for (std::string item; std::getline(ss, item, ',');) {
    const auto dash = item.find('-');
    int a = 0, b = 0;
    const bool ok = dash == std::string::npos ? to_int(item, a) && to_int(item, b)
                                               : to_int(item.substr(0, dash), a) && to_int(item.substr(dash + 1), b);
    if (!ok || a > b) fail("must be a list of numbers and ranges, e.g. 0-3,7");
    if (b >= limit) fail(fmt::format("{} {} does not exist (0-{})", what, b, limit - 1));
    for (int v = a; v <= b; ++v) out.push_back(v);
  }
  if (out.empty()) fail("must name at least one " + what);
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

}  // namespace epsim::cli
