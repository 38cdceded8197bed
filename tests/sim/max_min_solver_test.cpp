// The max-min solver against systems solved by hand, and its incremental solves against a plain
// progressive filling written out here on random systems.
#include "sim/max_min_solver.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "models/errors.h"

using epsim::MaxMinSolver;
using Ix = MaxMinSolver::Index;

namespace {

Ix add(MaxMinSolver& s, std::vector<Ix> links, double weight = 1.0, double cap = MaxMinSolver::kNoCap) {
  return s.add_flow(links, weight, cap);
}

// Textbook progressive filling: O(L) scan per level, no heap, no incrementality.
std::vector<double> reference_rates(const std::vector<double>& cap, const std::vector<std::vector<Ix>>& route,
                                    const std::vector<double>& weight, const std::vector<double>& flow_cap) {
  const std::size_t n = cap.size(), m = route.size();
  std::vector<double> rem = cap, rate(m, 0.0);
  std::vector<char> frozen(m, 0);
  for (;;) {
    double best = INFINITY;
    for (std::size_t l = 0; l < n; ++l) {
      double w = 0;
      for (std::size_t f = 0; f < m; ++f)
        if (!frozen[f])
          for (Ix x : route[f])
            if (static_cast<std::size_t>(x) == l) w += weight[f];
      if (w > 0) best = std::min(best, std::max(0.0, rem[l]) / w);
    }
    for (std::size_t f = 0; f < m; ++f)
      if (!frozen[f]) best = std::min(best, flow_cap[f] / weight[f]);
    if (best == INFINITY) break;
    // Freeze every flow on a link whose share is `best`, and every flow whose cap is reached.
    std::vector<char> sat(n, 0);
    for (std::size_t l = 0; l < n; ++l) {
      double w = 0;
      for (std::size_t f = 0; f < m; ++f)
        if (!frozen[f])
          for (Ix x : route[f])
            if (static_cast<std::size_t>(x) == l) w += weight[f];
      if (w > 0 && std::max(0.0, rem[l]) / w <= best * (1 + 1e-12)) sat[l] = 1;
    }
    for (std::size_t f = 0; f < m; ++f) {
      if (frozen[f]) continue;
      bool hit = flow_cap[f] / weight[f] <= best * (1 + 1e-12);
      for (Ix x : route[f]) hit = hit || sat[static_cast<std::size_t>(x)];
      if (!hit) continue;
      frozen[f] = 1;
      rate[f] = std::min(flow_cap[f], weight[f] * best);
      for (Ix x : route[f]) rem[static_cast<std::size_t>(x)] -= rate[f];
    }
  }
  return rate;
}

}  // namespace

TEST_CASE("one link shared by n flows, then one leaves") {
  MaxMinSolver s({12.0});
  const Ix a = add(s, {0}), b = add(s, {0}), c = add(s, {0});
  const auto& changes = s.solve();
  CHECK(changes.moved.size() == 3);  // new flows
  CHECK(changes.levels == std::vector<Ix>{0});
  CHECK(s.level(0) == 4.0);
  CHECK(s.rate(a) == 4.0);
  CHECK(s.rate(b) == 4.0);
  CHECK(s.rate(c) == 4.0);
  CHECK(s.bottleneck(a) == 0);
  CHECK(s.load(0) == 12.0);
  s.remove_flow(b);
  s.solve();
  CHECK(s.rate(a) == 6.0);
  CHECK(s.rate(c) == 6.0);
  CHECK(s.active_flow_count() == 2);
}

