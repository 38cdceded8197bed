#include "tools/report/report_data.h"

#include <filesystem>
#include <algorithm>
#include <fstream>
#include <sstream>

#include "models/config.h"
#include "models/errors.h"
#include "tools/explore/headline_metrics.h"

namespace epsim::report {

namespace fs = std::filesystem;

nlohmann::json sweep_data(const std::string& path, const std::string& name) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path + ": cannot open file");
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  nlohmann::json points = nlohmann::json::array();
  std::vector<std::string> axes;
  std::size_t start = 0, line = 0;
  while (start < text.size()) {
    const std::size_t end = text.find('\n', start);
    if (end == std::string::npos) break;  // a torn last line
    ++line;
    nlohmann::json r = nlohmann::json::parse(text.substr(start, end - start), nullptr, false);
    if (r.is_discarded() || !r.is_object() || !r.contains("id") || !r.contains("axes"))
      throw InputError(path + ":" + std::to_string(line) + ": not a sweep record (epsim sweep's results.jsonl)");
    for (auto it = r["axes"].begin(); it != r["axes"].end(); ++it)
      if (std::find(axes.begin(), axes.end(), it.key()) == axes.end()) axes.push_back(it.key());
    r.erase("scenario");  // the resolved scenarios are not drawn: keep the page small
    points.push_back(std::move(r));
    start = end + 1;
  }
  if (points.empty()) throw InputError(path + ": no sweep records");
  // The spec's axis order and name, when the sweep wrote them beside its results.
  std::string title = name;
  const fs::path about = fs::path(path).parent_path() / "sweep.json";
  std::error_code ec;
  if (fs::exists(about, ec)) {
    const nlohmann::json a = read_json_file(about.string());
    std::vector<std::string> ordered = a.value("axes", std::vector<std::string>{});
    for (const auto& k : axes)
      if (std::find(ordered.begin(), ordered.end(), k) == ordered.end()) ordered.push_back(k);
    axes = ordered;
    if (!a.value("name", std::string()).empty()) title = a["name"].get<std::string>();
  }
  std::sort(points.begin(), points.end(), [](const nlohmann::json& a, const nlohmann::json& b) {
    return a.value("index", 0) < b.value("index", 0);
  });
  return {{"kind", "sweep"},
          {"sweep", {{"name", title}, {"source", path}, {"axes", axes}, {"points", std::move(points)},
                     {"metrics", explore::headline_metric_names()}, {"metric_info", explore::headline_metric_info()}}}};
}

nlohmann::json load_report_data(const std::string& input) {
  const fs::path p(input);
  std::error_code ec;
  if (fs::is_directory(p, ec)) {
    for (const char* f : {"results.jsonl", "compare.json", "report.json"})
      if (fs::exists(p / f, ec)) return load_report_data((p / f).string());
    throw InputError(input + ": holds no results.jsonl (epsim sweep), compare.json (epsim compare) or report.json (epsim run)");
  }
  if (!fs::exists(p, ec)) throw InputError(input + ": cannot open file");
  if (p.extension() == ".jsonl") {
    const fs::path dir = p.parent_path();
    return sweep_data(input, dir.empty() ? p.stem().string() : dir.filename().string());
  }
  const nlohmann::json j = read_json_file(input);
  if (j.is_object() && j.contains("strategies")) return {{"kind", "compare"}, {"compare", j}};
  if (j.is_object() && j.contains("step_time_ms") && j.contains("layers")) {
    const fs::path detail = p.parent_path() / "detail.json";
    return {{"kind", "run"}, {"report", j}, {"detail", fs::exists(detail, ec) ? read_json_file(detail.string()) : nlohmann::json()}};
  }
  throw InputError(input + ": not a report.json, compare.json or results.jsonl of epsim");
}

}  // namespace epsim::report
