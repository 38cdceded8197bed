#include "sim/max_min_solver.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "models/errors.h"

namespace epsim {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
// Levels that moved by less than this (relative) keep their old value exactly, so that the flows
// bottlenecked there keep bit-identical rates and their owners need no update.
constexpr double kUnchanged = 1e-13;
// Re-fills that keep failing the certificate become a full fill after this many rounds.
constexpr int kMaxRounds = 3;
// A local re-fill is tried only when it would touch less than 1 / kLocalFraction of the flows.
constexpr std::size_t kLocalFraction = 8;

std::size_t at(MaxMinSolver::Index i) { return static_cast<std::size_t>(i); }

double settle_level(double fresh, double old) {
  if (fresh < kInf && old < kInf && std::abs(fresh - old) <= kUnchanged * old) return old;
  return fresh;
}

bool ties(double a, double b) {
  return a < kInf && b < kInf && std::abs(a - b) <= MaxMinSolver::kTolerance * b;
}

}  // namespace

MaxMinSolver::MaxMinSolver(std::vector<double> capacities) {
  links_.resize(capacities.size());
  for (std::size_t l = 0; l < capacities.size(); ++l) {
    const double c = capacities[l];
    if (!(c > 0.0) || !std::isfinite(c))
      throw SimulationError("max-min solver: link " + std::to_string(l) + " has capacity " +
                            std::to_string(c) + "; capacities must be positive and finite");
    links_[l].capacity = c;
  }
  link_local_.assign(links_.size(), kNone);
}

MaxMinSolver::Index MaxMinSolver::add_flow(std::span<const Index> links, double weight, double cap) {
  if (links.size() > static_cast<std::size_t>(kMaxLinksPerFlow))
    throw SimulationError("max-min solver: a flow crosses more than kMaxLinksPerFlow links");
  if (!(weight > 0.0) || !std::isfinite(weight))
    throw SimulationError("max-min solver: flow weight must be positive and finite");
  if (!(cap > 0.0)) throw SimulationError("max-min solver: flow cap must be positive");
  for (std::size_t i = 0; i < links.size(); ++i) {
    if (links[i] < 0 || at(links[i]) >= links_.size())
      throw SimulationError("max-min solver: flow crosses unknown link " + std::to_string(links[i]));
    for (std::size_t j = 0; j < i; ++j)
      if (links[j] == links[i])
        throw SimulationError("max-min solver: flow crosses link " + std::to_string(links[i]) + " twice");
  }
  Index id;
  if (!free_flows_.empty()) {
    id = free_flows_.back();
    free_flows_.pop_back();
  } else {
    id = static_cast<Index>(flows_.size());
    flows_.emplace_back();
    alive_.push_back(0);
    unswept_.push_back(0);
    stamp_.push_back(0);
    flow_local_.push_back(kNone);
  }
  FlowRec& r = flows_[at(id)];
  r = FlowRec{};
  r.weight = weight;
  r.cap = cap;
  r.hops = static_cast<std::uint8_t>(links.size());
  r.active = true;
  r.fresh = true;
  for (std::size_t k = 0; k < links.size(); ++k) {
    LinkRec& L = links_[at(links[k])];
    r.link[k] = links[k];
    L.flows.push_back(id);
    L.wsum += weight;
  }
  alive_[at(id)] = 1;
  if (cap < kNoCap) ++capped_;
  fresh_.push_back(id);
  ++active_flows_;
  return id;
}

