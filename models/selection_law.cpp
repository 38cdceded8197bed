#include "models/selection_law.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <string>

#include "models/errors.h"

namespace epsim {

namespace {
constexpr double kForced = 1.0 - 1e-9;  // p at or above: the expert is in every selection
constexpr double kZero = 1e-15;         // p at or below: never selected
constexpr int kMaxIterations = 500;
constexpr double kTolerance = 1e-12;    // on max |pi - p|

// Bivariate coefficients [m][j], m = used groups (0..M), j = free picks (0..K), row-major.
struct Bi {
  int M = 0, K = 0;
  std::vector<double> c;
  Bi(int m, int k) : M(m), K(k), c(static_cast<std::size_t>((m + 1) * (k + 1)), 0.0) {}
  static Bi one(int m, int k) {
    Bi b(m, k);
    b.c[0] = 1.0;
    return b;
  }
  double& at(int m, int j) { return c[static_cast<std::size_t>(m * (K + 1) + j)]; }
  double at(int m, int j) const { return c[static_cast<std::size_t>(m * (K + 1) + j)]; }
};

// (1 + v x) multiplied into a polynomial truncated at degree K.
void times_linear(std::vector<double>& poly, double v) {
  for (std::size_t j = poly.size() - 1; j > 0; --j) poly[j] += v * poly[j - 1];
}
}  // namespace

SelectionLaw::SelectionLaw(const std::vector<double>& p, const std::vector<int>& group_of, int max_groups, int top_k)
    : top_k_(top_k), max_groups_(max_groups) {
  if (p.size() != group_of.size()) throw SimulationError("SelectionLaw: marginals and groups differ in size");
  if (top_k < 1 || max_groups < 1) throw SimulationError("SelectionLaw: top_k and max_groups must be >= 1");
  double sum = 0;
  for (double v : p) {
    if (!(v >= -1e-12 && v <= 1.0 + 1e-9)) throw SimulationError("SelectionLaw: a marginal outside [0, 1]");
    sum += v;
  }
  if (std::abs(sum - top_k) > 1e-6 * top_k)
    throw SimulationError("SelectionLaw: marginals sum to " + std::to_string(sum) + ", not top_k = " + std::to_string(top_k));
  build_groups(p, group_of);
  fit(p);
}

SelectionLaw SelectionLaw::uniform(int experts, int top_k, int groups, int max_groups) {
  if (groups < 1 || experts % groups != 0) throw SimulationError("SelectionLaw::uniform: groups must divide experts");
  std::vector<int> g(static_cast<std::size_t>(experts));
  for (int e = 0; e < experts; ++e) g[static_cast<std::size_t>(e)] = e / (experts / groups);
  return SelectionLaw(std::vector<double>(static_cast<std::size_t>(experts), static_cast<double>(top_k) / experts), g,
                      max_groups, top_k);
}

void SelectionLaw::build_groups(const std::vector<double>& p, const std::vector<int>& group_of) {
  const std::size_t n = p.size();
  forced_.assign(n, 0);
  group_of_.assign(n, -1);
  lambda_.assign(n, 0.0);
  std::map<int, int> index;  // group id -> position, for groups holding a selectable expert
  int forced = 0;
  for (std::size_t e = 0; e < n; ++e) {
    if (group_of[e] < -1) throw SimulationError("SelectionLaw: group below -1");
    if (p[e] >= kForced) {
      forced_[e] = 1;
      ++forced;
    } else if (group_of[e] < 0 && p[e] > kZero) {
      throw SimulationError("SelectionLaw: only an always-chosen expert may lie outside every group");
    }
    if (p[e] > kZero && group_of[e] >= 0) index.emplace(group_of[e], 0);
  }
  free_k_ = top_k_ - forced;
  if (free_k_ < 0) throw SimulationError("SelectionLaw: more always-chosen experts than top_k");
  // A limit no token can reach binds nothing: one group, whose one use every token makes.
  const bool collapse = static_cast<int>(index.size()) <= max_groups_;
  if (collapse) max_groups_ = 1;
  int next = 0;
  for (auto& [id, pos] : index) pos = collapse ? 0 : next++;
  groups_.assign(collapse ? std::min<std::size_t>(1, index.size()) : index.size(), Group{});
  for (std::size_t e = 0; e < n; ++e) {
    if (p[e] <= kZero || group_of[e] < 0) continue;
    const int g = index.at(group_of[e]);
    group_of_[e] = g;
    if (forced_[e]) {
      groups_[static_cast<std::size_t>(g)].used = !collapse;
    } else {
      groups_[static_cast<std::size_t>(g)].experts.push_back(static_cast<int>(e));
      lambda_[e] = p[e] / (1.0 - p[e]);
    }
  }
}

SelectionLaw::Poly SelectionLaw::group_poly(const Group& g, const std::vector<Holding>* change) const {
  Poly f(static_cast<std::size_t>(free_k_ + 1), 0.0);
  f[0] = 1.0;
  for (int e : g.experts) {
    double v = lambda_[static_cast<std::size_t>(e)];
    if (change)
      for (const Holding& h : *change)
        if (h.expert == e) v *= 1.0 - h.share;
    times_linear(f, v);
  }
  return f;
}

// P x H_g, H_g = 1 + y (f - 1) for a group a token may leave unused, y f for a used one.
std::vector<double> SelectionLaw::mul_h(const std::vector<double>& P, const Group& g, const Poly& f) const {
  const int M = max_groups_, K = free_k_;
  std::vector<double> Q(P.size(), 0.0);
  auto at = [K](int m, int j) { return static_cast<std::size_t>(m * (K + 1) + j); };
  for (int m = 0; m <= M; ++m)
    for (int j = 0; j <= K; ++j) {
      double v = g.used ? 0.0 : P[at(m, j)];
      if (m >= 1)
        for (int i = g.used ? 0 : 1; i <= j; ++i) v += P[at(m - 1, j - i)] * f[static_cast<std::size_t>(i)];
      Q[at(m, j)] = v;
    }
  return Q;
}

void SelectionLaw::prepare() {
  const int M = max_groups_, K = free_k_;
  const std::size_t G = groups_.size();
  for (Group& g : groups_) {
    g.f = group_poly(g, nullptr);
    // Elementary symmetric sums of every tail of the group's experts, for sampling within it.
    const std::size_t n = g.experts.size(), w = static_cast<std::size_t>(K + 1);
    g.tail.assign((n + 1) * w, 0.0);
    g.tail[n * w] = 1.0;
    for (std::size_t t = n; t-- > 0;) {
      const double v = lambda_[static_cast<std::size_t>(g.experts[t])];
      for (std::size_t j = 0; j < w; ++j) g.tail[t * w + j] = g.tail[(t + 1) * w + j] + (j > 0 ? v * g.tail[(t + 1) * w + j - 1] : 0.0);
    }
  }
  std::vector<std::vector<double>> pre(G + 1), suf(G + 1);
  pre[0] = suf[G] = Bi::one(M, K).c;
  for (std::size_t g = 0; g < G; ++g) pre[g + 1] = mul_h(pre[g], groups_[g], groups_[g].f);
  for (std::size_t g = G; g-- > 0;) suf[g] = mul_h(suf[g + 1], groups_[g], groups_[g].f);
  auto at = [K](int m, int j) { return static_cast<std::size_t>(m * (K + 1) + j); };
  for (std::size_t g = 0; g < G; ++g) {
    // Cumulative in m of the groups after g, then convolved with the groups before g.
    std::vector<double> cum = suf[g + 1];
    for (int m = 1; m <= M; ++m)
      for (int j = 0; j <= K; ++j) cum[at(m, j)] += cum[at(m - 1, j)];
    Group& gr = groups_[g];
    gr.rest_sum.assign(static_cast<std::size_t>(K + 1), 0.0);
    gr.rest_top = 0;
    for (int m1 = 0; m1 <= M; ++m1)
      for (int j1 = 0; j1 <= K; ++j1) {
        const double a = pre[g][at(m1, j1)];
        if (a == 0) continue;
        if (m1 <= M - 1)
          for (int j = j1; j <= K; ++j) gr.rest_sum[static_cast<std::size_t>(j)] += a * cum[at(M - 1 - m1, j - j1)];
        gr.rest_top += a * cum[at(M - m1, K - j1)];
      }
  }
  suffix_ = std::move(suf);
  z_ = G == 0 ? (K == 0 ? 1.0 : 0.0) : z_with(0, groups_[0].f);
  if (!(z_ > 0)) throw SimulationError("SelectionLaw: no selection satisfies the group limit");
}

double SelectionLaw::z_with(int group, const Poly& f) const {
  const Group& g = groups_[static_cast<std::size_t>(group)];
  const int K = free_k_;
  double z = g.used ? 0.0 : g.rest_top;  // the group unused
  for (int j = g.used ? 0 : 1; j <= K; ++j) z += g.rest_sum[static_cast<std::size_t>(K - j)] * f[static_cast<std::size_t>(j)];
  return z;
}

double SelectionLaw::z_full(const std::vector<Poly>& f) const {
  std::vector<double> P = Bi::one(max_groups_, free_k_).c;
  for (std::size_t g = 0; g < groups_.size(); ++g) P = mul_h(P, groups_[g], f[g]);
  double z = 0;
  for (int m = 0; m <= max_groups_; ++m) z += P[static_cast<std::size_t>(m * (free_k_ + 1) + free_k_)];
  return z;
}

std::vector<double> SelectionLaw::inclusion() const {
  const int K = free_k_;
  std::vector<double> pi(lambda_.size(), 0.0);
  for (std::size_t e = 0; e < pi.size(); ++e)
    if (forced_[e]) pi[e] = 1.0;
  for (const Group& g : groups_) {
    // F without expert t: prefix x suffix products of the group's linear factors.
    const std::size_t n = g.experts.size();
    std::vector<Poly> suf(n + 1, Poly(static_cast<std::size_t>(K + 1), 0.0));
    suf[n][0] = 1.0;
    for (std::size_t t = n; t-- > 0;) {
      suf[t] = suf[t + 1];
      times_linear(suf[t], lambda_[static_cast<std::size_t>(g.experts[t])]);
    }
    Poly pre(static_cast<std::size_t>(K + 1), 0.0);
    pre[0] = 1.0;
    for (std::size_t t = 0; t < n; ++t) {
      // P(e in T) = lambda_e sum_j rest_sum[K - j] [x^(j-1)] F^{-e} / Z (the group is then used).
      double s = 0;
      for (int j = 1; j <= K; ++j) {
        double c = 0;  // [x^(j-1)] pre x suf[t+1]
        for (int i = 0; i <= j - 1; ++i) c += pre[static_cast<std::size_t>(i)] * suf[t + 1][static_cast<std::size_t>(j - 1 - i)];
        s += g.rest_sum[static_cast<std::size_t>(K - j)] * c;
      }
      const auto e = static_cast<std::size_t>(g.experts[t]);
      pi[e] = std::clamp(lambda_[e] * s / z_, 0.0, 1.0);
      times_linear(pre, lambda_[e]);
    }
  }
  return pi;
}

void SelectionLaw::fit(const std::vector<double>& p) {
  for (iterations_ = 0;; ++iterations_) {
    // Scale lambda to a mean of 1 (the law does not change; the coefficients stay in range).
    double sum = 0;
    int n = 0;
    for (double v : lambda_)
      if (v > 0) sum += v, ++n;
    if (n > 0)
      for (double& v : lambda_) v *= n / sum;
    prepare();
    pi_ = inclusion();
    fit_error_ = 0;
    for (std::size_t e = 0; e < p.size(); ++e) fit_error_ = std::max(fit_error_, std::abs(pi_[e] - std::clamp(p[e], 0.0, 1.0)));
    if (fit_error_ <= kTolerance || iterations_ == kMaxIterations) break;
    for (std::size_t e = 0; e < p.size(); ++e)
      if (lambda_[e] > 0 && pi_[e] > 0 && pi_[e] < 1) lambda_[e] *= p[e] * (1.0 - pi_[e]) / (pi_[e] * (1.0 - p[e]));
  }
}

double SelectionLaw::reach(const std::vector<Holding>& holdings) const {
  double miss_forced = 1.0;
  int touched = -1;
  bool several = false;
  for (const Holding& h : holdings) {
    if (h.expert < 0 || h.expert >= experts()) throw SimulationError("SelectionLaw::reach: expert out of range");
    const auto e = static_cast<std::size_t>(h.expert);
    if (forced_[e]) {
      miss_forced *= 1.0 - h.share;
    } else if (lambda_[e] > 0 && h.share > 0) {
      if (touched >= 0 && touched != group_of_[e]) several = true;
      touched = group_of_[e];
    }
  }
  double miss = miss_forced;
  if (several) {
    std::vector<Poly> f;
    for (const Group& g : groups_) f.push_back(group_poly(g, &holdings));
    miss *= z_full(f) / z_;
  } else if (touched >= 0) {
    miss *= z_with(touched, group_poly(groups_[static_cast<std::size_t>(touched)], &holdings)) / z_;
  }
  return std::clamp(1.0 - miss, 0.0, 1.0);
}

double SelectionLaw::copies(const std::vector<Holding>& holdings) const {
  double c = 0;
  for (const Holding& h : holdings) c += pi_[static_cast<std::size_t>(h.expert)] * h.share;
  return c;
}

double SelectionLaw::distinct_per_copy(const std::vector<Holding>& holdings) const {
  const double c = copies(holdings);
  return c > 0 ? std::min(1.0, reach(holdings) / c) : 1.0;
}

std::vector<int> SelectionLaw::draw(RandomStream& rng) const {
  const int M = max_groups_, K = free_k_;
  std::vector<int> out;
  for (std::size_t e = 0; e < forced_.size(); ++e)
    if (forced_[e]) out.push_back(static_cast<int>(e));
  auto weight_after = [&](std::size_t g, int budget, int picks) {  // sum_{m <= budget} [y^m x^picks] suffix_g
    double w = 0;
    for (int m = 0; m <= budget; ++m) w += suffix_[g][static_cast<std::size_t>(m * (K + 1) + picks)];
    return w;
  };
  int budget = M, left = K;
  for (std::size_t g = 0; g < groups_.size(); ++g) {
    const Group& gr = groups_[g];
    // Picks from this group: 0 (unused, if allowed) or i with the group used.
    std::vector<double> w(static_cast<std::size_t>(left + 1), 0.0);
    double total = 0;
    for (int i = 0; i <= left; ++i) {
      double v = 0;
      if (i == 0 && !gr.used) v = weight_after(g + 1, budget, left);
      else if (budget >= 1 && (i > 0 || gr.used)) v = gr.f[static_cast<std::size_t>(i)] * weight_after(g + 1, budget - 1, left - i);
      w[static_cast<std::size_t>(i)] = v;
      total += v;
    }
    const double u = rng.uniform() * total;
    int pick = -1;
    double acc = 0;
    for (int i = 0; i <= left; ++i) {
      if (w[static_cast<std::size_t>(i)] <= 0) continue;
      acc += w[static_cast<std::size_t>(i)];
      pick = i;
      if (u < acc) break;
    }
    if (pick < 0) throw SimulationError("SelectionLaw::draw: no selection satisfies the group limit");
    if (pick > 0 || gr.used) --budget;
    // `pick` experts of the group, conditional Poisson: sequentially with the tails' sums e_j.
    const std::size_t n = gr.experts.size(), width = static_cast<std::size_t>(K + 1);
    int need = pick;
    for (std::size_t t = 0; t < n && need > 0; ++t) {
      const auto j = static_cast<std::size_t>(need);
      const double take =
          lambda_[static_cast<std::size_t>(gr.experts[t])] * gr.tail[(t + 1) * width + j - 1] / gr.tail[t * width + j];
      if (rng.uniform() < take) {
        out.push_back(gr.experts[t]);
        --need;
      }
    }
    left -= pick;
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace epsim
