// epsim's HTML report: one self-contained file (its script, style and data inline; it fetches
// nothing: a Content-Security-Policy forbids it) drawing the charts of a run, a compare or a sweep
// (tools/report/report.js) from the data report_data.h gathers.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace epsim::report {

// `data`: {"kind": "run" | "compare" | "sweep", ...} (report_data.h).
std::string html_report(const nlohmann::json& data, const std::string& title);

}  // namespace epsim::report
