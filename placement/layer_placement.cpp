#include "placement/layer_placement.h"

#include <algorithm>
#include <string>
#include <utility>

#include "models/errors.h"

namespace epsim {

LayerPlacement::LayerPlacement(int experts, int ep, std::vector<int> phy2log)
    : experts_(experts), ep_(ep), phy2log_(std::move(phy2log)) {
  if (experts < 1 || ep < 1) throw SimulationError("placement: experts and ep must be >= 1");
  if (phy2log_.empty() || phy2log_.size() % static_cast<std::size_t>(ep) != 0)
    throw SimulationError("placement: " + std::to_string(phy2log_.size()) + " physical slots is not a positive multiple of ep = " +
                          std::to_string(ep));
  for (int e : phy2log_)
    if (e < -1 || e >= experts) throw SimulationError("placement: slot holds expert " + std::to_string(e) + " of " + std::to_string(experts));
  index();
  for (int e = 0; e < experts_; ++e)
    if (log2phy_[static_cast<std::size_t>(e)].empty())
      throw SimulationError("placement: expert " + std::to_string(e) + " has no slot");
}

void LayerPlacement::index() {
  log2phy_.assign(static_cast<std::size_t>(experts_), {});
  for (int p = 0; p < slots(); ++p)
    if (phy2log_[static_cast<std::size_t>(p)] >= 0) log2phy_[static_cast<std::size_t>(phy2log_[static_cast<std::size_t>(p)])].push_back(p);
}

int LayerPlacement::replicas_on(int expert, int gpu) const {
  int n = 0;
  for (int p : replicas(expert)) n += gpu_of_slot(p) == gpu ? 1 : 0;
  return n;
}

LayerPlacement LayerPlacement::without_gpus(const std::vector<int>& gpus) const {
  LayerPlacement out = *this;
  for (int g : gpus) {
    if (g < 0 || g >= ep_) throw SimulationError("placement: GPU " + std::to_string(g) + " is not in the EP group");
    for (int j = 0; j < slots_per_gpu(); ++j) out.phy2log_[static_cast<std::size_t>(g * slots_per_gpu() + j)] = -1;
  }
  out.index();
  return out;
}

std::vector<int> LayerPlacement::lost() const {
  std::vector<int> out;
  for (int e = 0; e < experts_; ++e)
    if (log2phy_[static_cast<std::size_t>(e)].empty()) out.push_back(e);
  return out;
}

void LayerPlacement::swap_slots(int a, int b) {
  const int ea = expert_at(a), eb = expert_at(b);
  if (ea == eb) return;
  auto relabel = [this](int e, int from, int to) {
    if (e < 0) return;
    auto& r = log2phy_[static_cast<std::size_t>(e)];
    std::replace(r.begin(), r.end(), from, to);
    std::sort(r.begin(), r.end());
  };
  relabel(ea, a, b);
  relabel(eb, b, a);
  std::swap(phy2log_[static_cast<std::size_t>(a)], phy2log_[static_cast<std::size_t>(b)]);
}

}  // namespace epsim
