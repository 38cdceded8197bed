// A fixed set of worker threads taking jobs from one FIFO queue. The sweep engine, and anything
// else that runs many independent simulations (search, serve), runs them on one of these: every job
// builds its own Simulation, which shares nothing with another (DESIGN.md: no globals).
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace epsim::explore {

// std::thread::hardware_concurrency(), at least 1.
int hardware_threads();

class ThreadPool {
 public:
  explicit ThreadPool(int threads);  // threads >= 1
  ~ThreadPool();                     // runs the jobs already queued, then joins
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  // Queues `job`; a job must not throw (wrap it: PointWorkers carries exceptions back).
  void submit(std::function<void()> job);
  int size() const { return static_cast<int>(threads_.size()); }

 private:
  void work();
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::function<void()>> jobs_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace epsim::explore
