#include "placement/eplb.h"

#include <algorithm>
#include <numeric>
#include <string>

#include "models/errors.h"

namespace epsim {

namespace {
std::size_t z(int i) { return static_cast<std::size_t>(i); }

void require(bool ok, const std::string& what, int value, const std::string& rule) {
  if (!ok) throw ConfigError("placement (eplb " + what + ")", std::to_string(value), rule);
}

std::vector<int> inverse(const std::vector<int>& perm) {
  std::vector<int> inv(perm.size());
  for (std::size_t i = 0; i < perm.size(); ++i) inv[z(perm[i])] = static_cast<int>(i);
  return inv;
}

// One layer of the hierarchical policy.
struct LayerOut {
  std::vector<int> phy2log, phyrank, logcnt;
};

LayerOut hierarchical_layer(const std::vector<float>& w, int physical, int groups, int nodes, int gpus) {
  const int E = static_cast<int>(w.size());
  const int group_size = E / groups, groups_per_node = groups / nodes;
  const int phy_per_gpu = physical / gpus, log_per_node = E / nodes, phy_per_node = physical / nodes;

  // Step 1: expert groups onto nodes.
  std::vector<float> group_load(z(groups), 0.0f);
  for (int g = 0; g < groups; ++g)
    for (int i = 0; i < group_size; ++i) group_load[z(g)] += w[z(g * group_size + i)];
  const Packing gp = balanced_packing(group_load, nodes);
  std::vector<int> log2mlog(z(E));
  for (int e = 0; e < E; ++e) {
    const int g = e / group_size;
    log2mlog[z(e)] = (gp.pack[z(g)] * groups_per_node + gp.rank[z(g)]) * group_size + e % group_size;
  }
  const std::vector<int> mlog2log = inverse(log2mlog);

  LayerOut out;
  out.phy2log.resize(z(physical));
  out.phyrank.resize(z(physical));
  std::vector<int> mlogcnt(z(E));
  for (int n = 0; n < nodes; ++n) {
    // Step 2: replicas within the node.
    std::vector<float> mlog_load(z(log_per_node));
    for (int j = 0; j < log_per_node; ++j) mlog_load[z(j)] = w[z(mlog2log[z(n * log_per_node + j)])];
    const Replication rep = replicate_experts(mlog_load, phy_per_node);
    for (int j = 0; j < log_per_node; ++j) mlogcnt[z(n * log_per_node + j)] = rep.logcnt[z(j)];
    // Step 3: the node's physical experts onto its GPUs.
    std::vector<float> phy_load(z(phy_per_node));
    for (int p = 0; p < phy_per_node; ++p) {
      const int m = rep.phy2log[z(p)];
      phy_load[z(p)] = mlog_load[z(m)] / static_cast<float>(rep.logcnt[z(m)]);
    }
    const Packing pp = balanced_packing(phy_load, gpus / nodes);
    std::vector<int> phy2pphy(z(phy_per_node));
    for (int p = 0; p < phy_per_node; ++p) phy2pphy[z(p)] = pp.pack[z(p)] * phy_per_gpu + pp.rank[z(p)];
    const std::vector<int> pphy2phy = inverse(phy2pphy);
    for (int q = 0; q < phy_per_node; ++q) {
      const int p = pphy2phy[z(q)];
      out.phy2log[z(n * phy_per_node + q)] = mlog2log[z(rep.phy2log[z(p)] + n * log_per_node)];
      out.phyrank[z(n * phy_per_node + q)] = rep.rank[z(p)];
    }
  }
  out.logcnt.resize(z(E));
  for (int e = 0; e < E; ++e) out.logcnt[z(e)] = mlogcnt[z(log2mlog[z(e)])];
  return out;
}
}  // namespace

Packing balanced_packing(const std::vector<float>& weight, int packs) {
  const int n = static_cast<int>(weight.size());
  if (packs < 1 || n % packs != 0) throw SimulationError("balanced_packing: items must divide into packs");
  const int per_pack = n / packs;
  Packing r;
  r.pack.assign(z(n), -1);
  r.rank.assign(z(n), -1);
  if (per_pack == 1) {
    std::iota(r.pack.begin(), r.pack.end(), 0);
    std::fill(r.rank.begin(), r.rank.end(), 0);
    return r;
  }
  std::vector<int> order(z(n));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return weight[z(a)] > weight[z(b)]; });
  std::vector<float> pack_weight(z(packs), 0.0f);
  std::vector<int> pack_items(z(packs), 0);
  for (int item : order) {
    int best = -1;
    for (int p = 0; p < packs; ++p)
      if (pack_items[z(p)] < per_pack && (best < 0 || pack_weight[z(p)] < pack_weight[z(best)])) best = p;
    r.pack[z(item)] = best;
    r.rank[z(item)] = pack_items[z(best)];
    pack_weight[z(best)] += weight[z(item)];
    ++pack_items[z(best)];
  }
  return r;
}