// Removal is lazy: the flow stays in its links' lists, marked dead, until a list holds more dead
// than live entries and is swept (amortised O(1) per removal, and no random access to other flows).
// Its id is reused only once every list holding it has been swept.
void MaxMinSolver::remove_flow(Index flow) {
  if (flow < 0 || at(flow) >= flows_.size() || !flows_[at(flow)].active)
    throw SimulationError("max-min solver: removing a flow that is not active");
  FlowRec& r = flows_[at(flow)];
  const double x = rate_of(r);
  alive_[at(flow)] = 0;
  unswept_[at(flow)] = r.hops;
  for (int k = 0; k < r.hops; ++k) {
    const Index l = r.link[at(k)];
    LinkRec& L = links_[at(l)];
    ++L.dead;
    L.wsum -= r.weight;
    if (!r.fresh) {
      L.usage -= x;
      if (r.bottleneck == l) --L.bottlenecked;
    }
    if (L.dead == static_cast<std::int64_t>(L.flows.size())) {  // forget rounding drift
      L.wsum = 0.0;
      L.usage = 0.0;
      L.rho_bound = 0.0;
      L.level = kInf;
    }
    // Flows bottlenecked here may now speed up.
    if (L.bottlenecked > 0 && !L.dirty) {
      L.dirty = true;
      dirty_.push_back(l);
    }
  }
  if (r.fresh) fresh_.erase(std::find(fresh_.begin(), fresh_.end(), flow));
  if (r.cap < kNoCap) --capped_;
  r.active = false;
  r.fresh = false;
  r.bottleneck = kNone;
  --active_flows_;
  if (r.hops == 0) free_flows_.push_back(flow);
  for (int k = 0; k < r.hops; ++k) {
    LinkRec& L = links_[at(r.link[at(k)])];
    if (2 * L.dead > static_cast<std::int64_t>(L.flows.size())) sweep(r.link[at(k)]);
  }
}

void MaxMinSolver::sweep(Index link) {
  LinkRec& L = links_[at(link)];
  std::size_t keep = 0;
  for (const Index f : L.flows) {
    if (alive_[at(f)]) {
      L.flows[keep++] = f;
    } else if (--unswept_[at(f)] == 0) {
      free_flows_.push_back(f);
    }
  }
  L.flows.resize(keep);
  L.dead = 0;
}

double MaxMinSolver::rate_of(const FlowRec& r) const {
  if (!r.active || r.fresh) return 0.0;
  if (r.bottleneck != kNone) return r.weight * links_[at(r.bottleneck)].level;
  return r.hops == 0 && r.cap == kNoCap ? kInf : r.cap;
}

double MaxMinSolver::rate(Index flow) const { return rate_of(flows_[at(flow)]); }

const MaxMinSolver::Changes& MaxMinSolver::solve() {
  changes_.levels.clear();
  changes_.moved.clear();
  if (fresh_.empty() && dirty_.empty()) return changes_;
  ++stats_.solves;
  // Local re-fills that failed recently make the next ones wait (exponential back-off): when
  // changes spread over the whole system, the full filling is cheaper than trying.
  const bool try_local = local_wait_ == 0;
  if (local_wait_ > 0) --local_wait_;
  for (int round = 0;; ++round) {
    std::size_t estimate = fresh_.size();
    for (Index l : dirty_) estimate += flows_on(l);
    if (!try_local || round >= kMaxRounds || kLocalFraction * estimate > active_flows_) {
      if (try_local && round > 0) local_wait_ = local_backoff_ = std::min<std::uint32_t>(64, 2 * local_backoff_ + 1);
      fill_all();
      break;
    }
    gather();
    if (fill()) {
      commit();
      local_backoff_ = 0;
      break;
    }
  }
  stats_.levels_changed += changes_.levels.size();
  stats_.moves += changes_.moved.size();
  return changes_;
}

// ---- local filling ----------------------------------------------------------------------------