TEST_CASE("parking lot: a long flow over three links, one short flow on each") {
  // Capacities 10, 20, 30. The long flow is bottlenecked on link 0 with its short neighbour: 5 each;
  // the other short flows take what the long flow leaves: 15 and 25.
  MaxMinSolver s({10.0, 20.0, 30.0});
  const Ix lng = add(s, {0, 1, 2});
  const Ix s0 = add(s, {0}), s1 = add(s, {1}), s2 = add(s, {2});
  s.solve();
  CHECK(s.rate(lng) == 5.0);
  CHECK(s.rate(s0) == 5.0);
  CHECK(s.rate(s1) == 15.0);
  CHECK(s.rate(s2) == 25.0);
  CHECK(s.bottleneck(lng) == 0);
  CHECK(s.bottleneck(s2) == 2);

  // Without s0 the long flow moves to link 1 (10 each; link 0 ties at 10 and is saturated too).
  s.remove_flow(s0);
  s.solve();
  CHECK(s.rate(lng) == 10.0);
  CHECK(s.rate(s1) == 10.0);
  CHECK(s.rate(s2) == 20.0);
}

TEST_CASE("two bottleneck levels") {
  // Link A (10) carries f1, f2, f3; link B (30) carries f3, f4. A saturates first at 10/3;
  // f4 then gets what f3 leaves on B: 30 - 10/3 = 80/3.
  MaxMinSolver s({10.0, 30.0});
  const Ix f1 = add(s, {0}), f2 = add(s, {0}), f3 = add(s, {0, 1}), f4 = add(s, {1});
  s.solve();
  CHECK(s.rate(f1) == doctest::Approx(10.0 / 3).epsilon(1e-15));
  CHECK(s.rate(f2) == doctest::Approx(10.0 / 3).epsilon(1e-15));
  CHECK(s.rate(f3) == doctest::Approx(10.0 / 3).epsilon(1e-15));
  CHECK(s.rate(f4) == doctest::Approx(80.0 / 3).epsilon(1e-15));
  CHECK(s.bottleneck(f3) == 0);
  CHECK(s.bottleneck(f4) == 1);
  CHECK(s.load(1) == doctest::Approx(30.0).epsilon(1e-15));
}

TEST_CASE("a flow limited by its own cap") {
  // Link of 10 with three flows; one is capped at 2: the other two share the remaining 8.
  MaxMinSolver s({10.0});
  const Ix capped = add(s, {0}, 1.0, 2.0), a = add(s, {0}), b = add(s, {0});
  s.solve();
  CHECK(s.rate(capped) == 2.0);
  CHECK(s.rate(a) == 4.0);
  CHECK(s.rate(b) == 4.0);
  CHECK(s.bottleneck(capped) == -1);
  CHECK(s.bottleneck(a) == 0);
  // A cap above the fair share does not bind.
  MaxMinSolver t({10.0});
  const Ix loose = add(t, {0}, 1.0, 7.0), c = add(t, {0});
  t.solve();
  CHECK(t.rate(loose) == 5.0);
  CHECK(t.rate(c) == 5.0);
}

TEST_CASE("weights share a link in proportion") {
  // Weights 1 and 2 on a link of 12: 4 and 8. With a second link of 6 under the weight-2 flow
  // alone, it is capped there at 6 and the weight-1 flow takes the remaining 6.
  MaxMinSolver s({12.0});
  const Ix a = add(s, {0}, 1.0), b = add(s, {0}, 2.0);
  s.solve();
  CHECK(s.rate(a) == 4.0);
  CHECK(s.rate(b) == 8.0);
  MaxMinSolver t({12.0, 6.0});
  const Ix c = add(t, {0}, 1.0), d = add(t, {0, 1}, 2.0);
  t.solve();
  CHECK(t.rate(d) == 6.0);
  CHECK(t.rate(c) == 6.0);
  CHECK(t.bottleneck(d) == 1);
}

