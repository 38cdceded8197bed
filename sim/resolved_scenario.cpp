#include "sim/resolved_scenario.h"

#include "models/cost_model_spec.h"
#include "sim/dispatch_mode.h"
#include "sim/scenario.h"

namespace epsim {

namespace {

const char* attention_name(AttentionKind a) {
  return a == AttentionKind::Mha ? "mha" : a == AttentionKind::Mla ? "mla" : "none";
}

// Keys a preset or another key decides (their schema default is null or depends on presence):
// the values this run used.
void fill_derived(nlohmann::json& out, const Scenario& sc) {
  nlohmann::json& m = out["model"];
  const MoeModelSpec& model = sc.model;
  const nlohmann::json model_keys = {
      {"layers", model.layers},
      {"dense_layers", model.dense_layers},
      {"moe_layer_ids", model.moe_layer_list()},
      {"hidden", model.hidden},
      {"dense_intermediate", model.dense_intermediate},
      {"expert_intermediate", model.expert_intermediate},
      {"routed_experts", model.routed_experts},
      {"shared_experts", model.shared_experts},
      {"top_k", model.top_k},
      {"groups", model.groups},
      {"topk_groups", model.topk_groups},
      {"attention", attention_name(model.attention)},
      {"heads", model.heads},
      {"head_dim", model.head_dim},
      {"kv_heads", model.kv_head_count()},
      {"attention_window", model.attention_window},
      {"window_kind", model.chunked_window ? "chunked" : "sliding"},
      {"window_layers", model.window_layer_ids},
      {"mtp_layers", model.mtp_layers},
      {"vocab", model.vocab},
  };
  for (auto it = model_keys.begin(); it != model_keys.end(); ++it)
    if (!m.contains(it.key())) m[it.key()] = it.value();
  // The number formats the model (and its config.json) default to, as the run used them.
  nlohmann::json& p = out["precision"];
  const nlohmann::json formats = model.precision.to_json();
  for (auto it = formats.begin(); it != formats.end(); ++it)
    if (!p.contains(it.key())) p[it.key()] = it.value();
  // The GPU preset's own figures (exact: the preset is made from these numbers).
  nlohmann::json& g = out["gpu"];
  // gpu.peak_fp8_tflops follows peak_tflops (2x) when only that is given.
  if (!g.contains("peak_fp8_tflops") && g.contains("peak_tflops") && g["peak_tflops"].is_number())
    g["peak_fp8_tflops"] = 2.0 * g["peak_tflops"].get<double>();
  const nlohmann::json preset = GpuSpec::preset_keys(g["preset"].get<std::string>());
  for (auto it = preset.begin(); it != preset.end(); ++it)
    if (!g.contains(it.key())) g[it.key()] = it.value();
  nlohmann::json& c = out["cluster"];
  if (!c.contains("nvlink_gbps")) c["nvlink_gbps"] = g["nvlink_gbps"];
  c["nodes"] = sc.cluster.nodes;  // also when cluster.gpus gave it
  if (!c.contains("gpus_per_node")) c["gpus_per_node"] = sc.cluster.gpus_per_node;  // cluster.preset's
  if (!c.contains("nvlink_domain")) c["nvlink_domain"] = sc.cluster.domain_size();
  nlohmann::json& w = out["workload"];
  if (!w.contains("seq_len")) w["seq_len"] = sc.workload.seq_len;
  // The transfer engines' rates the run used: sourced defaults, or a calibrated profile's.
  const EngineRates rates = engine_rates(sc, *make_cost_model(sc.cost_model, sc.gpu));
  nlohmann::json& n = out["network"];
  const nlohmann::json engine_keys = {
      {"nvlink_sm_efficiency", rates.nvlink_sm.efficiency},
      {"nvlink_sm_round_us", rates.nvlink_sm.round.to_us()},
      {"nvlink_ce_efficiency", rates.nvlink_ce.efficiency},
      {"nvlink_ce_round_us", rates.nvlink_ce.round.to_us()},
      {"rdma_efficiency", rates.rdma.efficiency},
      {"rdma_message_rate_m", rates.rdma.message_rate / 1e6},
      {"rdma_round_us", rates.rdma.round.to_us()},
      {"nccl_efficiency", rates.nccl.efficiency},
      {"nccl_round_us", rates.nccl.round.to_us()},
      {"comm_gbps_per_sm", rates.per_sm.bytes_per_second() / 1e9},
  };
  // The interference constants the run used: the dispatch implementation's fitted values unless set.
  const NetworkSpec::Interference k = sc.network.interference();
  const nlohmann::json round_keys = {
      {"round_stretch", k.round_stretch}, {"fixed_stretch", k.fixed_stretch},
      {"fixed_sm_share", k.fixed_sm_share}, {"hbm_share", k.hbm_share},
  };
  for (const auto* keys : {&engine_keys, &round_keys})
    for (auto it = keys->begin(); it != keys->end(); ++it)
      if (!n.contains(it.key())) n[it.key()] = it.value();
  // Without the key, comm_sms follows network.dispatch_impl and the overlap: the value it took.
  out["schedule"]["comm_sms"] = sc.schedule.comm_sms;
}

}  // namespace

const std::vector<std::string>& unresolved_keys() {
  static const std::vector<std::string> keys = {"cluster.gpus", "model.hf_config"};
  return keys;
}

nlohmann::json resolved_scenario(const nlohmann::json& doc) {
  const Scenario sc = Scenario::from_json(doc);
  nlohmann::json out = doc;
  for (const Schema* schema : Scenario::all_schemas()) {
    nlohmann::json& section = schema->section.empty() ? out : out[schema->section];
    if (section.is_null()) section = nlohmann::json::object();
    for (const KeyDoc& key : schema->keys)
      if (!section.contains(key.key) && !key.default_value.is_null()) section[key.key] = key.default_value;
  }
  fill_derived(out, sc);
  return out;
}

}  // namespace epsim
