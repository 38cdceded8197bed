#include "models/layer_measurement.h"

#include "models/config.h"
#include "models/errors.h"

namespace epsim {

bool is_layer_document(const nlohmann::json& doc) { return doc.is_object() && doc.value("schema", "") == "epsim-layer/1"; }

MeasuredLayerFile read_layer_file(const std::string& path) {
  const nlohmann::json doc = read_json_file(path);
  if (!is_layer_document(doc))
    throw InputError(path + ": not an epsim-layer/1 result file (missing \"schema\": \"epsim-layer/1\")");
  MeasuredLayerFile f;
  f.path = path;
  std::string where = "device";
  try {
    f.device = doc.at("device").at("name").get<std::string>();
    f.card = doc.value("card", "");
    f.date = doc.value("date", "");
    f.git_commit = doc.value("git_commit", "");
    f.kernel_gap_us = doc.value("kernel_gap_us", 0.0);
    int i = 0;
    for (const auto& c : doc.at("cases")) {
      where = "cases[" + std::to_string(i++) + "]";
      MeasuredLayerCase k;
      k.label = c.at("label").get<std::string>();
      k.model = c.at("model");
      k.model_name = k.model.value("name", "");
      k.phase = c.at("phase").get<std::string>();
      k.precision = c.at("precision").get<std::string>();
      k.tokens = c.at("tokens").get<std::int64_t>();
      k.seq_len = c.value("seq_len", std::int64_t{0});
      k.batch = c.value("batch", std::int64_t{0});
      k.kv_len = c.value("kv_len", std::int64_t{0});
      k.passed = c.at("check").at("pass").get<bool>();
      k.layer = Time::us(c.at("layer_us").at("median").get<double>());
      k.repetitions = c.at("layer_us").value("iters", 0);
      k.ops_layer = Time::us(c.value("ops_layer_us", 0.0));
      for (const auto& o : c.at("ops")) {
        MeasuredLayerOp op;
        op.name = o.at("name").get<std::string>();
        op.measured = Time::us(o.at("us").get<double>());
        op.fastest = Time::us(o.value("us_min", 0.0));
        op.slowest = Time::us(o.value("us_max", 0.0));
        op.kernels = o.value("kernels", 1);
        op.flops = o.value("flops", 0.0);
        op.bytes = o.value("bytes", 0.0);
        op.precision = o.value("precision", "bf16");
        op.shape = o.value("shape", std::map<std::string, std::int64_t>{});
        k.ops.push_back(std::move(op));
      }
      f.cases.push_back(std::move(k));
    }
  } catch (const nlohmann::json::exception& e) {
    throw InputError(path + ": " + where + ": malformed epsim-layer/1 field: " + e.what());
  }
  return f;
}

}  // namespace epsim