TEST_CASE("a removal that touches no bottleneck changes nothing and fills nothing") {
  // Link 0 (10) has f1, f2 bottlenecked there; f3 crosses links 0 and 1 (100) with f4. Link 0 is
  // the bottleneck of all three of its flows; link 1 is f4's. Removing f4 frees link 1, where f3
  // is not bottlenecked: no rate moves and no filling runs.
  MaxMinSolver s({10.0, 100.0});
  const Ix f1 = add(s, {0}), f2 = add(s, {0}), f3 = add(s, {0, 1}), f4 = add(s, {1});
  s.solve();
  CHECK(s.rate(f4) == doctest::Approx(100.0 - 10.0 / 3).epsilon(1e-15));
  const auto fills = s.stats().fills;
  s.remove_flow(f4);
  CHECK(s.solve().moved.empty());
  CHECK(s.stats().fills == fills);
  CHECK(s.rate(f1) == s.rate(f3));
  CHECK(s.rate(f2) == doctest::Approx(10.0 / 3).epsilon(1e-15));
}

TEST_CASE("a completion re-fills only the flows at least as fast as the one that ended") {
  // Link 0 (6) carries a, b, c: level 2. Link 1 (20) carries c (frozen at 2 on link 0), d and e:
  // (20 - 2) / 2 = 9 each. Removing d (rho 9) keeps everything below 9: only e is re-filled, and
  // takes 20 - 2 = 18. A new flow g on link 1 alone: with c kept at 2, link 1 would saturate at
  // (20 - 2) / 2 = 9 (e and g unfrozen), so the re-fill starts at 9 and holds e and g: 9 each.
  MaxMinSolver s({6.0, 20.0});
  const Ix a = add(s, {0}), b = add(s, {0}), c = add(s, {0, 1}), d = add(s, {1}), e = add(s, {1});
  s.solve();
  CHECK(s.rate(a) == 2.0);
  CHECK(s.rate(d) == 9.0);
  const auto filled = s.stats().flows_filled;
  const auto full = s.stats().full_fills;
  const auto changed = s.stats().rates_changed;
  s.remove_flow(d);
  const auto& changes = s.solve();
  CHECK(s.stats().flows_filled == filled + 1);
  CHECK(s.stats().rates_changed == changed + 1);  // e: 9 -> 18
  CHECK(s.stats().full_fills == full);
  CHECK(changes.levels == std::vector<Ix>{1});
  CHECK(changes.moved.empty());
  CHECK(s.rate(e) == 18.0);
  CHECK(s.rate(c) == 2.0);
  const Ix g = add(s, {1});
  s.solve();
  CHECK(s.stats().flows_filled == filled + 3);
  CHECK(s.stats().rates_changed == changed + 3);  // e: 18 -> 9, and g new at 9
  CHECK(s.rate(e) == 9.0);
  CHECK(s.rate(g) == 9.0);
  CHECK(s.rate(b) == 2.0);
  CHECK(s.load(1) == 20.0);
}

TEST_CASE("a re-fill counts the flows it moves to a new rate, not the ones it re-freezes where they were") {
  // Link 0 (4): a, b at 2. Link 1 (10): c, d at 5. Link 2 (3): x alone at 3. Removing x (rho 3)
  // re-fills everything at or above 3: c and d, which saturate link 1 at 5 again (same rates).
  // Then removing c (rho 5) re-fills d alone: 10. Ties everywhere: a and b, c and d are equal.
  MaxMinSolver s({4.0, 10.0, 3.0});
  const Ix a = add(s, {0}), b = add(s, {0}), c = add(s, {1}), d = add(s, {1}), x = add(s, {2});
  s.solve();
  CHECK(s.rate(a) == 2.0);
  CHECK(s.rate(b) == 2.0);
  CHECK(s.rate(c) == 5.0);
  CHECK(s.rate(x) == 3.0);
  CHECK(s.stats().rates_changed == 5);  // all new
  s.remove_flow(x);
  s.solve();
  CHECK(s.stats().flows_filled == 5 + 2);
  CHECK(s.stats().rates_changed == 5);  // c and d re-frozen at 5
  CHECK(s.rate(d) == 5.0);
  s.remove_flow(c);
  s.solve();
  CHECK(s.stats().flows_filled == 5 + 2 + 1);
  CHECK(s.stats().rates_changed == 6);  // d: 5 -> 10
  CHECK(s.rate(d) == 10.0);
  CHECK(s.rate(a) == 2.0);
}

