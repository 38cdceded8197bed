#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <numeric>

#include "tests/models/error_of.h"
#include "models/gate_model.h"

using namespace epsim;
using nlohmann::json;

namespace {

MoeModelSpec model(int experts, int top_k, int groups = 1, int topk_groups = 1, int layers = 4) {
  MoeModelSpec m;
  m.layers = layers;
  m.dense_layers = 1;
  m.routed_experts = experts;
  m.top_k = top_k;
  m.groups = groups;
  m.topk_groups = topk_groups;
  return m;
}

RoutingSpec routing(const json& j) { return RoutingSpec::from_json(j, "routing"); }

using epsim::testing::error_of;

double harmonic(int n, double s = 1.0) {
  double h = 0;
  for (int r = 1; r <= n; ++r) h += std::pow(r, -s);
  return h;
}

// Every source: counts in [0, T] and summing to T x top_k.
void check_conservation(const RoutingSample& r, int top_k) {
  for (int s = 0; s < r.sources; ++s) {
    std::int64_t sum = 0;
    for (int e = 0; e < r.experts; ++e) {
      REQUIRE(r.at(s, e) >= 0);
      REQUIRE(r.at(s, e) <= r.tokens[static_cast<std::size_t>(s)]);
      sum += r.at(s, e);
    }
    REQUIRE(sum == r.tokens[static_cast<std::size_t>(s)] * top_k);
  }
}

}  // namespace

TEST_CASE("uniform stays exact: every source sends tokens x top_k / experts to every expert") {
  const MoeModelSpec m = model(256, 8);
  const GateModel gate(routing(json::object()), m);
  const RoutingSample r = gate.sample(1, 0, 16, 4096);
  for (int s = 0; s < 16; ++s)
    for (int e = 0; e < 256; ++e) REQUIRE(r.at(s, e) == 128);
  CHECK(r.imbalance() == 1.0);
  CHECK(r.dropped == 0);
}

TEST_CASE("sampling is deterministic for a seed, and differs with the seed, step and micro-batch") {
  const MoeModelSpec m = model(64, 4);
  auto draw = [&](std::uint64_t seed, int step, int mb) {
    GateModel gate(routing({{"distribution", "zipf"}, {"seed", seed}}), m);
    gate.begin_step(step);
    return gate.sample(2, mb, 8, 1024).counts;
  };
  CHECK(draw(7, 0, 0) == draw(7, 0, 0));
  CHECK(draw(7, 3, 1) == draw(7, 3, 1));
  CHECK(draw(7, 0, 0) != draw(8, 0, 0));
  CHECK(draw(7, 0, 0) != draw(7, 1, 0));
  CHECK(draw(7, 0, 0) != draw(7, 0, 1));
  // A sample does not depend on what was drawn before it.
  GateModel gate(routing({{"distribution", "zipf"}, {"seed", 7}}), m);
  (void)gate.sample(1, 0, 8, 1024);
  gate.begin_step(3);
  (void)gate.sample(3, 0, 8, 1024);
  CHECK(gate.sample(2, 1, 8, 1024).counts == draw(7, 3, 1));
  // Pinned: the first counts of this seed (changes only if the sampler changes).
  const auto c = draw(7, 0, 0);
  CHECK(std::vector<std::int64_t>(c.begin(), c.begin() + 4) == std::vector<std::int64_t>{11, 29, 21, 20});
}

TEST_CASE("counts never exceed the tokens and sum to tokens x top_k, for every distribution and size") {
  for (const json& spec : {json{{"distribution", "uniform-sampled"}}, json{{"distribution", "zipf"}, {"zipf_s", 1.5}},
                           json{{"distribution", "hot"}, {"hot_experts", 2}, {"hot_fraction", 0.9}}}) {
    for (const std::int64_t T : {std::int64_t{1}, std::int64_t{7}, std::int64_t{128}, std::int64_t{4096}}) {
      CAPTURE(spec.dump());
      CAPTURE(T);
      check_conservation(GateModel(routing(spec), model(256, 8)).sample(1, 0, 8, T), 8);
      check_conservation(GateModel(routing(spec), model(256, 8, 8, 4)).sample(2, 0, 8, T), 8);
      check_conservation(GateModel(routing(spec), model(16, 4)).sample(3, 0, 8, T), 4);
    }
  }
}

