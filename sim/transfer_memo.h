// What a transfer's flows did when they ran alone on their links, kept by the transfer's key so a
// network can replay the timing instead of solving the flows again.
//
// Components. A transfer's flows split into link-disjoint components (flows that share a link,
// directly or through other flows, are in one; flows that take no bandwidth, of zero bytes or to
// oneself, form one component with no links). Max-min fair sharing never couples two components,
// so a component that ran with its links to itself behaves the same whenever its links are free
// again: every arrival keeps its offset from the start. That is what a MemoComponent records.
//
// Exactness: replay is exact when the component's links stay free of other flows until its last
// flow has drained; a network that replays must fall back to solving the flows (from their state
// at that moment) if another transfer's flow enters one of those links earlier (FlowNetwork does).
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <unordered_map>
#include <utility>
#include <vector>

#include "sim/network.h"

namespace epsim {

struct MemoComponent {
  bool alone = true;  // it ran with its links to itself: replayable (else always solved; kept for its flows)
  std::vector<LinkId> links;                          // sorted
  std::vector<LinkCounters> counters;                 // per link in `links`: what the component added
  std::vector<std::pair<GpuId, Time>> endpoint_done;  // offsets from the start, in completion order
  Time drained;                                       // its links are free from this offset on
  Time end;                                           // its last arrival
  // Its flows and their endpoints, kept for components of at most kKeptFlows flows (so a network
  // can solve them without making the whole plan again); empty otherwise.
  static constexpr std::size_t kKeptFlows = 4096;
  std::vector<FlowSpec> flows;
  std::vector<GpuId> src, dst;
};

// [first, last) index ranges of endpoint_done whose offsets are equal (one event each when replayed).
std::vector<std::pair<std::size_t, std::size_t>> same_offset_runs(const std::vector<std::pair<GpuId, Time>>& endpoint_done);

struct MemoRecord {
  std::vector<MemoComponent> components;
};

// Component of each flow (-1 never: flows without bandwidth share one linkless component), numbered
// in order of first appearance; `count` is set to the number of components.
std::vector<std::int32_t> flow_components(const std::vector<FlowSpec>& flows, std::size_t links, std::int32_t& count);

class TransferMemo {
 public:
  using Stats = ReplayStats;

  // Keeps at most `capacity` records, forgetting the oldest first (deterministic).
  explicit TransferMemo(std::size_t capacity = 256) : capacity_(capacity) {}
  std::shared_ptr<const MemoRecord> find(std::uint64_t key);
  void store(std::uint64_t key, MemoRecord record);
  Stats& stats() { return stats_; }
  const Stats& stats() const { return stats_; }

 private:
  std::size_t capacity_;
  std::unordered_map<std::uint64_t, std::shared_ptr<const MemoRecord>> records_;
  std::deque<std::uint64_t> order_;
  Stats stats_;
};

// Mixes values into a 64-bit key (splitmix64 steps); equal inputs give equal keys on any machine.
class KeyHasher {
 public:
  KeyHasher& add(std::uint64_t v);
  KeyHasher& add(std::int64_t v) { return add(static_cast<std::uint64_t>(v)); }
  KeyHasher& add(int v) { return add(static_cast<std::uint64_t>(static_cast<std::int64_t>(v))); }
  KeyHasher& add(const std::vector<std::int64_t>& values);
  std::uint64_t key() const { return h_ == 0 ? 1 : h_; }  // never 0 (0 means "no key")

 private:
  std::uint64_t h_ = 0x6a09e667f3bcc908ULL;
};

}  // namespace epsim
