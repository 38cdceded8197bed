# Precompiled headers (issue 20: a first `tools/epsim run` within 3 minutes on 2 cores).
#
# Most of the project's translation units include nlohmann/json.hpp (through models/config.h and the
# *_spec.h headers), and parsing it with the standard library it pulls costs about 1.5 CPU-seconds per
# TU at -O3, before any code of ours is compiled: about 40% of a clean build. Each library and binary
# below therefore precompiles these third-party and standard headers once (one .gch per target, as
# the targets' compile definitions differ) and every TU of the target includes it first (CMake adds
# `-include cmake_pch.hxx`). Only headers that change with the Debian packages are listed, never the
# project's own, so editing a project header recompiles what it did before and nothing more.
#
# EPSIM_PCH=OFF builds without them, so each file must still include what it uses (a build with
# EPSIM_PCH=OFF shows a missing include; CI builds with them). Measured on the epsim target (README.md
# "Quick start"): 348 CPU-seconds without, 300 with.
option(EPSIM_PCH "Precompile the heavy third-party and standard headers per target" ON)

set(EPSIM_PCH_HEADERS
  <algorithm> <cmath> <cstdint> <functional> <map> <memory> <optional> <string> <string_view>
  <unordered_map> <utility> <vector>
  <nlohmann/json.hpp>)

# epsim_precompile_headers(target [EXTRA_HEADER...]): the list above plus EXTRA_HEADER (e.g. <fmt/format.h>
# for targets that link fmt::fmt).
function(epsim_precompile_headers target)
  if(EPSIM_PCH)
    target_precompile_headers(${target} PRIVATE ${EPSIM_PCH_HEADERS} ${ARGN})
  endif()
endfunction()

# ccache and precompiled headers: ccache caches a TU compiled with a .gch only with
# sloppiness=pch_defines,time_macros (it cannot see the macros and __TIME__ inside the .gch), and
# otherwise compiles it every time ("can't use precompiled header"). When the launcher is ccache,
# it is run through env with that sloppiness, so the developers' configure line
# (-DCMAKE_CXX_COMPILER_LAUNCHER=ccache, HELPERS.md, tools/epsim, .ci/sanitize) keeps caching.
if(EPSIM_PCH AND CMAKE_CXX_COMPILER_LAUNCHER MATCHES "ccache")
  find_program(EPSIM_ENV_PROGRAM env REQUIRED)
  set(CMAKE_CXX_COMPILER_LAUNCHER ${EPSIM_ENV_PROGRAM}
      CCACHE_SLOPPINESS=pch_defines,time_macros
      ${CMAKE_CXX_COMPILER_LAUNCHER})
endif()
