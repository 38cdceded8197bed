#include <doctest/doctest.h>

#include <cmath>
#include <set>

#include "models/errors.h"
#include "models/selection_law.h"
#include "models/selection_marginals.h"

using namespace epsim;

namespace {
std::vector<Holding> experts(int from, int to) {
  std::vector<Holding> h;
  for (int e = from; e < to; ++e) h.push_back({e, 1.0});
  return h;
}
double choose(int n, int k) {
  double c = 1;
  for (int i = 0; i < k; ++i) c = c * (n - i) / (i + 1);
  return c;
}
}  // namespace

TEST_CASE("selection law without a limit: a uniform k-subset (hypergeometric misses)") {
  const SelectionLaw law = SelectionLaw::uniform(16, 4);
  CHECK(law.fit_error() < 1e-12);
  for (int e = 0; e < 16; ++e) CHECK(law.marginals()[static_cast<std::size_t>(e)] == doctest::Approx(0.25));
  // A destination with 4 experts misses a token that took none of them: C(12, 4) / C(16, 4) = 495 / 1820.
  CHECK(law.reach(experts(0, 4)) == doctest::Approx(1.0 - 495.0 / 1820.0).epsilon(1e-12));
  // Expected copies 4 x 0.25 = 1 per token, distinct 0.728: independent choices would give 1 - 0.75^4 = 0.684.
  CHECK(law.distinct_per_copy(experts(0, 4)) == doctest::Approx(1.0 - 495.0 / 1820.0).epsilon(1e-12));
  // One expert: every copy is a distinct token; half a replica: half of them.
  CHECK(law.distinct_per_copy({{3, 1.0}}) == doctest::Approx(1.0).epsilon(1e-12));
  CHECK(law.reach({{3, 0.5}}) == doctest::Approx(0.125).epsilon(1e-12));
}

TEST_CASE("selection law with a group limit: counted by hand on 4 groups of 2, top-3 within 2 groups") {
  // Groups {0,1} {2,3} {4,5} {6,7}. A 3-set cannot fit one group of 2, so every allowed set uses
  // exactly 2 groups: 6 pairs of groups x C(4, 3) = 24 sets, equally likely.
  const SelectionLaw law = SelectionLaw::uniform(8, 3, 4, 2);
  CHECK(law.fit_error() < 1e-12);
  CHECK(law.marginals()[0] == doctest::Approx(3.0 / 8.0));
  // Group 0 is used by the 12 sets of its 3 pairs.
  CHECK(law.reach(experts(0, 2)) == doctest::Approx(0.5).epsilon(1e-12));
  // Sets avoiding experts 0 and 2 (two groups touched): {1,4,5} {1,6,7} {3,4,5} {3,6,7} and the 4
  // 3-subsets of {4,5,6,7}: 8 of 24.
  CHECK(law.reach({{0, 1.0}, {2, 1.0}}) == doctest::Approx(2.0 / 3.0).epsilon(1e-12));
  RandomStream rng(3);
  for (int i = 0; i < 2000; ++i) {
    const std::vector<int> t = law.draw(rng);
    REQUIRE(t.size() == 3);
    std::set<int> groups;
    for (int e : t) groups.insert(e / 2);
    REQUIRE(groups.size() == 2);
  }
}

TEST_CASE("selection law: DeepSeek-V3's 8 groups / 4, exact against the closed form and a Monte Carlo") {
  // 256 experts, top-8, a group of 32 per node (EP 64 on 8 nodes). Allowed sets: C(8, m) x (8-sets
  // covering m groups) for m <= 4, equally likely; E[groups used] = 3.903221 (inclusion-exclusion:
  // covering(m) = sum_i (-1)^i C(m, i) C(32 (m - i), 8)). Independent choices: 8 (1 - (31/32)^32) = 5.11.
  const SelectionLaw law = SelectionLaw::uniform(256, 8, 8, 4);
  double closed_num = 0, closed_den = 0;
  for (int m = 1; m <= 4; ++m) {
    double cover = 0;
    for (int i = 0; i <= m; ++i) cover += (i % 2 ? -1 : 1) * choose(m, i) * choose(32 * (m - i), 8);
    closed_num += m * choose(8, m) * cover;
    closed_den += choose(8, m) * cover;
  }
  double nodes = 0;
  for (int n = 0; n < 8; ++n) nodes += law.reach(experts(32 * n, 32 * (n + 1)));
  CHECK(nodes == doctest::Approx(closed_num / closed_den).epsilon(1e-10));
  CHECK(nodes == doctest::Approx(3.903221).epsilon(1e-6));
  RandomStream rng(11);
  double sum = 0;
  std::size_t most = 0;
  const int N = 40000;
  for (int i = 0; i < N; ++i) {
    std::set<int> used;
    for (int e : law.draw(rng)) used.insert(e / 32);
    sum += static_cast<double>(used.size());
    most = std::max(most, used.size());
  }
  CHECK(most <= 4);
  CHECK(sum / N == doctest::Approx(nodes).epsilon(0.01));
}

