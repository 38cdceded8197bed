// The bottleneck bound: each transfer is priced alone. A link carrying L bytes of the transfer is
// busy L / bandwidth; a flow arrives when the most loaded link on its route has drained, plus the
// route's latency. The transfer ends with its last flow. Concurrent transfers do not slow each
// other (use the flow model for that).
#pragma once

#include "sim/network.h"
#include "sim/simulator.h"
#include "topology/cluster.h"

namespace epsim {

class AnalyticalNetwork final : public Network {
 public:
  AnalyticalNetwork(Simulator& sim, const Cluster& cluster);
  void start(Transfer transfer) override;
  const std::vector<LinkCounters>& counters() const override { return counters_; }
  std::string name() const override { return "analytical"; }

 private:
  Simulator& sim_;
  const Cluster& cluster_;
  std::vector<LinkCounters> counters_;
  std::vector<std::int64_t> load_;   // scratch: bytes per link in the current transfer
  std::vector<std::int64_t> count_;  // scratch: flows per link in the current transfer
};

}  // namespace epsim