TEST_CASE("a re-fill ends once every flow is frozen; a link whose flows froze elsewhere keeps their order") {
  // Link 0 (6) carries a, b, c; each also crosses link 1 (100), which nobody is bottlenecked on;
  // d alone on link 2 (20). Filling: link 0 saturates at 6 / 3 = 2 and freezes a, b, c (link 1 then
  // holds 100 - 6 = 94 for nobody), link 2 at 20. Link 1 (first key 100 / 3) is still in the heap
  // when d, the last flow, freezes: the filling stops there and link 1 sets no level. Removing a
  // (rho 2) re-fills b, c at 6 / 2 = 3 (link 1's key 50 is again above link 2's 20) and rewrites
  // link 1's order (100 - 3 - 3 = 94 left). A new flow e on link 1 alone then saturates it at 94
  // (b and c kept at 3: the re-fill starts from the capacity link 1 kept after them).
  MaxMinSolver s({6.0, 100.0, 20.0});
  const Ix a = add(s, {0, 1}), b = add(s, {0, 1}), c = add(s, {1, 0}), d = add(s, {2});
  s.solve();
  CHECK(s.rate(a) == 2.0);
  CHECK(s.rate(c) == 2.0);
  CHECK(s.rate(d) == 20.0);
  CHECK(s.bottleneck(c) == 0);
  CHECK(s.level(1) == MaxMinSolver::kNoCap);
  CHECK(s.load(1) == 6.0);
  s.remove_flow(a);
  s.solve();
  CHECK(s.rate(b) == 3.0);
  CHECK(s.rate(c) == 3.0);
  CHECK(s.level(1) == MaxMinSolver::kNoCap);
  CHECK(s.load(1) == 6.0);
  CHECK(s.rate(d) == 20.0);
  const auto filled = s.stats().flows_filled;
  const Ix e = add(s, {1});
  const auto& changes = s.solve();
  CHECK(s.stats().flows_filled == filled + 1);  // e alone: b, c and d are below 94
  CHECK(changes.levels == std::vector<Ix>{1});
  CHECK(s.rate(e) == 94.0);
  CHECK(s.bottleneck(e) == 1);
  CHECK(s.load(1) == 100.0);
  CHECK(s.rate(b) == 3.0);
}

TEST_CASE("bad input is refused") {
  CHECK_THROWS_AS(MaxMinSolver({0.0}), epsim::SimulationError);
  MaxMinSolver s({1.0, 1.0});
  CHECK_THROWS_AS(add(s, {0, 0}), epsim::SimulationError);
  CHECK_THROWS_AS(add(s, {2}), epsim::SimulationError);
  CHECK_THROWS_AS(add(s, {0}, 0.0), epsim::SimulationError);
  const Ix f = add(s, {0});
  s.remove_flow(f);
  CHECK_THROWS_AS(s.remove_flow(f), epsim::SimulationError);
}

