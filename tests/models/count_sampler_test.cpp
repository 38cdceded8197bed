#include <doctest/doctest.h>

#include <numeric>

#include "models/apportion.h"
#include "models/count_sampler.h"
#include "models/random_stream.h"

using namespace epsim;

namespace {

struct Moments {
  double mean = 0, variance = 0;
};

template <class Draw>
Moments moments(int n, Draw draw) {
  double s = 0, s2 = 0;
  for (int i = 0; i < n; ++i) {
    const double x = static_cast<double>(draw());
    s += x;
    s2 += x * x;
  }
  const double m = s / n;
  return {m, s2 / n - m * m};
}

}  // namespace

TEST_CASE("the binomial sampler has the right mean and variance on both of its branches") {
  RandomStream rng(42);
  // Normal branch: mean 128, variance 124.
  Moments m = moments(40000, [&] { return rng.binomial(4096, 1.0 / 32); });
  CHECK(m.mean == doctest::Approx(128.0).epsilon(0.002));
  CHECK(m.variance == doctest::Approx(124.0).epsilon(0.03));
  // Inversion branch (exact): mean 5, variance 4.75.
  m = moments(40000, [&] { return rng.binomial(100, 0.05); });
  CHECK(m.mean == doctest::Approx(5.0).epsilon(0.01));
  CHECK(m.variance == doctest::Approx(4.75).epsilon(0.03));
  // p > 1/2 by symmetry; the edges are exact.
  m = moments(20000, [&] { return rng.binomial(1000, 0.9); });
  CHECK(m.mean == doctest::Approx(900.0).epsilon(0.001));
  CHECK(rng.binomial(77, 0.0) == 0);
  CHECK(rng.binomial(77, 1.0) == 77);
  CHECK(rng.binomial(0, 0.5) == 0);
}

TEST_CASE("the same seed gives the same stream, another seed another") {
  RandomStream a(derive_seed(1, {2, 3})), b(derive_seed(1, {2, 3})), c(derive_seed(1, {3, 2}));
  const double x = a.uniform();
  CHECK(x == b.uniform());
  CHECK(x != c.uniform());
}

TEST_CASE("per-source counts: exact total, each within [0, T], and the binomial spread") {
  // 256 experts at p = 8/256, T = 4096: each count has variance T p (1 - p) = 124 before the total
  // is fixed, x (1 - 1/256) after (the conditioning removes one expert's share of the variance).
  RandomStream rng(9);
  const std::vector<double> p(256, 8.0 / 256);
  std::vector<std::int64_t> counts(256);
  double s = 0, s2 = 0;
  for (int src = 0; src < 256; ++src) {
    sample_counts(rng, p, 4096, 8, counts);
    REQUIRE(std::accumulate(counts.begin(), counts.end(), std::int64_t{0}) == 4096 * 8);
    for (const auto c : counts) {
      s += static_cast<double>(c);
      s2 += static_cast<double>(c) * static_cast<double>(c);
    }
  }
  const double n = 256.0 * 256, mean = s / n;
  CHECK(mean == 128.0);
  CHECK(s2 / n - mean * mean == doctest::Approx(124.0 * 255 / 256).epsilon(0.03));
  // Saturated and empty experts are exact: p = 1 gives T, p = 0 gives 0.
  std::vector<double> q(10, 0.0);
  q[0] = 1.0;
  q[1] = 1.0;
  q[2] = 0.5;
  q[3] = 0.5;
  std::vector<std::int64_t> c(10);
  for (int i = 0; i < 100; ++i) {
    sample_counts(rng, q, 50, 3, c);
    REQUIRE(c[0] == 50);
    REQUIRE(c[1] == 50);
    REQUIRE(c[2] + c[3] == 50);
    REQUIRE(c[9] == 0);
  }
}

TEST_CASE("largest-remainder rounding keeps the total") {
  CHECK(apportion({1.5, 1.5, 1.0}, 4) == std::vector<std::int64_t>{2, 1, 1});  // tie: lower index
  CHECK(apportion({0.2, 0.3, 0.5}, 1) == std::vector<std::int64_t>{0, 0, 1});
  CHECK(apportion({2.0, 0.0}, 1) == std::vector<std::int64_t>{1, 0});  // rounding error the other way
}
