// Holding the simulator's op inventory to a measured whole decoder layer (`epsim validate` on
// kernels/results/*-layer.json, schema "epsim-layer/1", written by kernels/epsim_layer.py; issue 14).
//
// Each case is one layer on one GPU with no communication: the case's model (MHA, GQA or MLA),
// phase (prefill, decode, train), precision (bf16, or fp8 linear layers with a bf16 attention core)
// and tokens, its routed experts behind a local permute (tokens x top_k rows over the GPU's
// local_experts, an equal share each). The prediction is the simulator's own: the layer program's
// ops for that shape (models/layer_program.h; forward, and backward in train), priced as the step
// prices them (models/op_pricing.h) by the case's GPU preset and its measured profile (H100:
// h100-sxm with h100-measured, H200: h200 with h200-measured; the nominal roofline where the
// profile is not shipped), routed experts one GEMM per local expert. Compared: every op by name
// (measured with events between ops) and the layer's total, the sum of the predicted ops against
// the layer measured as one (what is missing from the inventory shows there).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "models/layer_measurement.h"
#include "sim/error_summary.h"

namespace epsim {

struct OpComparison {
  std::string op;
  double measured_us = 0;   // 0 and !measured: the measurement has no such op
  double predicted_us = 0;  // 0 and !predicted: the simulator has no such op
  bool measured = false;
  bool predicted = false;
  double error_pct() const { return measured_us > 0 ? (predicted_us - measured_us) / measured_us * 100.0 : 0.0; }
};

struct LayerCaseComparison {
  std::string label;
  std::string phase;      // prefill | decode | train
  std::string precision;  // bf16 | fp8
  double measured_us = 0;      // the layer measured as one
  double measured_ops_us = 0;  // the sum of its ops measured with events between them
  double predicted_us = 0;     // the sum of the predicted ops
  std::vector<OpComparison> ops;
  double error_pct() const { return (predicted_us - measured_us) / measured_us * 100.0; }
};

struct LayerFileValidation {
  std::string file;
  std::string device;
  std::string cost_model;  // of the first case ("calibrated(h100-measured)")
  std::vector<LayerCaseComparison> cases;
  ErrorSummary summary() const;
};

// The scenario's `precision` section of a measured layer: every GEMM in `p` (bf16 | fp8), the
// attention core, LM head, dispatch, combine and KV cache in bf16; `where` names it in errors.
nlohmann::json measured_precision(const std::string& p, const std::string& where);
// Sets the scenario `model` keys of a measured attention of `kind`: mla: the deepseek-v3 preset
// (no `attention` key), after checking that dim("q_lora_rank"), dim("kv_lora_rank"),
// dim("qk_nope_head_dim"), dim("qk_rope_head_dim"), dim("v_head_dim") are DeepSeek-V3's (the only
// MLA the simulator prices; InputError naming `where`, the JSON path of the object holding them);
// mha | gqa: attention mha with dim("head_dim") and dim("kv_heads"). Returns false for any other
// kind, leaving `model` as it was (the caller names the kinds it accepts).
bool set_measured_attention(nlohmann::json& model, const std::string& kind, const std::function<std::int64_t(const char*)>& dim,
                            const std::string& where);
// The scenario document of one measured case (a one-GPU, one-layer scenario), `sets` applied.
// Throws InputError naming the case when its model cannot be expressed.
nlohmann::json layer_case_scenario(const MeasuredLayerCase& c, const MeasuredLayerFile& f, const std::vector<std::string>& sets = {});
LayerCaseComparison validate_layer_case(const MeasuredLayerCase& c, const MeasuredLayerFile& f, const std::vector<std::string>& sets = {});
// Every case whose check passed. Throws InputError naming the file (and case) on bad input.
LayerFileValidation validate_layer_file(const std::string& path, const std::vector<std::string>& sets = {});
nlohmann::json to_json(const LayerFileValidation& v);

}  // namespace epsim
