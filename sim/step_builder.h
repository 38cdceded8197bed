// Builds the task graph of one step from a scenario, in its overlap schedule.
//
// Every op of the layer program (models/layer_program.h) is one compute task. Per layer and
// micro-batch the overlap schedule's items (sim/overlap_schedule.h) emit them:
//   moe_out   the previous MoE layer's unpermute and ffn_residual;
//   attention attn_norm, [TP all-gather] the attention ops, [TP reduce-scatter] attn_residual;
//   moe_in    ffn_norm, router, router_topk, [quant_dispatch], permute; shared: the shared expert;
//   dense     a dense layer's MLP block;
//   dispatch  in `chunks` collectives; experts: the routed experts' ops on chunk c as soon as it has
//             arrived; combine: chunk c leaves when every GPU's chunk c is computed.
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
// output gradients to the experts, after the MoE out block's gradients; its combine brings input
// gradients back, both bf16), each item's ops as the layer program's backward (GEMMs as .dgrad and
// .wgrad tasks, attn_core.bwd). Every op's task takes its cost model price plus the model's kernel
// gap per kernel it launches (models/op_pricing.h).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "models/cost_model.h"
#include "models/dispatch_impl.h"
#include "models/gate_model.h"
#include "models/layer_op.h"
#include "models/layer_ops.h"
#include "models/layer_program.h"
#include "models/op_pricing.h"
#include "models/pricing_ledger.h"
#include "placement/placement.h"
#include "placement/slot_traffic.h"
#include "sim/comm_scheme.h"
#include "sim/compute_faults.h"
#include "sim/dispatch_mode.h"
#include "sim/pipeline_schedule.h"
#include "sim/scenario.h"
#include "sim/task_graph.h"
#include "topology/cluster.h"

namespace epsim {

// Routed (token, expert) pairs each GPU computes in one MoE layer, all micro-batches together.
struct LayerLoad {
  std::vector<std::int64_t> per_gpu;     // GPUs first_gpu.. of the layer's pipeline stage (all without PP)
  int first_gpu = 0;
  std::vector<std::int64_t> per_expert;  // routed tokens per expert
  std::int64_t dropped = 0;              // selections a capacity factor dropped
  std::int64_t lost = 0;                 // selections of experts a failure left without a replica (dropped)
  std::int64_t max() const;
  double mean() const;
};

// What a pipeline-parallel step ran (parallelism.pp > 1), for its metrics (sim/pipeline_metrics.h).
struct PipelineRun {
  PipelineSchedule schedule;
  std::vector<int> stage_first_layer;  // per virtual stage, its first layer; one more entry: model.layers
  int gpus_per_rank = 0;               // rank r runs on GPUs r x gpus_per_rank ..
  // Per rank, per slot of schedule.slots: the task ids [first, end) it emitted (its sends included).
  std::vector<std::vector<std::pair<TaskId, TaskId>>> slot_tasks;
  int stage_layers(int stage) const { return stage_first_layer[static_cast<std::size_t>(stage) + 1] - stage_first_layer[static_cast<std::size_t>(stage)]; }
};

class StepBuilder {
 public:
  // `faults`: what the scenario's faults do to each compute task (sim/compute_faults.h).
  StepBuilder(const Scenario& scenario, const Cluster& cluster, const CostModel& cost, const GateModel& gate,
              const Placement& placement, ComputeFaults faults = {});
  TaskGraph build();
  // Indexed by layer (model layers, then one MTP layer per draft pass); empty for dense layers.
  const std::vector<LayerLoad>& loads() const { return loads_; }
  // Which cost model priced each op class, and any extrapolation (models/pricing_ledger.h).
  const PricingLedger& pricing() const { return ledger_; }
  // The pipeline schedule and what each slot emitted (empty schedule without pipeline parallelism).
  const PipelineRun& pipeline() const { return pipeline_; }

 private:
  struct Traffic;  // routing sample -> dispatch matrix, cached per (layer, micro-batch)
  // Backward: the layer program's backward ops, input and weight gradients; under pipeline
  // parallelism a backward is InputGrad (the backward ops but the .wgrad ones) and WeightGrad (the
  // .wgrad ops alone: weight_grad).
  enum class Pass { Forward, Backward, InputGrad, WeightGrad };
  struct GpuSpan {
    int first = 0, count = 0;
    int end() const { return first + count; }
  };
  using Deps = std::vector<std::vector<TaskId>>;  // per GPU: tasks the next block must wait for