TEST_CASE("zipf(1.0): the hottest expert's share matches its water-filled marginal") {
  const RoutingSpec spec = routing({{"distribution", "zipf"}, {"zipf_s", 1.0}});
  SUBCASE("top-2 of 256: nothing saturates, the hottest takes 1/H_256 = 16.33% of the selections") {
    const GateModel gate(spec, model(256, 2));
    const auto p = gate.selection_probabilities(1);
    const double p1 = 2.0 / harmonic(256);  // 0.326572
    CHECK(*std::max_element(p.begin(), p.end()) == doctest::Approx(p1).epsilon(1e-12));
    const RoutingSample r = gate.sample(1, 0, 256, 4096);
    const auto load = r.expert_load();
    const double share = static_cast<double>(*std::max_element(load.begin(), load.end())) / (256.0 * 4096 * 2);
    CHECK(share == doctest::Approx(1.0 / harmonic(256)).epsilon(0.01));
    CHECK(r.imbalance() == doctest::Approx(256.0 / harmonic(256)).epsilon(0.01));  // 41.8
  }
  SUBCASE("top-8 of 256: the hottest is picked by every token, the rest share 7 with c = 7 / (H_256 - 1)") {
    const GateModel gate(spec, model(256, 8));
    auto p = gate.selection_probabilities(1);
    std::sort(p.rbegin(), p.rend());
    const double c = 7.0 / (harmonic(256) - 1.0);  // 1.36605
    CHECK(p[0] == 1.0);
    CHECK(p[1] == doctest::Approx(c / 2).epsilon(1e-12));
    CHECK(p[255] == doctest::Approx(c / 256).epsilon(1e-12));
    const RoutingSample r = gate.sample(1, 0, 256, 4096);
    const auto load = r.expert_load();
    CHECK(*std::max_element(load.begin(), load.end()) == 256 * 4096);  // exactly T from every source
    CHECK(r.imbalance() == 32.0);
  }
  SUBCASE("each layer has its own expert order") {
    const GateModel gate(spec, model(256, 8));
    const auto a = gate.selection_probabilities(1), b = gate.selection_probabilities(2), c = gate.selection_probabilities(3);
    CHECK(a != b);
    CHECK(b != c);
    auto sorted = [](std::vector<double> v) { std::sort(v.begin(), v.end()); return v; };
    CHECK(sorted(a) == sorted(b));  // the same popularity curve, other experts on it
  }
}

TEST_CASE("hot experts take hot_fraction of the selections") {
  const GateModel gate(routing({{"distribution", "hot"}, {"hot_experts", 4}, {"hot_fraction", 0.5}}), model(64, 8));
  auto p = gate.selection_probabilities(1);
  std::sort(p.rbegin(), p.rend());
  // 4 hot experts share 0.5 x 8 = 4 selections per token: each 1.0 (exactly at the cap); the other
  // 60 share 4: 1/15 each.
  CHECK(p[0] == doctest::Approx(1.0));
  CHECK(p[3] == doctest::Approx(1.0));
  CHECK(p[4] == doctest::Approx(1.0 / 15));
  const RoutingSample r = gate.sample(1, 0, 64, 1024);
  CHECK(r.imbalance() == doctest::Approx(8.0).epsilon(1e-9));  // 1024 per source vs mean 128
}

TEST_CASE("water-filling by hand") {
  // 2 selections over weights 4,1,1,1,1: the first would get 4/8 x 2 = 1... exactly its cap.
  auto x = water_fill({4, 1, 1, 1, 1}, {1, 1, 1, 1, 1}, 2);
  CHECK(x[0] == doctest::Approx(1.0));
  CHECK(x[1] == doctest::Approx(0.25));
  // weight 9 saturates; the remaining 1 selection splits 1:1:1:1.
  x = water_fill({9, 1, 1, 1, 1}, {1, 1, 1, 1, 1}, 2);
  CHECK(x[0] == 1.0);
  CHECK(x[4] == doctest::Approx(0.25));
}