TEST_CASE("selection law: skewed marginals are met, forced experts stay outside the limit") {
  std::vector<double> w(64);
  for (int e = 0; e < 64; ++e) w[static_cast<std::size_t>(e)] = 1.0 / (1 + (e * 13) % 64);
  const SelectionMarginals m = selection_marginals(w, 6, 8, 3);
  std::vector<double> p = m.expert;
  std::vector<int> group(64);
  for (int e = 0; e < 64; ++e) group[static_cast<std::size_t>(e)] = e / 8;
  p.push_back(1.0);  // an always-chosen expert (a routed shared expert), no group
  group.push_back(-1);
  const SelectionLaw law(p, group, 3, 7);
  CHECK(law.fit_error() < 1e-9);
  CHECK(law.marginals()[64] == 1.0);
  CHECK(law.reach({{64, 0.25}}) == doctest::Approx(0.25));
  RandomStream rng(5);
  std::vector<double> seen(65, 0.0);
  const int N = 40000;
  for (int i = 0; i < N; ++i) {
    const std::vector<int> t = law.draw(rng);
    REQUIRE(t.size() == 7);
    REQUIRE(t.back() == 64);
    std::set<int> groups;
    for (std::size_t j = 0; j + 1 < t.size(); ++j) groups.insert(t[j] / 8);
    REQUIRE(groups.size() <= 3);
    for (int e : t) seen[static_cast<std::size_t>(e)] += 1.0 / N;
  }
  for (int e = 0; e < 64; ++e)  // binomial standard error at most 0.0025: within 5 of them
    CHECK(std::abs(seen[static_cast<std::size_t>(e)] - p[static_cast<std::size_t>(e)]) < 0.0125);
  CHECK_THROWS_AS(SelectionLaw({0.5, 0.5}, {0, -1}, 1, 1), SimulationError);  // a free expert outside the groups
  CHECK_THROWS_AS(SelectionLaw({0.5, 0.4}, {0, 0}, 1, 1), SimulationError);   // sums to 0.9, not top_k
}

TEST_CASE("water-filled marginals under the steepest zipf (s = 16) still sum to top_k") {
  // 256 experts of weight r^-16 (the bound of routing.zipf_s), top-8: the 7 hottest saturate at 1
  // and the 8th onwards share the one selection left in proportion to weight, the 8th
  // 1 / (1 + (8/9)^16 + (8/10)^16 + ...) = 0.8415 of it. Found by the fuzzer: the old
  // running "total minus saturated weights" lost the rest (8^-16 ~ 3.6e-15) to rounding and the
  // marginals summed to 8.066, which SelectionLaw refused as an internal error.
  std::vector<double> w(256);
  for (std::size_t r = 0; r < w.size(); ++r) w[r] = std::pow(static_cast<double>(r + 1), -16.0);
  const std::vector<double> x = water_fill(w, std::vector<double>(w.size(), 1.0), 8);
  double sum = 0;
  for (double v : x) sum += v;
  CHECK(sum == doctest::Approx(8.0).epsilon(1e-12));
  for (int r = 0; r < 7; ++r) CHECK(x[static_cast<std::size_t>(r)] == 1.0);
  double tail = 0;  // sum over r >= 8 of (8 / r)^16, smallest first
  for (int r = 256; r >= 8; --r) tail += std::pow(8.0 / r, 16.0);
  CHECK(x[7] == doctest::Approx(1.0 / tail).epsilon(1e-12));
  CHECK(x[7] == doctest::Approx(0.8415).epsilon(1e-4));
  CHECK_NOTHROW(SelectionLaw(x, std::vector<int>(x.size(), 0), 1, 8));
}
