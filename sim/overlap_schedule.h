// A step's overlap schedule as data (`schedule.overlap`): per layer, a list of stages; a stage says
// which blocks of which micro-batch run on the compute stream and which collectives on the
// communication stream, in order. The step builder issues, stage after stage, the stage's compute
// items and then its communication items, layer after layer (sim/step_builder.h); each GPU's
// compute stream and the communication stream run what they were issued in issue order, and data
// dependencies do the rest:
//   moe_out    the previous MoE layer's output (unpermute; network.dispatch_impl nccl | peer only)
//   attention  [TP all-gather] the attention projections and core [TP reduce-scatter]
//   moe_in     the gate (router and top-k) [and the permute: network.dispatch_impl nccl | peer]
//   counts     the per-expert counts exchanged before a dispatch (nccl | peer; communication)
//   shared     the local shared experts; with "chain": true the micro-batch's next item (its
//              dispatch) waits for them, else they run beside it
//   dense      the dense MLP (dense layers)
//   dispatch   the all-to-all to the experts, schedule.chunks collectives (communication)
//   experts    the routed experts, chunk c as soon as dispatch chunk c has arrived
//   combine    the all-to-all back, chunk c once every GPU computed it (communication)
// A micro-batch's items wait for its previous item (moe_in for attention, dispatch for moe_in, ...);
// its next layer's attention waits for its combine. Items that do not apply to a layer (dense in a
// MoE layer, the MoE items in a dense one, moe_out without a previous MoE layer) are skipped.
// `forward` lists one layer's stages; `backward` (training) one layer's backward stages, in which the
// MoE items come first and moe_out and counts have no place.
//
// The three built-in schedules are descriptions shipped in scenarios/schedules/: serial,
// dual-microbatch and decode-5stage; `schedule.overlap` names one of them, a description file, or
// holds a description inline (scenarios/README.md, "Overlap schedules").
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "models/config.h"

namespace epsim {

enum class ScheduleOp { MoeOut, Attention, MoeIn, Shared, Dense, Counts, Dispatch, Experts, Combine };
const char* to_string(ScheduleOp op);
bool is_collective(ScheduleOp op);  // counts, dispatch, combine: on the communication stream

struct ScheduleItem {
  ScheduleOp op = ScheduleOp::Attention;
  int micro_batch = 0;
  bool chain = false;  // shared: the micro-batch's next item waits for it
};

struct ScheduleStage {
  std::vector<ScheduleItem> compute;  // issued first, in order, on every GPU's compute stream
  std::vector<ScheduleItem> comm;     // then these collectives, in order, on the communication stream
};

struct OverlapSchedule {
  std::string name;
  std::string description;
  int micro_batches = 1;           // the step's tokens split into this many near-equal micro-batches
  std::optional<int> comm_sms;     // forces schedule.comm_sms (decode-5stage: 0)
  std::vector<ScheduleStage> forward;
  std::vector<ScheduleStage> backward;  // empty: the description cannot run a training step

  static const Schema& schema();
  // A description object; `path` names it in errors ("schedule.overlap").
  static OverlapSchedule from_json(const nlohmann::json& j, const std::string& path);
  // schedule.overlap's value: a shipped name (scenarios/schedules/<name>.json, found from any working
  // directory), a description file (a path ending in .json) or an inline object.
  static OverlapSchedule resolve(const nlohmann::json& value, const std::string& path);
  static const std::vector<std::string>& shipped();  // serial, dual-microbatch, decode-5stage, dual-interleaved
};

}  // namespace epsim