// Builds the local system: D (the dirty links), the flows F crossing D plus the new flows, and the
// boundary links B that F also crosses.
void MaxMinSolver::gather() {
  for (Index g : l_global_) link_local_[at(g)] = kNone;
  for (Index g : f_global_) flow_local_[at(g)] = kNone;
  l_global_.clear();
  l_in_d_.clear();
  f_global_.clear();

  auto add_link = [&](Index g, bool in_d) {
    link_local_[at(g)] = static_cast<Index>(l_global_.size());
    l_global_.push_back(g);
    l_in_d_.push_back(in_d ? 1 : 0);
  };
  auto add_flow_local = [&](Index f) {
    if (flow_local_[at(f)] != kNone) return;
    flow_local_[at(f)] = static_cast<Index>(f_global_.size());
    f_global_.push_back(f);
  };
  for (Index l : dirty_)
    if (link_local_[at(l)] == kNone) add_link(l, true);
  const std::size_t d_count = l_global_.size();
  for (std::size_t i = 0; i < d_count; ++i)
    for (Index f : links_[at(l_global_[i])].flows)
      if (alive_[at(f)]) add_flow_local(f);
  for (Index f : fresh_) add_flow_local(f);
  for (Index f : f_global_) {
    const FlowRec& r = flows_[at(f)];
    for (int k = 0; k < r.hops; ++k)
      if (link_local_[at(r.link[at(k)])] == kNone) add_link(r.link[at(k)], false);
  }

  const std::size_t n = l_global_.size();
  const std::size_t m = f_global_.size();
  ++stats_.fills;
  stats_.flows_filled += m;

  l_rem_.assign(n, 0.0);
  l_wsum_.assign(n, 0.0);
  l_level_.assign(n, kInf);
  l_old_sum_.assign(n, 0.0);
  l_new_sum_.assign(n, 0.0);
  l_max_rho_new_.assign(n, 0.0);
  l_unfrozen_.assign(n, 0);
  l_old_bottlenecked_.assign(n, 0);
  l_csr_begin_.assign(n + 1, 0);
  f_links_.resize(m * kMaxLinksPerFlow);
  f_hops_.resize(m);
  f_new_rate_.assign(m, 0.0);
  f_bottleneck_.assign(m, kNone);
  f_frozen_.assign(m, 0);

  for (std::size_t j = 0; j < m; ++j) {
    const FlowRec& r = flows_[at(f_global_[j])];
    const double x = rate_of(r);
    f_hops_[j] = r.hops;
    for (int k = 0; k < r.hops; ++k) {
      const Index i = link_local_[at(r.link[at(k)])];
      f_links_[j * kMaxLinksPerFlow + at(k)] = i;
      ++l_csr_begin_[at(i) + 1];
      l_wsum_[at(i)] += r.weight;
      ++l_unfrozen_[at(i)];
      if (!r.fresh) {
        l_old_sum_[at(i)] += x;
        if (r.bottleneck == r.link[at(k)]) ++l_old_bottlenecked_[at(i)];
      }
    }
  }
  for (std::size_t i = 0; i < n; ++i) l_csr_begin_[i + 1] += l_csr_begin_[i];
  l_csr_.resize(at(l_csr_begin_[n]));
  heap_pos_.assign(l_csr_begin_.begin(), l_csr_begin_.end() - 1);  // borrowed as a cursor array
  for (std::size_t j = 0; j < m; ++j)
    for (int k = 0; k < f_hops_[j]; ++k) {
      const Index i = f_links_[j * kMaxLinksPerFlow + at(k)];
      l_csr_[at(heap_pos_[at(i)]++)] = static_cast<Index>(j);
    }
  for (std::size_t i = 0; i < n; ++i) {
    const LinkRec& L = links_[at(l_global_[i])];
    l_rem_[i] = l_in_d_[i] ? L.capacity : std::max(0.0, L.capacity - (L.usage - l_old_sum_[i]));
  }
}