Replication replicate_experts(const std::vector<float>& weight, int physical) {
  const int logical = static_cast<int>(weight.size());
  if (physical < logical) throw SimulationError("replicate_experts: fewer physical slots than experts");
  Replication r;
  r.phy2log.resize(z(physical));
  std::iota(r.phy2log.begin(), r.phy2log.begin() + logical, 0);
  r.rank.assign(z(physical), 0);
  r.logcnt.assign(z(logical), 1);
  for (int i = logical; i < physical; ++i) {
    int best = 0;
    float best_load = weight[0] / static_cast<float>(r.logcnt[0]);
    for (int e = 1; e < logical; ++e) {
      const float load = weight[z(e)] / static_cast<float>(r.logcnt[z(e)]);
      if (load > best_load) best = e, best_load = load;
    }
    r.phy2log[z(i)] = best;
    r.rank[z(i)] = r.logcnt[z(best)];
    ++r.logcnt[z(best)];
  }
  return r;
}

EplbResult rebalance_experts(const std::vector<std::vector<double>>& weight, int physical, int groups, int nodes, int gpus,
                             EplbPolicy policy) {
  EplbResult out;
  if (weight.empty()) return out;
  const int E = static_cast<int>(weight.front().size());
  require(E >= 1, "experts", E, "must be >= 1");
  require(gpus >= 1 && nodes >= 1 && gpus % nodes == 0, "gpus", gpus, "must be a positive multiple of the node count " + std::to_string(nodes));
  require(physical >= E && physical % gpus == 0, "physical slots", physical,
          "must be >= the expert count " + std::to_string(E) + " and a multiple of the GPU count " + std::to_string(gpus));
  require(groups >= 1 && E % groups == 0, "groups", groups, "must divide the expert count " + std::to_string(E));
  const bool hierarchical = policy == EplbPolicy::Hierarchical || (policy == EplbPolicy::Auto && groups % nodes == 0);
  if (hierarchical) {
    require(groups % nodes == 0, "groups", groups, "hierarchical policy: must be a multiple of the node count " + std::to_string(nodes));
    require(physical % nodes == 0 && E % nodes == 0, "nodes", nodes, "must divide the expert and slot counts");
  } else {
    groups = 1;
    nodes = 1;
  }
  int maxcnt = 0;
  for (const auto& row : weight) {
    require(static_cast<int>(row.size()) == E, "layer width", static_cast<int>(row.size()), "every layer must have " + std::to_string(E) + " experts");
    std::vector<float> w(row.size());
    for (std::size_t i = 0; i < row.size(); ++i) w[i] = static_cast<float>(row[i]);
    LayerOut l = hierarchical_layer(w, physical, groups, nodes, gpus);
    maxcnt = std::max(maxcnt, *std::max_element(l.logcnt.begin(), l.logcnt.end()));
    out.phy2log.push_back(std::move(l.phy2log));
    out.phyrank.push_back(std::move(l.phyrank));
    out.logcnt.push_back(std::move(l.logcnt));
  }
  for (std::size_t l = 0; l < weight.size(); ++l) {
    std::vector<std::vector<int>> table(z(E), std::vector<int>(z(maxcnt), -1));
    for (int p = 0; p < physical; ++p) table[z(out.phy2log[l][z(p)])][z(out.phyrank[l][z(p)])] = p;
    out.log2phy.push_back(std::move(table));
  }
  return out;
}

}  // namespace epsim
