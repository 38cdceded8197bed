// Per-GPU memory: weights under the parallelism, KV cache, activations; verdict against capacity.
#pragma once

#include "models/gpu_spec.h"
#include "models/layer_ops.h"
#include "models/parallelism.h"
#include "models/workload.h"

namespace epsim {

struct MemoryReport {
  Bytes attention_weights;  // all layers' attention projections, 1/tp each
  Bytes dense_weights;      // dense-layer MLPs, 1/tp each
  Bytes expert_weights;     // this GPU's routed experts, all MoE layers
  Bytes shared_weights;     // shared experts, 1/tp each
  Bytes other_weights;      // gates, embedding and LM head (1/tp)
  Bytes optimizer;          // training: gradients (2 B) + Adam master weights, m and v (3 x 4 B) per parameter
  Bytes kv_cache;           // prefill: the cache the step writes; decode: batch x kv_len; training: none
  Bytes activations;        // peak working set of one layer (expected routed tokens); training: all layers kept (a pipeline rank: what its schedule holds)
  Bytes comm_buffers;       // network.dispatch_impl low_latency: its fixed receive buffers (sim/dispatch_mode.h)
  Bytes capacity;

  Bytes weights() const { return attention_weights + dense_weights + expert_weights + shared_weights + other_weights; }
  Bytes total() const { return weights() + optimizer + kv_cache + activations + comm_buffers; }
  bool fits() const { return total() <= capacity; }
};

// What one GPU stores of the model and keeps of its activations: the whole model, or a pipeline
// rank's stages.
struct ModelShare {
  std::int64_t dense_layers = 0;  // decoder layers whose weights it holds
  std::int64_t moe_layers = 0;    // (an MTP module's layer counts as a MoE layer)
  bool embedding = true;
  bool lm_head = true;
  std::int64_t mtp_projections = 0;  // MTP modules' 2h x h projections
  std::int64_t window_layers = 0;    // of its layers, those with model.attention_window (their KV cache kept to it)
  // One-layer working sets held at the peak (inference 1, training every layer, a pipeline rank what
  // its schedule holds), of activation_tokens tokens each.
  double activation_layers = 1;
  std::int64_t activation_tokens = 0;
  // The whole model for this workload (the MTP modules when workload.mtp_tokens > 0).
  static ModelShare whole(const MoeModelSpec& model, const Workload& work);
};

MemoryReport estimate_memory(const LayerOps& ops, const Parallelism& par, const Workload& work, const GpuSpec& gpu);
MemoryReport estimate_memory(const LayerOps& ops, const Parallelism& par, const Workload& work, const GpuSpec& gpu,
                             const ModelShare& share);

}  // namespace epsim
