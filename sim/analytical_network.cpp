#include "sim/analytical_network.h"

#include <algorithm>
#include <memory>
#include <numeric>

#include "models/errors.h"

namespace epsim {

AnalyticalNetwork::AnalyticalNetwork(Simulator& sim, const Cluster& cluster, bool replay)
    : sim_(sim), cluster_(cluster), replay_(replay), counters_(cluster.links().size()),
      load_(cluster.links().size(), 0), count_(cluster.links().size(), 0) {}

void AnalyticalNetwork::start(Transfer transfer) {
  if (transfer.key != 0 && transfer.on_flow_done) throw SimulationError("a keyed transfer reports endpoints, not flows");
  auto t = std::make_shared<Transfer>(std::move(transfer));
  if (replay_ && t->key != 0)
    if (auto record = memo_.find(t->key)) return replay(record, t);
  if (t->fill) t->fill(*t);
  solve(t);
}

// Endpoints with nothing to wait for are done at once, before anything of the transfer is
// scheduled (their callbacks may start other transfers).
void AnalyticalNetwork::finish_empty_endpoints(const std::shared_ptr<Transfer>& t, const std::vector<std::int32_t>& pending) {
  if (!t->on_endpoint_done) return;
  for (GpuId e = 0; e < t->endpoints; ++e)
    if (pending[static_cast<std::size_t>(e)] == 0) t->on_endpoint_done(e);
}

void AnalyticalNetwork::solve(const std::shared_ptr<Transfer>& t) {
  const auto& flows = t->flows;
  std::vector<LinkId> touched;
  for (const auto& f : flows)
    for (LinkId l : f.route) {
      if (count_[static_cast<std::size_t>(l)]++ == 0) touched.push_back(l);
      load_[static_cast<std::size_t>(l)] += f.bytes.count();
    }
  // Only a keyed transfer with replay on is recorded (its links in id order).
  const bool recording = t->key != 0 && replay_;
  if (recording) std::sort(touched.begin(), touched.end());
  MemoComponent rec;
  std::vector<Time> drain(cluster_.links().size());
  for (LinkId l : touched) {
    const auto i = static_cast<std::size_t>(l);
    drain[i] = Bytes(load_[i]) / cluster_.link(l).bandwidth;
    const LinkCounters added{Bytes(load_[i]), drain[i], count_[i]};
    counters_[i].add(added);
    if (!recording) continue;
    rec.links.push_back(l);
    rec.counters.push_back(added);
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

  auto pending = std::make_shared<std::vector<std::int32_t>>(static_cast<std::size_t>(t->endpoints), 0);
  if (t->endpoints > 0)
    for (std::size_t f = 0; f < flows.size(); ++f) {
      ++(*pending)[static_cast<std::size_t>(t->src[f])];
      ++(*pending)[static_cast<std::size_t>(t->dst[f])];
    }
  if (recording) {  // the order in which the events below will finish endpoints
    std::vector<std::int32_t> left = *pending;
    for (std::size_t k : order)
      for (std::size_t f : buckets[k]) {
        if (t->endpoints == 0) break;
        for (GpuId e : {t->src[f], t->dst[f]})
          if (--left[static_cast<std::size_t>(e)] == 0) rec.endpoint_done.emplace_back(e, times[k] - sim_.now());
      }
    rec.end = rec.drained = times.empty() ? Time::zero() : times[order.back()] - sim_.now();
    MemoRecord record;
    record.components.push_back(std::move(rec));
    memo_.store(t->key, std::move(record));
  }
  finish_empty_endpoints(t, *pending);

  for (std::size_t k = 0; k < order.size(); ++k) {
    const bool final_bucket = k + 1 == order.size();
    auto bucket = std::make_shared<std::vector<std::size_t>>(std::move(buckets[order[k]]));
    sim_.at(times[order[k]], [t, bucket, final_bucket, pending] {
      for (std::size_t f : *bucket) {
        if (t->on_flow_done) t->on_flow_done(f);
        if (t->endpoints == 0) continue;
        for (GpuId e : {t->src[f], t->dst[f]})
          if (--(*pending)[static_cast<std::size_t>(e)] == 0 && t->on_endpoint_done) t->on_endpoint_done(e);
      }
      if (final_bucket && t->on_done) t->on_done();
    });
  }
  if (flows.empty() && t->on_done) sim_.at(sim_.now(), [t] { t->on_done(); });
}

void AnalyticalNetwork::replay(std::shared_ptr<const MemoRecord> record, const std::shared_ptr<Transfer>& t) {
  ++memo_.stats().replayed;
  const MemoComponent& c = record->components.front();
  for (std::size_t k = 0; k < c.links.size(); ++k) counters_[static_cast<std::size_t>(c.links[k])].add(c.counters[k]);
  std::vector<std::int32_t> pending(static_cast<std::size_t>(t->endpoints), 0);
  for (const auto& [e, at] : c.endpoint_done) pending[static_cast<std::size_t>(e)] = 1;
  finish_empty_endpoints(t, pending);
  // One event per distinct offset; endpoints in the order the solved run finished them.
  for (const auto& [i, j] : same_offset_runs(c.endpoint_done)) {
    const bool final_group = j == c.endpoint_done.size() && c.endpoint_done[i].second == c.end;
    sim_.at(sim_.now() + c.endpoint_done[i].second, [t, record, i, j, final_group] {
      const auto& done = record->components.front().endpoint_done;
      if (t->on_endpoint_done)
        for (std::size_t k = i; k < j; ++k) t->on_endpoint_done(done[k].first);
      if (final_group && t->on_done) t->on_done();
    });
  }
  if (c.endpoint_done.empty() || c.endpoint_done.back().second != c.end)
    sim_.at(sim_.now() + c.end, [t] { if (t->on_done) t->on_done(); });
}

}  // namespace epsim
