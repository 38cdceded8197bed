// A what-if scenario: every section of the JSON document, parsed and cross-checked.
#pragma once

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "models/cost_model_spec.h"
#include "models/gate_model.h"
#include "models/gpu_spec.h"
#include "models/moe_model.h"
#include "models/parallelism.h"
#include "models/workload.h"
#include "placement/placement.h"
#include "topology/cluster_spec.h"

namespace epsim {

struct NetworkSpec {
  std::string model = "analytical";  // analytical | flow
  std::string scheme = "direct";
  bool replay = true;
  double completion_window = 1e-3;      // flow: fraction of a flow's duration it may arrive early
  static constexpr double kMaxCompletionWindow = 0.05;
  std::string dispatch_impl = "ideal";  // ideal | nccl | peer | normal | low_latency (models/dispatch_impl.h)
  std::string nvlink_engine = "sm";     // normal: the NVLink stage by SM stores or by the copy engine
  // Transfer-engine terms the scenario sets (unset: the defaults, or a calibrated profile's;
  // models/transfer_engine.h). Efficiencies in (0, 1], rounds in us, message rate in M/s, GB/s per SM.
  std::optional<double> nvlink_sm_efficiency, nvlink_sm_round_us, nvlink_ce_efficiency, nvlink_ce_round_us,
      rdma_efficiency, rdma_message_rate_m, rdma_round_us, nccl_efficiency, nccl_round_us, comm_gbps_per_sm;
  static const Schema& schema();
  static NetworkSpec from_json(const nlohmann::json& j, const std::string& path);
};

struct ScheduleSpec {
  std::string overlap = "serial";  // serial | dual-microbatch | decode-5stage
  int chunks = 1;                  // token batches per dispatch (and combine)
  int comm_sms = 24;               // SMs communication kernels hold while they run
  bool comm_sms_given = false;     // set in the scenario (else network.dispatch_impl's value)
  int micro_batches() const { return overlap == "serial" ? 1 : 2; }
  static const Schema& schema();
  static ScheduleSpec from_json(const nlohmann::json& j, const std::string& path);
};

struct Scenario {
  std::string name;
  std::string description;
  MoeModelSpec model;
  GpuSpec gpu;
  ClusterSpec cluster;
  Parallelism parallelism;
  Workload workload;
  RoutingSpec routing;
  PlacementSpec placement;
  NetworkSpec network;
  ScheduleSpec schedule;
  CostModelSpec cost_model;

  static const Schema& schema();
  static Scenario from_json(const nlohmann::json& doc);
  // Every schema, top level first, for `epsim keys` and the documentation test.
  static std::vector<const Schema*> all_schemas();
};

}  // namespace epsim