bool MaxMinSolver::fill() {
  const std::size_t n = l_global_.size();
  const std::size_t m = f_global_.size();

  // Indexed min-heap of local links by (share, global id); shares only grow while filling.
  std::vector<double>& key = l_level_;  // a link's key is its share; its level once popped
  heap_.clear();
  heap_pos_.assign(n, kNone);
  auto less = [&](Index a, Index b) {
    const double ka = key[at(a)], kb = key[at(b)];
    return ka < kb || (ka == kb && l_global_[at(a)] < l_global_[at(b)]);
  };
  auto sift_up = [&](std::size_t p) {
    const Index x = heap_[p];
    while (p > 0) {
      const std::size_t parent = (p - 1) / 2;
      if (!less(x, heap_[parent])) break;
      heap_[p] = heap_[parent];
      heap_pos_[at(heap_[p])] = static_cast<Index>(p);
      p = parent;
    }
    heap_[p] = x;
    heap_pos_[at(x)] = static_cast<Index>(p);
  };
  auto sift_down = [&](std::size_t p) {
    const Index x = heap_[p];
    const std::size_t size = heap_.size();
    for (;;) {
      std::size_t c = 2 * p + 1;
      if (c >= size) break;
      if (c + 1 < size && less(heap_[c + 1], heap_[c])) ++c;
      if (!less(heap_[c], x)) break;
      heap_[p] = heap_[c];
      heap_pos_[at(heap_[p])] = static_cast<Index>(p);
      p = c;
    }
    heap_[p] = x;
    heap_pos_[at(x)] = static_cast<Index>(p);
  };
  auto remove_at = [&](std::size_t p) {
    const Index x = heap_[p];
    heap_pos_[at(x)] = kNone;
    const Index last = heap_.back();
    heap_.pop_back();
    if (p < heap_.size()) {
      heap_[p] = last;
      heap_pos_[at(last)] = static_cast<Index>(p);
      sift_down(p);
      sift_up(at(heap_pos_[at(last)]));
    }
  };

  for (std::size_t i = 0; i < n; ++i) {
    if (l_unfrozen_[i] == 0) continue;
    key[i] = std::max(0.0, l_rem_[i]) / l_wsum_[i];
    heap_pos_[i] = static_cast<Index>(heap_.size());
    heap_.push_back(static_cast<Index>(i));
  }
  for (std::size_t p = heap_.size() / 2; p-- > 0;) sift_down(p);

  std::vector<std::pair<double, Index>> caps;
  for (std::size_t j = 0; j < m; ++j) {
    const FlowRec& r = flows_[at(f_global_[j])];
    if (r.cap < kInf) caps.emplace_back(r.cap / r.weight, static_cast<Index>(j));
  }
  std::sort(caps.begin(), caps.end());
  std::size_t next_cap = 0;

  if (touch_mark_.size() < n) touch_mark_.resize(n, 0);
  auto freeze = [&](std::size_t j, double rate, Index bottleneck) {
    f_frozen_[j] = 1;
    f_new_rate_[j] = rate;
    f_bottleneck_[j] = bottleneck;
    const double w = flows_[at(f_global_[j])].weight;
    for (int k = 0; k < f_hops_[j]; ++k) {
      const Index i = f_links_[j * kMaxLinksPerFlow + at(k)];
      l_rem_[at(i)] -= rate;
      l_wsum_[at(i)] -= w;
      --l_unfrozen_[at(i)];
      if (touch_mark_[at(i)] != touch_stamp_) {
        touch_mark_[at(i)] = touch_stamp_;
        touched_.push_back(i);
      }
    }
  };
  auto settle_touched = [&]() {
    for (Index i : touched_) {
      const Index p = heap_pos_[at(i)];
      if (p == kNone) continue;  // already popped
      if (l_unfrozen_[at(i)] == 0) {
        remove_at(at(p));
        key[at(i)] = kInf;  // never saturated
      } else {
        key[at(i)] = std::max(0.0, l_rem_[at(i)]) / l_wsum_[at(i)];
        sift_down(at(p));
        sift_up(at(heap_pos_[at(i)]));
      }
    }
    touched_.clear();
  };

  for (;;) {
    while (next_cap < caps.size() && f_frozen_[at(caps[next_cap].second)]) ++next_cap;
    const bool have_cap = next_cap < caps.size();
    if (heap_.empty() && !have_cap) break;
    if (++touch_stamp_ == 0) {  // wrapped: clear the marks
      std::fill(touch_mark_.begin(), touch_mark_.end(), 0u);
      touch_stamp_ = 1;
    }
    if (have_cap && (heap_.empty() || caps[next_cap].first <= key[at(heap_[0])])) {
      const std::size_t j = at(caps[next_cap].second);
      freeze(j, flows_[at(f_global_[j])].cap, kNone);
      ++next_cap;
    } else {
      const Index i = heap_[0];
      remove_at(0);
      const double level = key[at(i)];  // stays as the link's level
      for (Index c = l_csr_begin_[at(i)]; c < l_csr_begin_[at(i) + 1]; ++c) {
        const std::size_t j = at(l_csr_[at(c)]);
        if (!f_frozen_[j]) freeze(j, flows_[at(f_global_[j])].weight * level, i);
      }
    }
    settle_touched();
  }
  for (std::size_t j = 0; j < m; ++j)  // flows with no link and no cap
    if (!f_frozen_[j]) {
      f_frozen_[j] = 1;
      f_new_rate_[j] = kInf;
    }

  // The certificate on the boundary links.
  for (std::size_t j = 0; j < m; ++j) {
    const double rho = f_new_rate_[j] / flows_[at(f_global_[j])].weight;
    for (int k = 0; k < f_hops_[j]; ++k) {
      const std::size_t i = at(f_links_[j * kMaxLinksPerFlow + at(k)]);
      l_new_sum_[i] += f_new_rate_[j];
      l_max_rho_new_[i] = std::max(l_max_rho_new_[i], rho);
    }
  }
  bool ok = true;
  for (std::size_t i = 0; i < n; ++i) {
    if (l_in_d_[i]) continue;
    const Index g = l_global_[i];
    LinkRec& L = links_[at(g)];
    const std::int64_t outside_bottlenecked = L.bottlenecked - l_old_bottlenecked_[i];
    bool fail = false;
    if (outside_bottlenecked > 0) {  // they keep a saturated link where they are the fastest
      const double usage = L.usage - l_old_sum_[i] + l_new_sum_[i];
      fail = usage < L.capacity * (1.0 - kTolerance) || l_max_rho_new_[i] > L.level * (1.0 + kTolerance);
    }
    // Re-filled flows bottlenecked here are at least as fast as every outside flow.
    if (key[i] < kInf && key[i] < L.rho_bound * (1.0 - kTolerance)) fail = true;
    if (fail) {
      ok = false;
      if (!L.dirty) {
        L.dirty = true;
        dirty_.push_back(g);
      }
    }
  }
  return ok;
}

