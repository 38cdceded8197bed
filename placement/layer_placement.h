// One MoE layer's expert placement, in the layout of DeepSeek's EPLB: an EP group of `ep` GPUs
// with `slots_per_gpu` physical slots each; physical slot p lives on GPU p / slots_per_gpu of the
// group and holds logical expert phy2log[p] (-1: an empty slot). How an expert with several
// replicas splits its tokens among them: replica_choice.h.
#pragma once

#include <cstdint>
#include <vector>

namespace epsim {

class LayerPlacement {
 public:
  LayerPlacement() = default;
  // Throws SimulationError unless phy2log.size() is a positive multiple of ep, every entry is in
  // [-1, experts) and every expert has at least one slot.
  LayerPlacement(int experts, int ep, std::vector<int> phy2log);

  int experts() const { return experts_; }
  int ep() const { return ep_; }
  int slots() const { return static_cast<int>(phy2log_.size()); }
  int slots_per_gpu() const { return slots() / ep_; }
  int expert_at(int slot) const { return phy2log_[static_cast<std::size_t>(slot)]; }
  int gpu_of_slot(int slot) const { return slot / slots_per_gpu(); }
  const std::vector<int>& phy2log() const { return phy2log_; }
  // The physical slots of expert e, ascending (a row of log2phy).
  const std::vector<int>& replicas(int expert) const { return log2phy_[static_cast<std::size_t>(expert)]; }
  int replica_count(int expert) const { return static_cast<int>(replicas(expert).size()); }
  // GPU (within the group) of the expert's first replica.
  int primary_gpu(int expert) const { return gpu_of_slot(replicas(expert).front()); }
  // Replicas of `expert` on GPU `gpu` of the group.
  int replicas_on(int expert, int gpu) const;
  // Exchanges the contents of two physical slots.
  void swap_slots(int a, int b);
  // The same table with every slot of the group's GPUs `gpus` emptied (failed GPUs): an expert
  // whose every replica was there is left without one (lost()); consumers skip it.
  LayerPlacement without_gpus(const std::vector<int>& gpus) const;
  // Experts with no slot (only after without_gpus), ascending.
  std::vector<int> lost() const;

  bool operator==(const LayerPlacement& o) const {
    return experts_ == o.experts_ && ep_ == o.ep_ && phy2log_ == o.phy2log_;
  }

 private:
  void index();
  int experts_ = 0;
  int ep_ = 1;
  std::vector<int> phy2log_;
  std::vector<std::vector<int>> log2phy_;
};

}  // namespace epsim
