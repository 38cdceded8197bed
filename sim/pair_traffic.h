// A pairwise all-to-all cut into chunks, described by its token-count matrix instead of a list of
// flows (comm_scheme.h direct and per-token without transfer engines: one flow per ordered pair
// (s, d), s != d, of equal_share(count(s, d), c, chunks) > 0 tokens of `token` bytes each, listed
// source by source, the order comm_plan lists them; the combine's flows go d -> s).
//
// Why. A chunk's plan lists up to G^2 flows with their routes (56 bytes each) and the analytical
// network then sums them per link; a dual micro-batch step with 8 chunks makes that list 16 times
// per layer from the same matrix. Here the matrix is cut once per direction: per pair its quotient
// q = count / chunks and remainder r = count % chunks, so chunk c carries q + (c < r ? 1 : 0); and
// per link (and per GPU as sender and receiver) the sum of q, the pairs with q > 0, and how many
// pairs have each remainder, with and without q > 0. A chunk's tokens on a link are then
// sum(q) + #{r > c} and its flows #{q > 0} + #{q = 0, r > c}: per chunk O(links x chunks) instead
// of O(flows x hops). The sums are integers: equal to the listed plan's sums in any order. The
// routes come from a PairRoutes of the span and direction (topology/pair_routes.h), shared.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "models/units.h"
#include "topology/pair_routes.h"

namespace epsim {

class ChunkedPairs {
 public:
  // `counts` [s * gpus + d] (local ids, the matrix's orientation: DispatchMatrix unique for direct,
  // copies for per-token); `routes` of the same span, reversed for the combine.
  ChunkedPairs(std::shared_ptr<const PairRoutes> routes, const std::vector<std::int64_t>& counts, int chunks,
               std::size_t links, int cluster_gpus);
  // The same from counts kept narrow (each in [0, 2^31)).
  ChunkedPairs(std::shared_ptr<const PairRoutes> routes, const std::vector<std::int32_t>& counts, int chunks,
               std::size_t links, int cluster_gpus);

  int gpus() const { return routes_->gpus(); }
  int first_gpu() const { return routes_->first_gpu(); }
  int chunks() const { return chunks_; }

  // Chunk c's tallies, in tokens and flows.
  struct Tally {
    std::int64_t tokens = 0, flows = 0;
  };
  Tally link(LinkId l, int c) const { return tally(links_, static_cast<std::size_t>(l), c); }
  Tally sent(GpuId g, int c) const { return tally(sent_, static_cast<std::size_t>(g), c); }        // g: cluster id
  Tally received(GpuId g, int c) const { return tally(received_, static_cast<std::size_t>(g), c); }
  Tally total(int c) const { return tally(total_, 0, c); }
  std::size_t link_count() const { return link_count_; }
  std::size_t gpu_count() const { return gpu_count_; }

  // Calls f(from, to, order, links, links_end, latency) for each flow of chunk c in plan order: from
  // and to are local ids (cluster id - first_gpu), `order` grows with the plan index (2 x the pair's
  // index), [links, links_end) and `latency` the route between them.
  template <class F>
  void for_each_flow(int c, F&& f) const {
    const LinkId* link = routes_->links().data();
    const PairRoutes::Pair* route = routes_->pairs().data();
    const Time* latency = routes_->latencies().data();
    const Cut* cut = cut_.data();
    const int G = gpus();
    const bool reverse = routes_->reverse();
    std::size_t pair = 0;
    for (GpuId s = 0; s < G; ++s)
      for (GpuId d = 0; d < G; ++d, ++pair) {
        const LinkId* next = link + route[pair].hops;
        if (cut[pair].q + (c < cut[pair].r ? 1 : 0) != 0)
          f(reverse ? d : s, reverse ? s : d, 2 * static_cast<std::int64_t>(pair), link, next, latency[route[pair].latency]);
        link = next;
      }
  }

 private:
  struct Cut {
    std::int64_t q = 0;  // tokens every chunk carries
    std::int64_t r = 0;  // chunks 0 .. r - 1 carry one more
  };
  // Per item (link, GPU, ...): [sum q, #{q > 0}, #{r > c} for c < chunks, #{q = 0, r > c} for c < chunks].
  std::size_t stride() const { return 2 + 2 * static_cast<std::size_t>(chunks_); }
  Tally tally(const std::vector<std::int64_t>& sums, std::size_t item, int c) const {
    const std::int64_t* s = sums.data() + item * stride();
    const auto k = static_cast<std::size_t>(c);
    return {s[0] + s[2 + k], s[1] + s[2 + static_cast<std::size_t>(chunks_) + k]};
  }
  ChunkedPairs(std::shared_ptr<const PairRoutes> routes, int chunks, std::size_t links, int cluster_gpus, std::size_t counts);
  template <class Count>
  void cut_counts(const std::vector<Count>& counts);  // the per-pair cuts and the tallies
  void add(std::vector<std::int64_t>& sums, std::size_t item, const Cut& x) const;
  static void accumulate_remainders(std::vector<std::int64_t>& sums, std::size_t items, int chunks);

  std::shared_ptr<const PairRoutes> routes_;
  int chunks_;
  std::size_t link_count_, gpu_count_;
  std::vector<Cut> cut_;  // per pair [s * gpus + d]; zero for s == d and empty pairs
  std::vector<std::int64_t> links_, sent_, received_, total_;
};

// One chunk of a ChunkedPairs: what a Transfer carries instead of its flows (sim/network.h).
struct PairChunk {
  std::shared_ptr<const ChunkedPairs> pairs;
  int chunk = 0;
  Bytes token;  // bytes per token (> 0)
};

}  // namespace epsim
