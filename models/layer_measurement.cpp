#include "models/layer_measurement.h"

#include "models/config.h"
#include "models/errors.h"
#include "models/limits.h"
#include "models/measured_fields.h"

namespace epsim {

bool is_layer_document(const nlohmann::json& doc) { 
  const auto it = doc.is_object() ? doc.find("schema") : doc.end();
  return doc.is_object() && it != doc.end() && it->is_string() && it->get<std::string>() == "epsim-layer/1";
}

namespace {

// An optional number >= 0 (`fallback` when absent).
double number_or(const nlohmann::json& j, const char* key, const std::string& where, double fallback) {
  return j.contains(key) ? measured_number(j, key, where, 0.0, false) : fallback;
}

MeasuredLayerOp read_op(const nlohmann::json& o, const std::string& w) {
  MeasuredLayerOp op;
  op.name = measured_string(o, "name", w);
  op.measured = Time::us(measured_number(o, "us", w, 0.0, false));
  op.fastest = Time::us(number_or(o, "us_min", w, 0.0));
  op.slowest = Time::us(number_or(o, "us_max", w, 0.0));
  op.kernels = static_cast<int>(measured_int_or(o, "kernels", w, 0, limits::kSteps, 1));
  op.flops = number_or(o, "flops", w, 0.0);
  op.bytes = number_or(o, "bytes", w, 0.0);
  op.precision = measured_string_or(o, "precision", w, "bf16");
  if (o.contains("shape")) {
    const auto& shape = measured_field(o, "shape", w);
    if (!shape.is_object()) throw InputError(w + ".shape = " + json_text(shape) + ": must be an object of sizes");
    for (auto it = shape.begin(); it != shape.end(); ++it)
      op.shape[it.key()] = measured_int(shape, it.key().c_str(), w + ".shape", 0, limits::kTokensPerGpu * limits::kExperts);
  }
  return op;
}

MeasuredLayerCase read_case(const nlohmann::json& c, const std::string& w) {
  MeasuredLayerCase k;
  k.label = measured_string(c, "label", w);
  k.model = measured_field(c, "model", w);
  if (!k.model.is_object()) throw InputError(w + ".model = " + json_text(k.model) + ": must be a JSON object (the case's model)");
  k.model_name = measured_string_or(k.model, "name", w + ".model", "");
  k.phase = measured_string(c, "phase", w);
  k.precision = measured_string(c, "precision", w);
  k.tokens = measured_int(c, "tokens", w, 1, limits::kTokensPerGpu);
  k.seq_len = measured_int_or(c, "seq_len", w, 0, limits::kTokensPerGpu, 0);
  k.batch = measured_int_or(c, "batch", w, 0, limits::kTokensPerGpu, 0);
  k.kv_len = measured_int_or(c, "kv_len", w, 0, limits::kKvLen, 0);
  const auto& check = measured_field(c, "check", w);
  const auto& pass = measured_field(check, "pass", w + ".check");
  if (!pass.is_boolean()) throw InputError(w + ".check.pass = " + json_text(pass) + ": must be true or false");
  k.passed = pass.get<bool>();
  const auto& layer_us = measured_field(c, "layer_us", w);
  k.layer = Time::us(measured_number(layer_us, "median", w + ".layer_us", 0.0, true));
  k.repetitions = static_cast<int>(measured_int_or(layer_us, "iters", w + ".layer_us", 0, 1'000'000'000, 0));
  k.ops_layer = Time::us(number_or(c, "ops_layer_us", w, 0.0));
  const auto& ops = measured_field(c, "ops", w);
  if (!ops.is_array()) throw InputError(w + ".ops = " + json_text(ops) + ": must be an array of ops");
  for (std::size_t i = 0; i < ops.size(); ++i) k.ops.push_back(read_op(ops[i], w + ".ops[" + std::to_string(i) + "]"));
  return k;
}

}  // namespace

// Every field read is required (or defaulted), typed and range-checked (models/measured_fields.h):
// a bad one is named by file and JSON path, value and rule.
MeasuredLayerFile read_layer_file(const std::string& path) {
  const nlohmann::json doc = read_json_file(path);
  if (!is_layer_document(doc))
    throw InputError(path + ": not an epsim-layer/1 result file (missing \"schema\": \"epsim-layer/1\")");
  MeasuredLayerFile f;
  f.path = path;
  f.device = measured_string(measured_field(doc, "device", path), "name", path + ".device");
  f.card = measured_string_or(doc, "card", path, "");
  f.date = measured_string_or(doc, "date", path, "");
  f.git_commit = measured_string_or(doc, "git_commit", path, "");
  f.kernel_gap_us = number_or(doc, "kernel_gap_us", path, 0.0);
  const auto& cases = measured_field(doc, "cases", path);
  if (!cases.is_array() || cases.empty()) throw InputError(path + ".cases = " + json_text(cases) + ": must be a non-empty array of cases");
  for (std::size_t i = 0; i < cases.size(); ++i) f.cases.push_back(read_case(cases[i], path + ":cases[" + std::to_string(i) + "]"));
  return f;
}

}  // namespace epsim
