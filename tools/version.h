// The version epsim was built from: `git describe --tags --always --dirty` at build time, or
// "unknown" when built outside a git checkout (tools/version.cmake writes it).
#pragma once

#include <string>

namespace epsim::cli {

std::string version();

}  // namespace epsim::cli
