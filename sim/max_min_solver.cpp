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
  work_.resize(links_.size());
  in_region_.assign(links_.size(), 0);
  pop_level_.assign(links_.size(), kInf);
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
  if (weight != 1.0 && !weighted_) {  // from now on every link keeps its frozen weight prefix
    weighted_ = true;
    for (LinkRec& L : links_) {
      L.wprefix.resize(L.rem.size());
      for (std::size_t k = 0; k < L.wprefix.size(); ++k) L.wprefix[k] = static_cast<double>(k + 1);
    }
  }
  Index id;
  if (!free_ids_.empty()) {
    id = free_ids_.back();
    free_ids_.pop_back();
  } else {
    id = static_cast<Index>(fr_.size());
    fr_.push_back(FlowRec{{}, kInf, kNone, 0, kFree});
    f_stamp_.push_back(0);
    f_weight_.push_back(1.0);
    f_cap_.push_back(kNoCap);
  }
  const std::size_t i = at(id);
  fr_[i].state = kFresh;
  fr_[i].hops = static_cast<std::uint8_t>(links.size());
  f_weight_[i] = weight;
  f_cap_[i] = cap;
  fr_[i].rho = kInf;  // not solved: above every level
  fr_[i].bottleneck = kNone;
  for (std::size_t k = 0; k < links.size(); ++k) {
    fr_[i].link[k] = links[k];
    LinkRec& L = links_[at(links[k])];
    L.order.push_back(id);
    ++L.live;
    L.live_weight += weight;
  }
  if (cap < kNoCap) capped_.push_back(id);
  if (links.empty()) linkless_.push_back(id);
  fresh_.push_back(id);
  ++active_flows_;
  return id;
}

// The flow's entries stay in its links' orders (above any lambda* this removal sets) until the
// next re-fill drops them; its id is reused after that.
void MaxMinSolver::remove_flow(Index flow) {
  if (flow < 0 || at(flow) >= fr_.size() || !active(flow))
    throw SimulationError("max-min solver: removing a flow that is not active");
  const std::size_t i = at(flow);
  fr_[i].state = kDead;
  for (int k = 0; k < fr_[i].hops; ++k) {
    LinkRec& L = links_[at(fr_[i].link[at(k)])];
    --L.live;
    L.live_weight -= f_weight_[i];
  }
  removed_.push_back(flow);
  --active_flows_;
}

double MaxMinSolver::rate(Index flow) const {
  const std::size_t i = at(flow);
  if (fr_[i].state == kFresh) return 0.0;
  const Index b = fr_[i].bottleneck;
  if (b == kNone) return f_cap_[i];  // at its cap, or +infinity without links and cap
  return f_weight_[i] * links_[at(b)].level;
}

double MaxMinSolver::load(Index link) const {
  const LinkRec& L = links_[at(link)];
  return L.rem.empty() ? 0.0 : std::max(0.0, L.capacity - L.rem.back());
}

double MaxMinSolver::weight_below(const LinkRec& L, std::size_t k) const {
  if (k == 0) return 0.0;
  return weighted_ ? L.wprefix[k - 1] : static_cast<double>(k);
}

