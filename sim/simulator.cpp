#include "sim/simulator.h"

#include "models/errors.h"

namespace epsim {

void Simulator::at(Time t, Action action) {
  if (t < now_) throw SimulationError("event scheduled in the past");
  queue_.push(Event{t, next_seq_++, std::move(action)});
}

std::uint64_t Simulator::run() { return run_events(Time::infinity()); }

std::uint64_t Simulator::run_until(Time t) {
  const std::uint64_t n = run_events(t);
  if (now_ < t) now_ = t;
  return n;
}

std::uint64_t Simulator::run_events(Time limit) {
  const std::uint64_t before = executed_;
  while (!queue_.empty() && queue_.top().time <= limit) {
    Event e = std::move(const_cast<Event&>(queue_.top()));
    queue_.pop();
    now_ = e.time;
    ++executed_;
    e.action();
  }
  return executed_ - before;
}

}  // namespace epsim