TEST_CASE("incremental solves equal a plain progressive filling on random systems") {
  std::mt19937_64 rng(12345);
  auto uniform = [&](double lo, double hi) {
    return lo + (hi - lo) * static_cast<double>(rng() >> 11) * 0x1.0p-53;
  };
  for (int trial = 0; trial < 40; ++trial) {
    const int links = 3 + static_cast<int>(rng() % 10);
    std::vector<double> cap(static_cast<std::size_t>(links));
    for (auto& c : cap) c = (rng() % 3 == 0) ? 10.0 : uniform(1.0, 20.0);  // some ties on purpose
    MaxMinSolver s(cap);
    std::vector<Ix> ids;
    std::vector<std::vector<Ix>> route;
    std::vector<double> weight, fcap;
    for (int step = 0; step < 60; ++step) {
      const bool remove = !ids.empty() && rng() % 3 == 0;
      if (remove) {
        const std::size_t k = static_cast<std::size_t>(rng() % ids.size());
        s.remove_flow(ids[k]);
        ids.erase(ids.begin() + static_cast<long>(k));
        route.erase(route.begin() + static_cast<long>(k));
        weight.erase(weight.begin() + static_cast<long>(k));
        fcap.erase(fcap.begin() + static_cast<long>(k));
      } else {
        const int batch = 1 + static_cast<int>(rng() % 3);
        for (int b = 0; b < batch; ++b) {
          std::vector<Ix> r;
          const int hops = 1 + static_cast<int>(rng() % 4);
          for (int h = 0; h < hops; ++h) {
            const Ix l = static_cast<Ix>(rng() % static_cast<std::uint64_t>(links));
            if (std::find(r.begin(), r.end(), l) == r.end()) r.push_back(l);
          }
          const double w = rng() % 4 == 0 ? uniform(0.5, 3.0) : 1.0;
          const double c = rng() % 5 == 0 ? uniform(0.2, 5.0) : MaxMinSolver::kNoCap;
          ids.push_back(s.add_flow(r, w, c));
          route.push_back(r);
          weight.push_back(w);
          fcap.push_back(c);
        }
      }
      s.solve();
      const auto want = reference_rates(cap, route, weight, fcap);
      for (std::size_t k = 0; k < ids.size(); ++k) {
        INFO("trial " << trial << " step " << step << " flow " << k);
        REQUIRE(s.rate(ids[k]) == doctest::Approx(want[k]).epsilon(1e-9));
      }
    }
  }
}

TEST_CASE("tie-heavy systems: every re-fill from a level equals a plain progressive filling") {
  // Capacities from {10, 20} (some a few 1e-12 apart) and unit weights make many links saturate at
  // the same or nearly the same level, and removals cut through those ties: the re-fill keeps every
  // flow below the removed flow's rho and must leave each kept flow on a link whose level it still
  // has (a flow labelled with a nearly tied link would follow that link's later level).
  std::mt19937_64 rng(777);
  for (int trial = 0; trial < 60; ++trial) {
    const int links = 4 + static_cast<int>(rng() % 6);
    std::vector<double> cap(static_cast<std::size_t>(links));
    for (auto& c : cap) c = (rng() % 2 == 0 ? 10.0 : 20.0) * (1.0 + static_cast<double>(rng() % 3) * 1e-12);
    MaxMinSolver s(cap);
    std::vector<Ix> ids;
    std::vector<std::vector<Ix>> route;
    for (int f = 0; f < 24; ++f) {
      std::vector<Ix> r;
      const int hops = 1 + static_cast<int>(rng() % 3);
      for (int h = 0; h < hops; ++h) {
        const Ix l = static_cast<Ix>(rng() % static_cast<std::uint64_t>(links));
        if (std::find(r.begin(), r.end(), l) == r.end()) r.push_back(l);
      }
      ids.push_back(add(s, r));
      route.push_back(r);
    }
    s.solve();
    while (!ids.empty()) {
      const std::size_t k = static_cast<std::size_t>(rng() % ids.size());
      s.remove_flow(ids[k]);
      ids.erase(ids.begin() + static_cast<long>(k));
      route.erase(route.begin() + static_cast<long>(k));
      if (rng() % 4 == 0) {  // now and then a flow arrives with the removal
        std::vector<Ix> r{static_cast<Ix>(rng() % static_cast<std::uint64_t>(links))};
        ids.push_back(add(s, r));
        route.push_back(r);
      }
      s.solve();
      const auto want = reference_rates(cap, route, std::vector<double>(route.size(), 1.0),
                                        std::vector<double>(route.size(), MaxMinSolver::kNoCap));
      for (std::size_t j = 0; j < ids.size(); ++j) {
        INFO("trial " << trial << " flows left " << ids.size() << " flow " << j);
        REQUIRE(s.rate(ids[j]) == doctest::Approx(want[j]).epsilon(1e-9));
        REQUIRE(s.level(s.bottleneck(ids[j])) == s.rate(ids[j]));
      }
    }
  }
}
