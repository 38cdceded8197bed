// Max-min fair bandwidth sharing: exact, incremental, standalone (knows nothing of Cluster).
//
// The system. Links l have capacities C_l > 0 (bytes/s). A flow f crosses a set of distinct links,
// has a weight w_f > 0 and an optional rate cap c_f (bytes/s). Its normalised rate is
// rho_f = x_f / w_f. An allocation x is max-min fair when it is feasible (sum of x_f over the flows
// of l <= C_l, x_f <= c_f) and no rho_f can grow without lowering a rho that is no larger. The
// allocation exists and is unique, and it is characterised by a certificate that is cheap to check:
//
//   every flow is at its cap, or has a BOTTLENECK link: one that is saturated and on which the
//   flow's rho is the largest of all flows crossing it.
//
// Progressive filling (water-filling) computes it. Raise a common level lambda from 0 and give every
// unfrozen flow w_f * lambda. A link saturates when lambda reaches its fair share, (capacity not yet
// used by frozen flows) / (weight of its unfrozen flows); its unfrozen flows freeze there and it
// becomes their bottleneck. A flow whose c_f / w_f is reached first freezes at its cap. Freezing the
// flows of the link with the smallest share can only raise the shares of the other links, so an
// indexed min-heap of links keyed by share yields every level in O((F h + L) log L) for F flows of
// at most h hops on L links.
//
// Incremental solving. Flows come and go between solves; solve() re-fills only what can move.
//  * A removed flow frees capacity on its links. Only those of its links that still carry flows
//    bottlenecked on them can let anybody speed up; they form the dirty set D. A removal that hits
//    no bottleneck changes no rate and costs O(h).
//  * The flows crossing D, plus every new flow, are re-filled together: against the full capacity of
//    D's links and, on the boundary links B that they also cross, against the capacity that all
//    other flows leave there. (Per-link usage sums make that O(1) per boundary link.)
//  * The result is accepted when every boundary link passes the certificate: flows outside the
//    re-fill that were bottlenecked on it keep a saturated link on which they have the largest rho,
//    and re-filled flows bottlenecked on it have a rho no smaller than any outside flow there (an
//    upper bound of the outside rhos is kept per link). Links that fail join D and the re-fill is
//    redone; after a few rounds, or when D would cover more than an eighth of the flows, the whole
//    system is filled instead (and local attempts back off while they keep failing: in a jittered
//    all-to-all a third of the rates move at every completion, so the full filling is the cheap path).
//  Accepted allocations satisfy the certificate everywhere, so they are the max-min allocation, up
//  to a relative tolerance of kTolerance on saturation and rho comparisons (floating rounding).
//
// Output: levels, not rates. A flow's rate is weight x level(bottleneck link) (or its cap), so
// solve() reports the links whose level changed and the flows whose bottleneck changed; a caller
// that tracks progress per link (FlowNetwork's virtual clocks) does no work for the many flows whose
// rate follows their link's level. Ties keep the previous bottleneck.
//
// The full filling keeps one heap entry per link with a key that is a lower bound of its share
// (shares only grow), re-keying the top until it is exact: no heap work per frozen flow, O(F h) plus
// O(L log L) per re-key. Removal is lazy (dead entries are swept from a link's list once they
// outnumber the live ones), so removing a flow never touches another flow's record.
//
// Determinism: every loop runs in index or insertion order; equal inputs give bit-identical rates.
#pragma once

#include <array>
#include <cstdint>
#include <limits>
#include <span>
#include <vector>

namespace epsim {

class MaxMinSolver {
 public:
  using Index = std::int32_t;
  static constexpr int kMaxLinksPerFlow = 8;
  static constexpr double kNoCap = std::numeric_limits<double>::infinity();
  static constexpr double kTolerance = 1e-10;  // relative, on saturation and rho comparisons

  struct Stats {
    std::uint64_t solves = 0;         // calls to solve() that had something to do
    std::uint64_t fills = 0;          // progressive fillings run (a solve may expand and redo)
    std::uint64_t full_fills = 0;     // fillings over every link that carries a flow
    std::uint64_t flows_filled = 0;   // sum over fillings of the flows re-filled
    std::uint64_t levels_changed = 0; // sum over solves of the links whose level changed
    std::uint64_t moves = 0;          // sum over solves of the flows whose bottleneck changed
  };

  // capacities in bytes/s, one per link; each must be > 0 and finite.
  explicit MaxMinSolver(std::vector<double> capacities);

  std::size_t link_count() const { return links_.size(); }
  std::size_t active_flow_count() const { return active_flows_; }
  double capacity(Index link) const { return links_[static_cast<std::size_t>(link)].capacity; }

  // Adds a flow over `links` (distinct, at most kMaxLinksPerFlow, possibly none: then its rate is
  // its cap, or +infinity). Its rate is 0 until the next solve(). Returns its id; the id of a
  // removed flow is reused once it has been swept from every link list.
  Index add_flow(std::span<const Index> links, double weight = 1.0, double cap = kNoCap);
  void remove_flow(Index flow);

  // What the last solve() changed. A flow's rate is weight x level(bottleneck) (or its cap), so a
  // flow whose bottleneck stays put follows its link's level without being listed.
  struct Changes {
    std::vector<Index> levels;  // links whose level changed (moved by more than 1e-13 relative)
    std::vector<Index> moved;   // flows whose bottleneck changed, new flows included
  };

