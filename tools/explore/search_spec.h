// A deployment search specification (JSON): the model, GPU and fabric (a base scenario), a budget
// of nodes, the traffic, the latency targets and the space of deployments to search.
//
//   {"name": "seed-h100-32", "base": "scenarios/seed.json", "set": {"gpu.preset": "h100-seed"},
//    "nodes": 32,
//    "traffic": {"input_tokens": 2048, "output_tokens": 256, "length_spread": 0.5, "requests": 600},
//    "targets": {"ttft_ms": 3000, "tpot_ms": 150, "percentile": 90},
//    "space": {"modes": ["colocated", "disaggregated"], "instance_nodes": [8, 16, 32],
//              "attention_tp": [4, 8], "overlap": ["serial"], "prefill_nodes": [8, 16],
//              "max_batch_per_gpu": [4, 8, 16], "max_prefill_tokens_per_gpu": [2048, 8192],
//              "loads": [0.5, 0.8]}}
//
// Keys are declared in schemas() (`epsim keys --search`) and documented in scenarios/README.md.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "models/config.h"

namespace epsim::explore {

struct SearchSpace {
  std::vector<std::string> modes;           // colocated | disaggregated
  std::vector<int> instance_nodes;          // nodes of one instance (its EP group: all its GPUs)
  std::vector<int> attention_tp;
  std::vector<std::string> overlap;         // schedule.overlap
  std::vector<int> chunks;                  // schedule.chunks
  std::vector<std::string> dispatch_impl;   // network.dispatch_impl
  std::vector<std::string> placement;       // placement.strategy
  std::vector<int> prefill_nodes;           // disaggregated: nodes of the prefill pool
  std::vector<std::int64_t> max_batch_per_gpu;
  std::vector<std::int64_t> max_prefill_tokens_per_gpu;
  std::vector<bool> chunked_prefill;
  std::vector<double> loads;                // arrival rate as a share of the estimated capacity
};

struct SearchSpec {
  std::string name;
  nlohmann::json base;   // the scenario, `set` applied (its serving section dropped)
  int nodes = 32;        // budget
  nlohmann::json traffic;  // serving.* traffic keys (arrivals poisson)
  double rate = 0;         // requests/s for every deployment; 0: load x each one's capacity
  double ttft_ms = 0, tpot_ms = 0;
  int percentile = 90;     // 50 | 90 | 99: the latency the targets and the front use
  SearchSpace space;
  int confirm = 8;         // pruning-pass points re-run exactly (flow network, every layer)
  int per_mode_configs = 3;  // pool configurations kept per phase after the characterisation
  int check_samples = 2;     // serving.check_samples of the written scenarios

  // A string `base` is read as a scenario file. Throws ConfigError naming search.* paths.
  static SearchSpec from_json(const nlohmann::json& j);
  static std::vector<const Schema*> schemas();
};

}  // namespace epsim::explore
