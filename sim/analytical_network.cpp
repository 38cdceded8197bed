#include "sim/analytical_network.h"

#include <algorithm>
#include <memory>
#include <numeric>

#include "models/errors.h"
#include "sim/pair_traffic.h"

namespace epsim {

AnalyticalNetwork::AnalyticalNetwork(Simulator& sim, const Cluster& cluster, bool replay)
    : sim_(sim), cluster_(cluster), replay_(replay), counters_(cluster.links().size()),
      load_(cluster.links().size(), 0), count_(cluster.links().size(), 0), drain_(cluster.links().size()) {}

void AnalyticalNetwork::start(Transfer transfer) {
  if (transfer.key != 0 && transfer.on_flow_done) throw SimulationError("a keyed transfer reports endpoints, not flows");
  auto t = std::make_shared<Transfer>(std::move(transfer));
  if (replay_ && t->key != 0)
    if (auto record = memo_.find(t->key)) return replay(record, t);
  if (t->fill_pairs && !t->on_flow_done)
    if (const std::shared_ptr<const PairChunk> pairs = t->fill_pairs()) return solve_pairs(t, *pairs);
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
  // Consecutive flows mostly leave through the same first link (plans go source by source): its
  // sums stay in registers until the link changes (same sums, fewer dependent stores).
  LinkId first = -1;
  std::int64_t first_count = 0, first_load = 0;
  const auto flush_first = [&] {
    if (first < 0) return;
    const auto i = static_cast<std::size_t>(first);
    if (count_[i] == 0) touched.push_back(first);
    count_[i] += first_count;
    load_[i] += first_load;
  };
  for (const auto& f : flows) {
    const Route& r = f.route;
    if (r.hops == 0) continue;
    if (r.link[0] != first) {
      flush_first();
      first = r.link[0];
      first_count = first_load = 0;
    }
    ++first_count;
    first_load += f.bytes.count();
    for (std::size_t h = 1; h < r.hops; ++h) {
      const auto l = static_cast<std::size_t>(r.link[h]);
      if (count_[l]++ == 0) touched.push_back(r.link[h]);
      load_[l] += f.bytes.count();
    }
  }
  flush_first();
  const bool endpoints = !t->on_flow_done && t->endpoints > 0;
  settle(t, touched, flows.size(), [&](auto&& visit) {
    for (std::size_t f = 0; f < flows.size(); ++f) {
      const Route& r = flows[f].route;
      visit(endpoints ? t->src[f] : 0, endpoints ? t->dst[f] : 0, 2 * static_cast<std::int64_t>(f), r.begin(), r.end(), r.latency);
    }
  });
}

// The same from a chunk's tallies (no flow listed): per link its tokens times the token's bytes,
// then the flows one by one for their arrivals, in plan order.
void AnalyticalNetwork::solve_pairs(const std::shared_ptr<Transfer>& t, const PairChunk& p) {
  const ChunkedPairs& pairs = *p.pairs;
  if (pairs.gpus() != t->endpoints || pairs.link_count() != load_.size() || p.token.count() <= 0)
    throw SimulationError("analytical network: a pair chunk that does not match its transfer");
  std::vector<LinkId> touched;
  for (std::size_t l = 0; l < load_.size(); ++l) {
    const ChunkedPairs::Tally x = pairs.link(static_cast<LinkId>(l), p.chunk);
    if (x.flows == 0) continue;
    touched.push_back(static_cast<LinkId>(l));
    count_[l] = x.flows;
    load_[l] = x.tokens * p.token.count();
  }
  settle(t, touched, static_cast<std::size_t>(pairs.total(p.chunk).flows), [&](auto&& visit) {
    pairs.for_each_flow(p.chunk, visit);
  });
}

// Prices the touched links (load_ and count_ hold the transfer's sums on them; left zero), then
// each flow's arrival (`each_flow(visit)` calls visit(src, dst, order, links, links_end, latency)
// for every flow in plan order: src and dst are endpoints, read only when endpoints are reported;
// `order` grows along the list), and schedules the events.
template <class EachFlow>
void AnalyticalNetwork::settle(const std::shared_ptr<Transfer>& t, std::vector<LinkId>& touched, std::size_t flow_count,
                               EachFlow&& each_flow) {
  // Only a keyed transfer with replay on is recorded (its links in id order).
  const bool recording = t->key != 0 && replay_;
  if (recording) std::sort(touched.begin(), touched.end());
  MemoComponent rec;
  std::vector<Time>& drain = drain_;
  for (LinkId l : touched) {
    const auto i = static_cast<std::size_t>(l);
    drain[i] = Bytes(load_[i]) / cluster_.link(l).bandwidth;
    const LinkCounters added{Bytes(load_[i]), drain[i], count_[i]};
    counters_[i].add(added);
    load_[i] = count_[i] = 0;
    if (!recording) continue;
    rec.links.push_back(l);
    rec.counters.push_back(added);
  }

  // A flow arrives when the most drained link on its route is done, plus its route's latency: its
  // arrival is fixed by that link (the first such on the route) and its latency, a handful of
  // distinct latencies per topology. Keys (link x latency) are numbered in order of appearance.
  const std::size_t none = cluster_.links().size();  // the link of flows that cross none
  std::vector<Time> latencies;
  std::vector<std::int32_t> key;  // per flow (reported one by one): its key's number
  if (t->on_flow_done) key.reserve(flow_count);
  std::vector<Time> key_time;                    // per key number: its arrival time
  // Latency-major: a run of flows with one latency looks up one row of links.
  bucket_of_.resize(kMaxLatencies * (none + 1), -1);
  std::vector<std::size_t> slots;                // the bucket_of_ entries set, to reset them
  // Each endpoint is done at its last flow's arrival; within one event, endpoints go in the order
  // the flows arriving then are listed (a flow's source before its destination). Tracked here by
  // arrival time (the same order as the event index below: equal times, one event).
  const bool per_flow_keys = static_cast<bool>(t->on_flow_done);
  const auto E = per_flow_keys ? std::size_t{0} : static_cast<std::size_t>(t->endpoints);
  // An endpoint's mark is the greatest (arrival, order) of its flows' (orders grow along the list,
  // so this is the last flow to arrive at the latest time, whatever order the marks are merged in).
  struct Done {
    Time at = Time::zero();
    std::int64_t last = -1;  // order of its last flow (2 x flow index, +1 as destination), -1: none
    void merge(const Done& o) {
      if (last < 0 || o.at > at || (o.at == at && o.last > last)) *this = o;
    }
  };
  std::vector<Done> done(E);
  // Plans go source by source (a combine destination by destination): the endpoint marked last as a
  // source and as a destination keep their marks here until another comes (no store per flow that
  // the next flow waits on).
  struct Run {
    GpuId e = -1;
    Done mark;
  } src_run, dst_run;
  const auto note = [&](Run& run, GpuId e, Time at, std::int64_t order) {
    if (e == run.e) {
      if (at >= run.mark.at) run.mark = {at, order};
      return;
    }
    if (run.e >= 0) done[static_cast<std::size_t>(run.e)].merge(run.mark);
    run = {e, {at, order}};
  };
  std::size_t lat = 0;  // the previous flow's latency index: neighbours mostly share it
  Time lat_value = latencies.empty() ? Time::zero() : latencies[0];
  const Time now = sim_.now();
  const Time* link_drain = drain.data();
  std::int32_t* bucket = bucket_of_.data();  // the row of the latency `lat`
  each_flow([&](GpuId src, GpuId dst, std::int64_t order, const LinkId* link, const LinkId* link_end, Time latency) {
    if (latencies.empty() || latency != lat_value) {
      lat = static_cast<std::size_t>(std::find(latencies.begin(), latencies.end(), latency) - latencies.begin());
      if (lat == latencies.size()) {
        if (lat == kMaxLatencies) throw SimulationError("analytical network: more distinct route latencies than it groups");
        latencies.push_back(latency);
      }
      lat_value = latency;
      bucket = bucket_of_.data() + lat * (none + 1);
    }
    // The first link with the longest drain on the route (none: crosses no link).
    // Without branches: which link drains longest is data, not a pattern a predictor learns.
    std::size_t worst = none;
    std::int64_t longest = 0;  // ps
    if (link != link_end) {
      worst = static_cast<std::size_t>(*link);
      longest = link_drain[worst].picoseconds();
      for (++link; link != link_end; ++link) {
        const auto l = static_cast<std::size_t>(*link);
        const std::int64_t d = link_drain[l].picoseconds();
        const bool longer = d > longest;
        worst = longer ? l : worst;
        longest = longer ? d : longest;
      }
    }
    std::int32_t& k = bucket[worst];
    if (k < 0) {
      k = static_cast<std::int32_t>(key_time.size());
      key_time.push_back(now + Time::ps(longest) + lat_value);
      slots.push_back(lat * (none + 1) + worst);
    }
    if (per_flow_keys) key.push_back(k);
    if (E > 0) {
      const Time at = key_time[static_cast<std::size_t>(k)];
      note(src_run, src, at, order);
      note(dst_run, dst, at, order + 1);
    }
  });
  for (const Run* run : {&src_run, &dst_run})
    if (run->e >= 0) done[static_cast<std::size_t>(run->e)].merge(run->mark);
  for (std::size_t i : slots) bucket_of_[i] = -1;
  // Distinct arrival times, in order: one event each (a transfer's events do not depend on who
  // listens: flows, endpoints or nobody).
  std::vector<Time> times = key_time;
  std::sort(times.begin(), times.end());
  times.erase(std::unique(times.begin(), times.end()), times.end());
  std::vector<std::int32_t> time_of(key_time.size());  // per key number: index into times
  for (std::size_t k = 0; k < key_time.size(); ++k)
    time_of[k] = static_cast<std::int32_t>(std::lower_bound(times.begin(), times.end(), key_time[k]) - times.begin());

  if (t->on_flow_done) return per_flow(t, key, time_of, times);

  std::vector<std::int32_t> done_at(E, -1);  // index into times, -1: no flow
  for (std::size_t e = 0; e < E; ++e)
    if (done[e].last >= 0)
      done_at[e] = static_cast<std::int32_t>(std::lower_bound(times.begin(), times.end(), done[e].at) - times.begin());
  std::vector<GpuId> finishing;
  for (std::size_t e = 0; e < E; ++e)
    if (done_at[e] >= 0) finishing.push_back(static_cast<GpuId>(e));
  std::sort(finishing.begin(), finishing.end(), [&](GpuId a, GpuId b) {
    const auto i = static_cast<std::size_t>(a), j = static_cast<std::size_t>(b);
    return done_at[i] != done_at[j] ? done_at[i] < done_at[j] : done[i].last < done[j].last;
  });
  if (recording) {
    for (GpuId e : finishing) rec.endpoint_done.emplace_back(e, times[static_cast<std::size_t>(done_at[static_cast<std::size_t>(e)])] - sim_.now());
    rec.end = rec.drained = times.empty() ? Time::zero() : times.back() - sim_.now();
    MemoRecord record;
    record.components.push_back(std::move(rec));
    memo_.store(t->key, std::move(record));
  }
  std::vector<std::int32_t> pending(E, 0);
  for (std::size_t e = 0; e < E; ++e) pending[e] = done_at[e] >= 0 ? 1 : 0;
  finish_empty_endpoints(t, pending);

  auto order = std::make_shared<const std::vector<GpuId>>(std::move(finishing));
  std::size_t next = 0;
  for (std::size_t k = 0; k < times.size(); ++k) {
    const std::size_t from = next;
    while (next < order->size() && done_at[static_cast<std::size_t>((*order)[next])] == static_cast<std::int32_t>(k)) ++next;
    const bool final_event = k + 1 == times.size();
    sim_.at(times[k], [t, order, from, to = next, final_event] {
      if (t->on_endpoint_done)
        for (std::size_t i = from; i < to; ++i) t->on_endpoint_done((*order)[i]);
      if (final_event && t->on_done) t->on_done();
    });
  }
  if (flow_count == 0 && t->on_done) sim_.at(sim_.now(), [t] { t->on_done(); });
}

// A transfer that reports each flow: one event per distinct arrival time, its flows in index order.
void AnalyticalNetwork::per_flow(const std::shared_ptr<Transfer>& t, const std::vector<std::int32_t>& key,
                                 const std::vector<std::int32_t>& time_of, const std::vector<Time>& times) {
  std::vector<std::vector<std::size_t>> buckets(times.size());
  for (std::size_t f = 0; f < key.size(); ++f) buckets[static_cast<std::size_t>(time_of[static_cast<std::size_t>(key[f])])].push_back(f);
  auto pending = std::make_shared<std::vector<std::int32_t>>(static_cast<std::size_t>(t->endpoints), 0);
  if (t->endpoints > 0)
    for (std::size_t f = 0; f < key.size(); ++f) {
      ++(*pending)[static_cast<std::size_t>(t->src[f])];
      ++(*pending)[static_cast<std::size_t>(t->dst[f])];
    }
  finish_empty_endpoints(t, *pending);
  for (std::size_t k = 0; k < times.size(); ++k) {
    const bool final_bucket = k + 1 == times.size();
    auto bucket = std::make_shared<std::vector<std::size_t>>(std::move(buckets[k]));
    sim_.at(times[k], [t, bucket, final_bucket, pending] {
      for (std::size_t f : *bucket) {
        t->on_flow_done(f);
        if (t->endpoints == 0) continue;
        for (GpuId e : {t->src[f], t->dst[f]})
          if (--(*pending)[static_cast<std::size_t>(e)] == 0 && t->on_endpoint_done) t->on_endpoint_done(e);
      }
      if (final_bucket && t->on_done) t->on_done();
    });
  }
  if (key.empty() && t->on_done) sim_.at(sim_.now(), [t] { t->on_done(); });
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
