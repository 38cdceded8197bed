#include "models/bench_results.h"

#include "models/config.h"
#include "models/errors.h"
#include "models/limits.h"
#include "models/measured_fields.h"

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

bool is_bench_document(const nlohmann::json& doc) {
  return doc.is_object() && doc.contains("schema") && doc["schema"] == "epsim-bench/1";  // any type compares
}

BenchFile read_bench_file(const std::string& path) { return parse_bench_file(read_json_file(path), path); }

BenchFile parse_bench_file(const nlohmann::json& doc, const std::string& path) {
  if (!is_bench_document(doc))
    throw InputError(path + ": not an epsim-bench/1 result file (missing \"schema\": \"epsim-bench/1\")");
  BenchFile f;
  f.path = path;
  const auto& dev = measured_field(doc, "device", path);
  f.device = measured_string(dev, "name", path + ".device");
  f.device_count = static_cast<int>(measured_int_or(dev, "count", path + ".device", 1, limits::kGpus, 1));
  f.sm_count = static_cast<int>(measured_int_or(dev, "sm_count", path + ".device", 0, limits::kSms, 0));
  f.date = measured_string_or(doc, "date", path, "");
  f.git_commit = measured_string_or(doc, "git_commit", path, "");
  if (doc.contains("libraries")) {
    const auto& libs = doc.at("libraries");
    if (!libs.is_object()) throw InputError(path + ".libraries = " + json_text(libs) + ": must be an object");
    for (const auto& [k, v] : libs.items())
      f.libraries += (f.libraries.empty() ? "" : ", ") + k + " " + (v.is_string() ? v.get<std::string>() : v.dump());
  }
  const auto& results = measured_field(doc, "results", path);
  if (!results.is_array()) throw InputError(path + ".results = " + json_text(results) + ": must be an array of rows");
  for (std::size_t i = 0; i < results.size(); ++i) {
    const nlohmann::json& r = results[i];
    const std::string where = path + ":results[" + std::to_string(i) + "]";
    BenchRow row;
    row.kernel = measured_string(r, "kernel", where);
    row.variant = measured_string(r, "variant", where);
    const auto& shape = measured_field(r, "shape", where);
    if (!shape.is_object()) throw InputError(where + ".shape = " + json_text(shape) + ": must be an object of integers");
    for (const auto& [k, v] : shape.items()) row.shape[k] = measured_int(shape, k.c_str(), where + ".shape", 0, kMaxShapeValue);
    // Times and work must be positive and finite: a zero time would fit an infinite rate.
    row.median = Time::us(measured_number(r, "us_median", where, 0.0, true));
    row.flops = r.contains("flops") ? measured_number(r, "flops", where, 0.0, false) : 0.0;
    row.bytes = r.contains("bytes") ? measured_number(r, "bytes", where, 0.0, false) : 0.0;
    if (r.contains("check")) {
      const auto& check = r.at("check");
      if (!check.is_object() || (check.contains("pass") && !check.at("pass").is_boolean()))
        throw InputError(where + ".check = " + json_text(check) + ": must be an object with a boolean pass");
      row.passed = check.value("pass", true);
    }
    row.source = path;
    row.where = where;
    f.rows.push_back(std::move(row));
  }
  return f;
}

}  // namespace epsim
