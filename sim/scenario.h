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
#include "sim/fault_spec.h"
#include "sim/overlap_schedule.h"
#include "topology/cluster_spec.h"

namespace epsim {

struct NetworkSpec {
  std::string model = "analytical";  // analytical | flow
  std::string scheme = "direct";
  bool replay = true;
  double completion_window = 4e-3;      // flow: fraction of a flow's duration it may arrive early or late
  static constexpr double kMaxCompletionWindow = 0.05;
  std::string dispatch_impl = "ideal";  // ideal | nccl | peer | normal | low_latency (models/dispatch_impl.h)
  std::string nvlink_engine = "sm";     // normal: the NVLink stage by SM stores or by the copy engine
  // Transfer-engine terms the scenario sets (unset: the defaults, or a calibrated profile's;
  // models/transfer_engine.h). Efficiencies in (0, 1], rounds in us, message rate in M/s, GB/s per SM.
  std::optional<double> nvlink_sm_efficiency, nvlink_sm_round_us, nvlink_ce_efficiency, nvlink_ce_round_us,
      rdma_efficiency, rdma_message_rate_m, rdma_round_us, nccl_efficiency, nccl_round_us, comm_gbps_per_sm;
  // The interference constants of dispatch_impl nccl or peer (unset: models/dispatch_impl.cpp's
  // fitted values; tools/fit_interference.py sets them to search its grid).
  std::optional<double> round_stretch, fixed_stretch, fixed_sm_share, hbm_share;
  // Those the run uses: each key's value where set, else dispatch_impl's fitted one.
  struct Interference {
    double round_stretch, fixed_stretch, fixed_sm_share, hbm_share;
  };
  Interference interference() const;
  static const Schema& schema();
  static NetworkSpec from_json(const nlohmann::json& j, const std::string& path);
};

struct ScheduleSpec {
  std::string overlap = "serial";  // the overlap schedule's name (program.name)
  OverlapSchedule program;         // the description schedule.overlap names or holds (sim/overlap_schedule.h)
  int chunks = 1;                  // token batches per dispatch (and combine)
  int comm_sms = 24;               // SMs communication kernels hold while they run
  bool comm_sms_given = false;     // set in the scenario (else network.dispatch_impl's value)
  // Pipeline parallelism (parallelism.pp > 1): the schedule of sim/pipeline_schedule.h, its
  // micro-batches (0: 2 x pp) and, for interleaved, the model chunks per rank.
  std::string pipeline = "1f1b";
  int pipeline_micro_batches = 0;
  int pipeline_chunks = 2;
  int micro_batches() const { return program.micro_batches; }
  int pipeline_micro_batches_for(int pp) const { return pipeline_micro_batches > 0 ? pipeline_micro_batches : 2 * pp; }
  // Virtual stages of the pipeline: pp (1f1b, dualpipe) or pp x pipeline_chunks (interleaved).
  int pipeline_stages(int pp) const { return pipeline == "interleaved" ? pp * pipeline_chunks : pp; }
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
  FaultSpec faults;  // its fabric part is also in cluster (link_factors, failed_gpus)

  // Whether GPU g holds tokens of its own: alive, and so is every GPU of its attention TP group.
  bool serves_tokens(int g) const;

  static const Schema& schema();
  static Scenario from_json(const nlohmann::json& doc);
  // Every schema, top level first, for `epsim keys` and the documentation test.
  static std::vector<const Schema*> all_schemas();
};

// Reads a scenario file. The files it names (keys whose unit is "path": model.hf_config,
// routing.trace, placement.file, placement.load_stats; and cost_model.calibration unless it names a
// shipped profile) are relative to the scenario file's folder: they come back joined to it, so that
// the run finds them from any working directory and errors name the path it tried. Paths given
// later with --set stay as typed (relative to the working directory). `extra`: schemas of sections
// the scenario's own ones do not cover (the serving section of `epsim serve`).
nlohmann::json read_scenario_file(const std::string& file, const std::vector<const Schema*>& extra = {});

}  // namespace epsim
