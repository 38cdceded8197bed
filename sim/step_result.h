// What one simulated step produced: its time and where the time went.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "models/memory_model.h"
#include "placement/placement.h"
#include "sim/link_timeline.h"
#include "sim/network.h"
#include "sim/pipeline_metrics.h"
#include "topology/link.h"

namespace epsim {

struct LayerResult {
  int layer = 0;
  bool moe = false;
  bool mtp = false;         // the MTP module's decoder layer of one draft pass (workload.mtp_tokens)
  Time start, end;          // first task start, last task end over all GPUs
  Time compute_max;         // the GPU with the most compute busy time in this layer
  Time compute_mean;
  Time dispatch, combine;   // collective start to its last arrival
  Time tp_comm;             // attention TP collectives, summed
  Time exposed_comm_max;    // communication not hidden behind compute, worst GPU
  Time exposed_comm_mean;
  std::int64_t expert_tokens_max = 0;   // routed tokens on the busiest GPU
  double expert_tokens_mean = 0;
  int expert_tokens_max_gpu = -1;
  int straggler_gpu = -1;               // the GPU that released this layer's last barrier on the critical path
  LinkId busiest_link = -1;             // link with the longest drain (bytes / bandwidth) in this layer's dispatch
  Bytes busiest_link_bytes;
  // Per GPU: compute busy time and communication not hidden behind compute (the max and mean
  // above are over these), and the routed (token, expert) pairs its experts computed (MoE layers).
  std::vector<Time> compute_by_gpu, exposed_comm_by_gpu;
  std::vector<std::int64_t> expert_tokens_by_gpu;
};

struct GpuResult {
  Time compute_busy, comm_busy, exposed_comm;
};

struct StepResult {
  std::string scenario;
  std::string network;
  std::string cost_model;
  Time step_time;
  std::int64_t tokens_per_gpu = 0;   // tokens each GPU finished in the step (prefill: input tokens, cached ones too; decode: sequences)
  std::int64_t computed_tokens_per_gpu = 0;  // tokens entering each model layer on one GPU (Workload::tokens())
  double output_tokens_per_gpu = 0;  // what throughput counts (Workload::output_tokens(): decode with MTP, accepted tokens), averaged over every GPU (failed ones hold none)
  int gpus = 0, gpus_per_node = 0;
  std::vector<LayerResult> layers;
  std::vector<GpuResult> per_gpu;
  std::vector<LinkCounters> links;
  LinkTimeline link_timeline;                 // bytes per link over the step, in time bins
  std::shared_ptr<const Placement> placement; // the experts' slots on GPUs the step ran with
  MemoryReport memory;
  std::uint64_t events = 0;
  ReplayStats replay;  // what the network replayed instead of solving
  SolverWork solver;   // what the flow network's solver did (zeros on the analytical network; not in report.json)
  std::vector<std::string> pricing_lines;  // per op class: the cost model and curve that priced it
  nlohmann::json pricing;                  // the same for report.json
  // What bound the step (sim/critical_path.h).
  int bound_layer = -1;
  Time bound_layer_time;           // that layer's time on the critical path
  int bound_gpu = -1;
  Time bound_gpu_straggle;         // how long the others waited for it at barriers
  LinkId bound_link = -1;          // busiest link (longest drain) of the longest all-to-all on the critical path
  Bytes bound_link_bytes;
  Time barrier_wait, alltoall_wait;  // waits at the barriers on the critical path (sim/critical_path.h)
  std::vector<Time> straggle;        // per GPU: the part of those waits it caused
  // Faults (sim/fault_spec.h): GPUs down, GPUs holding tokens, and (token, expert) selections of
  // experts left without a replica (dropped) out of all selections the gate made.
  std::vector<int> failed_gpus;
  int serving_gpus = 0;
  std::int64_t lost_selections = 0, selections = 0;
  std::vector<int> lost_experts;  // experts without a live replica in any MoE layer, ascending
  // parallelism.pp > 1: per rank bubble and memory (`memory` above is then the fullest rank's).
  std::optional<PipelineResult> pipeline;

  double tokens_per_s_per_gpu() const { return output_tokens_per_gpu / step_time.to_seconds(); }
  double computed_tokens_per_s_per_gpu() const { return static_cast<double>(computed_tokens_per_gpu) / step_time.to_seconds(); }
  double tokens_per_s_per_node() const { return tokens_per_s_per_gpu() * gpus_per_node; }
  double tokens_per_s() const { return tokens_per_s_per_gpu() * gpus; }
};

}  // namespace epsim
