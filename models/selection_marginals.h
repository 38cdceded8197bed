// Top-k selection marginals: from per-expert popularity weights, the probability that one token
// selects each routed expert, with DeepSeek-V3's group limit.
//
// The model (an approximation of a softmax/sigmoid gate's top-k, stated here once):
//  - Without a group limit a token selects expert e with probability p_e = min(1, c w_e), where c
//    is chosen so that sum_e p_e = top_k ("water-filling": an expert whose share would exceed one
//    selection per token is capped at 1 and its excess goes to the others in proportion to w).
//  - With G groups of E/G experts and a limit of M groups per token, a token first picks M groups:
//    group g is picked with probability pi_g = min(1, d W_g), W_g = sum of its experts' weights,
//    sum_g pi_g = M. An expert is reachable only when its group is picked, and then selected with
//    probability min(1, c w_e): p_e = pi_g(e) min(1, c w_e), with c such that sum_e p_e = top_k.
//    So sum_g pi_g = M (each token's load spans at most M groups) and the selections falling in
//    group g never exceed pi_g x min(top_k, E/G) per token.
// Exact for equal weights; for skewed weights it keeps the order and the caps of real top-k
// routing (the real marginals of a Plackett-Luce top-k differ by a few percent in the tail).
#pragma once

#include <vector>

namespace epsim {

// Water-filling: x_i = min(cap_i, c w_i) with sum x_i = total. Requires w_i >= 0, cap_i >= 0 and
// sum of caps over w_i > 0 >= total (else throws SimulationError).
std::vector<double> water_fill(const std::vector<double>& weights, const std::vector<double>& caps, double total);

struct SelectionMarginals {
  std::vector<double> expert;  // p_e: probability a token selects expert e; sums to top_k
  std::vector<double> group;   // pi_g: probability a token uses group g; sums to topk_groups (1 group: {1})
};

// `groups` divides weights.size(); groups = 1 or topk_groups = groups means no group limit.
SelectionMarginals selection_marginals(const std::vector<double>& weights, int top_k, int groups, int topk_groups);

}  // namespace epsim
