// The sweep engine: the points of a SweepSpec not yet in OUT/results.jsonl run on a work queue
// served to local threads (and, under MPI, to other ranks: RemoteWorkers); each finished point is
// appended to results.jsonl at once; at the end OUT/summary.csv tabulates every point of the sweep.
#pragma once

#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tools/explore/point_result.h"
#include "tools/explore/sweep_spec.h"

namespace epsim::explore {

class ResultsFile;

struct SweepOptions {
  std::string out;        // directory of results.jsonl and summary.csv
  int threads = 0;        // local worker threads; 0: all cores
  bool tty = false;       // progress bar (else a line per point)
  std::string version;    // recorded in every line
};

struct SweepSummary {
  std::size_t points = 0;   // in the sweep
  std::size_t skipped = 0;  // already in results.jsonl
  std::size_t ran = 0;      // by this run
  std::size_t failed = 0;   // of the sweep's points, rejected (their line holds "error")
  std::string first_error;  // the first failed point's message, with its axes
  double wall_s = 0;
};

// Points that run elsewhere (other MPI ranks). The engine calls serve() often: it takes what the
// remote workers sent (finished points go to `done`) and answers each request for work with the
// next index of `queue` (popped) or, once the queue is empty, a stop. Never blocks.
class RemoteWorkers {
 public:
  using Done = std::function<void(std::size_t index, PointResult result)>;
  virtual ~RemoteWorkers() = default;
  virtual void serve(std::deque<std::size_t>& queue, const Done& done) = 0;
  virtual bool finished() const = 0;  // every remote worker stopped, every result received
  virtual std::vector<std::size_t> results_per_worker() const = 0;  // points each worker finished
};

// One line of results.jsonl: id, index, axes, version, wall_s, and scenario + metrics or error.
nlohmann::json sweep_record(const SweepPoint& p, const PointResult& r, const std::string& version);

// Checks every point's scenario before anything runs; the first rejected one throws ConfigError
// (or InputError) with the point named. Skipped when spec.skip_invalid.
void check_points(const SweepSpec& spec, const std::vector<SweepPoint>& points, const std::vector<std::size_t>& which);

// One run of a sweep over OUT (see the file comment), in two parts so that MPI ranks can agree that
// every rank is ready before any point runs.
class SweepRun {
 public:
  // Creates `o.out`, opens (and locks) results.jsonl, writes sweep.json (name, axis keys in order,
  // point count, version), queues the points it lacks and checks them (check_points). Throws
  // ConfigError / InputError.
  SweepRun(const SweepSpec& spec, SweepOptions o);
  ~SweepRun();
  const std::vector<SweepPoint>& points() const { return points_; }
  std::size_t pending() const { return queue_.size(); }
  // Runs the queued points on local threads and `remote`, appending each line as it finishes, then
  // writes summary.csv. Throws InputError when a file cannot be written.
  SweepSummary run(RemoteWorkers* remote = nullptr);

 private:
  const SweepSpec& spec_;
  SweepOptions o_;
  std::vector<SweepPoint> points_;
  std::unique_ptr<ResultsFile> results_;
  std::deque<std::size_t> queue_;
  std::size_t skipped_ = 0;
};

// summary.csv: a row per point of `points` that `records` holds, in sweep order: index, id, each
// axis key, each headline metric, wall_s, error.
std::string summary_csv(const SweepSpec& spec, const std::vector<SweepPoint>& points, const std::vector<nlohmann::json>& records);

}  // namespace epsim::explore