TEST_CASE("group-limited routing: a token's selections span at most topk_groups groups") {
  SUBCASE("by hand: 4 groups of 2, one group per token, top-2: a token takes both experts of its group") {
    // Weights: expert 0 hot (1/2), the other seven 1/14 each. Group weights 4/7, 1/7, 1/7, 1/7 with
    // one group per token: pi = 4/7, 1/7, 1/7, 1/7. Both experts of the chosen group are taken.
    std::vector<double> w(8, 1.0 / 14);
    w[0] = 0.5;
    const SelectionMarginals m = selection_marginals(w, 2, 4, 1);
    CHECK(m.group[0] == doctest::Approx(4.0 / 7));
    CHECK(m.group[3] == doctest::Approx(1.0 / 7));
    CHECK(m.expert[0] == doctest::Approx(4.0 / 7));
    CHECK(m.expert[1] == doctest::Approx(4.0 / 7));  // the hot expert's cold group mate rides along
    CHECK(m.expert[7] == doctest::Approx(1.0 / 7));
    // Without the limit: the hot expert saturates at 1, the seven share the other selection.
    const SelectionMarginals free = selection_marginals(w, 2, 1, 1);
    CHECK(free.expert[0] == doctest::Approx(1.0));
    CHECK(free.expert[1] == doctest::Approx(1.0 / 7));
  }
  SUBCASE("DeepSeek-V3 shape (256 experts, 8 groups / 4, top-8) under zipf(1.0)") {
    const RoutingSpec spec = routing({{"distribution", "zipf"}});
    const GateModel gate(spec, model(256, 8, 8, 4));
    const SelectionMarginals m = gate.marginals(1);
    CHECK(std::accumulate(m.group.begin(), m.group.end(), 0.0) == doctest::Approx(4.0));
    CHECK(std::accumulate(m.expert.begin(), m.expert.end(), 0.0) == doctest::Approx(8.0));
    for (int g = 0; g < 8; ++g) {
      double in_group = 0;
      for (int e = 32 * g; e < 32 * (g + 1); ++e) {
        CHECK(m.expert[static_cast<std::size_t>(e)] <= m.group[static_cast<std::size_t>(g)] + 1e-12);
        in_group += m.expert[static_cast<std::size_t>(e)];
      }
      CHECK(in_group <= 8 * m.group[static_cast<std::size_t>(g)] + 1e-9);
      CHECK(m.group[static_cast<std::size_t>(g)] <= 1.0);
    }
    // The limit concentrates load in the popular groups: their share grows over the free gate's.
    const GateModel free(routing({{"distribution", "zipf"}, {"group_limited", false}}), model(256, 8, 8, 4));
    const auto pf = free.selection_probabilities(1);
    auto group_share = [](const std::vector<double>& p, int g) {
      return std::accumulate(p.begin() + 32 * g, p.begin() + 32 * (g + 1), 0.0);
    };
    const int top = static_cast<int>(std::max_element(m.group.begin(), m.group.end()) - m.group.begin());
    CHECK(group_share(m.expert, top) > group_share(pf, top));
    // Sampled per-group loads follow the marginals (256 sources x 4096 tokens).
    const RoutingSample r = gate.sample(1, 0, 256, 4096);
    check_conservation(r, 8);
    const auto load = r.expert_load();
    for (int g = 0; g < 8; ++g) {
      const double got = static_cast<double>(std::accumulate(load.begin() + 32 * g, load.begin() + 32 * (g + 1), std::int64_t{0}));
      CHECK(got / (256.0 * 4096) == doctest::Approx(group_share(m.expert, g)).epsilon(0.01));
    }
  }
}

