// Runs scenario documents: one (run_point) or many on a thread pool (run_points, PointWorkers).
// This is the API the sweep, the deployment search and the server build on.
#pragma once

#include <chrono>
#include <cstddef>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include <nlohmann/json.hpp>

#include "tools/explore/point_result.h"
#include "tools/explore/thread_pool.h"

namespace epsim::explore {

// Resolves and simulates `doc` for `steps` steps (as `epsim run --steps`; the figures are the last
// step's). Bad input (ConfigError, InputError) comes back as PointResult::error; anything else
// (a SimulationError: a bug) is thrown. Safe to call from several threads at once.
PointResult run_point(const nlohmann::json& doc, int steps = 1);

// Every document on `threads` threads (0: hardware_threads()); results in the order of `docs`.
std::vector<PointResult> run_points(const std::vector<nlohmann::json>& docs, int threads, int steps = 1);

// Points by index on a thread pool, started one at a time by the caller (so that a work queue can
// hand points to whichever worker is free, local or remote) and collected as they finish.
class PointWorkers {
 public:
  using Run = std::function<PointResult(std::size_t index)>;
  struct Done {
    std::size_t index;
    PointResult result;
  };
  PointWorkers(int threads, Run run);
  ~PointWorkers();  // waits for the points in flight

  bool has_room() const { return in_flight_ < threads_; }  // fewer in flight than threads
  int in_flight() const { return in_flight_; }
  void start(std::size_t index);
  // The next finished point, waiting at most `wait`; rethrows what a point threw.
  std::optional<Done> next_done(std::chrono::milliseconds wait);

 private:
  struct Shared;
  int threads_;
  int in_flight_ = 0;
  Run run_;
  std::shared_ptr<Shared> shared_;
  std::unique_ptr<ThreadPool> pool_;  // last: joined first
};

}  // namespace epsim::explore
