// The flow network on timelines worked out by hand: staggered starts and ends on one link,
// latency after draining, near-simultaneous ends batched, per-link counters.
#include "sim/flow_network.h"

#include <doctest/doctest.h>

#include <vector>

#include "sim/simulator.h"

using namespace epsim;

namespace {

// Links of 1 GB/s = 1 byte per ns.
std::vector<Link> links(int n, Time latency = Time::zero()) {
  std::vector<Link> v;
  for (int i = 0; i < n; ++i) {
    std::string name = "l";
    name += std::to_string(i);
    v.push_back(Link{LinkKind::NicUp, Bandwidth::gb_per_s(1.0), latency, i, name});
  }
  return v;
}

Route route(const std::vector<Link>& ls, std::vector<LinkId> ids) {
  Route r;
  for (LinkId id : ids) r.append(id, ls[static_cast<std::size_t>(id)].latency);
  return r;
}

struct Recorder {
  std::vector<Time> done;
  int transfers_done = 0;
  Time last_done;
};

// Starts a one-flow transfer at `when`; records its arrival time in rec.done[slot].
void start_at(Simulator& sim, Network& net, Time when, Route r, std::int64_t bytes, Recorder& rec, std::size_t slot) {
  sim.at(when, [&sim, &net, r, bytes, &rec, slot] {
    Transfer t;
    t.flows.push_back(FlowSpec{r, Bytes(bytes)});
    t.on_flow_done = [&sim, &rec, slot](std::size_t) { rec.done[slot] = sim.now(); };
    t.on_done = [&sim, &rec] {
      ++rec.transfers_done;
      rec.last_done = sim.now();
    };
    net.start(std::move(t));
  });
}

}  // namespace

TEST_CASE("staggered starts and ends on one link") {
  // A: 3000 B at 0; B: 1000 B at 1000 ns; C: 250 B at 3500 ns; one link of 1 B/ns.
  //  0..1000     A alone (1 B/ns): A has 2000 left.
  //  1000..3000  A and B at 0.5 B/ns: B done at 3000; A has 1000 left.
  //  3000..3500  A alone: 500 left.
  //  3500..4000  A and C at 0.5: C done at 4000; A has 250 left.
  //  4000..4250  A alone: done at 4250.
  const auto ls = links(1);
  Simulator sim;
  FlowNetwork net(sim, ls);
  Recorder rec;
  rec.done.resize(3);
  const Route r = route(ls, {0});
  start_at(sim, net, Time::zero(), r, 3000, rec, 0);
  start_at(sim, net, Time::ns(1000), r, 1000, rec, 1);
  start_at(sim, net, Time::ns(3500), r, 250, rec, 2);
  sim.run();
  CHECK(rec.done[1] == Time::ns(3000));
  CHECK(rec.done[2] == Time::ns(4000));
  CHECK(rec.done[0] == Time::ns(4250));
  CHECK(rec.transfers_done == 3);
  const LinkCounters& c = net.counters()[0];
  CHECK(c.bytes == Bytes(4250));
  CHECK(c.busy == Time::ns(4250));
  CHECK(c.peak_flows == 2);
}

TEST_CASE("latency is added after the flow has drained; sharing happens while draining") {
  // Two 1000 B flows share link 0 (1 B/ns) from t = 0: both drain by 2000 ns. Flow X crosses link 0
  // only (latency 1 us); flow Y crosses links 0 and 1 (1 us each): Y arrives at 2000 + 2000 ns.
  const auto ls = links(2, Time::us(1));
  Simulator sim;
  FlowNetwork net(sim, ls);
  std::vector<Time> done(2);
  std::vector<std::size_t> order;
  Time all_done;
  Transfer t;
  t.flows.push_back(FlowSpec{route(ls, {0, 1}), Bytes(1000)});
  t.flows.push_back(FlowSpec{route(ls, {0}), Bytes(1000)});
  t.on_flow_done = [&](std::size_t i) {
    done[i] = sim.now();
    order.push_back(i);
  };
  t.on_done = [&] { all_done = sim.now(); };
  net.start(std::move(t));
  sim.run();
  CHECK(done[1] == Time::ns(3000));
  CHECK(done[0] == Time::ns(4000));
  CHECK(order == std::vector<std::size_t>{1, 0});  // time order
  CHECK(all_done == Time::ns(4000));
  CHECK(net.counters()[0].busy == Time::ns(2000));
  CHECK(net.counters()[1].busy == Time::ns(2000));
  CHECK(net.counters()[1].bytes == Bytes(1000));
}

TEST_CASE("a flow leaving frees bandwidth for the flows it bottlenecked, two links deep") {
  // Link 0 carries A (1000 B) and B (3000 B); link 1 carries B and C (3000 B). All at 0.5 B/ns.
  // A drains at 2000 ns. B is then still held to 0.5 by link 1 (shared with C): nothing changes
  // until B and C both drain at 6000 ns.
  const auto ls = links(2);
  Simulator sim;
  FlowNetwork net(sim, ls);
  std::vector<Time> done(3);
  Transfer t;
  t.flows.push_back(FlowSpec{route(ls, {0}), Bytes(1000)});
  t.flows.push_back(FlowSpec{route(ls, {0, 1}), Bytes(3000)});
  t.flows.push_back(FlowSpec{route(ls, {1}), Bytes(3000)});
  t.on_flow_done = [&](std::size_t i) { done[i] = sim.now(); };
  net.start(std::move(t));
  sim.run();
  CHECK(done[0] == Time::ns(2000));
  CHECK(done[1] == Time::ns(6000));
  CHECK(done[2] == Time::ns(6000));
  CHECK(net.counters()[0].peak_flows == 2);
  CHECK(net.counters()[0].busy == Time::ns(6000));
}

