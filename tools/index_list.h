// "0-3,7,10-12" -> {0, 1, 2, 3, 7, 10, 11, 12}: the lists --trace-gpus and --trace-layers take.
#pragma once

#include <string>
#include <vector>

namespace epsim::cli {

// Sorted and without repeats; every entry in [0, limit). Throws ConfigError naming `option`, the
// text and the rule.
std::vector<int> parse_index_list(const std::string& option, const std::string& text, int limit, const std::string& what);

}  // namespace epsim::cli
