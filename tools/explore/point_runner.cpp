#include "tools/explore/point_runner.h"

#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>

#include "models/errors.h"
#include "sim/report.h"
#include "sim/resolved_scenario.h"
#include "sim/simulation.h"
#include "tools/explore/headline_metrics.h"

namespace epsim::explore {

nlohmann::json PointResult::to_json() const {
  if (!ok()) return {{"error", error}, {"wall_s", wall_s}};
  return {{"scenario", scenario}, {"metrics", metrics}, {"wall_s", wall_s}};
}

PointResult PointResult::from_json(const nlohmann::json& j) {
  PointResult r;
  r.wall_s = j.at("wall_s").get<double>();
  if (j.contains("error")) {
    r.error = j.at("error").get<std::string>();
    return r;
  }
  r.scenario = j.at("scenario");
  r.metrics = j.at("metrics");
  return r;
}

PointResult run_point(const nlohmann::json& doc, int steps) {
  PointResult r;
  const auto t0 = std::chrono::steady_clock::now();
  try {
    r.scenario = resolved_scenario(doc);
    Simulation sim(Scenario::from_json(doc));
    sim.run_steps(steps);
    r.metrics = headline_metrics(report_json(sim));
  } catch (const ConfigError& e) {
    r.error = e.what();
  } catch (const InputError& e) {
    r.error = e.what();
  }
  if (!r.ok()) r.scenario = nullptr;
  r.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

// Finished points, handed from the pool's threads to the caller's.
struct PointWorkers::Shared {
  std::mutex mutex;
  std::condition_variable done;
  std::deque<Done> finished;
  std::exception_ptr error;
};

PointWorkers::PointWorkers(int threads, Run run)
    : threads_(threads > 0 ? threads : hardware_threads()), run_(std::move(run)),
      shared_(std::make_shared<Shared>()), pool_(std::make_unique<ThreadPool>(threads_)) {}

PointWorkers::~PointWorkers() { pool_.reset(); }

void PointWorkers::start(std::size_t index) {
  ++in_flight_;
  pool_->submit([shared = shared_, run = &run_, index] {
    std::optional<Done> d;
    std::exception_ptr error;
    try {
      d = Done{index, (*run)(index)};
    } catch (...) {
      error = std::current_exception();
    }
    {
      std::lock_guard lock(shared->mutex);
      if (d) shared->finished.push_back(std::move(*d));
      if (error && !shared->error) shared->error = error;
    }
    shared->done.notify_one();
  });
}

std::optional<PointWorkers::Done> PointWorkers::next_done(std::chrono::milliseconds wait) {
  std::unique_lock lock(shared_->mutex);
  shared_->done.wait_for(lock, wait, [this] { return !shared_->finished.empty() || shared_->error; });
  if (shared_->error) std::rethrow_exception(shared_->error);
  if (shared_->finished.empty()) return std::nullopt;
  Done d = std::move(shared_->finished.front());
  shared_->finished.pop_front();
  --in_flight_;
  return d;
}

std::vector<PointResult> run_points(const std::vector<nlohmann::json>& docs, int threads, int steps) {
  std::vector<PointResult> out(docs.size());
  PointWorkers workers(threads, [&docs, steps](std::size_t i) { return run_point(docs[i], steps); });
  std::size_t next = 0, finished = 0;
  while (finished < docs.size()) {
    while (workers.has_room() && next < docs.size()) workers.start(next++);
    if (auto d = workers.next_done(std::chrono::milliseconds(1000))) {
      out[d->index] = std::move(d->result);
      ++finished;
    }
  }
  return out;
}

}  // namespace epsim::explore