  // Brings the allocation up to date with the flows added and removed since the last call; the
  // lists are in a deterministic order and valid until the next call.
  const Changes& solve();

  // Rate of an active flow after the last solve, bytes/s (0 for a flow not yet solved).
  double rate(Index flow) const;
  bool active(Index flow) const { return flows_[static_cast<std::size_t>(flow)].active; }
  // The link the flow is bottlenecked on after the last solve; -1 when it is at its cap (or
  // crosses no link). When several links tie, the previous bottleneck is kept.
  Index bottleneck(Index flow) const { return flows_[static_cast<std::size_t>(flow)].bottleneck; }
  // The normalised rate (rate / weight) of the flows bottlenecked on the link; +infinity when none.
  double level(Index link) const { return links_[static_cast<std::size_t>(link)].level; }
  // Sum of the rates of the link's flows (bytes/s), up to rounding.
  double load(Index link) const { return links_[static_cast<std::size_t>(link)].usage; }
  std::size_t flows_on(Index link) const {
    const LinkRec& L = links_[static_cast<std::size_t>(link)];
    return L.flows.size() - static_cast<std::size_t>(L.dead);
  }
  const Stats& stats() const { return stats_; }

 private:
  static constexpr Index kNone = -1;

  // One cache line per flow: a full filling reads it once per link it crosses.
  struct alignas(64) FlowRec {
    std::array<Index, kMaxLinksPerFlow> link{};  // links crossed
    double weight = 1.0;
    double cap = kNoCap;
    Index bottleneck = kNone;  // link it is bottlenecked on, kNone when at its cap
    std::uint8_t hops = 0;
    bool active = false;
    bool fresh = false;        // added since the last solve
  };
  struct LinkRec {
    double capacity = 0.0;
    double wsum = 0.0;        // sum of the weights of its flows
    double usage = 0.0;       // sum of the rates of its flows (up to rounding)
    double level = kNoCap;    // rho of the flows bottlenecked on it (infinity when none)
    double rho_bound = 0.0;   // upper bound of the rho of every flow on it
    std::int64_t bottlenecked = 0;  // flows whose bottleneck it is
    std::vector<Index> flows;       // its flows, plus `dead` removed ones not yet swept out
    std::int64_t dead = 0;
    bool dirty = false;
  };
  struct FillLink {           // a link during a full filling
    double rem;               // capacity not yet taken by frozen flows
    double wsum;              // weight of its unfrozen flows
    double max_rho;           // largest rho frozen on it so far
    std::int64_t unfrozen;
  };
  struct Mismatch {           // a flow frozen on another link than its previous bottleneck
    Index flow;
    Index frozen_on;
  };

  double rate_of(const FlowRec& r) const;
  // Drops the removed flows from the link's list; ids whose last list is swept become reusable.
  void sweep(Index link);
  // A local progressive filling over the dirty links and the flows they and the new flows touch.
  // Returns false when a boundary link fails the certificate (those links are then added to
  // dirty_); true when the result is accepted (then commit()).
  void gather();
  bool fill();
  void commit();
  // Progressive filling of the whole system straight from the links' flow lists, and its commit.
  void fill_all();

  std::vector<FlowRec> flows_;
  std::vector<std::uint8_t> alive_;      // per flow id: 1 while active (dense, for list scans)
  std::vector<std::uint8_t> unswept_;    // per removed flow id: link lists still holding it
  std::vector<LinkRec> links_;
  std::vector<Index> free_flows_;
  std::vector<Index> fresh_;       // flows added since the last solve
  std::vector<Index> dirty_;       // links to re-fill
  std::size_t active_flows_ = 0;
  std::size_t capped_ = 0;         // active flows with a finite cap
  std::uint32_t local_wait_ = 0;   // solves left before the next local re-fill may be tried
  std::uint32_t local_backoff_ = 0;
  Changes changes_;
  Stats stats_;

  // Scratch of a local filling, indexed by local link / local flow numbers. Sized once, reused.
  std::vector<Index> link_local_;   // global link -> local index, -1 when not in the filling
  std::vector<Index> flow_local_;   // global flow -> local index, -1 when not in the filling
  std::vector<Index> l_global_;
  std::vector<char> l_in_d_;
  std::vector<double> l_rem_, l_wsum_, l_level_, l_old_sum_, l_new_sum_, l_max_rho_new_;
  std::vector<std::int64_t> l_unfrozen_, l_old_bottlenecked_;
  std::vector<Index> l_csr_begin_, l_csr_;  // flows of each local link
  std::vector<Index> f_global_;
  std::vector<Index> f_links_;              // local links of each local flow, kMaxLinksPerFlow apart
  std::vector<std::uint8_t> f_hops_;
  std::vector<double> f_new_rate_;
  std::vector<Index> f_bottleneck_;         // local link, or kNone for the cap
  std::vector<char> f_frozen_;
  std::vector<Index> heap_, heap_pos_;      // indexed min-heap of local links by (share, global id)
  std::vector<Index> touched_;
  std::vector<std::uint32_t> touch_mark_;
  std::uint32_t touch_stamp_ = 0;
  // Scratch of a full filling, indexed by global link.
  std::vector<FillLink> a_link_;
  std::vector<double> a_level_;
  std::vector<std::pair<double, Index>> a_heap_;
  std::vector<Mismatch> mismatches_;
  std::vector<std::uint32_t> stamp_;  // per flow: == fill_stamp_ once frozen in this full filling
  std::uint32_t fill_stamp_ = 0;
};

}  // namespace epsim
