#include "sim/analytical_network.h"

#include <algorithm>
#include <memory>
#include <numeric>

namespace epsim {

AnalyticalNetwork::AnalyticalNetwork(Simulator& sim, const Cluster& cluster)
    : sim_(sim), cluster_(cluster), counters_(cluster.links().size()),
      load_(cluster.links().size(), 0), count_(cluster.links().size(), 0) {}

void AnalyticalNetwork::start(Transfer transfer) {
  auto t = std::make_shared<Transfer>(std::move(transfer));
  const auto& flows = t->flows;
  std::vector<LinkId> touched;
  for (const auto& f : flows)
    for (LinkId l : f.route) {
      if (count_[static_cast<std::size_t>(l)]++ == 0) touched.push_back(l);
      load_[static_cast<std::size_t>(l)] += f.bytes.count();
    }
  std::vector<Time> drain(cluster_.links().size());
  for (LinkId l : touched) {
    const auto i = static_cast<std::size_t>(l);
    drain[i] = Bytes(load_[i]) / cluster_.link(l).bandwidth;
    counters_[i].bytes += Bytes(load_[i]);
    counters_[i].busy += drain[i];
    counters_[i].peak_flows = std::max(counters_[i].peak_flows, count_[i]);
  }
  std::vector<Time> arrive(flows.size());
  for (std::size_t f = 0; f < flows.size(); ++f) {
    Time worst = Time::zero();
    for (LinkId l : flows[f].route) worst = max(worst, drain[static_cast<std::size_t>(l)]);
    arrive[f] = sim_.now() + worst + flows[f].route.latency;
  }
  for (LinkId l : touched) load_[static_cast<std::size_t>(l)] = count_[static_cast<std::size_t>(l)] = 0;

  // One event per distinct arrival time, flows in index order within it: deterministic and cheap
  // (an all-to-all has few distinct arrival times, so buckets are found by a short linear scan).
  std::vector<Time> times;
  std::vector<std::vector<std::size_t>> buckets;
  std::size_t last = 0;
  for (std::size_t f = 0; f < flows.size(); ++f) {
    if (last < times.size() && times[last] == arrive[f]) {
      buckets[last].push_back(f);
      continue;
    }
    last = std::find(times.begin(), times.end(), arrive[f]) - times.begin();
    if (last == times.size()) {
      times.push_back(arrive[f]);
      buckets.emplace_back();
    }
    buckets[last].push_back(f);
  }
  std::vector<std::size_t> order(times.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return times[a] < times[b]; });
  for (std::size_t k = 0; k < order.size(); ++k) {
    const bool final_bucket = k + 1 == order.size();
    auto bucket = std::make_shared<std::vector<std::size_t>>(std::move(buckets[order[k]]));
    sim_.at(times[order[k]], [t, bucket, final_bucket] {
      if (t->on_flow_done)
        for (std::size_t f : *bucket) t->on_flow_done(f);
      if (final_bucket && t->on_done) t->on_done();
    });
  }
  const std::size_t n = flows.size();
  if (n == 0 && t->on_done) sim_.at(sim_.now(), [t] { t->on_done(); });
}

}  // namespace epsim
