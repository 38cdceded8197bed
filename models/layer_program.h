// Which ops one decoder layer runs, block by block, forward and backward: the complete op
// inventory (issue 14) as data. The step builder iterates it, emitting one compute task per op and
// placing communication between blocks; `epsim run --ops` prints it; whole-layer measurements are
// compared to it by op name.
//
// Forward, per layer (ops in brackets only where they apply):
//   AttnIn     attn_norm
//   Attention  [quant_act.q_proj] q_proj [q_a_norm [quant_act.q_b_proj] q_b_proj] [quant_act.kv_proj]
//              kv_proj [kv_a_norm [quant_act.kv_b_proj] kv_b_proj] rope attn_core [quant_act.o_proj] o_proj
//              (MHA/GQA: q_proj, kv_proj; MLA: q_proj = q_a_proj and kv_proj = kv_a_proj_with_mqa;
//              decode runs MLA absorbed: kv_b_proj as the two per-head products with the latent)
//   AttnOut    attn_residual
//   MoeIn      ffn_norm router router_topk [quant_dispatch] permute
//   Shared     [quant_act.shared_up] shared_up shared_swiglu [quant_act.shared_down] shared_down
//   Experts    [quant_act.expert_up] expert_up swiglu [quant_act.expert_down] expert_down (per chunk)
//   MoeOut     unpermute ffn_residual
//   Dense      ffn_norm [quant_act.dense_up] dense_up dense_swiglu [quant_act.dense_down] dense_down ffn_residual
//   Head       final_norm lm_head (after the last layer, and after each MTP draft's layer)
//   MtpIn      mtp_proj (workload.mtp_tokens: the MTP module's input projection, then one MoE layer)
// A quant_act precedes every fp8 GEMM whose input is not already fp8 (the fp8 dispatch brings
// expert_up's), as the measured layer (kernels/epsim_layer.py) quantises each GEMM's input. model.attention = none: the layer is its MoE
// block as kernels/ep_layer.cu runs it (router, router_topk, permute, experts, unpermute; no norms,
// residuals or attention).
// Backward, per block in reverse order, each block's ops in reverse: a GEMM becomes .dgrad and
// .wgrad (each the forward's FLOPs and bytes: dgrad reads the weight and dY and writes dX, wgrad
// reads X and dY and writes dW), attn_core becomes attn_core.bwd (layer_ops.h), permute.dgrad is
// an unpermute's work and unpermute.dgrad a permute's, every other op .dgrad at twice its forward
// work (it reads its forward inputs and the output gradient and writes the input gradient);
// quant_dispatch has none (the backward all-to-alls carry bf16 gradients).
#pragma once

#include <cstdint>
#include <vector>

#include "models/layer_op.h"
#include "models/layer_ops.h"
#include "models/workload.h"

namespace epsim {

// The tokens one GPU runs a layer's ops on (one micro-batch's).
struct LayerShape {
  Mode mode = Mode::Prefill;
  std::int64_t tokens = 0;   // this GPU's tokens T
  std::int64_t seqs = 1;     // sequences among them
  std::int64_t seq_len = 0;  // prefill and training
  std::int64_t kv_len = 0;   // decode
  std::int64_t logits = 0;   // rows of the LM head (prefill: one per sequence)
  std::int64_t cached = 0;   // prefill: tokens of each sequence from the prefix cache (keys only)
  int queries = 1;           // decode: query tokens per sequence (1 + MTP drafts); tokens = seqs x queries
  std::int64_t window = 0;   // local attention: the layer's window (model.window_of), 0: full
};

class LayerProgram {
 public:
  // `local_shared_experts`: shared experts every GPU computes on its own tokens (-1: the model's;
  // parallelism.shared_expert = routed places them in expert slots instead: 0).
  explicit LayerProgram(const LayerOps& ops, int local_shared_experts = -1);

  // The blocks of a layer in the order a pass runs them (Experts stands for every chunk's).
  std::vector<Block> blocks(bool moe, Pass pass) const;
  // The ops of one block (not Experts), in the order they run in `pass`.
  std::vector<LayerOp> block(Block b, const LayerShape& s, Pass pass) const;
  // The routed experts' ops over `rows` rows spread over `experts` experts on this GPU, in the
  // order they run in `pass`. GEMMs as one grouped op (OpClass ExpertMlp) or, per_expert, as one
  // expert's GEMM (ExpertGemm; the step builder sums them over the GPU's experts).
  std::vector<LayerOp> experts(std::int64_t rows, int experts, Pass pass, bool per_expert = false) const;
  // The backward ops of one forward op, in the order they run.
  std::vector<LayerOp> backward(const LayerOp& forward) const;

  const LayerOps& ops() const { return ops_; }

 private:
  struct MlpKinds {
    OpKind up, act, down;
  };
  std::vector<LayerOp> forward(Block b, const LayerShape& s) const;
  void attention(std::vector<LayerOp>& out, const LayerShape& s) const;
  // [quant] up, SwiGLU, [quant] down over rows x width (the intermediate on this GPU), weights of
  // `copies` experts (grouped experts) read once.
  void mlp(std::vector<LayerOp>& out, Block b, MlpKinds k, NumberFormat f, OpClass cls, std::int64_t rows,
           std::int64_t width, bool input_fp8, int copies) const;
  std::vector<LayerOp> reversed(std::vector<LayerOp> fwd) const;

  const LayerOps& ops_;
  int shared_;
};

}  // namespace epsim
