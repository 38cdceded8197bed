#include "sim/transfer_memo.h"

#include <numeric>

namespace epsim {

namespace {
std::int32_t root(std::vector<std::int32_t>& parent, std::int32_t x) {
  while (parent[static_cast<std::size_t>(x)] != x) {
    parent[static_cast<std::size_t>(x)] = parent[static_cast<std::size_t>(parent[static_cast<std::size_t>(x)])];
    x = parent[static_cast<std::size_t>(x)];
  }
  return x;
}
bool takes_bandwidth(const FlowSpec& f) { return f.bytes.count() > 0 && f.route.hops > 0; }
}  // namespace

std::vector<std::int32_t> flow_components(const std::vector<FlowSpec>& flows, std::size_t links, std::int32_t& count) {
  std::vector<std::int32_t> parent(links);
  std::iota(parent.begin(), parent.end(), 0);
  for (const FlowSpec& f : flows) {
    if (!takes_bandwidth(f)) continue;
    const std::int32_t a = root(parent, f.route.link[0]);
    for (LinkId l : f.route) {
      const std::int32_t b = root(parent, l);
      if (b != a) parent[static_cast<std::size_t>(b)] = a;
    }
  }
  std::vector<std::int32_t> number(links, -1);
  std::int32_t linkless = -1;
  count = 0;
  std::vector<std::int32_t> out(flows.size());
  for (std::size_t i = 0; i < flows.size(); ++i) {
    std::int32_t& id = takes_bandwidth(flows[i]) ? number[static_cast<std::size_t>(root(parent, flows[i].route.link[0]))] : linkless;
    if (id < 0) id = count++;
    out[i] = id;
  }
  return out;
}

std::vector<std::pair<std::size_t, std::size_t>> same_offset_runs(const std::vector<std::pair<GpuId, Time>>& done) {
  std::vector<std::pair<std::size_t, std::size_t>> runs;
  for (std::size_t i = 0; i < done.size();) {
    std::size_t j = i;
    while (j < done.size() && done[j].second == done[i].second) ++j;
    runs.emplace_back(i, j);
    i = j;
  }
  return runs;
}

std::shared_ptr<const MemoRecord> TransferMemo::find(std::uint64_t key) {
  const auto it = records_.find(key);
  if (it == records_.end()) {
    ++stats_.misses;
    return nullptr;
  }
  ++stats_.hits;
  return it->second;
}

void TransferMemo::store(std::uint64_t key, MemoRecord record) {
  if (capacity_ == 0 || records_.count(key) > 0) return;
  if (records_.size() >= capacity_) {
    records_.erase(order_.front());
    order_.pop_front();
  }
  records_.emplace(key, std::make_shared<const MemoRecord>(std::move(record)));
  order_.push_back(key);
  ++stats_.stored;
}

namespace {
std::uint64_t mix(std::uint64_t h, std::uint64_t v) {
  std::uint64_t z = (h ^ v) + 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}
}  // namespace

KeyHasher& KeyHasher::add(std::uint64_t v) {
  h_ = mix(h_, v);
  return *this;
}

// Four chains over the values in turn, folded in at the end: one chain waits for each mix before
// the next (a GPUs x GPUs matrix is 65,536 of them at 256 GPUs), four overlap.
KeyHasher& KeyHasher::add(const std::vector<std::int64_t>& values) {
  add(static_cast<std::uint64_t>(values.size()));
  std::uint64_t lane[4] = {h_, ~h_, h_ + 1, h_ + 2};
  std::size_t i = 0;
  for (; i + 4 <= values.size(); i += 4)
    for (std::size_t k = 0; k < 4; ++k) lane[k] = mix(lane[k], static_cast<std::uint64_t>(values[i + k]));
  for (; i < values.size(); ++i) lane[0] = mix(lane[0], static_cast<std::uint64_t>(values[i]));
  for (std::uint64_t l : lane) add(l);
  return *this;
}

}  // namespace epsim
