// What a serving step costs: the interface the request-level simulation asks, per batch shape.
//
// A step is a prefill step or a decode step of one instance (the whole scenario cluster: its GPUs
// meet at every all-to-all, so the instance steps as one). Its shape is what the busiest DP rank
// carries, per GPU, as the step simulator's workload takes it (every GPU priced as that busy):
//   prefill: computed prompt tokens per GPU, and the mean number of keys a query attends to (a
//            chunk of c tokens after p tokens already in the KV cache has c x (p + (c + 1) / 2)
//            (query, key) pairs, as models/layer_ops.cpp counts them);
//   decode:  sequences per GPU, and their mean KV length.
// A prefill step whose DP ranks carry unequal prompt tokens also gives its mean shape (the step's
// tokens over all the instance's GPUs): each rank computes its own tokens' attention, but the
// routed experts and the all-to-alls carry every rank's tokens, spread over the EP group, so the
// step costs less than the busiest rank's shape on every GPU (sim/serving/step_table.h says how
// the step table prices it).
#pragma once

#include <cstdint>

#include "models/units.h"

namespace epsim::serving {

struct PrefillShape {
  std::int64_t tokens = 1;  // computed tokens per GPU, >= 1
  double keys = 1.0;        // mean keys per query token, >= 1
};

struct DecodeShape {
  std::int64_t batch = 1;  // sequences per GPU, >= 1
  double kv = 1.0;         // mean KV length per sequence (tokens), >= 1
};

class StepPricer {
 public:
  virtual ~StepPricer() = default;
  virtual Time prefill(const PrefillShape& busiest, const PrefillShape& mean) = 0;
  virtual Time decode(const DecodeShape& shape) = 0;
};

}  // namespace epsim::serving