  // The items of the overlap schedule (sim/overlap_schedule.h), each on every GPU of span_.
  void run_stages(const std::vector<ScheduleStage>& stages, int l, Pass pass);
  void run_item(const ScheduleItem& item, int l, Pass pass);
  void attention_item(int l, int mb, Pass pass);
  void moe_in_item(int l, int mb, Pass pass);
  void shared_item(int l, int mb, Pass pass, bool chain);
  void dense_item(int l, int mb, Pass pass);
  void counts_item(int l, int mb);
  void experts_item(int l, int mb, Pass pass);
  void combine_item(int l, int mb, Pass pass);
  bool local_shared() const;  // shared experts computed on every GPU (not routed into expert slots)
  // attention, then moe_in, shared (chained when serial_) and counts, or dense: a layer's attention
  // block in one go (the pipeline and the MTP passes).
  void attention_block(int l, int mb, Pass pass);
  // The MoE block in two halves, so that a schedule can issue every micro-batch's dispatch before
  // any combine on the communication stream.
  // In a backward the MoeOut block's gradients (ffn_residual.dgrad, unpermute.dgrad) run first on
  // the compute stream: the rows the dispatch sends.
  void dispatch_half(int l, int mb, Pass pass);
  // Makes chunk c of (layer, micro-batch)'s dispatch (outbound) or combine when the collective starts.
  std::function<CommPlan()> chunk_plan(int l, int mb, int c, bool outbound, Pass pass) const;
  // Its key: the hash of the (layer, micro-batch) matrix with the chunk, direction, bytes and scheme.
  std::function<std::uint64_t()> chunk_key(int l, int mb, int c, bool outbound, Pass pass) const;
  // The same chunk as a cut of the matrix (sim/pair_traffic.h) where its plan is one flow per GPU
  // pair as it stands (direct or per-token, no transfer engines, no rounds); else empty.
  std::function<std::shared_ptr<const PairChunk>()> chunk_pairs(int l, int mb, int c, bool outbound, Pass pass) const;
  bool pairwise_chunks() const;
  void expert_half(int l, int mb, Pass pass);  // experts_item + combine_item
  // An op as a task runs it: its time (cost model + kernel gaps), its SM-bound share, its phase.
  struct TaskOp {
    OpName name;
    Phase phase;
    Time time;
    double sm_bound;
    TaskWork work;  // the op's FLOPs, HBM bytes and rows, for the trace's slice args
  };
  TaskOp task_op(const PricedOp& p, Pass pass) const;
  // Prices `ops` (models/op_pricing.h), recording them in the ledger.
  std::vector<TaskOp> priced(const std::vector<LayerOp>& ops, Pass pass) const;
  // The layer program's ops of block b for (layer, micro-batch) in `pass` (InputGrad: without the
  // .wgrad ops; WeightGrad: those alone).
  std::vector<LayerOp> block_ops(Block b, int l, int mb, Pass pass) const;
  LayerShape shape(int l, int mb) const;
  // GPU `gpu`'s routed experts' ops on chunk c. `per_slot` (per-expert GEMMs: each expert's GEMM at
  // its own rows, summed into one task per GEMM op) or else grouped over the GPU's `received` rows.
  std::vector<TaskOp> expert_chunk(const SlotTraffic* per_slot, std::int64_t received, int gpu, int c, int slots, Pass pass) const;
  // Runs block b of (layer, micro-batch) on every GPU of the span after what the micro-batch waits
  // for; `chain`: the micro-batch's next item waits for its last op (else only the stream does).
  void run_block(int l, int mb, Block b, Pass pass, bool chain = true);
  // Emits `ops` back to back on `gpu`'s compute stream, the first after `after`; the last task (-1: none).
  TaskId emit(int gpu, int l, int mb, const std::vector<TaskOp>& ops, const std::vector<TaskId>& after);
  // At `layer` (model.layers + MTP layers for the model's head: the LM head's pseudo-layer; an MTP
  // layer's index for its draft's head): logits of each sequence's last token (prefill), else of
  // every token. Without `chain` (a deferred weight gradient) nothing of the micro-batch waits for it.
  void lm_head(int layer, int mb, Pass pass, bool chain = true);
  // workload.mtp_tokens: draft pass k (0-based) of the MTP module over one token per sequence:
  // its projection, one MoE decoder layer (index model.layers + k) and the shared LM head.
  void mtp_pass(int k);

