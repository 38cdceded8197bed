// Where routed experts live: every expert of an EP group maps to one GPU slot of that group.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "models/config.h"

namespace epsim {

struct PlacementSpec {
  std::string strategy = "contiguous";
  static const Schema& schema();
  static PlacementSpec from_json(const nlohmann::json& j, const std::string& path);
};

class Placement {
 public:
  // Expert e on slot e / experts_per_gpu: experts 0..k-1 on the group's first GPU, and so on.
  static Placement contiguous(int experts, int ep);
  static Placement make(const PlacementSpec& spec, int experts, int ep);

  int experts() const { return static_cast<int>(slot_.size()); }
  int ep() const { return ep_; }
  // GPU index within the EP group (0..ep-1) that holds expert e.
  int slot_of(int expert) const { return slot_[static_cast<std::size_t>(expert)]; }
  const std::string& strategy() const { return strategy_; }

 private:
  std::vector<int> slot_;
  int ep_ = 0;
  std::string strategy_;
};

}  // namespace epsim
