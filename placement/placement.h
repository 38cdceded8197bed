// Where routed experts live: for every MoE layer, a table of physical slots -> logical expert on
// the GPUs of an EP group (LayerPlacement), built by a strategy (placement_spec.h).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "models/gate_model.h"
#include "models/gpu_spec.h"
#include "models/moe_model.h"
#include "placement/eplb.h"
#include "placement/layer_placement.h"
#include "placement/placement_spec.h"
#include "placement/replica_choice.h"
#include "topology/cluster.h"

namespace epsim {

// What the routing-aware strategies need to see.
struct PlacementInputs {
  const MoeModelSpec& model;
  int ep;
  const Cluster& cluster;
  const GateModel& gate;
  std::int64_t tokens_per_gpu;  // tokens entering each MoE layer on one GPU
  // Expert compute of one routed (token, expert) pair; topology_aware balances it with the links.
  // Zero: links only. (expert_compute_per_token(model, gpu) gives the nominal figure.)
  Time compute_per_token = Time::zero();
  // GPUs of the EP group that are down (faults): make() empties their slots, unless `replan` (eplb
  // only) plans the slots over the live GPUs in the first place.
  std::vector<int> failed_gpus = {};
  bool replan = false;
};

// 2 x 3 x hidden x expert_intermediate FLOPs at the GPU's effective rate (peak x MFU).
Time expert_compute_per_token(const MoeModelSpec& model, const GpuSpec& gpu);

class Placement {
 public:
  // `tables`: one per MoE layer, for the model layers `moe_layers` (ascending: MoeModelSpec::
  // moe_layer_list()), or a single one for every layer (`moe_layers` then unused, may be empty).
  // All tables share the expert count and ep.
  Placement(std::string strategy, std::vector<int> moe_layers, std::vector<LayerPlacement> tables);

  // Expert e on slot e / experts_per_gpu: experts 0..k-1 on the group's first GPU, and so on.
  static Placement contiguous(int experts, int ep);
  // For callers without the cluster and the gate: `spec.resolved`, contiguous or random only;
  // other strategies throw ConfigError naming placement.strategy.
  static Placement make(const PlacementSpec& spec, int experts, int ep);
  // Every strategy. Throws ConfigError (bad keys or files) and InputError (unreadable files).
  static Placement make(const PlacementSpec& spec, const PlacementInputs& inputs);

  int experts() const { return tables_.front().experts(); }
  int ep() const { return tables_.front().ep(); }
  // GPU index within the EP group (0..ep-1) holding expert e's first replica, in the first table.
  int slot_of(int expert) const { return tables_.front().primary_gpu(expert); }
  // The table of model layer `layer` (a dense layer gets the first).
  const LayerPlacement& layer(int layer) const;
  // The table of the index-th MoE layer (0 = the first).
  const LayerPlacement& moe_table(int index) const;
  bool uniform() const { return tables_.size() == 1; }
  const std::vector<LayerPlacement>& tables() const { return tables_; }
  const std::string& strategy() const { return strategy_; }
  // How a source splits an expert's tokens over its replicas (placement.replica_choice).
  ReplicaChoice replica_choice() const { return replica_choice_; }
  Placement& with_replica_choice(ReplicaChoice c) {
    replica_choice_ = c;
    return *this;
  }
  // Every table without the slots of the group's GPUs `gpus` (LayerPlacement::without_gpus).
  Placement without_gpus(const std::vector<int>& gpus) const;
  // Per table, the experts left without a replica (empty without failed GPUs).
  std::vector<std::vector<int>> lost_experts() const;

 private:
  // The strategy's tables (make() adds the replica choice).
  static Placement layouts(const PlacementSpec& spec, int experts, int ep);
  static Placement layouts(const PlacementSpec& spec, const PlacementInputs& inputs);
  static Placement eplb_over_live(const std::vector<std::vector<double>>& weight, const std::vector<int>& moe_layers, int slots_per_gpu, int groups, int ep,
                                  int gpus_per_node, const std::vector<int>& failed, EplbPolicy policy);

  std::string strategy_;
  ReplicaChoice replica_choice_ = ReplicaChoice::even;
  std::vector<int> moe_layers_;  // model layer of tables_[i] (when there are several)
  std::vector<LayerPlacement> tables_;
};

}  // namespace epsim
