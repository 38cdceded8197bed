#include "sim/pair_traffic.h"

#include "models/errors.h"

namespace epsim {

ChunkedPairs::ChunkedPairs(std::shared_ptr<const PairRoutes> routes, const std::vector<std::int64_t>& counts, int chunks,
                           std::size_t links, int cluster_gpus)
    : ChunkedPairs(std::move(routes), chunks, links, cluster_gpus, counts.size()) {
  cut_counts(counts);
}

ChunkedPairs::ChunkedPairs(std::shared_ptr<const PairRoutes> routes, const std::vector<std::int32_t>& counts, int chunks,
                           std::size_t links, int cluster_gpus)
    : ChunkedPairs(std::move(routes), chunks, links, cluster_gpus, counts.size()) {
  cut_counts(counts);
}

ChunkedPairs::ChunkedPairs(std::shared_ptr<const PairRoutes> routes, int chunks, std::size_t links, int cluster_gpus,
                           std::size_t counts)
    : routes_(std::move(routes)), chunks_(chunks), link_count_(links), gpu_count_(static_cast<std::size_t>(cluster_gpus)) {
  const int G = routes_->gpus(), first = routes_->first_gpu();
  const auto pairs = static_cast<std::size_t>(G) * static_cast<std::size_t>(G);
  if (chunks_ < 1 || counts != pairs || first + G > cluster_gpus) throw SimulationError("chunked pairs: matrix, chunks and routes disagree");
  cut_.resize(pairs);
  links_.assign(link_count_ * stride(), 0);
  sent_.assign(gpu_count_ * stride(), 0);
  received_.assign(gpu_count_ * stride(), 0);
  total_.assign(stride(), 0);
}

template <class Count>
void ChunkedPairs::cut_counts(const std::vector<Count>& counts) {
  const int G = routes_->gpus(), first = routes_->first_gpu();
  const bool reverse = routes_->reverse();
  const LinkId* link = routes_->links().data();
  const PairRoutes::Pair* route = routes_->pairs().data();
  std::size_t pair = 0;
  for (GpuId s = 0; s < G; ++s)
    for (GpuId d = 0; d < G; ++d, ++pair) {
      const LinkId* next = link + route[pair].hops;
      const std::int64_t n = counts[pair];
      if (s != d && n > 0) {  // else CommPlan::add lists no flow
        Cut& x = cut_[pair];
        x.q = n / chunks_;
        x.r = n % chunks_;
        for (const LinkId* l = link; l != next; ++l) add(links_, static_cast<std::size_t>(*l), x);
        add(sent_, static_cast<std::size_t>(first + (reverse ? d : s)), x);
        add(received_, static_cast<std::size_t>(first + (reverse ? s : d)), x);
        add(total_, 0, x);
      }
      link = next;
    }
  accumulate_remainders(links_, link_count_, chunks_);
  accumulate_remainders(sent_, gpu_count_, chunks_);
  accumulate_remainders(received_, gpu_count_, chunks_);
  accumulate_remainders(total_, 1, chunks_);
}

// Counts the pair's remainder r at slot r of the histograms; accumulate_remainders turns slot c into
// the pairs with remainder above c.
void ChunkedPairs::add(std::vector<std::int64_t>& sums, std::size_t item, const Cut& x) const {
  std::int64_t* s = sums.data() + item * stride();
  s[0] += x.q;
  s[1] += x.q > 0 ? 1 : 0;
  const auto r = static_cast<std::size_t>(x.r);
  ++s[2 + r];
  if (x.q == 0) ++s[2 + static_cast<std::size_t>(chunks_) + r];
}

void ChunkedPairs::accumulate_remainders(std::vector<std::int64_t>& sums, std::size_t items, int chunks) {
  const auto C = static_cast<std::size_t>(chunks);
  for (std::size_t i = 0; i < items; ++i)
    for (std::size_t half = 0; half < 2; ++half) {
      std::int64_t* h = sums.data() + i * (2 + 2 * C) + 2 + half * C;
      std::int64_t above = 0;  // pairs with remainder > c, for c from chunks - 1 down
      for (std::size_t c = C; c-- > 0;) {
        const std::int64_t at = h[c];
        h[c] = above;
        above += at;
      }
    }
}

}  // namespace epsim
