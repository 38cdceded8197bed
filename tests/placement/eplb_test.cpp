#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>

#include "models/errors.h"
#include "placement/eplb.h"

using namespace epsim;

// DeepSeek EPLB's README example: 2 layers, 12 experts in 4 groups, 16 physical slots on 2 nodes x 4 GPUs.
TEST_CASE("eplb: the published hierarchical example, exactly") {
  const std::vector<std::vector<double>> weight = {{90, 132, 40, 61, 104, 165, 39, 4, 73, 56, 183, 86},
                                                   {20, 107, 104, 64, 19, 197, 187, 157, 172, 86, 16, 27}};
  const EplbResult r = rebalance_experts(weight, 16, 4, 2, 8);
  CHECK(r.phy2log == std::vector<std::vector<int>>{{5, 6, 5, 7, 8, 4, 3, 4, 10, 9, 10, 2, 0, 1, 11, 1},
                                                   {7, 10, 6, 8, 6, 11, 8, 9, 2, 4, 5, 1, 5, 0, 3, 1}});
  // Replica counts: 4 redundant slots per layer, to the experts with the highest load per replica.
  CHECK(r.logcnt == std::vector<std::vector<int>>{{1, 2, 1, 1, 2, 2, 1, 1, 1, 1, 2, 1},
                                                  {1, 2, 1, 1, 1, 2, 2, 1, 2, 1, 1, 1}});
  // log2phy inverts phy2log, replicas in rank order, -1 padded to the largest count.
  CHECK(r.log2phy[0][5] == std::vector<int>{0, 2});
  CHECK(r.log2phy[0][0] == std::vector<int>{12, -1});
  for (std::size_t l = 0; l < 2; ++l)
    for (int p = 0; p < 16; ++p) {
      const int e = r.phy2log[l][static_cast<std::size_t>(p)];
      CHECK(r.log2phy[l][static_cast<std::size_t>(e)][static_cast<std::size_t>(r.phyrank[l][static_cast<std::size_t>(p)])] == p);
    }
}

TEST_CASE("eplb: replicate gives the next slot to the highest load per replica, ties to the lowest id") {
  const Replication r = replicate_experts({10, 30, 30, 5}, 7);
  // 30,30 -> expert 1 (tie, lowest id) then 2; then 15,15,10 -> 1 again (tie 15 vs 15: lowest id).
  CHECK(r.phy2log == std::vector<int>{0, 1, 2, 3, 1, 2, 1});
  CHECK(r.logcnt == std::vector<int>{1, 3, 2, 1});
  CHECK(r.rank == std::vector<int>{0, 0, 0, 0, 1, 1, 2});
}

TEST_CASE("eplb: balanced packing puts the heaviest item first into the lightest pack with room") {
  // Sorted 9, 7, 6, 5, 2, 1 into 2 packs of 3: 9 -> A; 7 -> B; 6 -> B (7 < 9); 5 -> A (9 < 13);
  // 2 -> B (13 < 14, now full); 1 -> A.
  const Packing p = balanced_packing({9, 5, 7, 6, 2, 1}, 2);
  CHECK(p.pack == std::vector<int>{0, 0, 1, 1, 1, 0});
  CHECK(p.rank == std::vector<int>{0, 1, 0, 1, 2, 2});
}

TEST_CASE("eplb: the global policy when groups are not a multiple of nodes; shapes are checked") {
  // groups 1 % nodes 2 != 0: global. Expert 0 (load 8) gets both redundant slots (8/2 = 4 > 2).
  // Per-slot loads 8/3, 1, 1, 2, 8/3, 8/3 packed onto 2 GPUs of 3: slots 0, 5, 2 on GPU 0 and 4, 3, 1 on
  // GPU 1, each GPU listing its slots in packing order.
  const EplbResult r = rebalance_experts({{8, 1, 1, 2}}, 6, 1, 2, 2);
  CHECK(r.phy2log == std::vector<std::vector<int>>{{0, 0, 2, 0, 3, 1}});
  CHECK(r.logcnt == std::vector<std::vector<int>>{{3, 1, 1, 1}});
  CHECK_THROWS_AS(rebalance_experts({{8, 1, 1, 2}}, 6, 3, 1, 2), ConfigError);  // 3 groups of 4 experts
  CHECK_THROWS_AS(rebalance_experts({{8, 1, 1, 2}}, 5, 1, 1, 2), ConfigError);  // 5 slots on 2 GPUs
}

namespace {
// Zipf(s) selection probabilities of E experts under top-k: p_r = min(1, c / r^s), c such that the
// probabilities sum to k (an expert is picked at most once per token).
std::vector<double> zipf_top_k(int experts, int k, double s) {
  std::vector<double> w(static_cast<std::size_t>(experts)), p(w.size());
  for (int r = 0; r < experts; ++r) w[static_cast<std::size_t>(r)] = std::pow(r + 1.0, -s);
  double lo = 0, hi = 1e6;
  for (int it = 0; it < 200; ++it) {
    const double c = (lo + hi) / 2;
    double sum = 0;
    for (double x : w) sum += std::min(1.0, c * x);
    (sum < k ? lo : hi) = c;
  }
  for (std::size_t i = 0; i < w.size(); ++i) p[i] = std::min(1.0, hi * w[i]);
  return p;
}

// max / mean of the per-GPU load when every replica takes an equal share of its expert's load.
double gpu_imbalance(const std::vector<int>& phy2log, const std::vector<double>& load, int gpus) {
  std::vector<int> cnt(load.size(), 0);
  for (int e : phy2log) ++cnt[static_cast<std::size_t>(e)];
  const std::size_t per_gpu = phy2log.size() / static_cast<std::size_t>(gpus);
  std::vector<double> g(static_cast<std::size_t>(gpus), 0.0);
  for (std::size_t p = 0; p < phy2log.size(); ++p) {
    const auto e = static_cast<std::size_t>(phy2log[p]);
    g[p / per_gpu] += load[e] / cnt[e];
  }
  double mx = 0, sum = 0;
  for (double x : g) mx = std::max(mx, x), sum += x;
  return mx / (sum / gpus);
}
}  // namespace

TEST_CASE("eplb: 32 redundant slots on EP 32 bring zipf(1.0) GPU load to max/mean < 1.15") {
  // 256 experts, top-8, 32 GPUs x 4096 tokens; the popularity order scrambled (expert 97 r mod 256 has rank r).
  const std::vector<double> p = zipf_top_k(256, 8, 1.0);
  CHECK(p[0] == 1.0);  // the hottest expert is in every token's top-8
  std::vector<double> load(256);
  for (int r = 0; r < 256; ++r) load[static_cast<std::size_t>((97 * r) % 256)] = 32 * 4096 * p[static_cast<std::size_t>(r)];
  std::vector<int> contiguous(256);
  for (int e = 0; e < 256; ++e) contiguous[static_cast<std::size_t>(e)] = e;
  const double before = gpu_imbalance(contiguous, load, 32);
  const EplbResult r = rebalance_experts({load}, 256 + 32, 1, 4, 32);
  const double after = gpu_imbalance(r.phy2log[0], load, 32);
  MESSAGE("zipf(1.0), EP 32: GPU max/mean " << before << " contiguous -> " << after << " eplb with 32 redundant slots");
  CHECK(after < 1.15);
  CHECK(before > 2.0);
}
