#include "sim/ep_layer_validation.h"

#include <algorithm>
#include <cmath>
#include <map>

#include <fmt/format.h>

#include "models/config.h"
#include "models/errors.h"
#include "models/limits.h"
#include "models/measured_fields.h"
#include "sim/layer_validation.h"
#include "sim/simulation.h"

namespace epsim {

namespace {

const nlohmann::json& need(const nlohmann::json& j, const char* key, const std::string& where) {
  return measured_field(j, key, where);
}

// Sizes of a measured case: at most the scenario limits (the scenario checks them again).
std::int64_t need_int(const nlohmann::json& j, const char* key, const std::string& where) {
  return measured_int(j, key, where, 0, limits::kTokensPerGpu);
}

// The measurement's phase names and the simulator's phases they correspond to.
struct PhaseMap {
  const char* measured;
  Phase simulated;
};
constexpr PhaseMap kPhases[] = {
    {"gate", Phase::Gate},           {"permute", Phase::Permute},   {"dispatch_meta", Phase::CountExchange},
    {"dispatch_data", Phase::Dispatch}, {"experts", Phase::Experts}, {"combine", Phase::Combine},
    {"unpermute", Phase::Unpermute},
};

// The ops of a decoder layer's attention block and of the MoE block's norm and residual, compared
// one by one (the measurement's per-op phases of `--attention` cases; kernels/ep_attention.h).
// Apart from them the simulator counts ffn_norm under the gate and ffn_residual under unpermute.
constexpr const char* kAttentionOps[] = {"attn_norm", "q_proj", "q_a_norm", "q_b_proj", "kv_proj", "kv_a_norm", "kv_b_proj",
                                         "rope", "attn_core", "o_proj", "attn_residual", "ffn_norm", "ffn_residual"};
bool is_attention_op(const std::string& op) {
  return std::find(std::begin(kAttentionOps), std::end(kAttentionOps), op) != std::end(kAttentionOps);
}

// The case's attention block (options.attention, absent or "none": the MoE block alone) in the
// scenario document: the model's attention, the sequence length, bf16 everywhere, and under dual
// micro-batches the order the program ran.
void add_attention(nlohmann::json& doc, const nlohmann::json& o, const std::string& ow) {
  const std::string kind = measured_string_or(o, "attention", ow, "none");
  if (kind == "none") return;
  nlohmann::json& model = doc["model"];
  model["heads"] = need_int(o, "heads", ow);
  if (!set_measured_attention(model, kind, [&](const char* key) { return need_int(o, key, ow); }, ow))
    throw InputError(ow + ".attention = \"" + kind + "\": must be none, mha, gqa or mla");
  if (kind == "mla") {
    // the measured gate is a plain top-k over all experts; the preset's MTP module is not run
    model["groups"] = 1;
    model["topk_groups"] = 1;
    model["mtp_layers"] = 0;
  }
  doc["precision"] = measured_precision("bf16", ow);
  doc["workload"]["seq_len"] = need_int(o, "seq_len", ow);
  const std::string order = measured_string_or(o, "dual_order", ow, "blocks");
  if (order != "blocks" && order != "interleaved" && order != "none")
    throw InputError(ow + ".dual_order = \"" + order + "\": must be blocks, interleaved or none");
  if (doc["schedule"]["overlap"] == "dual-microbatch" && order == "interleaved") doc["schedule"]["overlap"] = "dual-interleaved";  // scenarios/schedules/dual-interleaved.json
}

}  // namespace

ErrorSummary FileValidation::summary() const {
  std::vector<double> e;
  for (const auto& c : cases) e.push_back(c.error_pct());
  return summarize_errors(e);
}

double FileValidation::median_abs_error_pct() const { return summary().median_abs_pct; }
double FileValidation::max_abs_error_pct() const { return summary().max_abs_pct; }
bool FileValidation::meets_target() const { return summary().meets_target(); }

std::string ep_layer_gpu_preset(const std::string& device_name) {
  return device_name.find("H100") != std::string::npos ? "h100-sxm" : "h200";
}

Scenario ep_layer_scenario(const nlohmann::json& measured_case, const std::string& where, const std::vector<std::string>& sets,
                           const std::string& gpu_preset) {
  const std::string ow = where + ".options";
  const auto& o = need(measured_case, "options", where);
  const std::int64_t gpus = need_int(o, "gpus", ow);
  const std::int64_t experts = need_int(o, "experts", ow);
  const std::int64_t layers = need_int(o, "layers", ow);
  const std::string dtype = measured_string(o, "dtype", ow);
  if (dtype != "bf16") throw InputError(ow + ".dtype = \"" + dtype + "\": only bf16 layers can be simulated");
  const std::string overlap = measured_string(o, "overlap", ow);
  if (overlap != "serial" && overlap != "dual")
    throw InputError(ow + ".overlap = \"" + overlap + "\": must be serial or dual");
  const std::string dispatch = measured_string(o, "dispatch", ow);
  if (dispatch != "nccl" && dispatch != "peer")
    throw InputError(ow + ".dispatch = \"" + dispatch + "\": must be nccl or peer");
  if (gpus < 1 || experts < 1 || layers < 1) throw InputError(ow + ": gpus, experts and layers must be >= 1");
  nlohmann::json doc = {
      {"name", "ep-layer " + where},
      {"model", {{"layers", layers}, {"dense_layers", 0}, {"hidden", need_int(o, "hidden", ow)},
                 {"expert_intermediate", need_int(o, "inter", ow)}, {"routed_experts", experts},
                 {"shared_experts", 0}, {"top_k", need_int(o, "topk", ow)}, {"attention", "none"}, {"vocab", 0}}},
      {"gpu", {{"preset", gpu_preset}}},
      {"cluster", {{"nodes", 1}, {"gpus_per_node", gpus}}},
      {"workload", {{"mode", "prefill"}, {"tokens_per_gpu", need_int(o, "tokens_per_gpu", ow)}}},
      {"network", {{"model", "analytical"}, {"scheme", "per-token"}, {"dispatch_impl", dispatch}}},
      {"schedule", {{"overlap", overlap == "dual" ? "dual-microbatch" : "serial"}, {"chunks", need_int(o, "chunks", ow)}}},
      {"cost_model", {{"calibration", "measured"}, {"expert_gemms", "per-expert"}}},
  };
  add_attention(doc, o, ow);
  for (const auto& a : sets) apply_override(doc, a);
  Scenario s;
  try {
    s = Scenario::from_json(doc);
  } catch (const ConfigError& e) {
    throw InputError(where + ": the case makes an invalid scenario: " + e.what());
  }
  s.routing.distribution = "trace";
  s.routing.trace = where + ".trace";
  s.routing.trace_document = need(measured_case, "trace", where);
  // What each micro-batch routed (routing.per_microbatch[layer][micro-batch][source][expert]), so
  // a dual micro-batch case replays each half's own counts rather than half the layer's.
  if (measured_case.contains("routing") && measured_case["routing"].contains("per_microbatch")) {
    const auto& per_mb = measured_case["routing"]["per_microbatch"];
    auto& entries = s.routing.trace_document["layers"];
    if (per_mb.is_array() && per_mb.size() == entries.size())
      for (std::size_t l = 0; l < entries.size(); ++l) entries[l]["micro_batches"] = per_mb[l];
  }
  return s;
}

FileValidation validate_ep_layer_file(const std::string& path, const std::vector<std::string>& sets) {
  return validate_ep_layer(read_json_file(path), path, sets);
}

FileValidation validate_ep_layer(const nlohmann::json& doc, const std::string& file, const std::vector<std::string>& sets) {
  const std::string schema = measured_string(doc, "schema", file);
  if (schema != "epsim-ep-layer/1")
    throw InputError(file + ".schema = \"" + schema + "\": not a measured EP layer (want epsim-ep-layer/1)");
  FileValidation v;
  v.file = file;
  std::string gpu_preset = "h200";
  if (doc.contains("device")) {
    const std::string name = measured_string_or(doc["device"], "name", file + ".device", "?");
    v.device = name + " x" + std::to_string(measured_int_or(doc["device"], "count", file + ".device", 0, limits::kGpus, 0));
    gpu_preset = ep_layer_gpu_preset(name == "?" ? std::string() : name);
  }
  const auto& cases = need(doc, "cases", file);
  if (!cases.is_array() || cases.empty()) throw InputError(file + ".cases: must be a non-empty array");
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const std::string where = file + ":cases[" + std::to_string(i) + "]";
    const nlohmann::json& mc = cases[i];
    Simulation sim(ep_layer_scenario(mc, where, sets, gpu_preset));
    CaseComparison c;
    const auto& o = mc["options"];
    const std::string ow = where + ".options";
    const std::int64_t blocks = measured_int_or(o, "peer_blocks", ow, 0, limits::kSms, 0);
    const std::string attention = measured_string_or(o, "attention", ow, "none");
    c.label = fmt::format("{} {} {} {} c{} L{}{}{}", o["dispatch"].get<std::string>(), o["tokens_per_gpu"].get<std::int64_t>(),
                          measured_string_or(o, "skew", ow, "?"), o["overlap"].get<std::string>(), o["chunks"].get<std::int64_t>(),
                          o["layers"].get<std::int64_t>(), blocks > 0 ? fmt::format(" b{}", blocks) : "",
                          attention == "none" ? "" : fmt::format(" {}{}/{} s{}", attention, o["heads"].get<std::int64_t>(),
                                                                 o["kv_heads"].get<std::int64_t>(), o["seq_len"].get<std::int64_t>()));
    c.options = o;
    c.measured_us = measured_number(mc, "total_us", where, 0.0, true);  // > 0: the error is relative to it
    c.predicted_us = sim.run().step_time.to_us();
    // Per GPU, per phase (attention-block ops: per op): the sum of its instances; then the max over GPUs.
    std::map<Phase, std::vector<double>> per_gpu;
    std::map<std::string, std::vector<double>> per_gpu_op;
    const int gpus = sim.cluster().gpu_count();
    for (const auto& t : sim.graph().tasks()) {
      if (t.kind == TaskKind::Collective) continue;
      const std::string op = t.kind == TaskKind::Compute ? t.op.str() : std::string();
      auto& v2 = is_attention_op(op) ? per_gpu_op[op] : per_gpu[t.phase];
      v2.resize(static_cast<std::size_t>(gpus), 0.0);
      v2[static_cast<std::size_t>(t.gpu)] += (t.end - t.start).to_us();
    }
    const auto& measured = need(mc, "phases_us", where);
    for (const auto& pm : kPhases) {
      PhaseComparison p;
      p.phase = pm.measured;
      p.measured_us = measured_number(measured, pm.measured, where + ".phases_us", 0.0, false);  // 0: the phase did not run
      const auto it = per_gpu.find(pm.simulated);
      if (it != per_gpu.end()) p.predicted_us = *std::max_element(it->second.begin(), it->second.end());
      c.phases.push_back(p);
    }
    for (const char* op : kAttentionOps) {
      const bool ran = measured.contains(op), priced = per_gpu_op.count(op) > 0;
      if (!ran && !priced) continue;
      PhaseComparison p;
      p.phase = op;
      if (ran) p.measured_us = measured_number(measured, op, where + ".phases_us", 0.0, false);
      if (priced) p.predicted_us = *std::max_element(per_gpu_op[op].begin(), per_gpu_op[op].end());
      c.phases.push_back(p);
    }
    v.cases.push_back(std::move(c));
  }
  return v;
}

nlohmann::json to_json(const FileValidation& v) {
  nlohmann::json cases = nlohmann::json::array();
  for (const auto& c : v.cases) {
    nlohmann::json phases = nlohmann::json::object();
    for (const auto& p : c.phases)
      phases[p.phase] = {{"measured_us", p.measured_us}, {"predicted_us", p.predicted_us}, {"error_pct", p.error_pct()}};
    cases.push_back({{"case", c.label}, {"options", c.options}, {"measured_us", c.measured_us}, {"predicted_us", c.predicted_us},
                     {"error_pct", c.error_pct()}, {"phases", phases}});
  }
  return {{"file", v.file}, {"device", v.device}, {"cases", cases}, {"median_abs_error_pct", v.median_abs_error_pct()},
          {"max_abs_error_pct", v.max_abs_error_pct()}, {"meets_target", v.meets_target()}};
}

}  // namespace epsim
