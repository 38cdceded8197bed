// StepBuilder's pipeline-parallel program (parallelism.pp > 1).
//
// The GPUs form pp ranks of G / pp consecutive GPUs (whole nodes, or a part of one); the layers form
// the schedule's virtual stages of consecutive layers (near-equal counts, the first stages taking
// the remainder), and rank r runs the virtual stages the schedule gives it (sim/pipeline_schedule.h).
// Each rank has its own compute stream per GPU and its own MoE and TP communication streams; its
// slots are emitted in schedule order, so its streams run them in that order. A micro-batch's
// chunks chain through ready_: a forward chunk ends with a send of its activations to the next
// stage's rank, a backward chunk with a send of its input gradients to the previous one (one flow
// per GPU pair, GPU i of one rank to GPU i of the other, on the fabric).
//
// Backward chunks compute input gradients (Pass::InputGrad) and, unless the schedule defers them to
// a W chunk, each layer's weight gradients right after (weight_grad), before the next layer's and
// before the gradients leave for the previous stage; a deferred W chunk (zero bubble) waits for
// nothing but its rank's stream.
#include <set>

#include "models/apportion.h"
#include "models/errors.h"
#include "sim/step_builder.h"
#include "sim/transfer_memo.h"

namespace epsim {

void StepBuilder::set_rank(int rank) {
  rank_ = rank;
  span_ = GpuSpan{rank * pipeline_.gpus_per_rank, pipeline_.gpus_per_rank};
}

TaskGraph StepBuilder::build_pipeline() {
  const int pp = sc_.parallelism.pp;
  const ScheduleSpec& ss = sc_.schedule;
  pipeline_ = PipelineRun{};
  pipeline_.schedule = make_pipeline_schedule(ss.pipeline, pp, ss.pipeline_micro_batches_for(pp), ss.pipeline_chunks);
  const PipelineSchedule& sched = pipeline_.schedule;
  const int S = sched.stages;
  pipeline_.gpus_per_rank = gpus_ / pp;
  pipeline_.stage_first_layer.push_back(0);
  for (int v = 0; v < S; ++v)
    pipeline_.stage_first_layer.push_back(pipeline_.stage_first_layer.back() +
                                          static_cast<int>(equal_share(sc_.model.layers, v, S)));
  pipeline_.slot_tasks.assign(static_cast<std::size_t>(pp), {});

  g_ = TaskGraph{};
  mbs_ = sched.micro_batches;
  serial_ = true;
  split_ = {sc_.workload.tokens(), 1};
  loads_.assign(static_cast<std::size_t>(layers_), LayerLoad{});
  compute_tail_.assign(static_cast<std::size_t>(gpus_), -1);
  moe_tails_.assign(static_cast<std::size_t>(pp), -1);
  tp_tails_.assign(static_cast<std::size_t>(pp), -1);
  ready_.assign(static_cast<std::size_t>(mbs_), Deps(static_cast<std::size_t>(gpus_)));
  dispatches_.assign(static_cast<std::size_t>(mbs_), {});
  combine_after_.assign(static_cast<std::size_t>(mbs_), {});
  routed_in_.assign(static_cast<std::size_t>(mbs_), {});

  // Emission order: sweep the ranks, each emitting its next slots while the chunks they need (the
  // previous stage's forward, the next stage's backward, its own backward before a W) exist.
  std::set<std::pair<int, int>> forwards, backwards;  // (micro-batch, stage) emitted
  auto can_emit = [&](const PipeChunk& c) {
    switch (c.work) {
      case PipeWork::Forward: return c.stage == 0 || forwards.count({c.micro_batch, c.stage - 1}) > 0;
      case PipeWork::Backward:
        return forwards.count({c.micro_batch, c.stage}) > 0 && (c.stage == S - 1 || backwards.count({c.micro_batch, c.stage + 1}) > 0);
      case PipeWork::Weight: return backwards.count({c.micro_batch, c.stage}) > 0;
    }
    return false;
  };
  auto mark = [&](const PipeChunk& c) {
    if (c.work == PipeWork::Forward) forwards.insert({c.micro_batch, c.stage});
    if (c.work == PipeWork::Backward) backwards.insert({c.micro_batch, c.stage});
  };
  std::vector<std::size_t> next(static_cast<std::size_t>(pp), 0);
  for (bool progress = true; progress;) {
    progress = false;
    for (int r = 0; r < pp; ++r) {
      const auto& slots = sched.slots[static_cast<std::size_t>(r)];
      for (std::size_t& i = next[static_cast<std::size_t>(r)]; i < slots.size(); ++i) {
        const PipeSlot& slot = slots[i];
        if (!can_emit(slot.chunk) || (slot.overlapped && !can_emit(*slot.overlapped))) break;
        emit_slot(r, slot);
        mark(slot.chunk);
        if (slot.overlapped) mark(*slot.overlapped);
        progress = true;
      }
    }
  }
  for (int r = 0; r < pp; ++r)
    if (next[static_cast<std::size_t>(r)] < sched.slots[static_cast<std::size_t>(r)].size())
      throw SimulationError("pipeline schedule " + sched.name + " deadlocks at rank " + std::to_string(r));
  return std::move(g_);
}

void StepBuilder::emit_slot(int rank, const PipeSlot& slot) {
  set_rank(rank);
  const auto first = static_cast<TaskId>(g_.tasks().size());
  if (slot.overlapped) {
    overlapped_chunks(slot.chunk, *slot.overlapped);
  } else if (slot.chunk.work == PipeWork::Forward) {
    forward_chunk(slot.chunk);
  } else if (slot.chunk.work == PipeWork::Backward) {
    backward_chunk(slot.chunk);
  } else {
    weight_chunk(slot.chunk);
  }
  pipeline_.slot_tasks[static_cast<std::size_t>(rank)].emplace_back(first, static_cast<TaskId>(g_.tasks().size()));
}

void StepBuilder::forward_chunk(const PipeChunk& c) {
  overlapped_chunks(c, PipeChunk{PipeWork::Backward, -1, -1, false});
}

void StepBuilder::backward_chunk(const PipeChunk& c) {
  const int mb = c.micro_batch, first = pipeline_.stage_first_layer[static_cast<std::size_t>(c.stage)];
  const int last_stage = pipeline_.schedule.stages - 1;
  if (c.stage == last_stage && sc_.model.vocab > 0) {
    lm_head(layers_, mb, Pass::InputGrad);
    if (!c.defer_weight) lm_head(layers_, mb, Pass::WeightGrad);
  }
  for (int l = first + pipeline_.stage_layers(c.stage) - 1; l >= first; --l) {
    if (sc_.model.is_moe(l)) {
      dispatch_half(l, mb, Pass::InputGrad);
      expert_half(l, mb, Pass::InputGrad);
    }
    attention_block(l, mb, Pass::InputGrad);
    if (!c.defer_weight) weight_grad(l, mb, true);
  }
  if (c.stage > 0) pipe_send(first, mb, rank_, pipeline_.schedule.rank_of(mb, c.stage - 1));
}

void StepBuilder::weight_chunk(const PipeChunk& c) {
  const int first = pipeline_.stage_first_layer[static_cast<std::size_t>(c.stage)];
  if (c.stage == pipeline_.schedule.stages - 1 && sc_.model.vocab > 0) lm_head(layers_, c.micro_batch, Pass::WeightGrad, false);
  for (int l = first + pipeline_.stage_layers(c.stage) - 1; l >= first; --l) weight_grad(l, c.micro_batch, false);
}

// `b.micro_batch` < 0: the forward alone.
void StepBuilder::overlapped_chunks(const PipeChunk& f, const PipeChunk& b) {
  const PipelineRun& p = pipeline_;
  const int last_stage = p.schedule.stages - 1;
  const bool with_b = b.micro_batch >= 0;
  const int nf = p.stage_layers(f.stage), nb = with_b ? p.stage_layers(b.stage) : 0;
  const int f0 = p.stage_first_layer[static_cast<std::size_t>(f.stage)];
  const int b_last = with_b ? p.stage_first_layer[static_cast<std::size_t>(b.stage)] + nb - 1 : 0;
  if (with_b && b.stage == last_stage && sc_.model.vocab > 0) {
    lm_head(layers_, b.micro_batch, Pass::InputGrad);
    lm_head(layers_, b.micro_batch, Pass::WeightGrad);
  }
  for (int i = 0; i < std::max(nf, nb); ++i) {
    const int lf = f0 + i, lb = b_last - i;
    const bool hf = i < nf, hb = i < nb;
    const bool moe_f = hf && sc_.model.is_moe(lf), moe_b = hb && sc_.model.is_moe(lb);
    if (hf) attention_block(lf, f.micro_batch, Pass::Forward);
    if (moe_b) dispatch_half(lb, b.micro_batch, Pass::InputGrad);
    if (moe_f) dispatch_half(lf, f.micro_batch, Pass::Forward);
    if (moe_b) expert_half(lb, b.micro_batch, Pass::InputGrad);
    if (moe_f) {
      expert_half(lf, f.micro_batch, Pass::Forward);
      moe_out(lf, f.micro_batch);
    }
    if (hb) {
      attention_block(lb, b.micro_batch, Pass::InputGrad);
      weight_grad(lb, b.micro_batch, true);
    }
  }
  if (f.stage == last_stage && sc_.model.vocab > 0) lm_head(layers_, f.micro_batch, Pass::Forward);
  if (with_b)  // as dualpipe.py sends both after the overlapped compute: each send waits for the pair
    for (int gpu = span_.first; gpu < span_.end(); ++gpu) {
      const TaskId tail = compute_tail_[static_cast<std::size_t>(gpu)];
      ready_[static_cast<std::size_t>(f.micro_batch)][static_cast<std::size_t>(gpu)].push_back(tail);
      ready_[static_cast<std::size_t>(b.micro_batch)][static_cast<std::size_t>(gpu)].push_back(tail);
    }
  if (f.stage < last_stage) pipe_send(f0 + nf - 1, f.micro_batch, rank_, p.schedule.rank_of(f.micro_batch, f.stage + 1));
  if (with_b && b.stage > 0)
    pipe_send(b_last - nb + 1, b.micro_batch, rank_, p.schedule.rank_of(b.micro_batch, b.stage - 1));
}

void StepBuilder::pipe_send(int l, int mb, int from, int to) {
  const int n = pipeline_.gpus_per_rank, src = from * n, dst = to * n;
  const Bytes bytes(mb_tokens(mb) * sc_.model.hidden * sc_.model.bytes_per_param);
  const Cluster* cl = &cluster_;
  const std::uint64_t key = KeyHasher().add(0x7070).add(src).add(dst).add(n).add(bytes.count()).key();
  const TaskId c = g_.collective_on(dst, n, Phase::PipeSend, l, mb, [cl, src, dst, n, bytes] {
    CommPlan plan;
    for (int i = 0; i < n; ++i) plan.add(*cl, src + i, dst + i, bytes);
    return plan;
  }, [key] { return key; });
  Deps& ready = ready_[static_cast<std::size_t>(mb)];
  for (int i = 0; i < n; ++i) {
    for (TaskId a : ready[static_cast<std::size_t>(src + i)]) g_.depend(a, c);
    ready[static_cast<std::size_t>(src + i)].clear();
  }
  for (int i = 0; i < n; ++i) ready[static_cast<std::size_t>(dst + i)] = {g_.arrival(c, dst + i)};
}

}  // namespace epsim
