#include "sim/step_distribution.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace epsim {

StepDistribution step_distribution(const std::vector<StepSummary>& steps, const std::vector<Time>& straggle) {
  StepDistribution d;
  d.steps = static_cast<int>(steps.size());
  if (steps.empty()) return d;
  std::vector<std::size_t> order(steps.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return steps[a].step_time < steps[b].step_time; });
  auto rank = [&](double q) {  // nearest rank
    const auto k = static_cast<std::size_t>(std::ceil(q * static_cast<double>(steps.size())));
    return order[std::clamp<std::size_t>(k, 1, steps.size()) - 1];
  };
  const std::size_t i50 = rank(0.50), i99 = rank(0.99);
  d.p50_step = steps[i50].step;
  d.p99_step = steps[i99].step;
  d.p50 = steps[i50].step_time;
  d.p99 = steps[i99].step_time;
  d.wait_p50 = steps[i50].barrier_wait;
  d.wait_p99 = steps[i99].barrier_wait;
  d.alltoall_wait_p50 = steps[i50].alltoall_wait;
  d.alltoall_wait_p99 = steps[i99].alltoall_wait;
  d.min = steps[order.front()].step_time;
  d.max = steps[order.back()].step_time;
  std::int64_t sum = 0, wait = 0, a2a = 0;
  for (const StepSummary& s : steps) {
    sum += s.step_time.picoseconds();
    wait += s.barrier_wait.picoseconds();
    a2a += s.alltoall_wait.picoseconds();
  }
  const auto n = static_cast<std::int64_t>(steps.size());
  d.mean = Time::ps(sum / n);
  d.wait_mean = Time::ps(wait / n);
  d.alltoall_wait_mean = Time::ps(a2a / n);
  std::vector<int> gpus(straggle.size());
  std::iota(gpus.begin(), gpus.end(), 0);
  std::stable_sort(gpus.begin(), gpus.end(), [&](int a, int b) { return straggle[static_cast<std::size_t>(a)] > straggle[static_cast<std::size_t>(b)]; });
  for (const Time& t : straggle) d.straggle_total += t;
  for (std::size_t k = 0; k < gpus.size() && k < 5; ++k)
    if (straggle[static_cast<std::size_t>(gpus[k])] > Time::zero()) d.stragglers.push_back({gpus[k], straggle[static_cast<std::size_t>(gpus[k])]});
  return d;
}

nlohmann::json to_json(const StepDistribution& d) {
  auto ms = [](Time t) { return t.to_ms(); };
  nlohmann::json stragglers = nlohmann::json::array();
  for (const auto& s : d.stragglers)
    stragglers.push_back({{"gpu", s.gpu},
                          {"wait_ms", ms(s.wait)},
                          {"share", d.straggle_total > Time::zero() ? s.wait / d.straggle_total : 0.0}});
  const double tail = d.tail().to_ms();
  return {{"steps", d.steps},
          {"step_ms", {{"p50", ms(d.p50)}, {"p99", ms(d.p99)}, {"mean", ms(d.mean)}, {"min", ms(d.min)}, {"max", ms(d.max)}}},
          {"p50_step", d.p50_step},
          {"p99_step", d.p99_step},
          {"barrier_wait_ms", {{"p50_step", ms(d.wait_p50)}, {"p99_step", ms(d.wait_p99)}, {"mean", ms(d.wait_mean)}}},
          {"alltoall_wait_ms", {{"p50_step", ms(d.alltoall_wait_p50)}, {"p99_step", ms(d.alltoall_wait_p99)}, {"mean", ms(d.alltoall_wait_mean)}}},
          {"tail_ms", tail},
          {"tail_from_barriers_ms", d.tail_from_barriers().to_ms()},
          {"tail_from_barriers_share", tail > 0 ? d.tail_from_barriers().to_ms() / tail : 0.0},
          {"stragglers", stragglers}};
}

}  // namespace epsim
