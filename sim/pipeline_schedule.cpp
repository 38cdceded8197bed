#include "sim/pipeline_schedule.h"

#include <algorithm>
#include <deque>

#include "models/errors.h"

namespace epsim {

namespace {
std::size_t z(int i) { return static_cast<std::size_t>(i); }

PipeSlot forward(int mb, int stage) { return PipeSlot{PipeChunk{PipeWork::Forward, mb, stage, false}, std::nullopt}; }
PipeSlot backward(int mb, int stage, bool defer = false) {
  return PipeSlot{PipeChunk{PipeWork::Backward, mb, stage, defer}, std::nullopt};
}

PipelineSchedule one_f_one_b(int P, int M) {
  PipelineSchedule s{"1f1b", P, M, P, false, std::vector<std::vector<PipeSlot>>(z(P))};
  for (int r = 0; r < P; ++r) {
    auto& L = s.slots[z(r)];
    const int warmup = std::min(P - r - 1, M);
    int f = 0, b = 0;
    while (f < warmup) L.push_back(forward(f++, r));
    while (f < M) {
      L.push_back(forward(f++, r));
      L.push_back(backward(b++, r));
    }
    while (b < M) L.push_back(backward(b++, r));
  }
  return s;
}

// Megatron-LM's interleaved schedule (forward_backward_pipelining_with_interleaving): forward
// micro-step k runs model chunk (k / P) mod v on micro-batch (k / (P v)) P + k mod P; backward
// micro-step k runs chunk v - 1 - that.
PipelineSchedule interleaved(int P, int M, int v) {
  PipelineSchedule s{"interleaved", P, M, P * v, false, std::vector<std::vector<PipeSlot>>(z(P))};
  const int total = M * v;
  auto chunk = [&](int k) { return (k / P) % v; };
  auto micro_batch = [&](int k) { return (k / (P * v)) * P + k % P; };
  for (int r = 0; r < P; ++r) {
    auto& L = s.slots[z(r)];
    const int warmup = std::min((P - r - 1) * 2 + (v - 1) * P, total);
    for (int k = 0; k < warmup; ++k) L.push_back(forward(micro_batch(k), chunk(k) * P + r));
    for (int k = 0; k < total - warmup; ++k) {
      L.push_back(forward(micro_batch(k + warmup), chunk(k + warmup) * P + r));
      L.push_back(backward(micro_batch(k), (v - 1 - chunk(k)) * P + r));
    }
    for (int k = total - warmup; k < total; ++k) L.push_back(backward(micro_batch(k), (v - 1 - chunk(k)) * P + r));
  }
  return s;
}

// One rank of DualPipe, step by step as deepseek-ai/DualPipe's DualPipe.step() issues its chunks.
// Phase 0 is the first direction on the first half of the ranks and the second on the other half.
class DualPipeRank {
 public:
  DualPipeRank(int P, int M, int r) : P_(P), half_mbs_(M / 2), r_(r), second_(r >= P / 2) {}

  std::vector<PipeSlot> build() {
    const int half = P_ / 2, hr = std::min(r_, P_ - 1 - r_);
    const bool middle = r_ == half - 1 || r_ == half;
    for (int i = 0; i < (half - hr - 1) * 2; ++i) F(0);                       // step 1: nF0
    for (int i = 0; i < hr + 1; ++i) F(0), F(1);                               // step 2: nF0F1
    for (int i = 0; i < half - hr - 1; ++i) B(1, true), W(), F(1);            // step 3: nB1W1F1
    for (int i = 0; i < half_mbs_ - P_ + hr + 1; ++i) {                        // step 4: nF0B1F1B0
      if (i == 0 && middle) F(0), B(1);  // not overlapped: shortens the bubble (dualpipe.py)
      else FB(0, 1);
      FB(1, 0);
    }
    for (int i = 0; i < half - hr - 1; ++i) B(1), FB(1, 0);                   // step 5: nB1F1B0
    bool zb = false;                                                           // step 6: nB1B0
    for (int i = 0; i < hr + 1; ++i) {
      if (i == (hr + 1) / 2 && hr % 2 == 1) zb = true;
      B(1, zb);
      if (i == (hr + 1) / 2 && hr % 2 == 0) zb = true;
      B(0, zb);
    }
    for (int i = 0; i < half - hr - 1; ++i) W(), B(0, true);                  // step 7: nWB0
    for (int i = 0; i < hr + 1; ++i) W();                                      // step 8: nW
    if (!deferred_.empty()) throw SimulationError("dualpipe: weight gradients left over");
    return std::move(out_);
  }