  // Pipeline parallelism (sim/step_builder_pipeline.cpp): the step as parallelism.pp ranks of
  // consecutive layers running schedule.pipeline's slots in order.
  TaskGraph build_pipeline();
  void emit_slot(int rank, const PipeSlot& slot);
  // One chunk's layers; a forward ends at the next stage's send, a backward at the previous one's.
  void forward_chunk(const PipeChunk& c);
  void backward_chunk(const PipeChunk& c);
  void weight_chunk(const PipeChunk& c);
  // DualPipe's F&B: the two chunks' layers interleaved block by block, so that one's compute runs
  // while the other's all-to-all is in flight (compute A_f E_b E_f A_b, communication D_b D_f C_b C_f).
  void overlapped_chunks(const PipeChunk& f, const PipeChunk& b);
  // Layer l's weight gradients on every GPU of the span: one task per GPU; with `chain` the
  // micro-batch's next block (or send) waits for it.
  void weight_grad(int l, int mb, bool chain);
  // Micro-batch mb's activations (forward) or gradients from GPU i of `from`'s span to GPU i of
  // `to`'s: one flow per GPU pair, a collective over the receiving span only.
  void pipe_send(int l, int mb, int from, int to);
  void set_rank(int rank);
  // The routing (gate statistics) and placement an emitted layer uses: its own, or for an MTP layer
  // the model's last layer's.
  int routing_layer(int layer) const;
  // The MoeOut ops (unpermute, ffn_residual) of (layer, micro-batch), emitted where they run:
  // before the next layer's attention (so the compute stream runs A0 A1 E0 E1), or before the LM
  // head.
  void moe_out(int l, int mb);
  // Bytes a token carries: forward the dispatch's (outbound) or the combine's; backward the
  // combine's both ways (bf16 gradients, as DeepSeek-V3 keeps the combine and its backward).
  Bytes token_bytes(bool outbound, Pass pass) const;
  // Adds the implementation's per-GPU round time to a dispatch (outbound) or combine chunk (a
  // zero-byte flow per GPU that arrives after it); ideal: the plan unchanged.
  std::function<CommPlan()> with_rounds(std::function<CommPlan()> plan, int l, int mb, int c, bool outbound, Pass pass) const;
  TaskId compute(int gpu, const TaskOp& op, int l, int mb, const std::vector<TaskId>& after);
  // The share of an op's roofline floor that is compute (SM) time; 1 under dispatch_impl ideal.
  double sm_bound(const OpWork& w) const;
  // `tail` is the communication stream the collective is issued on (MoE all-to-alls and TP
  // collectives use separate communicators, as NCCL does).
  TaskId collective(Phase phase, int l, int mb, std::function<CommPlan()> plan, const Deps& after, TaskId& tail,
                    std::function<std::uint64_t()> key = {}, std::function<std::shared_ptr<const PairChunk>()> pairs = {});
  TaskId tp_collective(int l, int mb, const Deps& after);
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
  ComputeFaults faults_;
  LayerOps ops_;
  LayerProgram program_;
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
  // Per pipeline rank (one without PP): the last dispatch/combine and the last TP collective
  // emitted, the tails of its two communication streams.
  std::vector<TaskId> moe_tails_, tp_tails_;
  int rank_ = 0;      // the pipeline rank being emitted
  GpuSpan span_;      // its GPUs (the whole cluster without PP); every block below emits on them
  int mbs_;           // micro-batches the step's tokens are split into
  bool serial_;       // one micro-batch at a time: the dispatch waits for the shared expert
  TaskId& moe_tail() { return moe_tails_[static_cast<std::size_t>(rank_)]; }
  TaskId& tp_tail() { return tp_tails_[static_cast<std::size_t>(rank_)]; }
  std::vector<Deps> ready_;           // per micro-batch: what its next block waits for
  std::vector<std::vector<TaskId>> dispatches_;  // per micro-batch: the dispatch chunks in flight
  std::vector<std::vector<Deps>> combine_after_;  // per micro-batch, per chunk: the expert tasks its combine waits for
  std::vector<std::vector<std::int64_t>> routed_in_;  // per micro-batch, per GPU: routed pairs its experts computed
  PipelineRun pipeline_;
};

}  // namespace epsim
