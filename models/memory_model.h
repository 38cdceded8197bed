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
  Bytes activations;        // peak working set of one layer (expected routed tokens); training: all layers kept
  Bytes comm_buffers;       // network.dispatch_impl low_latency: its fixed receive buffers (sim/dispatch_mode.h)
  Bytes capacity;

  Bytes weights() const { return attention_weights + dense_weights + expert_weights + shared_weights + other_weights; }
  Bytes total() const { return weights() + optimizer + kv_cache + activations + comm_buffers; }
  bool fits() const { return total() <= capacity; }
};

MemoryReport estimate_memory(const LayerOps& ops, const Parallelism& par, const Workload& work, const GpuSpec& gpu);

}  // namespace epsim
