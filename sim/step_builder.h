// Builds the task graph of one step from a scenario, in its overlap schedule.
//
// Per layer and micro-batch the builder emits two blocks:
//   attention block: [TP all-gather] attention projections, attention core, [TP reduce-scatter],
//                    gate and shared expert (MoE layers) or the dense MLP;
//   MoE block:       dispatch in `chunks` collectives; the experts compute chunk c as soon as it has
//                    arrived; combine chunk c leaves when every GPU's chunk c is computed.
// Emission order per layer: attention blocks of all micro-batches, their dispatches, then their
// expert halves (experts and combines): compute A0 A1 E0 E1, communication D0 D1 C0 C1.
// Compute tasks of a GPU run one at a time in emission order (its compute stream); collectives run
// one at a time in emission order (the communication stream). Data dependencies do the rest:
//   serial           one micro-batch; the dispatch waits for the shared expert, so nothing overlaps
//                    except expert chunk c with dispatch chunks > c and combine chunks < c;
//   dual-microbatch  two micro-batches of half the tokens: one micro-batch
//                    computes while the other communicates; a micro-batch's next-layer attention
//                    starts once its own combine is done (cross-layer pipelining);
//   decode-5stage    the same program with communication on 0 SMs (set by the scenario).
// Training appends the backward pass: layers in reverse, the MoE block first (its dispatch carries
// output gradients to the experts, its combine brings input gradients back), every compute op at
// twice its forward cost.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "models/cost_model.h"
#include "models/dispatch_impl.h"
#include "models/gate_model.h"
#include "models/layer_ops.h"
#include "models/pricing_ledger.h"
#include "placement/placement.h"
#include "placement/slot_traffic.h"
#include "sim/comm_scheme.h"
#include "sim/dispatch_mode.h"
#include "sim/scenario.h"
#include "sim/task_graph.h"
#include "topology/cluster.h"

namespace epsim {

// Routed (token, expert) pairs each GPU computes in one MoE layer, all micro-batches together.
struct LayerLoad {
  std::vector<std::int64_t> per_gpu;
  std::vector<std::int64_t> per_expert;  // routed tokens per expert
  std::int64_t dropped = 0;              // selections a capacity factor dropped
  std::int64_t max() const;
  double mean() const;
};

class StepBuilder {
 public:
  StepBuilder(const Scenario& scenario, const Cluster& cluster, const CostModel& cost, const GateModel& gate,
              const Placement& placement);
  TaskGraph build();
  // Indexed by layer (model layers, then one MTP layer per draft pass); empty for dense layers.
  const std::vector<LayerLoad>& loads() const { return loads_; }
  // Which cost model priced each op class, and any extrapolation (models/pricing_ledger.h).
  const PricingLedger& pricing() const { return ledger_; }

 private:
  struct Traffic;  // routing sample -> dispatch matrix, cached per (layer, micro-batch)
  enum class Pass { Forward, Backward };
  using Deps = std::vector<std::vector<TaskId>>;  // per GPU: tasks the next block must wait for

  void attention_block(int l, int mb, Pass pass);
  // The MoE block in two halves, so that a schedule can issue every micro-batch's dispatch before
  // any combine on the communication stream.
  void dispatch_half(int l, int mb);
  // Makes chunk c of (layer, micro-batch)'s dispatch (outbound) or combine when the collective starts.
  std::function<CommPlan()> chunk_plan(int l, int mb, int c, bool outbound) const;
  // Its key: the hash of the (layer, micro-batch) matrix with the chunk, direction and scheme.
  std::function<std::uint64_t()> chunk_key(int l, int mb, int c, bool outbound) const;
  void expert_half(int l, int mb, Pass pass);
  // GPU `gpu`'s experts on chunk c: their time, and the FLOPs and bytes they move (for the SM-bound
  // share). `per_slot` (per-expert GEMMs) or else one MLP over the GPU's `received` rows.
  struct ExpertChunk {
    Time time;
    OpWork work;
  };
  ExpertChunk expert_chunk(const SlotTraffic* per_slot, std::int64_t received, int gpu, int c, int slots, Pass pass) const;
  // At `layer` (model.layers + MTP layers for the model's head: the LM head's pseudo-layer; an MTP
  // layer's index for its draft's head): logits of each sequence's last token (prefill), else of
  // every token.
  void lm_head(int layer, int mb, Pass pass);
  // workload.mtp_tokens: draft pass k (0-based) of the MTP module over one token per sequence:
  // its projection, one MoE decoder layer (index model.layers + k) and the shared LM head.
  void mtp_pass(int k);
  // The routing (gate statistics) and placement an emitted layer uses: its own, or for an MTP layer
  // the model's last layer's.
  int routing_layer(int layer) const;
  // network.dispatch_impl nccl | peer: the weighted sum of (layer, micro-batch)'s expert outputs,
  // emitted where the measured layer runs it: before the next layer's gate, or at the end.
  void unpermute(int l, int mb);
  // Adds the implementation's per-GPU round time to a dispatch or combine chunk (a zero-byte flow
  // per GPU that arrives after it); ideal: the plan unchanged.
  std::function<CommPlan()> with_rounds(std::function<CommPlan()> plan, int l, int mb, int c) const;
  TaskId compute(int gpu, Phase phase, int l, int mb, Time duration, const std::vector<TaskId>& after,
                 double sm_bound = 1.0, TaskWork work = {});
  // An op's FLOPs, bytes and tokens as it runs in `pass` (backward: twice the FLOPs and bytes).
  static TaskWork traced(const OpWork& w, Pass pass);
  // The share of an op's roofline floor that is compute (SM) time; 1 under dispatch_impl ideal.
  double sm_bound(const OpWork& w) const;
  // `tail` is the communication stream the collective is issued on (MoE all-to-alls and TP
  // collectives use separate communicators, as NCCL does).
  TaskId collective(Phase phase, int l, int mb, std::function<CommPlan()> plan, const Deps& after, TaskId& tail,
                    std::function<std::uint64_t()> key = {});
  TaskId tp_collective(int l, int mb, const Deps& after);
  Time scaled(const OpWork& w, Pass pass) const;
  // Tokens of micro-batch mb on one GPU in the layers being emitted: its share of split_.units
  // (tokens, or decode sequences) x split_.tokens_per_unit (decode: 1 + MTP drafts in the model's
  // layers, 1 in the MTP module's).
  std::int64_t mb_tokens(int mb) const;
  struct TokenSplit {
    std::int64_t units = 0;
    int tokens_per_unit = 1;
  };

  const Scenario& sc_;
  const Cluster& cluster_;
  const CostModel& cost_;
  LayerOps ops_;
  DispatchImpl impl_;
  CommSetup comm_;  // how a dispatch or combine becomes flows (sim/dispatch_mode.h)
  CommSetup tp_;    // the TP collectives' engines (NCCL's, calibrated; else none)
  std::shared_ptr<Traffic> traffic_;
  std::vector<LayerLoad> loads_;
  mutable PricingLedger ledger_;
  int gpus_;
  int layers_;  // model layers + MTP layers (one per draft pass); the LM head's pseudo-layer is layers_
  TokenSplit split_;
  TaskGraph g_;
  std::vector<TaskId> compute_tail_;  // per GPU: last compute task emitted
  TaskId moe_tail_ = -1;              // last dispatch/combine emitted
  TaskId tp_tail_ = -1;               // last TP collective emitted
  std::vector<Deps> ready_;           // per micro-batch: what its next block waits for
  std::vector<std::vector<TaskId>> dispatches_;  // per micro-batch: the dispatch chunks in flight
};

}  // namespace epsim