void MaxMinSolver::commit() {
  const std::size_t n = l_global_.size();
  const std::size_t m = f_global_.size();
  // Final levels. Boundary links keep theirs while outside flows are bottlenecked there (the
  // certificate checked that re-filled flows bottlenecked there tie with it).
  std::vector<std::int64_t>& outside = l_old_bottlenecked_;
  for (std::size_t i = 0; i < n; ++i) {
    const LinkRec& L = links_[at(l_global_[i])];
    outside[i] = L.bottlenecked - l_old_bottlenecked_[i];
    const double fresh = (!l_in_d_[i] && outside[i] > 0) ? L.level : l_level_[i];
    l_level_[i] = settle_level(fresh, L.level);
  }
  for (std::size_t j = 0; j < m; ++j) {
    const Index f = f_global_[j];
    FlowRec& r = flows_[at(f)];
    const Index on = f_bottleneck_[j];  // local link, or kNone for the cap
    Index nb = on == kNone ? kNone : l_global_[at(on)];
    if (!r.fresh && r.bottleneck != kNone && on != kNone && r.bottleneck != nb &&
        ties(l_level_[at(link_local_[at(r.bottleneck)])], l_level_[at(on)]))
      nb = r.bottleneck;  // a tie: keep the previous bottleneck
    if (!r.fresh && r.bottleneck != kNone) --links_[at(r.bottleneck)].bottlenecked;
    if (nb != kNone) ++links_[at(nb)].bottlenecked;
    if (r.fresh || nb != r.bottleneck) changes_.moved.push_back(f);
    r.bottleneck = nb;
    r.fresh = false;
  }
  for (std::size_t i = 0; i < n; ++i) {
    LinkRec& L = links_[at(l_global_[i])];
    if (l_level_[i] != L.level) {
      L.level = l_level_[i];
      changes_.levels.push_back(l_global_[i]);
    }
  }
  for (std::size_t i = 0; i < n; ++i) {
    LinkRec& L = links_[at(l_global_[i])];
    double sum = 0.0, max_rho = 0.0;
    for (Index c = l_csr_begin_[i]; c < l_csr_begin_[i + 1]; ++c) {
      const FlowRec& r = flows_[at(f_global_[at(l_csr_[at(c)])])];
      const double x = rate_of(r);
      sum += x;
      max_rho = std::max(max_rho, x / r.weight);
    }
    if (l_in_d_[i]) {  // every flow of the link was re-filled: exact sums
      L.usage = sum;
      L.rho_bound = max_rho;
    } else {
      L.usage = std::max(0.0, L.usage - l_old_sum_[i] + sum);
      L.rho_bound = std::max(L.rho_bound, max_rho);
    }
  }
  for (Index l : dirty_) links_[at(l)].dirty = false;
  dirty_.clear();
  fresh_.clear();
}

