// Holding the simulator to a measured expert-parallel MoE layer (`epsim validate`, issue 8).
//
// kernels/ep_layer.cu (`epsim-ep-layer`, schema "epsim-ep-layer/1") times a real EP layer on the
// GPUs of one host: gate -> permute -> count exchange -> dispatch -> expert MLPs -> combine ->
// unpermute, per case (dispatch nccl or peer, tokens per GPU, skew, overlap, chunks, layers). For
// each case this builds the matching scenario -- the case's GPUs as one node of H200s, the shipped
// h200-measured cost model with per-expert GEMMs, the case's model shape, tokens, overlap, chunks
// and layers, its dispatch as network.dispatch_impl with per-token (no deduplication) traffic, and
// the routing it measured replayed through the gate's trace mode -- simulates it, and compares the
// step time with the measured total and each phase with the measured phase.
//
// A case measured with `--attention mha|gqa|mla` (each micro-batch a whole decoder layer) gets its
// attention in the scenario (model.attention, heads, kv_heads, head_dim; MLA: the deepseek-v3
// preset's dimensions, which the case must match), workload.seq_len, bf16 everywhere, and, for dual
// micro-batches run in the interleaved order (options.dual_order), the schedule description of that
// order: micro-batch 1's attention beside micro-batch 0's dispatch. Its attention-block ops
// (attn_norm .. attn_residual) and the MoE block's ffn_norm and ffn_residual are compared op by op
// beside the MoE phases (the gate then excludes ffn_norm, the unpermute ffn_residual).
//
// Phases as the measurement defines them: per GPU the sum over a step of that phase's instances
// (compute tasks: their run time; communication: from the round's start to that GPU's part being
// done), the max over GPUs. Under dual micro-batches and chunks instances overlap, so phases do not
// add up to the total. The simulator's count exchange includes the host's wake-up before the first
// dispatch (the measurement leaves that gap idle, outside every phase).
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sim/error_summary.h"
#include "sim/scenario.h"

namespace epsim {

struct PhaseComparison {
  std::string phase;  // the measurement's name: gate, permute, dispatch_meta, dispatch_data, ...
  double measured_us = 0;
  double predicted_us = 0;
  double error_pct() const { return measured_us > 0 ? (predicted_us - measured_us) / measured_us * 100.0 : 0.0; }
};

struct CaseComparison {
  std::string label;       // "nccl 4096 zipf:1.2 dual c4 L1"
  nlohmann::json options;  // the case's options block
  double measured_us = 0;  // total_us
  double predicted_us = 0; // simulated step time
  std::vector<PhaseComparison> phases;
  double error_pct() const { return (predicted_us - measured_us) / measured_us * 100.0; }
};

struct FileValidation {
  std::string file;
  std::string device;      // "NVIDIA H200 x2"
  std::vector<CaseComparison> cases;
  ErrorSummary summary() const;
  double median_abs_error_pct() const;
  double max_abs_error_pct() const;
  // The target over these cases: median |error| <= 5% and every case <= 10%.
  bool meets_target() const;
};

// The scenario of one measured case (the `cases[i]` object of an epsim-ep-layer/1 file); `where`
// names it in errors ("file.json:cases[3]"). Throws InputError when the case lacks what it needs.
// `sets` are `key.path=value` overrides applied to every case's scenario (what-ifs). `gpu_preset`:
// the GPUs the case ran on (the cost model is that preset's measured profile).
Scenario ep_layer_scenario(const nlohmann::json& measured_case, const std::string& where,
                           const std::vector<std::string>& sets = {}, const std::string& gpu_preset = "h200");
// The GPU preset of a file's `device.name`: "h100-sxm" for an H100, else "h200".
std::string ep_layer_gpu_preset(const std::string& device_name);

// Simulates every case of a file. Throws InputError naming the file (and case) on bad input.
FileValidation validate_ep_layer_file(const std::string& path, const std::vector<std::string>& sets = {});
FileValidation validate_ep_layer(const nlohmann::json& doc, const std::string& file, const std::vector<std::string>& sets = {});

nlohmann::json to_json(const FileValidation& v);

}  // namespace epsim
