#include "models/bench_results.h"

#include "models/config.h"
#include "models/errors.h"

namespace epsim {

std::int64_t BenchRow::at(const std::string& key) const {
  auto it = shape.find(key);
  if (it == shape.end()) throw InputError(source + ": " + kernel + "/" + variant + " row lacks shape." + key);
  return it->second;
}

std::string BenchRow::shape_text() const {
  std::string s;
  for (const auto& [k, v] : shape) s += (s.empty() ? "" : " ") + k + "=" + std::to_string(v);
  return s;
}

bool is_bench_document(const nlohmann::json& doc) { return doc.is_object() && doc.value("schema", "") == "epsim-bench/1"; }

BenchFile read_bench_file(const std::string& path) { return parse_bench_file(read_json_file(path), path); }

BenchFile parse_bench_file(const nlohmann::json& doc, const std::string& path) {
  if (!is_bench_document(doc))
    throw InputError(path + ": not an epsim-bench/1 result file (missing \"schema\": \"epsim-bench/1\")");
  BenchFile f;
  f.path = path;
  try {
    const auto& dev = doc.at("device");
    f.device = dev.at("name").get<std::string>();
    f.device_count = dev.value("count", 1);
    f.sm_count = dev.value("sm_count", 0);
    f.date = doc.value("date", "");
    f.git_commit = doc.value("git_commit", "");
    if (doc.contains("libraries"))
      for (const auto& [k, v] : doc.at("libraries").items())
        f.libraries += (f.libraries.empty() ? "" : ", ") + k + " " + (v.is_string() ? v.get<std::string>() : v.dump());
    for (const auto& r : doc.at("results")) {
      BenchRow row;
      row.kernel = r.at("kernel").get<std::string>();
      row.variant = r.at("variant").get<std::string>();
      for (const auto& [k, v] : r.at("shape").items()) row.shape[k] = v.get<std::int64_t>();
      row.median = Time::us(r.at("us_median").get<double>());
      row.flops = r.value("flops", 0.0);
      row.bytes = r.value("bytes", 0.0);
      row.passed = !r.contains("check") || r.at("check").value("pass", true);
      row.source = path;
      f.rows.push_back(std::move(row));
    }
  } catch (const nlohmann::json::exception& e) {
    throw InputError(path + ": malformed epsim-bench/1 result: " + e.what());
  }
  return f;
}

}  // namespace epsim
