#include "tools/version.h"

#include "epsim_version.h"  // generated into the build tree by tools/version.cmake

std::string epsim::cli::version() { return EPSIM_VERSION; }
