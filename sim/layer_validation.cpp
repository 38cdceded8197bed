#include "sim/layer_validation.h"

#include <algorithm>
#include <map>

#include "models/apportion.h"
#include "models/cost_model_spec.h"
#include "models/errors.h"
#include "models/op_pricing.h"
#include "sim/layer_listing.h"
#include "sim/scenario.h"

namespace epsim {

namespace {
std::int64_t need_int(const nlohmann::json& model, const char* key, const std::string& where) {
  auto it = model.find(key);
  if (it == model.end() || !it->is_number_integer()) throw InputError(where + ".model." + key + ": missing or not an integer");
  return it->get<std::int64_t>();
}

// The GPU preset and shipped profile of the device the file was measured on.
std::pair<std::string, std::string> gpu_of(const MeasuredLayerFile& f) {
  const bool h100 = f.device.find("H100") != std::string::npos, h200 = f.device.find("H200") != std::string::npos;
  if (!h100 && !h200) throw InputError(f.path + ": device \"" + f.device + "\": no GPU preset for it (H100, H200)");
  const std::string profile = h100 ? "h100-measured" : "h200-measured";
  const auto shipped = calibration_presets();
  const bool have = std::find(shipped.begin(), shipped.end(), profile) != shipped.end();
  return {h100 ? "h100-sxm" : "h200", have ? profile : ""};
}

}  // namespace

nlohmann::json measured_precision(const std::string& p, const std::string& where) {
  if (p != "bf16" && p != "fp8") throw InputError(where + ".precision = \"" + p + "\": must be bf16 or fp8");
  // The measured layer has no dispatch: its experts quantise their own rows (quant_act.expert_up).
  return {{"weights", p},         {"attention_proj", p}, {"attention_core", "bf16"}, {"routed_experts", p},
          {"shared_expert", p},   {"dense_mlp", p},      {"lm_head", "bf16"},        {"dispatch", "bf16"},
          {"combine", "bf16"},    {"kv_cache", "bf16"}};
}

bool set_measured_attention(nlohmann::json& model, const std::string& kind, const std::function<std::int64_t(const char*)>& dim,
                            const std::string& where) {
  if (kind == "mha" || kind == "gqa") {
    model["attention"] = "mha";
    model["head_dim"] = dim("head_dim");
    model["kv_heads"] = dim("kv_heads");
    return true;
  }
  if (kind != "mla") return false;
  // MLA's low-rank dimensions are the preset's (no model keys set them): the case must match it.
  const MoeModelSpec ds = MoeModelSpec::preset("deepseek-v3");
  for (const auto& [key, want] : {std::pair<const char*, int>{"q_lora_rank", ds.q_lora_rank}, {"kv_lora_rank", ds.kv_lora_rank},
                                  {"qk_nope_head_dim", ds.qk_nope_head_dim}, {"qk_rope_head_dim", ds.qk_rope_head_dim},
                                  {"v_head_dim", ds.v_head_dim}}) {
    const std::int64_t got = dim(key);
    if (got != want)
      throw InputError(where + "." + key + " = " + std::to_string(got) + ": only DeepSeek-V3's MLA (" + std::to_string(want) +
                       ") can be simulated");
  }
  model["preset"] = "deepseek-v3";
  model.erase("attention");
  return true;
}

ErrorSummary LayerFileValidation::summary() const {
  std::vector<double> e;
  for (const auto& c : cases) e.push_back(c.error_pct());
  return summarize_errors(e);
}

nlohmann::json layer_case_scenario(const MeasuredLayerCase& c, const MeasuredLayerFile& f, const std::vector<std::string>& sets) {
  const std::string where = f.path + ":" + c.label;
  const nlohmann::json& m = c.model;
  const std::string attention = m.value("attention", "");
  nlohmann::json model = {{"layers", 1},
                          {"dense_layers", 0},
                          {"vocab", 0},
                          {"hidden", need_int(m, "hidden", where)},
                          {"heads", need_int(m, "heads", where)},
                          {"routed_experts", need_int(m, "routed_experts", where)},
                          {"top_k", need_int(m, "top_k", where)},
                          {"expert_intermediate", need_int(m, "expert_intermediate", where)},
                          {"shared_experts", need_int(m, "shared_experts", where)}};
  if (!set_measured_attention(model, attention, [&](const char* key) { return need_int(m, key, where); }, where + ".model"))
    throw InputError(where + ".model.attention = \"" + attention + "\": must be mha, gqa or mla");
  nlohmann::json workload;
  if (c.phase == "decode") {
    workload = {{"mode", "decode"}, {"batch_per_gpu", c.batch}, {"kv_len", c.kv_len}};
  } else if (c.phase == "prefill" || c.phase == "train") {
    workload = {{"mode", c.phase == "train" ? "training" : "prefill"}, {"tokens_per_gpu", c.tokens}, {"seq_len", c.seq_len}};
  } else {
    throw InputError(where + ".phase = \"" + c.phase + "\": must be prefill, decode or train");
  }
  const auto [gpu, profile] = gpu_of(f);
  nlohmann::json doc = {{"name", c.label},
                        {"model", model},
                        {"precision", measured_precision(c.precision, where)},
                        {"gpu", {{"preset", gpu}}},
                        {"cluster", {{"nodes", 1}, {"gpus_per_node", 1}}},
                        {"workload", workload},
                        {"cost_model", {{"calibration", profile}, {"expert_gemms", "per-expert"}}}};
  for (const auto& s : sets) apply_override(doc, s);
  return doc;
}

LayerCaseComparison validate_layer_case(const MeasuredLayerCase& c, const MeasuredLayerFile& f, const std::vector<std::string>& sets) {
  const Scenario sc = Scenario::from_json(layer_case_scenario(c, f, sets));
  const auto cost = make_cost_model(sc.cost_model, sc.gpu);
  const LayerOps ops(sc.model, 1);
  const LayerProgram program(ops, sc.model.shared_experts);
  const std::int64_t tokens = sc.workload.tokens();
  const LayerShape shape = step_layer_shape(sc, tokens, 1);
  // The routed rows, tokens x top_k, over the case's local experts (an equal share each).
  const int local = static_cast<int>(std::max<std::int64_t>(1, c.model.value("local_experts", std::int64_t{1})));
  const std::int64_t rows = tokens * sc.model.top_k;
  std::vector<std::int64_t> per_expert(static_cast<std::size_t>(local));
  for (int j = 0; j < local; ++j) per_expert[static_cast<std::size_t>(j)] = equal_share(rows, j, local);

  std::map<std::string, double> predicted;
  std::vector<std::string> order;
  auto add = [&](const PricedOp& p) {
    const std::string n = p.op.name.str();
    if (!predicted.count(n)) order.push_back(n);
    predicted[n] += p.time.to_us();
  };
  std::vector<Pass> passes = {Pass::Forward};
  if (sc.workload.mode == Mode::Training) passes.push_back(Pass::Backward);
  for (Pass pass : passes)
    for (Block b : program.blocks(true, pass)) {
      if (b != Block::Experts) {
        for (const LayerOp& op : program.block(b, shape, pass)) add(price_op(op, *cost));
      } else if (sc.cost_model.per_expert_gemms) {
        for (const PricedOp& p : price_experts_per_expert(program, per_expert, pass, *cost)) add(p);
      } else {
        for (const LayerOp& op : program.experts(rows, local, pass)) add(price_op(op, *cost));
      }
    }

  LayerCaseComparison out{c.label, c.phase, c.precision, c.layer.to_us(), c.ops_layer.to_us(), 0.0, {}};
  std::map<std::string, double> measured;
  for (const MeasuredLayerOp& o : c.ops) {
    if (!measured.count(o.name)) out.ops.push_back({o.name, 0, 0, true, false});
    measured[o.name] += o.measured.to_us();
  }
  for (const std::string& n : order)
    if (!measured.count(n)) out.ops.push_back({n, 0, 0, false, true});
  for (OpComparison& o : out.ops) {
    if (o.measured) o.measured_us = measured[o.op];
    if (predicted.count(o.op)) {
      o.predicted = true;
      o.predicted_us = predicted[o.op];
    }
  }
  for (const auto& [n, us] : predicted) out.predicted_us += us;
  return out;
}

LayerFileValidation validate_layer_file(const std::string& path, const std::vector<std::string>& sets) {
  const MeasuredLayerFile f = read_layer_file(path);
  LayerFileValidation v{path, f.device, "", {}};
  for (const MeasuredLayerCase& c : f.cases) {
    if (!c.passed) continue;
    if (v.cases.empty()) {
      const Scenario sc = Scenario::from_json(layer_case_scenario(c, f, sets));
      v.cost_model = make_cost_model(sc.cost_model, sc.gpu)->name();
    }
    v.cases.push_back(validate_layer_case(c, f, sets));
  }
  return v;
}

nlohmann::json to_json(const LayerFileValidation& v) {
  nlohmann::json cases = nlohmann::json::array();
  for (const auto& c : v.cases) {
    nlohmann::json ops = nlohmann::json::array();
    for (const auto& o : c.ops) {
      nlohmann::json j = {{"op", o.op}};
      if (o.measured) j["measured_us"] = o.measured_us;
      if (o.predicted) j["predicted_us"] = o.predicted_us;
      if (o.measured && o.predicted) j["error_pct"] = o.error_pct();
      ops.push_back(j);
    }
    cases.push_back({{"label", c.label}, {"phase", c.phase}, {"precision", c.precision}, {"measured_us", c.measured_us},
                     {"measured_ops_us", c.measured_ops_us}, {"predicted_us", c.predicted_us}, {"error_pct", c.error_pct()},
                     {"ops", ops}});
  }
  const ErrorSummary s = v.summary();
  return {{"file", v.file}, {"device", v.device}, {"cost_model", v.cost_model}, {"cases", cases},
          {"median_abs_error_pct", s.median_abs_pct}, {"max_abs_error_pct", s.max_abs_pct}, {"meets_target", s.meets_target()}};
}

}  // namespace epsim
