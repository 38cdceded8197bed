// Max-min fair bandwidth sharing: exact, incremental, standalone (knows nothing of Cluster).
//
// The system. Links l have capacities C_l > 0 (bytes/s). A flow f crosses a set of distinct links,
// has a weight w_f > 0 and an optional rate cap c_f (bytes/s). Its normalised rate is
// rho_f = x_f / w_f. An allocation x is max-min fair when it is feasible (sum of x_f over the flows
// of l <= C_l, x_f <= c_f) and no rho_f can grow without lowering a rho that is no larger. The
// allocation exists and is unique.
//
// Progressive filling (water-filling) computes it. Raise a common level lambda from 0 and give every
// unfrozen flow w_f * lambda. A link saturates when lambda reaches its fair share, (capacity not yet
// used by frozen flows) / (weight of its unfrozen flows); its unfrozen flows freeze there and it
// becomes their bottleneck, its level. A flow whose c_f / w_f is reached first freezes at its cap.
// Freezing flows only raises the other links' shares, so one heap entry per link whose key is a
// lower bound of its share (re-keyed when it reaches the top) yields every level in order.
//
// Re-filling from a level (the incremental solve). The filling is kept: every link holds its flows
// in the order they froze (so by rho), each with the capacity the link had left after it. Flows
// come and go between solves. Let lambda* be the lowest level a change can touch:
//  * a removed flow f: lambda* <= rho_f. Below rho_f, f was unfrozen and crossed only links whose
//    level is >= rho_f (a flow's rho is at most the level of every saturated link it crosses), which
//    therefore did not saturate below rho_f; without f they saturate no earlier. Every other link
//    sees the same frozen flows below rho_f. So the filling below rho_f is unchanged.
//  * new flows: on each link l they cross, with W the weight they add there, the level at which l
//    would saturate if every other flow kept its rho: the smallest lambda with
//      sum over l's flows of w min(rho, lambda) + W lambda >= C_l,
//    found from l's kept order. Below the least such level (and below new caps) no link a new flow
//    crosses saturates, and every other link sees the old filling: unchanged again.
// The solve therefore keeps every flow with rho < lambda* and every link's order and remaining
// capacity up to that point, and re-runs the filling from lambda* on the rest: the flows with
// rho >= lambda* (plus new ones), over the links they cross, starting from each link's capacity
// left at lambda* (read from its order, by binary search). A completion touches only the flows as
// fast as the one that ended or faster: measured at window 0, about 2% of the active flows per
// solve in a zipf-skewed 128-GPU all-to-all, about 40% in a jittered one (sizes +-50%: the ending
// flow is among the slowest, so most flows are faster); lambda* = 0 is a full filling. There is no
// certificate to check and no fallback: the re-fill is the filling. It stops as soon as every flow
// is frozen (links whose flows all froze elsewhere stay in the heap, unpopped).
//
// Why not keep every flow's bottleneck and re-level only the links that move (measured for issue
// 21 on recorded solve sequences replayed into this solver): bottlenecks move in 77% of jitter-128's
// completions and 80% of jitter-256's (13 and 20 flows on average; a fifth of the links change
// level), at window 0, in 2.8% of zipf-128's and in 22.5% of a zipf seed step's (serial, flow
// network, window 1e-3: 19 flows, 24 levels). And results bit-identical to this filling (reports
// are compared byte for byte) need its subtractions in its order: of the (flow, capacity left)
// entries a re-fill rewrites, 66% (the seed's first 100k solves) and 93% (jitter-128) change, and
// the solves whose links keep their freeze order (which a replay of the previous filling could
// serve) hold 9% of the seed's re-filled flows.
//
// Output: levels, not rates. A flow's rate is weight x level(bottleneck link) (or its cap), so
// solve() reports the links whose level changed and the flows whose bottleneck changed; a caller
// that tracks progress per link (FlowNetwork's virtual clocks) does no work for the many flows whose
// rate follows their link's level. A level within 1e-13 (relative) of its previous value keeps the
// previous value exactly, and when two links tie (1e-10) a flow keeps its previous bottleneck.
//
// Storage: one 64-byte record per flow (links, rho, bottleneck), weights and caps apart; no
// allocation per flow once the arrays have grown; per link its flows in freeze order and the
// remaining capacity after each. A removed flow's entries sit above lambda* in every list holding
// them and are dropped when the re-fill rewrites those lists; its id is reused after that.
//
// Determinism: every loop runs in index or list order; equal inputs give bit-identical rates.
#pragma once

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
  static constexpr double kTolerance = 1e-10;  // relative: two levels this close tie

  struct Stats {
    std::uint64_t solves = 0;         // calls to solve() that had something to do
    std::uint64_t fills = 0;          // (re-)fillings that had flows to freeze
    std::uint64_t full_fills = 0;     // fillings from level 0 (nothing kept)
    std::uint64_t flows_filled = 0;   // sum over fillings of the flows re-filled
    std::uint64_t levels_changed = 0; // sum over solves of the links whose level changed
    std::uint64_t moves = 0;          // sum over solves of the flows whose bottleneck changed
    std::uint64_t rates_changed = 0;  // sum over solves of the re-filled flows whose rate changed
  };

  // capacities in bytes/s, one per link; each must be > 0 and finite.
  explicit MaxMinSolver(std::vector<double> capacities);

  std::size_t link_count() const { return links_.size(); }
  std::size_t active_flow_count() const { return active_flows_; }
  double capacity(Index link) const { return links_[at(link)].capacity; }

  // Adds a flow over `links` (distinct, at most kMaxLinksPerFlow, possibly none: then its rate is
  // its cap, or +infinity). Its rate is 0 until the next solve(). Returns its id; the id of a
  // removed flow is reused after the next solve().
  Index add_flow(std::span<const Index> links, double weight = 1.0, double cap = kNoCap);
  void remove_flow(Index flow);

  // What the last solve() changed. A flow's rate is weight x level(bottleneck) (or its cap), so a
  // flow whose bottleneck stays put follows its link's level without being listed.
  struct Changes {
    std::vector<Index> levels;  // links whose level changed
    std::vector<Index> moved;   // flows whose bottleneck changed, new flows included
  };

  // Brings the allocation up to date with the flows added and removed since the last call; the
  // lists are in a deterministic order and valid until the next call.
  const Changes& solve();

  // Rate of an active flow after the last solve, bytes/s (0 for a flow not yet solved).
  double rate(Index flow) const;
  bool active(Index flow) const { return fr_[at(flow)].state == kLive || fr_[at(flow)].state == kFresh; }
  // The link the flow is bottlenecked on after the last solve; -1 when it is at its cap (or
  // crosses no link). When several links tie, the previous bottleneck is kept.
  Index bottleneck(Index flow) const { return fr_[at(flow)].bottleneck; }
  // Asks the memory system for the flow's record (a caller walking many flows fetches ahead).
  void prefetch(Index flow) const { __builtin_prefetch(&fr_[at(flow)]); }
  // The normalised rate (rate / weight) of the flows bottlenecked on the link; +infinity when none.
  double level(Index link) const { return links_[at(link)].level; }
  // Sum of the rates of the link's flows (bytes/s), up to rounding.
  double load(Index link) const;
  std::size_t flows_on(Index link) const { return static_cast<std::size_t>(links_[at(link)].live); }
  const Stats& stats() const { return stats_; }

 private:
  static constexpr Index kNone = -1;
  enum State : std::uint8_t { kFree, kLive, kFresh, kDead };
  static std::size_t at(Index i) { return static_cast<std::size_t>(i); }

  struct LinkRec {
    double capacity = 0.0;
    double level = kNoCap;       // rho of the flows bottlenecked on it (infinity when none)
    double live_weight = 0.0;    // sum of the weights of its live and new flows
    std::int64_t live = 0;       // its live and new flows
    // Its flows in freeze order (rho non-decreasing), then the new flows not yet solved; removed
    // flows stay until the next re-fill rewrites the part above lambda*. `rem` (capacity left after
    // each froze) and `wprefix` (weight frozen up to each, kept only once some weight is not 1)
    // cover the solved part.
    std::vector<Index> order;
    std::vector<double> rem;
    std::vector<double> wprefix;
    double first_rho = kNoCap;   // rho of its first solved entry (a re-fill from below it keeps none)
    double last_rho = kNoCap;    // rho of its last solved entry (a re-fill from above it keeps all)
  };
  struct Work {                  // a link during a re-fill (one cache line)
    double rem;                  // capacity not yet taken by frozen flows
    double wsum;                 // weight of its unfrozen flows (weighted systems only)
    std::int64_t unfrozen;
    std::int64_t kept;           // entries of its order below lambda*
    double start_rem;            // capacity left at lambda*
    std::int64_t cursor;         // commit: where its next entry goes
    Index* order;                // commit: its order's and rem's storage
    double* rem_out;
  };
  struct Frozen {
    Index flow;
    Index on;                    // the link it froze on, kNone at its cap
  };

  double rho_at(const LinkRec& L, std::size_t k) const { return fr_[at(L.order[k])].rho; }
  double rem_before(const LinkRec& L, std::size_t k) const { return k == 0 ? L.capacity : L.rem[k - 1]; }
  double weight_below(const LinkRec& L, std::size_t k) const;  // weight of the first k entries
  // Entries of the link's order frozen strictly below `lambda` (binary search over the solved part).
  std::size_t kept_below(const LinkRec& L, double lambda) const;
  // The level at which the link would saturate if its solved flows kept their rho and its new
  // flows (weight `added`) were unfrozen: the lowest level new flows can change.
  double saturation_with(const LinkRec& L, double added) const;
  double lowest_touched();  // lambda*: removed flows' rho, new flows' saturation levels and caps
  void sift_down(std::size_t p);
  void make_heap();
  void pop_heap();
  void rekey_top(double key);
  template <bool Weighted>
  void refill(double lambda);
  template <bool Weighted>
  void commit();
  void note_ends(LinkRec& L) const;  // first_rho and last_rho from its solved order
  void take_level(Index l, LinkRec& L);  // commit: the re-fill's level, noted in changes_ if new
  const Index* links_of(Index f) const { return fr_[at(f)].link; }

  std::vector<LinkRec> links_;
  // Per flow id: what a re-fill reads and writes for every flow it freezes, in one cache line (the
  // fields apart cost a miss each); weights and caps, read only by weighted or capped systems, apart.
  struct alignas(64) FlowRec {
    Index link[kMaxLinksPerFlow];
    double rho;                            // normalised rate after the last solve (+inf: new)
    Index bottleneck;
    std::uint8_t hops;
    State state;
  };
  static_assert(sizeof(FlowRec) == 64, "a flow's record is one cache line");
  std::vector<FlowRec> fr_;
  std::vector<double> f_weight_, f_cap_;
  // Per flow id, dense (skipping a frozen flow reads 4 bytes, not its record): == stamp_ once frozen
  // in the current re-fill.
  std::vector<std::uint32_t> f_stamp_;
  std::uint32_t stamp_ = 0;

  std::vector<Index> free_ids_;
  std::vector<Index> fresh_;               // added since the last solve
  std::vector<Index> removed_;             // removed since the last solve (ids freed at commit)
  std::vector<Index> capped_;              // flows with a finite cap (live, new or dead)
  std::vector<Index> linkless_;            // flows that cross no link (live or new)
  std::size_t active_flows_ = 0;
  bool weighted_ = false;                  // some flow has a weight other than 1
  Changes changes_;
  Stats stats_;

  // Scratch of a re-fill.
  std::vector<Work> work_;                 // per link
  std::vector<Index> region_;              // links re-filled (those with entries at or above lambda*)
  std::vector<char> in_region_;
  struct HeapEntry {
    double key;                  // a lower bound of the link's share (its share once on top)
    Index link;
    bool operator<(const HeapEntry& o) const { return key < o.key || (key == o.key && link < o.link); }
  };
  std::vector<HeapEntry> heap_;
  std::vector<std::pair<double, Index>> caps_;
  std::vector<Frozen> frozen_;             // flows in the order the re-fill froze them (weighted)
  std::vector<Index> scratch_order_;       // unweighted re-fills: each region link's new part
  std::vector<double> scratch_rem_;
  std::vector<double> pop_level_;          // per link: level it saturated at in this re-fill (inf: none)
};

}  // namespace epsim
