// One op of a decoder layer: its name (tasks/common_names.md fixes them), the block of the layer it
// belongs to, and its work. The layer program (layer_program.h) lists them per block and pass; the
// step builder emits one compute task per op, `epsim run --ops` prints them, and whole-layer
// measurements are compared to them by name.
#pragma once

#include <cstdint>
#include <string>

#include "models/layer_ops.h"
#include "models/op_name.h"

namespace epsim {

// Where in the layer an op runs; the step builder places communication between blocks.
enum class Block : std::uint8_t {
  AttnIn,     // attn_norm, on this GPU's tokens (before the TP all-gather)
  Attention,  // projections, norms of MLA's low-rank ones, rope, core, o_proj: the TP group's tokens, 1/tp of the heads
  AttnOut,    // attn_residual (after the TP reduce-scatter)
  MoeIn,      // ffn_norm, router, router_topk, quant_dispatch, permute: before the dispatch
  Shared,     // the shared expert: beside the dispatch (serial: before it)
  Experts,    // the GPU's routed experts on the rows a dispatch chunk brought
  MoeOut,     // unpermute, ffn_residual: after the combine
  Dense,      // a dense layer's MLP: ffn_norm ... ffn_residual
  Head,       // final_norm, lm_head: after the last layer (and after each MTP draft's layer)
  MtpIn,      // mtp_proj: the MTP module's input projection, before its decoder layer
};
const char* to_string(Block b);

struct LayerOp {
  OpName name;
  Block block;
  OpWork work;
};

}  // namespace epsim
