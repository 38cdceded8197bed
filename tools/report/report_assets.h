// The HTML report's script and style sheet (tools/report/report.js, report.css), embedded at build
// time by tools/report/embed.cmake.
#pragma once

namespace epsim::report {

extern const char* const kScript;
extern const char* const kStyle;

}  // namespace epsim::report
