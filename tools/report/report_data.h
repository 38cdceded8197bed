// What `epsim report INPUT` draws, gathered from INPUT:
//   a directory with results.jsonl (epsim sweep), compare.json (epsim compare) or report.json
//   (epsim run; with detail.json beside it for the per-GPU charts), looked for in that order;
//   or one of those files itself.
// The result is the HTML report's data: {"kind": "sweep" | "compare" | "run", ...}.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace epsim::report {

// Throws InputError naming the path when nothing reportable is there or a file is not JSON.
nlohmann::json load_report_data(const std::string& input);

// A sweep's records (JSON lines; a last line without its newline, from a sweep still running or
// killed, is left out), as the report's sweep data. `name` labels it.
nlohmann::json sweep_data(const std::string& jsonl_path, const std::string& name);

}  // namespace epsim::report
