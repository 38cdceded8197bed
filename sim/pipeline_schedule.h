// Pipeline-parallel schedules as data: for each pipeline rank (a stage of GPUs), the ordered list of
// chunks it computes. The step builder emits the chunks' ops in that order on the rank's streams;
// data dependencies between ranks (a forward needs the previous stage's activations, a backward the
// next stage's gradients) do the rest.
//
// A chunk is the forward (F), the backward (B: input gradient, and the weight gradient unless it is
// deferred) or the deferred weight gradient (W) of one micro-batch on one virtual stage (a run of
// consecutive layers). A slot is one chunk, or a forward overlapped with the backward of another
// micro-batch (DualPipe's F&B: their ops interleave so one's compute hides the other's all-to-all).
//
//   1f1b         PipeDream-flush / Megatron: rank r runs min(PP - r - 1, M) warm-up forwards, then
//                alternates F and B, then drains the backwards. Bubble (PP-1)(F+B).
//   interleaved  Megatron's virtual pipeline: v chunks per rank (virtual stage c x PP + r), M a
//                multiple of PP, warm-up (PP - r - 1) x 2 + (v - 1) x PP forwards. Bubble
//                (PP-1)(F+B)/v in units of a whole rank's F and B.
//   dualpipe     DeepSeek-V3's bidirectional schedule (deepseek-ai/DualPipe, dualpipe.py, step 1-8):
//                half of the M micro-batches enter at rank 0, half at rank PP-1; rank r holds
//                stage r of the first direction and stage PP-1-r of the second. Backward chunks
//                of steps 3, 6 (second half) and 7 defer their weight gradients to W chunks (zero
//                bubble). Bubble (PP/2-1)(F&B+B-3W), activations PP+1 chunks on every rank.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace epsim {

enum class PipeWork { Forward, Backward, Weight };

struct PipeChunk {
  PipeWork work = PipeWork::Forward;
  int micro_batch = 0;
  int stage = 0;              // virtual stage of the micro-batch's direction
  bool defer_weight = false;  // Backward: the weight gradient waits for a later Weight chunk
};

struct PipeSlot {
  PipeChunk chunk;
  std::optional<PipeChunk> overlapped;  // a Backward run interleaved with `chunk` (a Forward)
};

struct PipelineSchedule {
  std::string name;
  int ranks = 1;
  int micro_batches = 1;
  int stages = 1;              // virtual stages per direction (ranks x chunks per rank and direction)
  bool bidirectional = false;  // dualpipe: micro-batches M/2.. enter at the last rank
  std::vector<std::vector<PipeSlot>> slots;  // per rank, in execution order

  int direction(int micro_batch) const { return bidirectional && micro_batch >= micro_batches / 2 ? 1 : 0; }
  // The rank that computes `stage` for micro-batch `micro_batch`.
  int rank_of(int micro_batch, int stage) const;
  // Virtual stages each rank holds (dualpipe: 2, interleaved: its chunks, 1f1b: 1), for weights.
  int stages_per_rank() const { return bidirectional ? 2 : stages / ranks; }
};

// `name`: 1f1b | interleaved | dualpipe. Throws ConfigError naming schedule.* when the shape does
// not fit the schedule (interleaved: M a multiple of PP; dualpipe: PP and M even, M >= 2 PP).
PipelineSchedule make_pipeline_schedule(const std::string& name, int ranks, int micro_batches, int chunks_per_rank);
const std::vector<std::string>& pipeline_schedule_names();

// Per rank, the most activation held at once, a chunk counting `size(stage)`: a chunk is held from
// its forward until its weight gradient is done (its backward, or the W chunk when deferred); in an
// F&B slot the forward's activation is taken before the backward's is freed.
std::vector<double> peak_held(const PipelineSchedule& schedule, const std::function<double(int stage)>& size);
// The same in chunks: 1f1b PP - r, dualpipe PP + 1 on every rank.
std::vector<int> peak_chunks_held(const PipelineSchedule& schedule);

}  // namespace epsim