// ---- full filling -----------------------------------------------------------------------------

// The whole system, straight from the links' flow lists. The heap holds one entry per link whose
// key is a lower bound of its share (shares only grow as flows freeze): the top is re-keyed until
// its key is its share, which is then the smallest of all. No heap work per frozen flow, and the
// commit touches only the flows frozen somewhere else than their previous bottleneck.
void MaxMinSolver::fill_all() {
  ++stats_.fills;
  ++stats_.full_fills;
  stats_.flows_filled += active_flows_;
  const std::size_t L = links_.size();
  a_link_.resize(L);
  a_level_.assign(L, kInf);
  a_heap_.clear();
  mismatches_.clear();
  for (std::size_t l = 0; l < L; ++l) {
    const LinkRec& R = links_[l];
    const auto live = static_cast<std::int64_t>(R.flows.size()) - R.dead;
    a_link_[l] = FillLink{R.capacity, R.wsum, 0.0, live};
    if (live > 0) a_heap_.emplace_back(R.capacity / R.wsum, static_cast<Index>(l));
  }
  const auto later = [](const std::pair<double, Index>& a, const std::pair<double, Index>& b) {
    return a.first > b.first || (a.first == b.first && a.second > b.second);
  };
  std::make_heap(a_heap_.begin(), a_heap_.end(), later);

  std::vector<std::pair<double, Index>> caps;
  if (capped_ > 0)
    for (std::size_t f = 0; f < flows_.size(); ++f)
      if (flows_[f].active && flows_[f].cap < kInf)
        caps.emplace_back(flows_[f].cap / flows_[f].weight, static_cast<Index>(f));
  std::sort(caps.begin(), caps.end());
  std::size_t next_cap = 0;

  if (++fill_stamp_ == 0) {
    std::fill(stamp_.begin(), stamp_.end(), 0u);
    fill_stamp_ = 1;
  }
  const auto freeze = [&](Index f, double rate, Index on) {
    const FlowRec& r = flows_[at(f)];
    stamp_[at(f)] = fill_stamp_;
    if (r.fresh || on != r.bottleneck) mismatches_.push_back(Mismatch{f, on});
    const double rho = rate / r.weight;
    for (int k = 0; k < r.hops; ++k) {
      FillLink& x = a_link_[at(r.link[at(k)])];
      x.rem -= rate;
      x.wsum -= r.weight;
      x.max_rho = std::max(x.max_rho, rho);
      --x.unfrozen;
    }
  };

  for (;;) {
    while (!a_heap_.empty()) {  // make the top's key its share
      const auto [key, l] = a_heap_.front();
      const FillLink& x = a_link_[at(l)];
      if (x.unfrozen == 0) {
        std::pop_heap(a_heap_.begin(), a_heap_.end(), later);
        a_heap_.pop_back();
        continue;
      }
      const double share = std::max(0.0, x.rem) / x.wsum;
      if (!(share > key)) break;
      std::pop_heap(a_heap_.begin(), a_heap_.end(), later);
      a_heap_.back().first = share;
      std::push_heap(a_heap_.begin(), a_heap_.end(), later);
    }
    while (next_cap < caps.size() && stamp_[at(caps[next_cap].second)] == fill_stamp_) ++next_cap;
    const bool have_cap = next_cap < caps.size();
    if (a_heap_.empty() && !have_cap) break;
    if (have_cap && (a_heap_.empty() || caps[next_cap].first <= a_heap_.front().first)) {
      const Index f = caps[next_cap++].second;
      freeze(f, flows_[at(f)].cap, kNone);
      continue;
    }
    const Index l = a_heap_.front().second;
    std::pop_heap(a_heap_.begin(), a_heap_.end(), later);
    a_heap_.pop_back();
    const double level = std::max(0.0, a_link_[at(l)].rem) / a_link_[at(l)].wsum;
    a_level_[at(l)] = level;
    const std::vector<Index>& on_l = links_[at(l)].flows;
    for (std::size_t i = 0; i < on_l.size(); ++i) {
      if (i + 8 < on_l.size()) __builtin_prefetch(&flows_[at(on_l[i + 8])]);
      const Index f = on_l[i];
      if (stamp_[at(f)] != fill_stamp_ && alive_[at(f)]) freeze(f, flows_[at(f)].weight * level, l);
    }
  }
  for (const Index f : fresh_)  // new flows with no link and no cap
    if (stamp_[at(f)] != fill_stamp_) mismatches_.push_back(Mismatch{f, kNone});

  // Commit: levels first (close ones keep their old value), then the bottlenecks that moved.
  for (std::size_t l = 0; l < L; ++l) {
    LinkRec& R = links_[l];
    a_level_[l] = settle_level(a_level_[l], R.level);
    if (a_level_[l] != R.level) {
      R.level = a_level_[l];
      changes_.levels.push_back(static_cast<Index>(l));
    }
    const FillLink& x = a_link_[l];
    R.usage = x.unfrozen == 0 && R.flows.size() == static_cast<std::size_t>(R.dead) ? 0.0 : std::max(0.0, R.capacity - x.rem);
    R.rho_bound = R.level < kInf ? std::max(R.level, x.max_rho) : x.max_rho;
    R.dirty = false;
  }
  for (const Mismatch& mm : mismatches_) {
    FlowRec& r = flows_[at(mm.flow)];
    Index nb = mm.frozen_on;
    if (!r.fresh && r.bottleneck != kNone && nb != kNone && ties(a_level_[at(r.bottleneck)], a_level_[at(nb)]))
      nb = r.bottleneck;  // a tie: keep the previous bottleneck
    if (!r.fresh && r.bottleneck != kNone) --links_[at(r.bottleneck)].bottlenecked;
    if (nb != kNone) ++links_[at(nb)].bottlenecked;
    if (r.fresh || nb != r.bottleneck) changes_.moved.push_back(mm.flow);
    r.bottleneck = nb;
    r.fresh = false;
  }
  dirty_.clear();
  fresh_.clear();
}

}  // namespace epsim
