// One layer's ops as a step runs them on one GPU: `epsim run --ops` and report.json's `ops`.
//
// The first dense layer and the first MoE layer of the scenario's model, forward (and backward in
// training), micro-batch 0's tokens on a GPU, the routed experts at the rows the most loaded GPU
// computed in that MoE layer (per micro-batch, all its chunks together); each op with its time
// (cost model + kernel gaps), FLOPs, bytes, precision and what priced it. The rows are priced as the
// step builder prices its tasks (models/layer_program.h), so a listed layer's total is its compute
// on that GPU when nothing overlaps it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "models/cost_model.h"
#include "models/layer_program.h"
#include "sim/scenario.h"

namespace epsim {

struct OpRow {
  std::string op;      // "q_proj", "expert_up.wgrad"
  std::string block;   // "attention", "experts", ...
  Time time;           // cost model + kernel gaps
  Flops flops;
  Bytes bytes;
  NumberFormat precision = NumberFormat::Bf16;
  int kernels = 1;
  std::string priced_by;  // "nominal(h100-seed): roofline", "calibrated(h200-measured): gemm_bf16 k=7168 n=36864 by m"
};

struct LayerListing {
  int layer = 0;
  bool moe = false;
  Pass pass = Pass::Forward;
  std::vector<OpRow> ops;
  Time total() const;
};

struct OpsReport {
  std::string cost_model;
  Time kernel_gap;
  std::int64_t tokens = 0;       // this GPU's tokens in micro-batch 0
  std::int64_t expert_rows = 0;  // routed rows the MoE layer's experts compute (most loaded GPU)
  std::vector<LayerListing> layers;
};

// The shape of micro-batch `mb`'s layers on one GPU: its share of the step's tokens (decode: of
// the sequences, times 1 + MTP drafts), its sequences, the LM head's rows.
LayerShape step_layer_shape(const Scenario& sc, std::int64_t tokens, int queries);

// `expert_rows`: routed rows per micro-batch on the GPU listed (0: tokens x top_k).
OpsReport list_layer_ops(const Scenario& sc, const CostModel& cost, std::int64_t expert_rows);
nlohmann::json to_json(const OpsReport& r);
// The console table of `epsim run --ops`.
std::string ops_table(const OpsReport& r);

}  // namespace epsim
