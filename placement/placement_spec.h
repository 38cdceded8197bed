// The `placement` section of a scenario: which strategy, and its parameters.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "models/config.h"

namespace epsim {

class Placement;

struct PlacementSpec {
  std::string strategy = "contiguous";
  std::uint64_t seed = 1;           // random, and the local search of topology_aware
  int colocate = 0;                 // colocated: experts per GPU (0: experts / ep)
  int redundant_slots = 0;          // eplb: extra physical slots per EP group
  std::string eplb_policy = "auto"; // auto | hierarchical | global
  std::string file;                 // strategy file: phy2log JSON
  std::string load_stats;           // per-layer expert loads driving eplb and topology_aware
  int search_moves = 4000;          // topology_aware local-search budget per distinct layer
  std::string replica_choice = "even";  // even | nearest: how sources split an expert's tokens over its replicas

  // Set by code (epsim compare), never by JSON: a placement already computed; make() returns it.
  std::shared_ptr<const Placement> resolved;

  static const Schema& schema();
  static PlacementSpec from_json(const nlohmann::json& j, const std::string& path);
  static const std::vector<std::string>& strategies();
};

}  // namespace epsim
