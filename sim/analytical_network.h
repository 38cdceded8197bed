// The bottleneck bound: each transfer is priced alone. A link carrying L bytes of the transfer is
// busy L / bandwidth; a flow arrives when the most loaded link on its route has drained, plus the
// route's latency. The transfer ends with its last flow. Concurrent transfers do not slow each
// other (use the flow model for that), so a keyed transfer seen before is always replayed exactly.
// A transfer that offers its flows as a chunk of a token-count matrix (Transfer::fill_pairs,
// sim/pair_traffic.h) is priced from that matrix's per-link tallies, without listing its flows:
// the same sums, so the same timing.
#pragma once

#include <memory>

#include "sim/network.h"
#include "sim/simulator.h"
#include "sim/transfer_memo.h"
#include "topology/cluster.h"

namespace epsim {

class AnalyticalNetwork final : public Network {
 public:
  // `replay`: reuse the timing of keyed transfers seen before (exact here; off only to check).
  AnalyticalNetwork(Simulator& sim, const Cluster& cluster, bool replay = true);
  void start(Transfer transfer) override;
  const std::vector<LinkCounters>& counters() const override { return counters_; }
  std::string name() const override { return "analytical"; }
  ReplayStats replay_stats() const override { return memo_.stats(); }

 private:
  void solve(const std::shared_ptr<Transfer>& t);
  void solve_pairs(const std::shared_ptr<Transfer>& t, const PairChunk& pairs);
  template <class EachFlow>
  void settle(const std::shared_ptr<Transfer>& t, std::vector<LinkId>& touched, std::size_t flow_count, EachFlow&& each_flow);
  void per_flow(const std::shared_ptr<Transfer>& t, const std::vector<std::int32_t>& key,
                const std::vector<std::int32_t>& time_of, const std::vector<Time>& times);
  void replay(std::shared_ptr<const MemoRecord> record, const std::shared_ptr<Transfer>& t);
  void finish_empty_endpoints(const std::shared_ptr<Transfer>& t, const std::vector<std::int32_t>& pending);

  Simulator& sim_;
  const Cluster& cluster_;
  bool replay_;
  TransferMemo memo_;
  std::vector<LinkCounters> counters_;
  std::vector<std::int64_t> load_;   // scratch: bytes per link in the current transfer
  std::vector<std::int64_t> count_;  // scratch: flows per link in the current transfer
  std::vector<Time> drain_;          // scratch: drain time per link in the current transfer
  std::vector<std::int32_t> bucket_of_;  // scratch: arrival bucket per (latency, link), -1 none
  static constexpr std::size_t kMaxLatencies = 16;  // distinct route latencies per transfer
};

}  // namespace epsim
