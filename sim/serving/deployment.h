// The pools a serving scenario asks for: each pool's instance scenario, its size, its DP ranks and
// their KV capacity, and where its nodes sit in the fabric the pools share (prefill pool first,
// then decode; colocated: one pool).
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sim/scenario.h"
#include "sim/serving/kv_budget.h"
#include "sim/serving/pool_instance.h"
#include "sim/serving/serving_spec.h"

namespace epsim::serving {

struct PoolPlan {
  std::string name;       // colocated | prefill | decode
  nlohmann::json doc;     // the instance's scenario (no serving section)
  Scenario scenario;
  int instances = 1;
  int nodes = 1;          // per instance
  int first_node = 0;     // of the pool's first instance in the shared fabric
  PoolSetup setup;
  KvBudget budget;
  int gpus() const { return instances * setup.gpus; }
  // GPU `i` (0 .. tp - 1) of DP rank `rank` of `instance`, in the shared fabric.
  int gpu(int instance, int rank, int i) const {
    return (first_node + instance * nodes) * scenario.cluster.gpus_per_node + rank * setup.tp + i;
  }
};

struct Deployment {
  nlohmann::json doc;  // the whole scenario, serving section included
  ServingSpec spec;
  std::vector<PoolPlan> pools;  // colocated, or prefill then decode

  int nodes() const;
  int gpus() const;
  // Parses and checks `doc` and its serving section (throws ConfigError naming the path).
  static Deployment plan(const nlohmann::json& doc);
};

}  // namespace epsim::serving
