#include "tools/report/html_report.h"

#include "tools/report/report_assets.h"

namespace epsim::report {

namespace {

std::string escape_html(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

// JSON inside <script>: "</" would end the element early.
std::string script_safe(const std::string& json) {
  std::string out;
  for (std::size_t i = 0; i < json.size(); ++i) {
    out += json[i];
    if (json[i] == '<' && i + 1 < json.size() && json[i + 1] == '/') out += "\\";
  }
  return out;
}

}  // namespace

std::string html_report(const nlohmann::json& data, const std::string& title) {
  std::string h;
  h += "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n";
  // Nothing may be fetched: every script, style and image is inline.
  h += "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; script-src 'unsafe-inline'; "
       "style-src 'unsafe-inline'; img-src data:\">\n";
  h += "<title>" + escape_html(title) + "</title>\n<style>\n" + kStyle + "</style>\n";
  // Any script error or blocked fetch is recorded on <html data-errors> (the browser test reads it).
  h += "<script>\n(function () {\n"
       "  function record(what) {\n"
       "    var e = document.documentElement, old = e.getAttribute('data-errors');\n"
       "    e.setAttribute('data-errors', (old ? old + ' | ' : '') + what);\n"
       "  }\n"
       "  window.addEventListener('error', function (ev) { record(ev.message || 'error'); });\n"
       "  document.addEventListener('securitypolicyviolation', function (ev) { record('blocked ' + ev.blockedURI); });\n"
       "  var original = console.error;\n"
       "  console.error = function () { record(Array.prototype.join.call(arguments, ' ')); original.apply(console, arguments); };\n"
       "})();\n</script>\n</head>\n<body>\n<div id=\"report\"></div>\n";
  h += "<script type=\"application/json\" id=\"epsim-data\">" + script_safe(data.dump()) + "</script>\n";
  h += "<script>\n" + std::string(kScript) + "</script>\n</body>\n</html>\n";
  return h;
}

}  // namespace epsim::report
