#include "placement/replica_choice.h"

#include <stdexcept>

namespace epsim {

namespace {

// The replicas `source` sends to: those on its GPU, else on its node, else all (nearest); all (even).
class Tier {
 public:
  Tier(ReplicaChoice choice, const std::vector<int>& replica_gpus, int source, int gpus_per_node)
      : gpus_(replica_gpus), source_(source), per_node_(gpus_per_node) {
    if (choice == ReplicaChoice::even) return;
    for (level_ = 0; level_ < 2; ++level_)
      for (int g : gpus_)
        if (near(g)) return;
  }
  bool contains(std::size_t i) const { return near(gpus_[i]); }
  int size() const {
    int n = 0;
    for (std::size_t i = 0; i < gpus_.size(); ++i) n += contains(i) ? 1 : 0;
    return n;
  }

 private:
  bool near(int g) const {
    if (level_ == 0) return g == source_;
    if (level_ == 1) return g / per_node_ == source_ / per_node_;
    return true;
  }
  const std::vector<int>& gpus_;
  int source_, per_node_;
  int level_ = 2;  // 0: own GPU, 1: own node, 2: every replica
};

}  // namespace

const std::vector<std::string>& replica_choice_names() {
  static const std::vector<std::string> names = {"even", "nearest"};
  return names;
}

ReplicaChoice replica_choice_from_name(const std::string& name) {
  if (name == "even") return ReplicaChoice::even;
  if (name == "nearest") return ReplicaChoice::nearest;
  throw std::invalid_argument("replica choice '" + name + "'");
}

const char* replica_choice_name(ReplicaChoice choice) { return choice == ReplicaChoice::even ? "even" : "nearest"; }

void replica_gpus(const LayerPlacement& placement, int expert, int group_base, std::vector<int>& out) {
  out.clear();
  for (int slot : placement.replicas(expert)) out.push_back(group_base + placement.gpu_of_slot(slot));
}

void replica_shares(ReplicaChoice choice, std::int64_t count, const std::vector<int>& replica_gpus, int source,
                    int gpus_per_node, std::vector<std::int64_t>& out) {
  const Tier tier(choice, replica_gpus, source, gpus_per_node);
  const int n = tier.size();
  out.assign(replica_gpus.size(), 0);
  int k = 0;  // index within the tier
  for (std::size_t i = 0; i < replica_gpus.size(); ++i)
    if (tier.contains(i)) out[i] = replica_share(count, n, k++, source);
}

void replica_fractions(ReplicaChoice choice, const std::vector<int>& replica_gpus, int source, int gpus_per_node,
                       std::vector<double>& out) {
  const Tier tier(choice, replica_gpus, source, gpus_per_node);
  const int n = tier.size();
  out.assign(replica_gpus.size(), 0.0);
  for (std::size_t i = 0; i < replica_gpus.size(); ++i)
    if (tier.contains(i)) out[i] = 1.0 / n;
}

}  // namespace epsim