std::size_t MaxMinSolver::kept_below(const LinkRec& L, double lambda) const {
  if (L.rem.empty() || !(L.first_rho < lambda)) return 0;  // without reading any flow
  if (L.last_rho < lambda) return L.rem.size();
  std::size_t lo = 0, hi = L.rem.size();  // the solved part is sorted by rho
  while (lo < hi) {
    const std::size_t mid = lo + (hi - lo) / 2;
    if (rho_at(L, mid) < lambda) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

// g(lambda) = C - sum over solved entries of w min(rho, lambda) - added lambda is continuous and
// non-increasing; with k entries below lambda its root is rem_before(k) / (weight from k on +
// added). The first k whose root is at most rho_k is the answer (binary search: the test is
// monotone in k).
double MaxMinSolver::saturation_with(const LinkRec& L, double added) const {
  const std::size_t solved = L.rem.size();
  const double total = weight_below(L, solved);
  const auto root = [&](std::size_t k) {
    return std::max(0.0, rem_before(L, k)) / (total - weight_below(L, k) + added);
  };
  std::size_t lo = 0, hi = solved;
  while (lo < hi) {
    const std::size_t mid = lo + (hi - lo) / 2;
    if (root(mid) <= rho_at(L, mid)) hi = mid;
    else lo = mid + 1;
  }
  return root(lo);
}

double MaxMinSolver::lowest_touched() {
  double lambda = kInf;
  for (const Index f : removed_) lambda = std::min(lambda, fr_[at(f)].rho);  // +inf for a new one
  region_.clear();  // borrowed: the links new flows cross, with their added weight in work_
  for (const Index f : fresh_) {
    const std::size_t i = at(f);
    if (fr_[i].state != kFresh) continue;
    if (f_cap_[i] < kNoCap) lambda = std::min(lambda, f_cap_[i] / f_weight_[i]);
    for (int k = 0; k < fr_[i].hops; ++k) {
      const Index l = fr_[i].link[at(k)];
      if (!in_region_[at(l)]) {
        in_region_[at(l)] = 1;
        work_[at(l)].wsum = 0.0;
        region_.push_back(l);
      }
      work_[at(l)].wsum += f_weight_[i];
    }
  }
  for (const Index l : region_) {
    in_region_[at(l)] = 0;
    lambda = std::min(lambda, saturation_with(links_[at(l)], work_[at(l)].wsum));
  }
  region_.clear();
  return lambda;
}

const MaxMinSolver::Changes& MaxMinSolver::solve() {
  changes_.levels.clear();
  changes_.moved.clear();
  if (fresh_.empty() && removed_.empty()) return changes_;
  ++stats_.solves;
  const double lambda = lowest_touched();
  if (weighted_) {
    refill<true>(lambda);
    commit<true>();
  } else {
    refill<false>(lambda);
    commit<false>();
  }
  stats_.levels_changed += changes_.levels.size();
  stats_.moves += changes_.moved.size();
  return changes_;
}

// The heap of region links: a binary min-heap on (key, link). Entries are distinct (one per link),
// so the order links come out in does not depend on how the heap is laid out.
void MaxMinSolver::sift_down(std::size_t p) {
  const std::size_t n = heap_.size();
  const HeapEntry x = heap_[p];
  for (;;) {
    std::size_t c = 2 * p + 1;
    if (c >= n) break;
    if (c + 1 < n && heap_[c + 1] < heap_[c]) ++c;
    if (!(heap_[c] < x)) break;
    heap_[p] = heap_[c];
    p = c;
  }
  heap_[p] = x;
}

void MaxMinSolver::make_heap() {
  for (std::size_t p = heap_.size() / 2; p-- > 0;) sift_down(p);
}

void MaxMinSolver::pop_heap() {
  heap_.front() = heap_.back();
  heap_.pop_back();
  if (!heap_.empty()) sift_down(0);
}

void MaxMinSolver::rekey_top(double key) {  // a larger key: only down
  heap_.front().key = key;
  sift_down(0);
}

// The filling from `lambda` on: every link with entries at or above lambda joins with the capacity
// and weight it has left at lambda; the flows above lambda (and new ones) are unfrozen.
template <bool Weighted>
void MaxMinSolver::refill(double lambda) {
  if (++stamp_ == 0) {
    std::fill(f_stamp_.begin(), f_stamp_.end(), 0u);
    stamp_ = 1;
  }
  for (const Index f : removed_) f_stamp_[at(f)] = stamp_;  // never frozen: skipped like frozen ones
  region_.clear();
  heap_.clear();
  caps_.clear();
  frozen_.clear();
  std::size_t kept_any = 0;
  std::int64_t pending = 0;  // (flow, link) incidences of the flows not yet frozen
  for (std::size_t l = 0; l < links_.size(); ++l) {
    const LinkRec& L = links_[l];
    if (L.order.empty()) continue;
    const bool all_solved = L.rem.size() == L.order.size();
    // A saturated link below lambda holds no flow at or above it (a flow's rho is at most the
    // level of every saturated link it crosses).
    if (all_solved && L.level < lambda) {
      kept_any += L.order.size();
      continue;
    }
    const std::size_t k = kept_below(L, lambda);
    kept_any += k;
    if (k == L.order.size()) continue;
    region_.push_back(static_cast<Index>(l));
    // A link below lambda* is here only to drop new flows removed unsolved: it keeps its level.
    pop_level_[l] = L.level < lambda ? L.level : kInf;
    Work& w = work_[l];
    w.unfrozen = L.live - static_cast<std::int64_t>(k);
    w.kept = static_cast<std::int64_t>(k);
    w.rem = w.start_rem = rem_before(L, k);
    w.wsum = Weighted ? L.live_weight - weight_below(L, k) : static_cast<double>(w.unfrozen);
    pending += w.unfrozen;
    if (w.unfrozen > 0) heap_.push_back(HeapEntry{std::max(0.0, w.rem) / w.wsum, static_cast<Index>(l)});
  }
  if constexpr (!Weighted) {
    // Unweighted re-fills write each link's new part as they freeze (commit() copies it back): a
    // scratch stretch per region link, as long as its old part (the new one is never longer).
    std::size_t total = 0;
    for (const Index l : region_) total += links_[at(l)].order.size() - static_cast<std::size_t>(work_[at(l)].kept);
    if (scratch_order_.size() < total) {
      scratch_order_.resize(total);
      scratch_rem_.resize(total);
    }
    std::size_t off = 0;
    for (const Index l : region_) {
      Work& w = work_[at(l)];
      w.cursor = 0;
      w.order = scratch_order_.data() + off;
      w.rem_out = scratch_rem_.data() + off;
      off += links_[at(l)].order.size() - static_cast<std::size_t>(w.kept);
    }
  }
  if (kept_any == 0) ++stats_.full_fills;
  make_heap();
  for (const Index f : capped_) {
    const std::size_t i = at(f);
    if ((fr_[i].state == kLive || fr_[i].state == kFresh) && fr_[i].hops > 0 && fr_[i].rho >= lambda)
      caps_.emplace_back(f_cap_[i] / f_weight_[i], f);
  }
  std::sort(caps_.begin(), caps_.end());
  std::size_t next_cap = 0;

  // `on`: the link saturating (kNone at a cap). Its own Work is left alone: it is settled once its
  // flows are frozen (nothing reads its capacity left after that; commit() recomputes it), which
  // spares a store per flow that the next flow's would wait on.
  // Unweighted, the flow's record is written here too (its rate, bottleneck, what moved), and its
  // entry and the capacity left after it in each link's new part: commit() has no pass over flows.
  std::size_t frozen_count = 0;
  const auto freeze = [&](Index f, double x, Index on) {
    const std::size_t i = at(f);
    FlowRec& r = fr_[i];
    f_stamp_[i] = stamp_;
    ++frozen_count;
    if constexpr (Weighted) {
      frozen_.push_back(Frozen{f, on});
    } else {
      if (on != kNone) {  // at a cap its rho is already set
        if (x != r.rho) ++stats_.rates_changed;
        r.rho = x;
      }
      // The link it froze on is its bottleneck (see commit()).
      if (r.state == kFresh || r.bottleneck != on) changes_.moved.push_back(f);
      r.bottleneck = on;
      r.state = kLive;
    }
    const Index* ls = r.link;
    const int hops = r.hops;
    for (int k = 0; k < hops; ++k) {
      if (ls[k] == on) continue;
      Work& w = work_[at(ls[k])];
      w.rem -= x;
      if constexpr (Weighted) {
        w.wsum -= f_weight_[i];
      } else {
        w.order[w.cursor] = f;
        w.rem_out[w.cursor] = w.rem;
        ++w.cursor;
      }
      --w.unfrozen;
      --pending;
    }
  };
  const auto share = [](const Work& w) {
    return std::max(0.0, w.rem) / (Weighted ? w.wsum : static_cast<double>(w.unfrozen));
  };

  double last = lambda;  // levels come out non-decreasing (so each link's order stays sorted)
  // Once every flow is frozen the links left in the heap have nothing to freeze: done.
  while (pending > 0) {
    while (!heap_.empty()) {  // make the top's key its share
      const auto [key, l] = heap_.front();
      const Work& w = work_[at(l)];
      if (w.unfrozen == 0) {
        pop_heap();
        continue;
      }
      const double s = share(w);
      if (!(s > key)) break;
      rekey_top(s);
    }
    while (next_cap < caps_.size() && f_stamp_[at(caps_[next_cap].second)] == stamp_) ++next_cap;
    const bool have_cap = next_cap < caps_.size();
    if (heap_.empty() && !have_cap) break;
    if (have_cap && (heap_.empty() || caps_[next_cap].first <= heap_.front().key)) {
      const auto [rho, f] = caps_[next_cap++];
      last = std::max(last, rho);
      fr_[at(f)].rho = last;
      freeze(f, f_cap_[at(f)], kNone);
      continue;
    }
    const Index l = heap_.front().link;
    pop_heap();
    const LinkRec& L = links_[at(l)];
    double level = share(work_[at(l)]);
    if (L.level < kInf && std::abs(level - L.level) <= kUnchanged * L.level && L.level >= last) level = L.level;
    level = std::max(level, last);
    last = level;
    pop_level_[at(l)] = level;
    const Index* order = L.order.data();
    const std::size_t end = L.order.size();
    Work& own = work_[at(l)];
    double own_rem = own.rem;  // its own entries (unweighted): the same subtractions, in a register
    std::int64_t own_cursor = own.cursor;
    for (std::size_t k = static_cast<std::size_t>(own.kept); k < end; ++k) {
      // Entries frozen earlier (on another link) are skipped on the dense stamps alone; the records
      // of those still to freeze here are fetched ahead.
      if (k + 16 < end) {
        const Index ahead = order[k + 16];
        __builtin_prefetch(&fr_[f_stamp_[at(ahead)] == stamp_ ? 0 : at(ahead)]);  // no branch to mispredict
      }
      const Index f = order[k];
      if (f_stamp_[at(f)] == stamp_) continue;
      freeze(f, Weighted ? f_weight_[at(f)] * level : level, l);
      if constexpr (!Weighted) {
        own_rem -= level;
        own.order[own_cursor] = f;
        own.rem_out[own_cursor] = own_rem;
        ++own_cursor;
      }
    }
    own.rem = own_rem;
    own.cursor = own_cursor;
    pending -= own.unfrozen;
    own.unfrozen = 0;  // every flow of it is frozen now
  }
  stats_.flows_filled += frozen_count;
  if (frozen_count > 0) ++stats_.fills;
}

// The level the re-fill gave the link (pop_level_), listed in changes_ when it moved.
void MaxMinSolver::take_level(Index l, LinkRec& L) {
  if (pop_level_[at(l)] == L.level) return;
  L.level = pop_level_[at(l)];
  changes_.levels.push_back(l);
}

// The rho of the link's first and last solved entries (kept so that kept_below reads no flow when
// lambda* lies outside them); its order must be sorted and fully solved.
void MaxMinSolver::note_ends(LinkRec& L) const {
  if (L.order.empty()) return;
  L.first_rho = fr_[at(L.order.front())].rho;
  L.last_rho = fr_[at(L.order.back())].rho;
}

// Writes the re-fill back: levels, each region link's order above lambda* (in freeze order, with
// the capacity left after each, subtracted in the order the filling did), rho and bottlenecks, and
// what moved. A region link's new part is never longer than its old one (dropped and new entries
// included): unweighted, the re-fill wrote it (and the flows) as it froze them, in scratch, copied
// back here; weighted, it is written here in place, with the weight prefix.
template <bool Weighted>
void MaxMinSolver::commit() {
  if constexpr (!Weighted) {  // the re-fill wrote the flows and each link's new part
    for (const Index l : region_) {
      LinkRec& L = links_[at(l)];
      take_level(l, L);
      const Work& w = work_[at(l)];
      const auto kept = static_cast<std::size_t>(w.kept), n = kept + static_cast<std::size_t>(w.cursor);
      std::copy(w.order, w.order + w.cursor, L.order.begin() + static_cast<std::ptrdiff_t>(kept));
      L.order.resize(n);
      L.rem.resize(n);
      std::copy(w.rem_out, w.rem_out + w.cursor, L.rem.begin() + static_cast<std::ptrdiff_t>(kept));
      note_ends(L);
    }
  } else {
    for (const Index l : region_) {
      LinkRec& L = links_[at(l)];
      take_level(l, L);
      L.rem.resize(L.order.size());
      L.wprefix.resize(L.order.size());
      Work& w = work_[at(l)];
      w.rem = w.start_rem;
      w.wsum = weight_below(L, static_cast<std::size_t>(w.kept));  // borrowed: the weight prefix
      w.cursor = w.kept;
      w.order = L.order.data();
      w.rem_out = L.rem.data();
    }
    for (const Frozen& z : frozen_) {
      const std::size_t i = at(z.flow);
      const bool capped = z.on == kNone;
      if (!capped) {
        const double rho = pop_level_[at(z.on)];
        if (rho != fr_[i].rho) ++stats_.rates_changed;
        fr_[i].rho = rho;
      }
      const double x = capped ? f_cap_[i] : f_weight_[i] * fr_[i].rho;
      const Index* ls = links_of(z.flow);
      const int hops = fr_[i].hops;
      for (int k = 0; k < hops; ++k) {
        Work& w = work_[at(ls[k])];
        w.order[w.cursor] = z.flow;
        w.rem -= x;
        w.rem_out[w.cursor] = w.rem;
        w.wsum += f_weight_[i];
        links_[at(ls[k])].wprefix[at(static_cast<Index>(w.cursor))] = w.wsum;
        ++w.cursor;
      }
      // The link it froze on is its bottleneck: its rho is that link's level exactly, which keeps
      // every kept flow's rate equal to its rho (a bottleneck kept from an earlier tie could later
      // be re-filled while the flow is not).
      if (fr_[i].state == kFresh || fr_[i].bottleneck != z.on) changes_.moved.push_back(z.flow);
      fr_[i].bottleneck = z.on;
      fr_[i].state = kLive;
    }
    for (const Index l : region_) {
      LinkRec& L = links_[at(l)];
      const auto n = static_cast<std::size_t>(work_[at(l)].cursor);
      L.order.resize(n);
      L.rem.resize(n);
      L.wprefix.resize(n);
      note_ends(L);
    }
  }
  for (const Index f : linkless_) {  // new flows with no link: their cap, or +infinity
    const std::size_t i = at(f);
    if (fr_[i].state != kFresh) continue;
    fr_[i].state = kLive;
    fr_[i].rho = f_cap_[i] / f_weight_[i];
    changes_.moved.push_back(f);
  }
  for (const Index f : removed_) {
    fr_[at(f)].state = kFree;
    free_ids_.push_back(f);
  }
  const auto gone = [&](Index f) { return fr_[at(f)].state == kFree; };
  if (!removed_.empty()) {
    capped_.erase(std::remove_if(capped_.begin(), capped_.end(), gone), capped_.end());
    linkless_.erase(std::remove_if(linkless_.begin(), linkless_.end(), gone), linkless_.end());
  }
  removed_.clear();
  fresh_.clear();
}

}  // namespace epsim
