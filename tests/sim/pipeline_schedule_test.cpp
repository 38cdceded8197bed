#include <doctest/doctest.h>

#include <map>
#include <string>

#include "models/errors.h"
#include "sim/pipeline_schedule.h"

using namespace epsim;

namespace {
std::string chunk_text(const PipeChunk& c) {
  std::string out(c.work == PipeWork::Forward ? "F" : c.work == PipeWork::Backward ? "B" : "W");
  out += std::to_string(c.micro_batch);
  if (c.defer_weight) out += 'w';
  return out;
}
std::string rank_text(const PipelineSchedule& s, int rank) {
  std::string out;
  for (const PipeSlot& slot : s.slots[static_cast<std::size_t>(rank)]) {
    if (!out.empty()) out += ' ';
    out += chunk_text(slot.chunk);
    if (slot.overlapped) out += '&' + chunk_text(*slot.overlapped);
  }
  return out;
}
}  // namespace

TEST_CASE("1f1b: warm-up forwards, one forward one backward, then the remaining backwards") {
  const PipelineSchedule s = make_pipeline_schedule("1f1b", 4, 6, 1);
  CHECK(rank_text(s, 0) == "F0 F1 F2 F3 B0 F4 B1 F5 B2 B3 B4 B5");
  CHECK(rank_text(s, 3) == "F0 B0 F1 B1 F2 B2 F3 B3 F4 B4 F5 B5");
  CHECK(peak_chunks_held(s) == std::vector<int>{4, 3, 2, 1});
}

TEST_CASE("dualpipe: deepseek-ai/DualPipe's eight steps on rank 0 of 4, 8 micro-batches") {
  // Micro-batches 0-3 enter at rank 0 (stage 0 here), 4-7 at rank 3 (stage 3 of the second
  // direction is on rank 0). Worked through dualpipe.py's step(): 2 F0, 1 (F0 F1), 1 (B1 W F1),
  // 1 (F0&B1, F1&B0), 1 (B1, F1&B0), 1 (B1, B0 deferred), 1 (W, B0 deferred), 1 W.
  const PipelineSchedule s = make_pipeline_schedule("dualpipe", 4, 8, 1);
  CHECK(rank_text(s, 0) == "F0 F1 F2 F4 B4w W4 F5 F3&B5 F6&B0 B6 F7&B1 B7 B2w W2 B3w W3");
  CHECK(s.rank_of(0, 0) == 0);
  CHECK(s.rank_of(4, 0) == 3);
  CHECK(s.rank_of(4, 3) == 0);
  CHECK(peak_chunks_held(s) == std::vector<int>{5, 5, 5, 5});
}

TEST_CASE("every schedule runs each chunk once: a forward and a backward per micro-batch and stage, a W per deferral") {
  for (const auto& [name, P, M, v] : std::vector<std::tuple<std::string, int, int, int>>{
           {"1f1b", 8, 20, 1}, {"interleaved", 4, 8, 3}, {"dualpipe", 8, 20, 1}, {"dualpipe", 16, 32, 1}}) {
    const PipelineSchedule s = make_pipeline_schedule(name, P, M, v);
    std::map<std::tuple<int, int, int>, int> seen;  // (work, mb, stage) -> times
    int deferred = 0, weights = 0;
    for (int r = 0; r < P; ++r)
      for (const PipeSlot& slot : s.slots[static_cast<std::size_t>(r)])
        for (const PipeChunk* c : {&slot.chunk, slot.overlapped ? &*slot.overlapped : nullptr}) {
          if (!c) continue;
          CHECK(s.rank_of(c->micro_batch, c->stage) == r);
          if (c->work == PipeWork::Weight) ++weights;
          else ++seen[{static_cast<int>(c->work), c->micro_batch, c->stage}];
          if (c->defer_weight) ++deferred;
        }
    CHECK(seen.size() == static_cast<std::size_t>(2 * M * s.stages));
    for (const auto& [key, n] : seen) CHECK(n == 1);
    CHECK(weights == deferred);
  }
}

TEST_CASE("pipeline schedule shapes") {
  CHECK_THROWS_AS(make_pipeline_schedule("dualpipe", 3, 8, 1), ConfigError);
  CHECK_THROWS_AS(make_pipeline_schedule("dualpipe", 4, 6, 1), ConfigError);
  CHECK_THROWS_AS(make_pipeline_schedule("interleaved", 4, 6, 2), ConfigError);
  CHECK_THROWS_AS(make_pipeline_schedule("gpipe", 4, 8, 1), ConfigError);
}
