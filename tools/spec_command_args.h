#pragma once
// The command line shared by the commands that read a specification file (epsim sweep, epsim search):
// SPEC.json [--out DIR] [-j N]. Each command checks -j against its own range.
#include <string>

#include "tools/commands.h"

namespace epsim::cli {

struct SpecCommandArgs {
  std::string spec;
  std::string out;  // defaults to out/<spec file stem>
  int jobs = 0;     // worker threads; 0: all cores
};

// Throws UsageError naming `command` when SPEC is missing.
SpecCommandArgs parse_spec_command(const Args& args, const std::string& command);

}  // namespace epsim::cli
