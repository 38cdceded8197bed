// Whole-layer measurements (schema "epsim-layer/1", written by kernels/epsim_layer.py; format in
// kernels/README.md): per case the model shape, phase, precision, token counts, the layer's time
// measured as one and each op's time, FLOPs, bytes and shape.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "models/units.h"

namespace epsim {

struct MeasuredLayerOp {
  std::string name;       // common_names.md ("q_proj", "expert_up.wgrad", ...)
  Time measured;          // median over repetitions, events between ops
  Time fastest, slowest;  // us_min, us_max over the same repetitions (zero when the file lacks them)
  int kernels = 1;
  double flops = 0, bytes = 0;
  std::string precision;  // "bf16" | "fp8"
  std::map<std::string, std::int64_t> shape;
};

struct MeasuredLayerCase {
  std::string label;
  nlohmann::json model;   // the case's model description (hidden, attention, heads, ...)
  std::string model_name;
  std::string phase;      // prefill | decode | train
  std::string precision;  // bf16 | fp8
  std::int64_t tokens = 0, seq_len = 0, batch = 0, kv_len = 0;
  bool passed = false;    // its check
  Time layer;             // the layer as one (median)
  int repetitions = 0;    // layer_us.iters: the repetitions behind every median, min and max
  Time ops_layer;         // the sum of the op times in the per-op pass (median)
  std::vector<MeasuredLayerOp> ops;
};

struct MeasuredLayerFile {
  std::string path;
  std::string device;     // device.name
  std::string card;       // the device tool's name of the machine kind
  std::string date, git_commit;
  double kernel_gap_us = 0;
  std::vector<MeasuredLayerCase> cases;
};

bool is_layer_document(const nlohmann::json& doc);
// Throws InputError naming the file and field when it cannot be read or is malformed.
MeasuredLayerFile read_layer_file(const std::string& path);

}  // namespace epsim
