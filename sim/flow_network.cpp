#include "sim/flow_network.h"

#include <algorithm>
#include <cmath>
#include <span>
#include <limits>
#include <string>

#include "models/errors.h"

namespace epsim {

namespace {

// Flows whose drain ends at most this fraction of their own duration after the current wake-up
// complete with it (moves no result by more than this, relatively).
constexpr double kBatch = 1e-9;

std::vector<double> capacities_of(const std::vector<Link>& links) {
  std::vector<double> c;
  c.reserve(links.size());
  for (const Link& l : links) c.push_back(l.bandwidth.bytes_per_second());
  return c;
}

std::size_t at(std::int64_t i) { return static_cast<std::size_t>(i); }

}  // namespace

FlowNetwork::FlowNetwork(Simulator& sim, const std::vector<Link>& links)
    : sim_(sim),
      solver_(capacities_of(links)),
      clocks_(links.size()),
      counters_(links.size()),
      active_on_link_(links.size(), 0),
      busy_since_(links.size(), Time::zero()) {}

void FlowNetwork::start(Transfer transfer) {
  const Time now = sim_.now();
  std::int32_t slot;
  if (!free_transfers_.empty()) {
    slot = free_transfers_.back();
    free_transfers_.pop_back();
  } else {
    slot = static_cast<std::int32_t>(transfers_.size());
    transfers_.emplace_back();
  }
  TransferState& tr = transfers_[at(slot)];
  tr.on_flow_done = std::move(transfer.on_flow_done);
  tr.on_done = std::move(transfer.on_done);
  tr.outstanding = transfer.flows.size();
  tr.flows = std::move(transfer.flows);
  if (tr.flows.empty()) {
    sim_.at(now, [this, slot] {
      TransferState& t = transfers_[at(slot)];
      auto done = std::move(t.on_done);
      t = TransferState{};
      free_transfers_.push_back(slot);
      if (done) done();
    });
    return;
  }

  std::vector<Arrival> instant;
  const std::int64_t now_ps = now.picoseconds();
  for (std::size_t i = 0; i < tr.flows.size(); ++i) {
    const FlowSpec& spec = tr.flows[i];
    if (spec.bytes.count() < 0) throw SimulationError("flow network: a flow of negative size");
    for (LinkId l : spec.route) {
      if (l < 0 || at(l) >= counters_.size()) throw SimulationError("flow network: route through unknown link");
      counters_[at(l)].bytes += spec.bytes;
    }
    const std::uint64_t seq = next_seq_++;
    ++stats_.flows;
    if (spec.bytes.count() == 0 || spec.route.hops == 0) {
      instant.push_back(Arrival{spec.route.latency, seq, slot, i});
      continue;
    }
    const Index id = solver_.add_flow(std::span<const Index>(spec.route.link.data(), spec.route.hops));
    if (at(id) >= flows_.size()) {
      flows_.resize(at(id) + 1);
      version_.resize(at(id) + 1, 0);
    }
    FlowState& f = flows_[at(id)];
    f.tag = static_cast<double>(spec.bytes.count());  // bytes to drain, until it has a link
    f.started = static_cast<double>(now_ps);
    f.link = -1;
    f.latency = spec.route.latency;
    f.seq = seq;
    f.transfer = slot;
    f.index = i;
    ++version_[at(id)];
    link_activity(spec.route, +1);
    ++active_;
  }
  stats_.peak_active = std::max(stats_.peak_active, active_);
  if (!instant.empty()) schedule_arrivals(instant);
  request_process(now);
}

void FlowNetwork::request_process(Time t) {
  // A valid wake-up at or before t (and not in the past) will process and re-arm: nothing to do.
  if (wake_at_ <= t && wake_at_ >= sim_.now()) return;
  wake_at_ = t;
  sim_.at(t, [this, t] {
    if (wake_at_ != t) return;  // superseded by an earlier one
    wake_at_ = Time::infinity();
    process();
  });
}

void FlowNetwork::advance(LinkClock& c, std::int64_t t) {
  if (c.t == t) return;
  if (c.level > 0.0 && c.level < std::numeric_limits<double>::infinity())
    c.v += c.level * static_cast<double>(t - c.t) * 1e-12;
  c.t = t;
}

const FlowNetwork::Tag* FlowNetwork::top_of(LinkClock& c) {
  const auto later = [](const Tag& a, const Tag& b) { return a.tag != b.tag ? a.tag > b.tag : a.seq > b.seq; };
  while (!c.heap.empty()) {
    const Tag& top = c.heap.front();
    if (top.version == version_[at(top.flow)]) return &top;
    std::pop_heap(c.heap.begin(), c.heap.end(), later);
    c.heap.pop_back();
  }
  return nullptr;
}

void FlowNetwork::sift_up(std::size_t p) {
  const Index x = link_heap_[p];
  const auto before = [&](Index a, Index b) {
    const double na = clocks_[at(a)].next, nb = clocks_[at(b)].next;
    return na != nb ? na < nb : a < b;
  };
  while (p > 0) {
    const std::size_t parent = (p - 1) / 2;
    if (!before(x, link_heap_[parent])) break;
    link_heap_[p] = link_heap_[parent];
    clocks_[at(link_heap_[p])].pos = static_cast<std::int32_t>(p);
    p = parent;
  }
  link_heap_[p] = x;
  clocks_[at(x)].pos = static_cast<std::int32_t>(p);
}

void FlowNetwork::sift_down(std::size_t p) {
  const Index x = link_heap_[p];
  const auto before = [&](Index a, Index b) {
    const double na = clocks_[at(a)].next, nb = clocks_[at(b)].next;
    return na != nb ? na < nb : a < b;
  };
  const std::size_t n = link_heap_.size();
  for (;;) {
    std::size_t c = 2 * p + 1;
    if (c >= n) break;
    if (c + 1 < n && before(link_heap_[c + 1], link_heap_[c])) ++c;
    if (!before(link_heap_[c], x)) break;
    link_heap_[p] = link_heap_[c];
    clocks_[at(link_heap_[p])].pos = static_cast<std::int32_t>(p);
    p = c;
  }
  link_heap_[p] = x;
  clocks_[at(x)].pos = static_cast<std::int32_t>(p);
}

void FlowNetwork::retime(Index link) {
  LinkClock& c = clocks_[at(link)];
  c.stale = false;
  const Tag* top = top_of(c);
  if (top == nullptr) {
    c.v = 0.0;  // nobody is bottlenecked here: restart the clock (keeps tags small)
    if (c.pos >= 0) {
      const std::size_t p = at(c.pos);
      c.pos = -1;
      const Index last = link_heap_.back();
      link_heap_.pop_back();
      if (p < link_heap_.size()) {
        link_heap_[p] = last;
        clocks_[at(last)].pos = static_cast<std::int32_t>(p);
        sift_down(p);
        sift_up(at(clocks_[at(last)].pos));
      }
    }
    return;
  }
  if (!(c.level > 0.0)) throw SimulationError("flow network: a bottleneck link with no bandwidth");
  c.next = static_cast<double>(c.t) + std::max(0.0, top->tag - c.v) / c.level * 1e12;
  if (c.pos < 0) {
    c.pos = static_cast<std::int32_t>(link_heap_.size());
    link_heap_.push_back(link);
  }
  sift_down(at(c.pos));
  sift_up(at(c.pos));
}

void FlowNetwork::process() {
  const std::int64_t t = sim_.now().picoseconds();
  const double tp = static_cast<double>(t);
  const auto later = [](const Tag& a, const Tag& b) { return a.tag != b.tag ? a.tag > b.tag : a.seq > b.seq; };
  const auto mark = [&](Index l) {
    if (!clocks_[at(l)].stale) {
      clocks_[at(l)].stale = true;
      stale_links_.push_back(l);
    }
  };
  ++stats_.wakeups;

  // 1. Complete every flow whose drain has ended (rounded to this ps), or ends negligibly later.
  arrivals_.clear();
  while (!link_heap_.empty()) {
    const Index l = link_heap_.front();
    LinkClock& c = clocks_[at(l)];
    std::size_t completed = 0;
    bool not_due = false;
    for (const Tag* top = top_of(c); top != nullptr; top = top_of(c)) {
      const double end = static_cast<double>(c.t) + std::max(0.0, top->tag - c.v) / c.level * 1e12;
      const FlowState& f = flows_[at(top->flow)];
      if (!(end <= tp + 0.5 || end - tp <= kBatch * (end - f.started))) {
        not_due = true;
        break;
      }
      const Index id = top->flow;
      std::pop_heap(c.heap.begin(), c.heap.end(), later);
      c.heap.pop_back();
      if (!c.heap.empty()) __builtin_prefetch(&flows_[at(c.heap.front().flow)]);  // likely next
      FlowState& done = flows_[at(id)];
      arrivals_.push_back(Arrival{done.latency, done.seq, done.transfer, done.index});
      link_activity(transfers_[at(done.transfer)].flows[done.index].route, -1);
      drained_.push_back(id);
      done.transfer = -1;
      ++version_[at(id)];
      --active_;
      ++completed;
    }
    retime(l);
    if (not_due && completed == 0) break;  // the earliest link has nothing due: nobody has
  }
  if (!arrivals_.empty()) ++stats_.batches;
  // Removed in id order: neighbouring ids sit side by side in the solver's memory.
  std::sort(drained_.begin(), drained_.end());
  for (const Index id : drained_) solver_.remove_flow(id);
  drained_.clear();

  // 2. Re-solve. Links whose level changed are re-timed: their clocks run at the old level until
  //    now, at the new one from now. Flows whose bottleneck moved are re-tagged on the new link.
  const auto& changes = solver_.solve();
  for (const Index l : changes.levels) {
    LinkClock& c = clocks_[at(l)];
    advance(c, t);
    c.level = solver_.level(l);
    mark(l);
  }
  for (const Index id : changes.moved) {
    FlowState& f = flows_[at(id)];
    const Index to = solver_.bottleneck(id);
    if (to < 0) throw SimulationError("flow network: a flow without a bottleneck link");
    double left = f.tag;  // bytes left: as started for a new flow
    if (f.link >= 0) {
      LinkClock& from = clocks_[at(f.link)];
      advance(from, t);
      left = std::max(0.0, f.tag - from.v);
      mark(f.link);
    }
    LinkClock& c = clocks_[at(to)];
    advance(c, t);
    f.link = to;
    f.tag = c.v + left;
    ++version_[at(id)];
    c.heap.push_back(Tag{f.tag, f.seq, id, version_[at(id)]});
    std::push_heap(c.heap.begin(), c.heap.end(), later);
    mark(to);
  }
  for (const Index l : stale_links_) retime(l);
  stale_links_.clear();
  if (!arrivals_.empty()) schedule_arrivals(arrivals_);

  // 3. Wake up at the next drain end.
  if (!link_heap_.empty()) {
    const double next = std::max(tp, std::nearbyint(clocks_[at(link_heap_.front())].next));
    request_process(Time::ps(static_cast<std::int64_t>(next)));
  }
}

// One Simulator event per distinct latency (a handful per topology), in order of latency; within a
// group, arrivals keep the order in which the flows drained.
void FlowNetwork::schedule_arrivals(std::vector<Arrival>& arrivals) {
  std::vector<Time> latencies;
  for (const Arrival& a : arrivals)
    if (std::find(latencies.begin(), latencies.end(), a.latency) == latencies.end()) latencies.push_back(a.latency);
  std::sort(latencies.begin(), latencies.end());
  const Time now = sim_.now();
  for (const Time lat : latencies) {
    std::vector<Arrival> group;
    if (latencies.size() == 1) {
      group = arrivals;
    } else {
      for (const Arrival& a : arrivals)
        if (a.latency == lat) group.push_back(a);
    }
    sim_.at(now + lat, [this, g = std::move(group)] { deliver(g); });
  }
}

void FlowNetwork::deliver(const std::vector<Arrival>& arrivals) {
  for (const Arrival& a : arrivals) {
    TransferState& tr = transfers_[at(a.transfer)];
    if (tr.on_flow_done) tr.on_flow_done(a.index);
    if (--tr.outstanding == 0) {
      auto done = std::move(tr.on_done);
      tr = TransferState{};
      free_transfers_.push_back(a.transfer);
      if (done) done();
    }
  }
}

void FlowNetwork::link_activity(const Route& route, int delta) {
  const Time now = sim_.now();
  for (LinkId l : route) {
    std::int64_t& n = active_on_link_[at(l)];
    LinkCounters& c = counters_[at(l)];
    if (delta > 0) {
      if (n++ == 0) busy_since_[at(l)] = now;
      c.peak_flows = std::max(c.peak_flows, n);
    } else if (--n == 0) {
      c.busy += now - busy_since_[at(l)];
    }
  }
}

}  // namespace epsim