 private:
  int direction(int phase) const { return phase ^ (second_ ? 1 : 0); }
  int stage(int dir) const { return dir == 0 ? r_ : P_ - 1 - r_; }
  PipeChunk next_forward(int phase) {
    const int d = direction(phase);
    return PipeChunk{PipeWork::Forward, d * half_mbs_ + f_[z(d)]++, stage(d), false};
  }
  PipeChunk next_backward(int phase, bool defer) {
    const int d = direction(phase);
    PipeChunk c{PipeWork::Backward, d * half_mbs_ + b_[z(d)]++, stage(d), defer};
    if (defer) deferred_.push_back(c);
    return c;
  }
  void F(int phase) { out_.push_back(PipeSlot{next_forward(phase), std::nullopt}); }
  void B(int phase, bool defer = false) { out_.push_back(PipeSlot{next_backward(phase, defer), std::nullopt}); }
  void FB(int f_phase, int b_phase) {
    PipeChunk f = next_forward(f_phase);
    out_.push_back(PipeSlot{f, next_backward(b_phase, false)});
  }
  void W() {  // the oldest deferred weight gradient (dualpipe.py's WeightGradStore is FIFO)
    if (deferred_.empty()) throw SimulationError("dualpipe: a weight chunk without a deferred backward");
    PipeChunk c = deferred_.front();
    deferred_.pop_front();
    c.work = PipeWork::Weight;
    c.defer_weight = false;
    out_.push_back(PipeSlot{c, std::nullopt});
  }

  int P_, half_mbs_, r_;
  bool second_;
  int f_[2] = {0, 0}, b_[2] = {0, 0};
  std::deque<PipeChunk> deferred_;
  std::vector<PipeSlot> out_;
};

PipelineSchedule dualpipe(int P, int M) {
  PipelineSchedule s{"dualpipe", P, M, P, true, {}};
  for (int r = 0; r < P; ++r) s.slots.push_back(DualPipeRank(P, M, r).build());
  return s;
}
}  // namespace

int PipelineSchedule::rank_of(int micro_batch, int stage) const {
  if (bidirectional) return direction(micro_batch) == 0 ? stage : ranks - 1 - stage;
  return stage % ranks;
}

const std::vector<std::string>& pipeline_schedule_names() {
  static const std::vector<std::string> names = {"1f1b", "interleaved", "dualpipe"};
  return names;
}

PipelineSchedule make_pipeline_schedule(const std::string& name, int ranks, int micro_batches, int chunks_per_rank) {
  const std::string m = std::to_string(micro_batches);
  if (name == "1f1b") return one_f_one_b(ranks, micro_batches);
  if (name == "interleaved") {
    if (micro_batches % ranks != 0)
      throw ConfigError("schedule.pipeline_micro_batches", m, "interleaved: must be a multiple of parallelism.pp = " + std::to_string(ranks));
    return interleaved(ranks, micro_batches, chunks_per_rank);
  }
  if (name == "dualpipe") {
    if (ranks % 2 != 0) throw ConfigError("parallelism.pp", std::to_string(ranks), "dualpipe: must be even");
    if (micro_batches % 2 != 0 || micro_batches < 2 * ranks)
      throw ConfigError("schedule.pipeline_micro_batches", m,
                        "dualpipe: must be even and >= 2 x parallelism.pp = " + std::to_string(2 * ranks) +
                            " (half enter at each end)");
    return dualpipe(ranks, micro_batches);
  }
  throw ConfigError("schedule.pipeline", "\"" + name + "\"", "must be one of: 1f1b, interleaved, dualpipe");
}

std::vector<double> peak_held(const PipelineSchedule& schedule, const std::function<double(int stage)>& size) {
  std::vector<double> out;
  for (const auto& slots : schedule.slots) {
    double held = 0, peak = 0;
    auto take = [&](const PipeChunk& c) {
      if (c.work == PipeWork::Forward) held += size(c.stage);
      else if (c.work == PipeWork::Weight || !c.defer_weight) held -= size(c.stage);
      peak = std::max(peak, held);
    };
    for (const PipeSlot& s : slots) {
      take(s.chunk);
      if (s.overlapped) take(*s.overlapped);
    }
    out.push_back(peak);
  }
  return out;
}

std::vector<int> peak_chunks_held(const PipelineSchedule& schedule) {
  std::vector<int> out;
  for (double p : peak_held(schedule, [](int) { return 1.0; })) out.push_back(static_cast<int>(p));
  return out;
}

}  // namespace epsim
