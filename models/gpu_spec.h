// One GPU's capabilities and the efficiency factors the nominal cost model applies to them.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "models/config.h"
#include "models/precision.h"
#include "models/units.h"

namespace epsim {

struct GpuSpec {
  std::string name;
  FlopRate peak_bf16;            // dense BF16 tensor-core peak
  FlopRate peak_fp8;             // dense FP8 tensor-core peak (Hopper and Blackwell: 2 x BF16)
  double mfu = 0.6;              // fraction of peak a GEMM reaches (nominal cost model)
  Bandwidth hbm;                 // HBM bandwidth (read + write)
  double hbm_efficiency = 0.8;   // fraction of HBM bandwidth a memory-bound kernel reaches
  Bytes memory;                  // usable device memory
  Bandwidth nvlink;              // NVLink per GPU, each way
  int sms = 132;                 // streaming multiprocessors
  Time kernel_gap = Time::us(1.0);  // launch and dependency gap a kernel adds after the previous one on a stream (nominal)

  FlopRate peak(NumberFormat f) const { return f == NumberFormat::Fp8 ? peak_fp8 : peak_bf16; }
  FlopRate effective_flops(NumberFormat f = NumberFormat::Bf16) const { return peak(f) * mfu; }
  Bandwidth effective_hbm() const { return hbm * hbm_efficiency; }

  static const Schema& schema();
  static std::vector<std::string> preset_names();
  static GpuSpec preset(const std::string& name);  // throws std::out_of_range for unknown names
  // A preset's figures under the schema's keys (peak_tflops, mfu, ...): what the preset stands for
  // in a resolved scenario. Throws std::out_of_range for unknown names.
  static nlohmann::json preset_keys(const std::string& name);
  static GpuSpec from_json(const nlohmann::json& j, const std::string& path);
};

}  // namespace epsim
