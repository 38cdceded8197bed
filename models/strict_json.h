// Strict reading of JSON text: every document epsim reads (scenarios, --set values, Hugging Face
// configs, routing traces, placement and load files, calibration profiles, measured kernel results)
// goes through here.
//
// Refused, before or while parsing: nesting deeper than kMaxJsonDepth (checked by a linear scan
// before the parser sees the text, so no deep document ever reaches recursive code); a key given
// twice in one object (nlohmann's DOM parser would keep the last silently); numbers that do not fit
// (a float literal beyond the double range such as 1e999, an integer literal beyond 64 bits).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace epsim {

// Deepest nesting of arrays and objects accepted. A scenario nests 3 deep, a routing trace with
// per-micro-batch source rows 6; 64 leaves room and keeps every recursive walk (dump, copy) shallow.
inline constexpr int kMaxJsonDepth = 64;

// Parses `text`. `source` names it in messages ("scenarios/seed.json", "--set model"). Throws
// InputError for malformed text or nesting too deep (with line and column) and ConfigError for a
// duplicate key or a number out of range (JSON path, the value as written, the rule).
nlohmann::json parse_json_strict(std::string_view text, const std::string& source);

// As parse_json_strict, but returns nullopt when `text` is not JSON at all (a syntax error), so a
// caller can take it as a bare string (--set key=value). Range, duplicate and depth errors throw.
std::optional<nlohmann::json> parse_json_strict_or_text(std::string_view text, const std::string& source);

}  // namespace epsim
