// The joint law of one token's expert selection: which top_k experts a token takes together, so
// that the distinct tokens a GPU or a node receives follow from it (a token crosses a link once
// however many of its experts lie behind it).
//
// The law, stated once. A token takes a set T of exactly top_k distinct experts that spans at
// most `max_groups` groups (DeepSeek-V3's group limit, model.groups / topk_groups, or node-limited
// routing with a group per node, routing.max_nodes). Among all such sets,
//     P(T) ~ prod_{e in T} lambda_e,
// the maximum-entropy law with the given marginals (conditional Poisson sampling restricted to the
// group limit); lambda is fitted so that every expert's inclusion probability equals the gate's
// marginal p_e (selection_marginals.h). So the counts the gate draws and the distinct tokens agree,
// and nothing is assumed beyond the marginals and the limit. Experts with p_e = 1 ("forced": an
// expert every token takes, e.g. a routed shared expert) are in every T; a forced expert outside
// any group (group -1) does not count towards the limit.
//
// Exact combinatorics. With F_g(x) = prod_{e in g} (1 + lambda_e x) and H_g(x, y) = 1 + y (F_g(x)
// - 1) (group g unused, or used by at least one expert; y counts used groups),
//     Z(lambda) = sum_{m <= max_groups} [x^k y^m] prod_g H_g(x, y).
// A destination that receives share a_e of the token's copies of expert e (a_e = 1 for an expert
// held there alone; replicas split it) gets nothing from a token with probability
//     Z(lambda (1 - a)) / Z(lambda) x prod_{forced e} (1 - a_e),
// so P(reach) = 1 - that. Cost: a destination within one group needs that group's F with the
// changed lambdas and two precomputed sums of the other groups' product: O(|g| k + k). Without a
// limit (one group) this is conditional Poisson sampling; with equal lambdas it is the uniform law
// (a uniform k-subset of the experts of at most M groups).
//
// Why not independent expert choices: a token's top_k experts are distinct, which correlates them
// (taking one leaves fewer picks for the others), and a group limit confines them: with 8 groups /
// 4 and a group per node, independent choices would send a token to 5.1 of 8 nodes on average
// where no token can reach more than 4.
#pragma once

#include <cstdint>
#include <vector>

#include "models/random_stream.h"

namespace epsim {

// A destination's share of the copies of one expert: `share` of the tokens that take `expert`
// are sent there (1: its only replica; 1/r: one of r replicas split evenly).
struct Holding {
  int expert = 0;
  double share = 1.0;
};

class SelectionLaw {
 public:
  // p: per expert, in [0, 1], summing to top_k (forced experts included); group_of: per expert, in
  // [-1, groups); -1 only where p_e = 1. max_groups >= 1. Throws SimulationError on bad input.
  SelectionLaw(const std::vector<double>& p, const std::vector<int>& group_of, int max_groups, int top_k);
  // Every expert equally likely, `groups` equal groups of consecutive ids, `max_groups` of them.
  static SelectionLaw uniform(int experts, int top_k, int groups = 1, int max_groups = 1);

  int experts() const { return static_cast<int>(pi_.size()); }
  int top_k() const { return top_k_; }
  int max_groups() const { return max_groups_; }
  // The law's own inclusion probability of each expert (the fit's result).
  const std::vector<double>& marginals() const { return pi_; }
  // max_e |marginals()_e - p_e|: how far the fit is from the requested marginals (0 when exact; a
  // limit the marginals cannot meet leaves it above 0).
  double fit_error() const { return fit_error_; }
  int fit_iterations() const { return iterations_; }

  // Probability that a token sends at least one copy to a destination holding these shares (each
  // expert at most once, share in [0, 1]).
  double reach(const std::vector<Holding>& holdings) const;
  // Expected copies per token sent there: sum marginals_e x share_e.
  double copies(const std::vector<Holding>& holdings) const;
  // Distinct tokens per copy sent there, reach / copies (1 for a single expert; 1 where nothing is sent).
  double distinct_per_copy(const std::vector<Holding>& holdings) const;

  // One token's experts drawn from the law, ascending: a Monte Carlo of the gate's joint selection.
  std::vector<int> draw(RandomStream& rng) const;

 private:
  using Poly = std::vector<double>;  // coefficients of x^0..x^k (free picks)
  struct Group {
    std::vector<int> experts;  // free experts (0 < p_e < 1) of the group
    bool used = false;         // holds a forced expert: used by every token
    Poly f;                    // F_g
    Poly rest_sum;             // sum_{m <= M-1} [y^m] (prod of the other groups' H)
    double rest_top = 0;       // sum_{m <= M} [y^m x^k] (prod of the other groups' H)
    std::vector<double> tail;  // [t * (k + 1) + j]: e_j of the lambdas of experts t.. (for draw)
  };
  void build_groups(const std::vector<double>& p, const std::vector<int>& group_of);
  void prepare();                             // F_g, the rest sums, Z
  Poly group_poly(const Group& g, const std::vector<Holding>* change) const;  // F_g with lambda (1 - a)
  double z_with(int group, const Poly& f) const;  // Z with group's F replaced
  double z_full(const std::vector<Poly>& f) const;
  std::vector<double> inclusion() const;      // the law's marginals at the current lambdas
  void fit(const std::vector<double>& p);
  std::vector<double> mul_h(const std::vector<double>& P, const Group& g, const Poly& f) const;

  int top_k_ = 0;
  int max_groups_ = 1;     // M after collapsing (1 when the limit does not bind)
  int free_k_ = 0;         // picks left after the forced experts
  std::vector<double> lambda_;
  std::vector<char> forced_;
  std::vector<int> group_of_;  // group index into groups_ (-1: forced outside groups, or p = 0)
  std::vector<Group> groups_;
  std::vector<std::vector<double>> suffix_;  // [g]: prod_{h >= g} H_h, bivariate [m][j] (for draw)
  double z_ = 0;
  std::vector<double> pi_;
  double fit_error_ = 0;
  int iterations_ = 0;
};

}  // namespace epsim
