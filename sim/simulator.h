// The discrete-event engine: a clock and a queue of actions ordered by (time, insertion sequence).
//
// Invariants: time never goes backwards; two events at the same time run in the order they were
// scheduled, so a run is bit-for-bit deterministic. No globals: everything that needs the clock is
// handed a Simulator&.
#pragma once

#include <cstdint>
#include <functional>
#include <queue>
#include <vector>

#include "models/units.h"

namespace epsim {

class Simulator {
 public:
  using Action = std::function<void()>;

  Time now() const { return now_; }
  // Schedules `action` at absolute time `t` (t >= now()).
  void at(Time t, Action action);
  void after(Time delay, Action action) { at(now_ + delay, std::move(action)); }
  // Runs until the queue is empty; returns the number of events executed.
  std::uint64_t run();
  // Runs the events due at or before `t`, then sets the clock to `t`; later events stay queued.
  std::uint64_t run_until(Time t);
  std::uint64_t events_executed() const { return executed_; }

 private:
  // Runs the events due at or before `limit` (the clock stays at the last one run).
  std::uint64_t run_events(Time limit);
  struct Event {
    Time time;
    std::uint64_t seq;
    Action action;
  };
  struct Later {
    bool operator()(const Event& a, const Event& b) const {
      return a.time != b.time ? a.time > b.time : a.seq > b.seq;
    }
  };
  std::priority_queue<Event, std::vector<Event>, Later> queue_;
  Time now_ = Time::zero();
  std::uint64_t next_seq_ = 0;
  std::uint64_t executed_ = 0;
};

}  // namespace epsim