TEST_CASE("bias balancing brings a zipf(1.0) gate under 1.1 max/mean within 50 steps") {
  // 256 experts, top-8, 256 sources x 4096 tokens: the hottest expert starts at 32x the mean (it is
  // picked by every token). Default step u = 0.07.
  GateModel gate(routing({{"distribution", "zipf"}, {"balance", "bias"}}), model(256, 8));
  std::vector<double> imbalance;
  for (int step = 0; step < 70; ++step) {
    gate.begin_step(step);
    const RoutingSample r = gate.sample(1, 0, 256, 4096);
    imbalance.push_back(r.imbalance());
    gate.observe(1, r.expert_load());
  }
  const auto first = std::find_if(imbalance.begin(), imbalance.end(), [](double x) { return x < 1.1; });
  const auto first_step = first - imbalance.begin();
  MESSAGE("max/mean per step: 0: " << imbalance[0] << ", 10: " << imbalance[10] << ", 20: " << imbalance[20]
                                   << ", 30: " << imbalance[30] << ", 40: " << imbalance[40] << ", 49: " << imbalance[49]
                                   << "; first under 1.1 at step " << first_step << ", worst after it "
                                   << *std::max_element(first, imbalance.end()));
  CHECK(imbalance[0] == 32.0);
  CHECK(imbalance[10] > 20.0);  // the sign rule moves each bias by u per step: no jump
  CHECK(first_step == 47);
  CHECK(std::all_of(first, imbalance.end(), [](double x) { return x < 1.1; }));  // and stays balanced
  // Other layers were not observed: their bias is untouched.
  CHECK(std::all_of(gate.bias(2).begin(), gate.bias(2).end(), [](double b) { return b == 0.0; }));
  // balance = none: observe does nothing.
  GateModel plain(routing({{"distribution", "zipf"}}), model(256, 8));
  std::vector<std::int64_t> skewed(256, 1);
  skewed[0] = 100;
  plain.observe(1, skewed);
  CHECK(plain.bias(1)[0] == 0.0);
  GateModel uniform(routing({{"balance", "bias"}}), model(256, 8));
  uniform.observe(1, skewed);
  CHECK(uniform.bias(1)[0] == 0.0);
}

TEST_CASE("group-limited bias balancing settles near 1 + 2u") {
  // DeepSeek-V3's shape (8 groups, 4 per token): an expert's load follows both its own bias and its
  // group's total weight, so the dither of the sign rule counts about twice.
  GateModel gate(routing({{"distribution", "zipf"}, {"balance", "bias"}}), model(256, 8, 8, 4));
  double last = 0;
  for (int step = 0; step < 60; ++step) {
    gate.begin_step(step);
    const RoutingSample r = gate.sample(1, 0, 256, 4096);
    last = r.imbalance();
    gate.observe(1, r.expert_load());
  }
  MESSAGE("group-limited max/mean after 60 steps: " << last);
  CHECK(last < 1.2);
  CHECK(last > 1.07);
}

TEST_CASE("the sign rule by hand") {
  ExpertBias b(1, 4, 0.5);
  b.update(0, {4, 1, 2, 1});  // mean 2
  CHECK(b.at(0) == std::vector<double>{-0.5, 0.5, 0.0, 0.5});
}

TEST_CASE("capacity factor drops overflow and reports it") {
  // zipf top-8 of 256: the hottest expert gets 256 x 4096 selections against a mean of 32768.
  const GateModel gate(routing({{"distribution", "zipf"}, {"capacity_factor", 1.25}}), model(256, 8));
  const RoutingSample r = gate.sample(1, 0, 256, 4096);
  const auto load = r.expert_load();
  const std::int64_t cap = 40960;  // ceil(1.25 x 256 x 4096 x 8 / 256)
  CHECK(*std::max_element(load.begin(), load.end()) == cap);
  CHECK(r.dropped + std::accumulate(load.begin(), load.end(), std::int64_t{0}) == 256LL * 4096 * 8);
  CHECK(r.dropped >= 256 * 4096 - cap);  // at least the hottest expert's overflow
  // Sources keep shares of the capped expert in proportion (each sent 4096: 160 kept each).
  const auto p = gate.selection_probabilities(1);
  const auto hottest = static_cast<int>(std::max_element(p.begin(), p.end()) - p.begin());
  for (int s = 0; s < 256; ++s) REQUIRE(r.at(s, hottest) == 160);
  // Uniform traffic is never dropped at factor 1.
  const GateModel even(routing({{"capacity_factor", 1.0}}), model(256, 8));
  CHECK(even.sample(1, 0, 4, 4096).dropped == 0);
}

