#include "placement/placement.h"

namespace epsim {

const Schema& PlacementSpec::schema() {
  static const Schema s{"placement", {
      {"strategy", "string", "contiguous", "", "contiguous: expert e on GPU e / experts_per_gpu of its EP group"},
  }};
  return s;
}

PlacementSpec PlacementSpec::from_json(const nlohmann::json& j, const std::string& path) {
  const nlohmann::json obj = j.is_null() ? nlohmann::json::object() : j;
  ConfigObject c(obj, path, schema());
  PlacementSpec p;
  p.strategy = c.choice("strategy", {"contiguous"});
  return p;
}

Placement Placement::contiguous(int experts, int ep) {
  Placement p;
  p.ep_ = ep;
  p.strategy_ = "contiguous";
  const int per_gpu = experts / ep;
  p.slot_.resize(static_cast<std::size_t>(experts));
  for (int e = 0; e < experts; ++e) p.slot_[static_cast<std::size_t>(e)] = e / per_gpu;
  return p;
}

Placement Placement::make(const PlacementSpec& spec, int experts, int ep) {
  (void)spec;  // one strategy so far
  return contiguous(experts, ep);
}

}  // namespace epsim
