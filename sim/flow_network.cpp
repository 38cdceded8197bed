#include "sim/flow_network.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <span>
#include <limits>
#include <numeric>
#include <string>

#include "models/errors.h"

namespace epsim {

namespace {

// The smallest completion window: ends that rounding set apart by this fraction of a flow's
// duration are one end.
constexpr double kMinWindow = 1e-9;
// A larger window w gives a quarter to each flow's own early end and a quarter to the bytes dropped on
// each link (rules (a) and (c) in the header: their sum, w/2, is what the one-link theorem proves;
// the other half is the margin for networks).
constexpr double kOwnShare = 0.25;
constexpr double kLinkShare = 0.25;

std::vector<double> capacities_of(const std::vector<Link>& links) {
  std::vector<double> c;
  c.reserve(links.size());
  for (const Link& l : links) c.push_back(l.bandwidth.bytes_per_second());
  return c;
}

std::size_t at(std::int64_t i) { return static_cast<std::size_t>(i); }

}  // namespace

FlowNetwork::FlowNetwork(Simulator& sim, const std::vector<Link>& links, bool replay, double completion_window)
    : sim_(sim),
      links_(links),
      replay_(replay),
      window_(std::max(kMinWindow, completion_window)),
      dropped_(window_ > kMinWindow ? links.size() : 0, 0.0),
      budget_base_(window_ > kMinWindow ? links.size() : 0, 0.0),
      held_by_(links.size(), -1),
      owner_(links.size(), -1),
      solver_(capacities_of(links)),
      clocks_(links.size()),
      counters_(links.size()),
      active_on_link_(links.size(), 0),
      busy_since_(links.size(), Time::zero()) {}

std::optional<SolverWork> FlowNetwork::solver_work() const {
  const MaxMinSolver::Stats& s = solver_.stats();
  return SolverWork{stats_.flows,   s.solves, s.full_fills,     s.flows_filled, s.rates_changed, s.levels_changed,
                    s.moves,        stats_.batches, stats_.early};
}

std::int32_t FlowNetwork::new_transfer_slot() {
  if (!free_transfers_.empty()) {
    const std::int32_t slot = free_transfers_.back();
    free_transfers_.pop_back();
    return slot;
  }
  transfers_.emplace_back();
  return static_cast<std::int32_t>(transfers_.size() - 1);
}

void FlowNetwork::start(Transfer transfer) {
  if (transfer.key != 0 && transfer.on_flow_done) throw SimulationError("flow network: a keyed transfer reports endpoints, not flows");
  std::shared_ptr<const MemoRecord> record = replay_ && transfer.key != 0 ? memo_.find(transfer.key) : nullptr;
  if (!record && transfer.fill) transfer.fill(transfer);
  const std::int32_t slot = new_transfer_slot();
  TransferState& tr = transfers_[at(slot)];
  tr.flows = std::move(transfer.flows);
  tr.src = std::move(transfer.src);
  tr.dst = std::move(transfer.dst);
  tr.endpoints = transfer.endpoints;
  tr.pending.reset(tr.endpoints);
  tr.fill = record ? std::move(transfer.fill) : nullptr;
  tr.on_flow_done = std::move(transfer.on_flow_done);
  tr.on_endpoint_done = std::move(transfer.on_endpoint_done);
  tr.on_done = std::move(transfer.on_done);
  tr.started = sim_.now().picoseconds();
  tr.key = transfer.key;
  tr.record = std::move(record);
  if (tr.record) start_hit(slot);
  else start_solved(slot);
}

void FlowNetwork::finish_empty_endpoints(std::int32_t slot) {
  TransferState& tr = transfers_[at(slot)];
  if (!tr.on_endpoint_done) return;
  auto done = tr.on_endpoint_done;  // a copy: callbacks may start transfers (deque slots stay put)
  for (GpuId e = 0; e < tr.endpoints; ++e)
    if (transfers_[at(slot)].pending.left(e) == 0) done(e);
}

void FlowNetwork::expect_flows(TransferState& tr, std::size_t first) {
  tr.outstanding += tr.flows.size() - first;
  if (tr.endpoints == 0) return;
  for (std::size_t i = first; i < tr.flows.size(); ++i) {
    tr.pending.add(tr.src[i]);
    tr.pending.add(tr.dst[i]);
  }
}

void FlowNetwork::enter_flows(std::int32_t slot, std::size_t first) {
  const Time now = sim_.now();
  std::vector<Arrival> instant;
  for (std::size_t i = first; i < transfers_[at(slot)].flows.size(); ++i) {
    const FlowSpec& spec = transfers_[at(slot)].flows[i];
    if (spec.bytes.count() < 0) throw SimulationError("flow network: a flow of negative size");
    for (LinkId l : spec.route)
      if (l < 0 || at(l) >= counters_.size()) throw SimulationError("flow network: route through unknown link");
    if (spec.bytes.count() == 0 || spec.route.hops == 0) {
      instant.push_back(Arrival{spec.route.latency, next_seq_++, slot, i});
      ++stats_.flows;
      continue;
    }
    add_live(slot, i, static_cast<double>(spec.bytes.count()), static_cast<double>(now.picoseconds()), true);
  }
  stats_.peak_active = std::max(stats_.peak_active, active_);
  if (!instant.empty()) schedule_arrivals(instant);
  request_process(now);
}

void FlowNetwork::start_solved(std::int32_t slot) {
  TransferState& tr = transfers_[at(slot)];
  expect_flows(tr, 0);
  if (tr.key != 0 && replay_) begin_recording(tr);
  finish_empty_endpoints(slot);
  if (transfers_[at(slot)].flows.empty()) {  // done at once: one unit so the slot is freed as usual
    transfers_[at(slot)].outstanding = 1;
    sim_.at(sim_.now(), [this, slot] { unit_done(slot); });
    return;
  }
  enter_flows(slot, 0);
}

void FlowNetwork::add_live(std::int32_t slot, std::size_t index, double bytes, double started, bool count_bytes) {
  const FlowSpec& spec = transfers_[at(slot)].flows[index];
  for (LinkId l : spec.route) {
    if (held_by_[at(l)] >= 0) materialise(held_by_[at(l)]);
    if (count_bytes) counters_[at(l)].bytes += spec.bytes;
  }
  std::array<Index, Route::kMaxHops> binding{};
  const std::size_t n = binding_links(spec.route, binding);
  const Index id = solver_.add_flow(std::span<const Index>(binding.data(), n));
  entered_ = true;
  if (!dropped_.empty()) {  // rule (c): this flow's start bounds the bytes its links may drop from now on
    for (std::size_t k = 0; k < n; ++k) {
      const auto l = at(binding[k]);
      if (active_on_link_[l] == 0) {
        dropped_[l] = 0.0;
        budget_base_[l] = std::numeric_limits<double>::lowest();
      }
      const double base = kLinkShare * window_ * links_[l].bandwidth.bytes_per_second() * started * 1e-12 - dropped_[l];
      budget_base_[l] = std::max(budget_base_[l], base);
    }
  }
  if (at(id) >= flows_.size()) {
    flows_.resize(at(id) + 1);
    version_.resize(at(id) + 1, 0);
  }
  FlowState& f = flows_[at(id)];
  f.tag = bytes;  // bytes to drain, until it has a link
  f.started = started;
  f.link = -1;
  f.latency = spec.route.latency;
  f.seq = next_seq_++;
  f.transfer = slot;
  f.index = index;
  ++version_[at(id)];
  ++stats_.flows;
  link_activity(spec.route, +1, owner_of(slot, index));
  ++active_;
}

// Dominated links never limit a flow: the solver sees only the others (all of them if a route had
// nothing else, which no topology builder makes).
std::size_t FlowNetwork::binding_links(const Route& route, std::array<Index, Route::kMaxHops>& out) const {
  std::size_t n = 0;
  for (LinkId l : route)
    if (!links_[at(l)].dominated) out[n++] = l;
  if (n > 0) return n;
  for (LinkId l : route) out[n++] = l;
  return n;
}

bool FlowNetwork::charge_budget(const Route& route, double bytes, double t) {
  std::array<Index, Route::kMaxHops> binding{};
  const std::size_t n = binding_links(route, binding);
  for (std::size_t k = 0; k < n; ++k) {
    const auto l = at(binding[k]);
    const double room = kLinkShare * window_ * links_[l].bandwidth.bytes_per_second() * t * 1e-12 - budget_base_[l] - dropped_[l];
    if (bytes > room) return false;
  }
  for (std::size_t k = 0; k < n; ++k) dropped_[at(binding[k])] += bytes;
  return true;
}

std::int64_t FlowNetwork::owner_of(std::int32_t slot, std::size_t index) const {
  const TransferState& tr = transfers_[at(slot)];
  const std::int64_t c = tr.component.empty() ? 0 : tr.component[index];
  return (static_cast<std::int64_t>(slot) << 32) | c;
}

void FlowNetwork::mark_dirty(std::int64_t owner) {
  if (owner < 0) return;
  TransferState& tr = transfers_[at(owner >> 32)];
  if (!tr.recording.empty()) tr.recording[at(owner & 0xffffffff)].clean = false;
}

void FlowNetwork::begin_recording(TransferState& tr) {
  std::int32_t count = 0;
  tr.component = flow_components(tr.flows, counters_.size(), count);
  tr.recording.assign(static_cast<std::size_t>(count), Recording{});
  tr.recorded = 0;
  // Per link: the flows with bytes crossing it, and their component (components are link-disjoint:
  // every link a flow with bytes crosses belongs to that flow's component alone).
  std::vector<std::int64_t> crossing(counters_.size(), 0);
  std::vector<std::int32_t> component_of(counters_.size(), -1);
  for (std::size_t i = 0; i < tr.flows.size(); ++i) {
    Recording& r = tr.recording[at(tr.component[i])];
    if (r.left_at.empty()) r.left_at.assign(static_cast<std::size_t>(tr.endpoints), 0);
    ++r.left;
    ++r.flows;
    if (tr.endpoints > 0) {
      ++r.left_at[at(tr.src[i])];
      ++r.left_at[at(tr.dst[i])];
    }
    if (tr.flows[i].bytes.count() > 0)
      for (LinkId l : tr.flows[i].route) {
        ++crossing[at(l)];
        component_of[at(l)] = tr.component[i];
      }
  }
  // Each component's links in id order, each once, with the flows crossing it.
  for (std::size_t l = 0; l < crossing.size(); ++l) {
    if (crossing[l] == 0) continue;
    MemoComponent& m = tr.recording[at(component_of[l])].result;
    m.links.push_back(static_cast<LinkId>(l));
    const LinkCounters& now = counters_[l];
    m.counters.push_back(LinkCounters{now.bytes, now.busy, crossing[l]});
  }
}

void FlowNetwork::finish_recording(std::int32_t slot, std::int32_t component) {
  TransferState& tr = transfers_[at(slot)];
  Recording& r = tr.recording[at(component)];
  r.result.end = sim_.now() - Time::ps(tr.started);
  if (r.flows <= MemoComponent::kKeptFlows)
    for (std::size_t i = 0; i < tr.flows.size(); ++i) {
      if (tr.component[i] != component) continue;
      r.result.flows.push_back(tr.flows[i]);
      if (tr.endpoints > 0) {
        r.result.src.push_back(tr.src[i]);
        r.result.dst.push_back(tr.dst[i]);
      }
    }
  for (std::size_t k = 0; k < r.result.links.size(); ++k) {  // what the component added
    const LinkCounters& now = counters_[at(r.result.links[k])];
    r.result.counters[k].bytes = now.bytes - r.result.counters[k].bytes;
    r.result.counters[k].busy = now.busy - r.result.counters[k].busy;
  }
  if (++tr.recorded < static_cast<std::int32_t>(tr.recording.size())) return;
  // Components that shared their links are kept too, marked: a hit solves them (from their kept
  // flows when small), so a transfer that always overlaps some other traffic still replays the rest.
  MemoRecord record;
  for (Recording& c : tr.recording) {
    c.result.alone = c.clean;
    record.components.push_back(std::move(c.result));
  }
  memo_.store(tr.key, std::move(record));
}

std::size_t FlowNetwork::take_in(TransferState& tr, std::int32_t component) {
  const MemoComponent& c = tr.record->components[at(component)];
  const std::size_t first = tr.flows.size();
  const auto add = [&](const FlowSpec& f, GpuId s, GpuId d) {
    tr.flows.push_back(f);
    if (tr.endpoints > 0) {
      tr.src.push_back(s);
      tr.dst.push_back(d);
    }
    tr.component.push_back(component);
  };
  if (!c.flows.empty()) {
    for (std::size_t i = 0; i < c.flows.size(); ++i)
      add(c.flows[i], tr.endpoints > 0 ? c.src[i] : 0, tr.endpoints > 0 ? c.dst[i] : 0);
    return first;
  }
  if (!tr.plan) {
    tr.plan = std::make_shared<Transfer>();
    tr.plan->endpoints = tr.endpoints;
    tr.fill(*tr.plan);
    std::int32_t count = 0;
    tr.plan_component = flow_components(tr.plan->flows, counters_.size(), count);
    if (count != static_cast<std::int32_t>(tr.record->components.size()))
      throw SimulationError("flow network: a keyed transfer's flows differ from its record (key collision?)");
  }
  const Transfer& p = *tr.plan;
  for (std::size_t i = 0; i < p.flows.size(); ++i)
    if (tr.plan_component[i] == component) add(p.flows[i], tr.endpoints > 0 ? p.src[i] : 0, tr.endpoints > 0 ? p.dst[i] : 0);
  return first;
}

void FlowNetwork::start_hit(std::int32_t slot) {
  TransferState& tr = transfers_[at(slot)];
  const MemoRecord& rec = *tr.record;
  std::vector<char> replay(rec.components.size(), 1);
  bool solve_some = false;
  for (std::size_t c = 0; c < rec.components.size(); ++c) {
    if (!rec.components[c].alone) {
      replay[c] = 0;
      solve_some = true;
      continue;
    }
    for (LinkId l : rec.components[c].links)
      if (active_on_link_[at(l)] > 0 || held_by_[at(l)] >= 0) {
        replay[c] = 0;
        solve_some = true;
        break;
      }
  }
  for (std::size_t c = 0; c < rec.components.size(); ++c) {
    if (replay[c]) {
      for (const auto& [e, offset] : rec.components[c].endpoint_done) tr.pending.add(e);
      ++tr.outstanding;
    } else {
      expect_flows(tr, take_in(tr, static_cast<std::int32_t>(c)));
    }
  }
  finish_empty_endpoints(slot);
  for (std::size_t c = 0; c < rec.components.size(); ++c)
    if (replay[c]) begin_replay(slot, static_cast<std::int32_t>(c));
  if (!solve_some) return;
  ++memo_.stats().solved;
  enter_flows(slot, 0);
}

void FlowNetwork::begin_replay(std::int32_t slot, std::int32_t component) {
  std::int32_t r;
  if (!free_replays_.empty()) {
    r = free_replays_.back();
    free_replays_.pop_back();
  } else {
    r = static_cast<std::int32_t>(replays_.size());
    replays_.emplace_back();
  }
  const MemoComponent& c = transfers_[at(slot)].record->components[at(component)];
  Replay& rp = replays_[at(r)];
  rp.transfer = slot;
  rp.component = component;
  rp.started = sim_.now().picoseconds();
  rp.fired.assign(c.endpoint_done.size(), 0);
  const std::uint32_t v = ++rp.version;
  ++memo_.stats().replayed;
  for (std::size_t k = 0; k < c.links.size(); ++k) {
    const auto l = at(c.links[k]);
    held_by_[l] = r;
    counters_[l].add(c.counters[k]);
  }
  // One event per distinct offset, endpoints in the order the solved run finished them.
  const Time t0 = sim_.now();
  for (const auto& [i, j] : same_offset_runs(c.endpoint_done)) {
    sim_.at(t0 + c.endpoint_done[i].second, [this, r, v, i, j] {
      // A callback may start a transfer that takes this replay back (materialise): then it has
      // accounted for the endpoints not yet fired, and this event stops.
      for (std::size_t k = i; k < j && replays_[at(r)].version == v; ++k) {
        Replay& p = replays_[at(r)];
        p.fired[k] = 1;
        TransferState& tr = transfers_[at(p.transfer)];
        const GpuId e = tr.record->components[at(p.component)].endpoint_done[k].first;
        if (tr.pending.remove(e) && tr.on_endpoint_done) tr.on_endpoint_done(e);
      }
    });
  }
  sim_.at(t0 + c.drained, [this, r, v] {
    Replay& p = replays_[at(r)];
    if (p.version != v) return;  // taken back, or already ended
    for (LinkId l : transfers_[at(p.transfer)].record->components[at(p.component)].links) held_by_[at(l)] = -1;
  });
  sim_.at(t0 + c.end, [this, r, v] {
    Replay& p = replays_[at(r)];
    if (p.version != v) return;
    ++p.version;
    const std::int32_t owner = p.transfer;
    free_replays_.push_back(r);
    unit_done(owner);
  });
}

void FlowNetwork::materialise(std::int32_t r) {
  ++memo_.stats().materialised;
  Replay rp = replays_[at(r)];  // a copy: the slot is released below
  ++replays_[at(r)].version;    // its pending events now do nothing
  free_replays_.push_back(r);
  TransferState& tr = transfers_[at(rp.transfer)];
  const MemoComponent& c = tr.record->components[at(rp.component)];
  for (LinkId l : c.links) held_by_[at(l)] = -1;

  // Run the component alone from its start to now, on its own links only (numbered by their
  // position in c.links, which is sorted).
  const std::size_t first = take_in(tr, rp.component);
  std::vector<std::size_t> index(tr.flows.size() - first);
  std::iota(index.begin(), index.end(), first);
  const Time elapsed = sim_.now() - Time::ps(rp.started);
  std::vector<Link> own;
  for (LinkId l : c.links) own.push_back(links_[at(l)]);
  Transfer alone;
  for (std::size_t i : index) {
    FlowSpec f = tr.flows[i];
    for (std::size_t h = 0; h < f.route.hops; ++h)
      f.route.link[h] = static_cast<LinkId>(std::lower_bound(c.links.begin(), c.links.end(), f.route.link[h]) - c.links.begin());
    alone.flows.push_back(f);
  }
  Simulator scratch_sim;
  FlowNetwork scratch(scratch_sim, own, false, window_);
  std::vector<double> drained(index.size(), -1.0);
  std::vector<char> arrived(index.size(), 0);
  scratch.drain_log_ = &drained;
  alone.on_flow_done = [&arrived](std::size_t j) { arrived[j] = 1; };
  scratch.start(std::move(alone));
  scratch_sim.run_until(elapsed);
  const std::vector<double> left = scratch.remaining(0, index.size());

  // Busy time: what it used so far instead of the whole replay.
  for (std::size_t k = 0; k < c.links.size(); ++k)
    counters_[at(c.links[k])].busy += scratch.busy_so_far(static_cast<LinkId>(k)) - c.counters[k].busy;

  // Endpoints it had not finished now wait for its flows still under way.
  std::size_t under_way = 0;
  std::vector<std::int32_t> per_endpoint(static_cast<std::size_t>(tr.endpoints), 0);
  for (std::size_t j = 0; j < index.size(); ++j) {
    if (arrived[j]) continue;
    ++under_way;
    if (tr.endpoints > 0) {
      ++per_endpoint[at(tr.src[index[j]])];
      ++per_endpoint[at(tr.dst[index[j]])];
    }
  }
  std::vector<GpuId> finished;
  for (std::size_t k = 0; k < c.endpoint_done.size(); ++k) {
    if (rp.fired[k]) continue;
    const GpuId e = c.endpoint_done[k].first;
    tr.pending.add(e, per_endpoint[at(e)]);
    if (tr.pending.remove(e)) finished.push_back(e);
  }
  tr.outstanding += under_way;  // the replay's own unit ends below
  const std::int32_t slot = rp.transfer;
  for (std::size_t j = 0; j < index.size(); ++j) {
    if (arrived[j]) continue;
    const FlowSpec& spec = tr.flows[index[j]];
    if (drained[j] >= 0.0 || spec.bytes.count() == 0 || spec.route.hops == 0) {
      const Time due = Time::ps(rp.started) + Time::ps(checked_int64(std::max(0.0, drained[j]), "drained picoseconds -> Time")) + spec.route.latency;
      const Arrival a{Time::zero(), next_seq_++, slot, index[j]};
      sim_.at(max(due, sim_.now()), [this, a] { deliver({a}); });
      continue;
    }
    add_live(slot, index[j], left[j], static_cast<double>(rp.started), false);
  }
  stats_.peak_active = std::max(stats_.peak_active, active_);
  request_process(sim_.now());
  unit_done(slot);
  TransferState& t = transfers_[at(slot)];
  if (t.on_endpoint_done)
    for (GpuId e : finished) t.on_endpoint_done(e);
}

std::vector<double> FlowNetwork::remaining(std::int32_t slot, std::size_t flows) const {
  std::vector<double> left(flows, 0.0);
  const double t = static_cast<double>(sim_.now().picoseconds());
  for (const FlowState& f : flows_) {
    if (f.transfer != slot) continue;
    left[f.index] = f.link >= 0 ? std::max(0.0, f.tag - clock_at(clocks_[at(f.link)], t)) : f.tag;
  }
  return left;
}

Time FlowNetwork::busy_so_far(LinkId link) const {
  const Time open = active_on_link_[at(link)] > 0 ? sim_.now() - busy_since_[at(link)] : Time::zero();
  return counters_[at(link)].busy + open;
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

double FlowNetwork::clock_at(const LinkClock& c, double t) {
  if (c.level > 0.0 && c.level < std::numeric_limits<double>::infinity())
    return c.v + c.level * (t - static_cast<double>(c.t)) * 1e-12;
  return c.v;
}

void FlowNetwork::advance(LinkClock& c, std::int64_t t) {
  if (c.t == t) return;
  c.v = clock_at(c, static_cast<double>(t));
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

bool FlowNetwork::early_ok(const LinkClock& c, const Tag& top, double end, double t) {
  if (dropped_.empty() || entered_) return false;                                  // exact, or (b)
  const FlowState& f = flows_[at(top.flow)];
  if (end - t > kOwnShare * window_ * (end - f.started)) return false;              // (a)
  const double left = std::max(0.0, top.tag - clock_at(c, t));                     // bytes
  if (!charge_budget(transfers_[at(f.transfer)].flows[f.index].route, left, t)) return false;  // (c)
  ++stats_.early;
  return true;
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
      if (!(end <= tp + 0.5 || end - tp <= kMinWindow * (end - f.started) || early_ok(c, *top, end, tp))) {
        not_due = true;
        break;
      }
      const Index id = top->flow;
      std::pop_heap(c.heap.begin(), c.heap.end(), later);
      c.heap.pop_back();
      if (!c.heap.empty()) __builtin_prefetch(&flows_[at(c.heap.front().flow)]);  // likely next
      FlowState& done = flows_[at(id)];
      arrivals_.push_back(Arrival{done.latency, done.seq, done.transfer, done.index});
      TransferState& owner = transfers_[at(done.transfer)];
      if (drain_log_ != nullptr) (*drain_log_)[done.index] = tp;
      if (!owner.recording.empty()) {
        MemoComponent& m = owner.recording[at(owner.component[done.index])].result;
        m.drained = max(m.drained, Time::ps(t - owner.started));
      }
      drained_.push_back(id);
      done.transfer = -1;
      ++version_[at(id)];
      --active_;
      ++completed;
    }
    retime(l);
    if (not_due && completed == 0) break;  // the earliest link has nothing due: nobody has
  }
  // The drained flows leave their links (in any order: the counters only count): their routes are
  // scattered over the transfers' flow lists, so each is fetched a few flows ahead.
  for (std::size_t k = 0; k < arrivals_.size(); ++k) {
    if (k + 8 < arrivals_.size()) __builtin_prefetch(&transfers_[at(arrivals_[k + 8].transfer)].flows[arrivals_[k + 8].index]);
    link_activity(transfers_[at(arrivals_[k].transfer)].flows[arrivals_[k].index].route, -1, 0);
  }
  if (!arrivals_.empty()) ++stats_.batches;
  // Removed in id order: neighbouring ids sit side by side in the solver's memory.
  std::sort(drained_.begin(), drained_.end());
  for (const Index id : drained_) solver_.remove_flow(id);
  drained_.clear();

  // 2. Re-solve. Links whose level changed are re-timed: their clocks run at the old level until
  //    now, at the new one from now. Flows whose bottleneck moved are re-tagged on the new link.
  const auto& changes = solver_.solve();
  entered_ = false;
  for (const Index l : changes.levels) {
    LinkClock& c = clocks_[at(l)];
    advance(c, t);
    c.level = solver_.level(l);
    mark(l);
  }
  for (std::size_t k = 0; k < changes.moved.size(); ++k) {
    if (k + 8 < changes.moved.size()) {  // new flows come by the thousand: fetch a few ahead
      __builtin_prefetch(&flows_[at(changes.moved[k + 8])]);
      solver_.prefetch(changes.moved[k + 8]);
    }
    const Index id = changes.moved[k];
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
    request_process(Time::ps(checked_int64(next, "next drain end (ps) -> Time")));
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
    if (tr.endpoints > 0)
      for (GpuId e : {tr.src[a.index], tr.dst[a.index]})
        if (transfers_[at(a.transfer)].pending.remove(e) && tr.on_endpoint_done) tr.on_endpoint_done(e);
    TransferState& t = transfers_[at(a.transfer)];
    if (!t.recording.empty()) {
      const std::int32_t c = t.component[a.index];
      Recording& r = t.recording[at(c)];
      const Time offset = sim_.now() - Time::ps(t.started);
      if (t.endpoints > 0)
        for (GpuId e : {t.src[a.index], t.dst[a.index]})
          if (--r.left_at[at(e)] == 0) r.result.endpoint_done.emplace_back(e, offset);
      if (--r.left == 0) finish_recording(a.transfer, c);
    }
    unit_done(a.transfer);
  }
}

void FlowNetwork::unit_done(std::int32_t slot) {
  TransferState& tr = transfers_[at(slot)];
  if (--tr.outstanding > 0) return;
  auto done = std::move(tr.on_done);
  tr = TransferState{};
  free_transfers_.push_back(slot);
  if (done) done();
}

// `owner`: owner_of() the flow entering (unused when leaving). A link shared by flows of two
// components spoils both recordings.
void FlowNetwork::link_activity(const Route& route, int delta, std::int64_t owner) {
  const Time now = sim_.now();
  for (LinkId l : route) {
    std::int64_t& n = active_on_link_[at(l)];
    LinkCounters& c = counters_[at(l)];
    std::int64_t& o = owner_[at(l)];
    if (delta > 0) {
      if (n++ == 0) {
        busy_since_[at(l)] = now;
        o = owner;
      } else if (o != owner) {
        mark_dirty(o);
        mark_dirty(owner);
        o = -2;
      }
      c.peak_flows = std::max(c.peak_flows, n);
    } else if (--n == 0) {
      c.busy += now - busy_since_[at(l)];
      o = -1;
    }
  }
}

}  // namespace epsim