TEST_CASE("bad routing keys name the path, the value and the rule") {
  CHECK(error_of([] { routing({{"distribution", "gauss"}}); }) ==
        "routing.distribution = \"gauss\": must be one of: uniform, uniform-sampled, zipf, hot, trace");
  CHECK(error_of([] { routing({{"zipf_s", -1}}); }) == "routing.zipf_s = -1: must be >= 0");
  CHECK(error_of([] { routing({{"hot_fraction", 1.0}}); }) == "routing.hot_fraction = 1.0: must be in (0, 1)");
  CHECK(error_of([] { routing({{"distribution", "trace"}}); }) == "routing.trace = \"\": required when distribution is \"trace\"");
  CHECK(error_of([] { routing({{"trace", "x.json"}}); }) ==
        "routing.trace = \"x.json\": only read when distribution is \"trace\" (distribution is \"uniform\")");
  CHECK(error_of([] { routing({{"distribution", "trace"}, {"trace", "x.json"}, {"balance", "bias"}}); }) ==
        "routing.balance = \"bias\": a trace fixes the loads: bias balancing needs a sampled distribution");
  CHECK(error_of([] { routing({{"bias_step", 0}}); }) == "routing.bias_step = 0: must be > 0");
  CHECK(error_of([] { routing({{"capacity_factor", -1}}); }) == "routing.capacity_factor = -1: must be in [0, 4096]");
  CHECK(error_of([] { GateModel(routing({{"distribution", "hot"}, {"hot_experts", 16}}), model(16, 4)); }) ==
        "routing.hot_experts = 16: must be < model.routed_experts = 16");
  CHECK(error_of([] { GateModel(routing({{"distribution", "trace"}, {"trace", "no/such.json"}}), model(16, 4)); })
            .rfind("routing.trace = \"no/such.json\": cannot open the trace file", 0) == 0);
}

TEST_CASE("sampling the seed step (256 sources x 4096 tokens, top-8 of 256, 58 MoE layers) is fast") {
  const GateModel gate(routing({{"distribution", "zipf"}}), model(256, 8, 1, 1, 61));
  const auto t0 = std::chrono::steady_clock::now();
  std::int64_t total = 0;
  for (int l = 3; l < 61; ++l) total += gate.sample(l, 0, 256, 4096).counts[0];
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  MESSAGE("58 layers sampled in " << s << " s");
  CHECK(total > 0);
  CHECK(s < 1.0);
}

TEST_CASE("always-chosen experts (routed shared experts) follow the routed ones: every token takes them") {
  // 2 sources of 100 tokens, 4 routed experts, top-2, one always-chosen expert: uniform gives each
  // routed expert 50 per source, the 5th expert all 100.
  const GateModel gate(routing(json{{"distribution", "uniform"}}), model(4, 2), 1);
  const RoutingSample r = gate.sample(1, 0, 2, 100);
  REQUIRE(r.experts == 5);
  for (int s = 0; s < 2; ++s) {
    for (int e = 0; e < 4; ++e) CHECK(r.at(s, e) == 50);
    CHECK(r.at(s, 4) == 100);
  }
  const auto p = gate.selection_probabilities(1);
  REQUIRE(p.size() == 5);
  CHECK(p[4] == 1.0);
  CHECK(std::accumulate(p.begin(), p.end(), 0.0) == doctest::Approx(3.0));
}
