// Output paths checked before any work, so that a bad --out, --csv, --json or -o stops the command
// at once (exit status 2) instead of after the whole simulation.
#pragma once

#include <string>

namespace epsim::cli {

// Creates `dir` (and its parents) and writes and removes a probe file in it. Throws InputError
// naming `option` and the path ("--out /proc/x: cannot create the directory: ...").
void require_writable_dir(const std::string& option, const std::string& dir);

// Checks that `file` can be written: not a directory, and opening it for appending works (an
// existing file is left as it was; a new one is removed again). Throws InputError like the above.
void require_writable_file(const std::string& option, const std::string& file);

}  // namespace epsim::cli