// Flows of the given sizes, each on its own 1 GB/s link, through a network with completion window
// `window`: when each completed, and how many wake-ups completed flows.
struct SeparateLinks {
  std::vector<Time> done;
  std::uint64_t batches = 0;
};
SeparateLinks on_separate_links(const std::vector<std::int64_t>& bytes, double window) {
  const auto ls = links(static_cast<int>(bytes.size()));
  Simulator sim;
  FlowNetwork net(sim, ls, true, window);
  SeparateLinks out;
  out.done.resize(bytes.size());
  Transfer t;
  for (std::size_t i = 0; i < bytes.size(); ++i) t.flows.push_back(FlowSpec{route(ls, {static_cast<LinkId>(i)}), Bytes(bytes[i])});
  t.on_flow_done = [&](std::size_t i) { out.done[i] = sim.now(); };
  net.start(std::move(t));
  sim.run();
  out.batches = net.stats().batches;
  return out;
}

TEST_CASE("near-simultaneous ends complete together; distinct ends do not") {
  // 2 GB and 2 GB + 1 B end at 2 s and 2 s + 1 ns: within 1e-9 of their duration (2 ns), so one
  // wake-up completes both, at 2 s. A third ends 2 us later: a wake-up of its own.
  const SeparateLinks r = on_separate_links({2'000'000'000, 2'000'000'001, 2'000'002'000}, 0.0);
  CHECK(r.done[0] == Time::seconds(2.0));
  CHECK(r.done[1] == Time::seconds(2.0));
  CHECK(r.done[2] == Time::seconds(2.0) + Time::us(2));
  CHECK(r.batches == 2);
}

TEST_CASE("a completion window of 1e-3: ends within 0.1% of a flow's duration complete together, early") {
  // Flow 0 ends at 2 s. Flow 1 (2 GB + 1 MB) would end at 2.001 s: 1 ms after the wake-up, within
  // 1e-3 of its 2.001 s duration (2.001 ms), so it completes at 2 s, 1 ms early. Flow 2 (2 GB +
  // 3 MB) ends 3 ms after it, beyond 2.003 ms: a wake-up of its own, exact.
  const std::vector<std::int64_t> bytes = {2'000'000'000, 2'001'000'000, 2'003'000'000};
  const SeparateLinks r = on_separate_links(bytes, 1e-3);
  CHECK(r.done[0] == Time::seconds(2.0));
  CHECK(r.done[1] == Time::seconds(2.0));
  CHECK(r.done[2] == Time::seconds(2.003));
  CHECK(r.batches == 2);
  // Exact (window 0): three wake-ups at 2, 2.001 and 2.003 s.
  const SeparateLinks exact = on_separate_links(bytes, 0.0);
  CHECK(exact.done[1] == Time::seconds(2.001));
  CHECK(exact.batches == 3);
}

TEST_CASE("empty transfers, zero-byte flows and flows to oneself arrive without bandwidth") {
  const auto ls = links(1, Time::us(1));
  Simulator sim;
  FlowNetwork net(sim, ls);
  Time empty_done = Time::infinity(), zero_done = Time::infinity(), self_done = Time::infinity();
  sim.at(Time::ns(5), [&] {
    Transfer empty;
    empty.on_done = [&] { empty_done = sim.now(); };
    net.start(std::move(empty));
    Transfer z;
    z.flows.push_back(FlowSpec{route(ls, {0}), Bytes(0)});
    z.on_done = [&] { zero_done = sim.now(); };
    net.start(std::move(z));
    Transfer s;
    s.flows.push_back(FlowSpec{Route{}, Bytes(100)});
    s.on_done = [&] { self_done = sim.now(); };
    net.start(std::move(s));
  });
  sim.run();
  CHECK(empty_done == Time::ns(5));
  CHECK(zero_done == Time::ns(1005));
  CHECK(self_done == Time::ns(5));
  CHECK(net.counters()[0].busy == Time::zero());
}

TEST_CASE("same input, same result: byte-identical completion times") {
  auto run = [] {
    const auto ls = links(4);
    Simulator sim;
    FlowNetwork net(sim, ls);
    std::vector<Time> done(24);
    Transfer t;
    for (int i = 0; i < 24; ++i) {
      const LinkId a = i % 4, b = (i * 7 + 1) % 4;
      std::vector<LinkId> ids{a};
      if (b != a) ids.push_back(b);
      t.flows.push_back(FlowSpec{route(ls, ids), Bytes(1000 + 37 * i)});
    }
    t.on_flow_done = [&](std::size_t i) { done[i] = sim.now(); };
    net.start(std::move(t));
    sim.run();
    return done;
  };
  CHECK(run() == run());
}
