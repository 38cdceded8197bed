#include "models/strict_json.h"

#include <cmath>
#include <vector>

#include <fmt/format.h>

#include "models/config.h"
#include "models/errors.h"

namespace epsim {

namespace {

using json = nlohmann::json;

// Throws InputError when arrays and objects nest deeper than kMaxJsonDepth, naming the line and
// column of the bracket that goes too deep. Strings are skipped (brackets inside them do not count).
void check_depth(std::string_view text, const std::string& source) {
  int depth = 0, line = 1, column = 0;
  bool in_string = false, escaped = false;
  for (const char ch : text) {
    ++column;
    if (ch == '\n') {
      ++line;
      column = 0;
    }
    if (in_string) {
      if (escaped) escaped = false;
      else if (ch == '\\') escaped = true;
      else if (ch == '"') in_string = false;
      continue;
    }
    if (ch == '"') {
      in_string = true;
    } else if (ch == '[' || ch == '{') {
      if (++depth > kMaxJsonDepth)
        throw InputError(source + ":" + std::to_string(line) + ":" + std::to_string(column) + ": JSON nested deeper than " +
                         std::to_string(kMaxJsonDepth) + " levels of arrays and objects");
    } else if (ch == ']' || ch == '}') {
      --depth;
    }
  }
}

// Builds the document like nlohmann's DOM parser, refusing duplicate keys and out-of-range numbers.
// Containers live on an explicit stack (no recursion); keys_ holds each open object's current key.
class StrictBuilder : public nlohmann::json_sax<json> {
 public:
  explicit StrictBuilder(std::string source) : source_(std::move(source)) {}

  bool null() override { return put(json(nullptr)); }
  bool boolean(bool v) override { return put(json(v)); }
  bool number_integer(number_integer_t v) override { return put(json(v)); }
  bool number_unsigned(number_unsigned_t v) override { return put(json(v)); }
  bool number_float(number_float_t v, const string_t& text) override {
    // nlohmann reads an integer literal past 64 bits as a float: refuse it rather than round it.
    if (text.find_first_of(".eE") == string_t::npos) fail(text, "integer out of range (beyond 64 bits)");
    if (!std::isfinite(v)) fail(text, "number out of range (not a finite double)");  // not reached with nlohmann 3.11
    return put(json(v));
  }
  bool string(string_t& v) override { return put(json(std::move(v))); }
  bool binary(binary_t& v) override { return put(json::binary(std::move(v))); }
  bool start_object(std::size_t) override { return open(json::object()); }
  bool start_array(std::size_t) override { return open(json::array()); }
  bool key(string_t& k) override {
    keys_.back() = k;
    if (stack_.back()->contains(k)) fail(json_text((*stack_.back())[k]), "duplicate key (each key may appear once in an object)");
    return true;
  }
  bool end_object() override { return close(); }
  bool end_array() override { return close(); }
  bool parse_error(std::size_t, const std::string& token, const nlohmann::detail::exception& ex) override {
    // nlohmann refuses 1e999 itself (out_of_range.406): a value out of range, not a syntax error.
    if (ex.id == 406) fail(token, "number out of range (not a finite double)");
    error_ = ex.what();
    return false;
  }

  json& result() { return root_; }
  const std::string& error() const { return error_; }

 private:
  // The JSON path of the value being read ("layers[2].load[7]"): inside an array, the element being
  // built (the last one of an enclosing level, the next one at the innermost level).
  std::string json_path() const {
    std::string p;
    for (std::size_t i = 0; i < stack_.size(); ++i) {
      if (stack_[i]->is_array()) {
        const std::size_t n = stack_[i]->size();
        p += fmt::format("[{}]", i + 1 < stack_.size() ? n - 1 : n);
      } else {
        if (!p.empty()) p += '.';
        p += keys_[i];
      }
    }
    return p;
  }
  [[noreturn]] void fail(const std::string& value, const std::string& rule) const {
    const std::string p = json_path();
    throw ConfigError(p.empty() ? source_ : source_ + ":" + p, value, rule);
  }

  // Places `v` in the innermost open container (or as the root) and returns where it went.
  json* place(json&& v) {
    if (stack_.empty()) {
      root_ = std::move(v);
      return &root_;
    }
    json& top = *stack_.back();
    if (top.is_array()) {
      top.push_back(std::move(v));
      return &top.back();
    }
    json& slot = top[keys_.back()];
    slot = std::move(v);
    return &slot;
  }
  bool put(json&& v) {
    place(std::move(v));
    return true;
  }
  bool open(json&& container) {
    stack_.push_back(place(std::move(container)));
    keys_.emplace_back();
    return true;
  }
  bool close() {
    stack_.pop_back();
    keys_.pop_back();
    return true;
  }

  std::string source_;
  json root_;
  std::vector<json*> stack_;  // open containers, outermost first
  std::vector<std::string> keys_;
  std::string error_;
};

std::optional<json> parse(std::string_view text, const std::string& source, bool syntax_is_text) {
  check_depth(text, source);
  StrictBuilder b(source);
  if (json::sax_parse(text.begin(), text.end(), &b, nlohmann::detail::input_format_t::json, true, false))
    return std::move(b.result());
  if (syntax_is_text) return std::nullopt;
  throw InputError(source + ": malformed JSON: " + b.error());
}

}  // namespace

json parse_json_strict(std::string_view text, const std::string& source) { return *parse(text, source, false); }

std::optional<json> parse_json_strict_or_text(std::string_view text, const std::string& source) {
  return parse(text, source, true);
}

}  // namespace epsim
