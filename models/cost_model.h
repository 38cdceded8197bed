// Prices an op: how long one GPU takes for an OpWork.
#pragma once

#include <string>

#include "models/gpu_spec.h"
#include "models/layer_ops.h"
#include "models/units.h"

namespace epsim {

// Which model and curve priced one op, and whether its size lies outside what was measured.
struct PriceNote {
  std::string model;           // CostModel::name(): "nominal(h100-seed)", "calibrated(h200-measured)"
  std::string curve;           // "roofline" or "expert_mlp_bf16 experts=1 by tokens_per_expert"
  double extrapolation = 1.0;  // 1: inside the measured range; else outside it by this factor (> 1)
  std::string detail;          // "tokens_per_expert 524288 above measured 1..262144 (2.00x)"; empty inside
  bool fallback = false;       // a calibrated model had no measurement for it: the nominal roofline priced it
  bool extrapolated() const { return extrapolation > 1.0; }
};

class CostModel {
 public:
  virtual ~CostModel() = default;
  virtual Time time(const OpWork& work) const = 0;
  // What each kernel adds after the previous one on a stream (launch and dependency); an op of k
  // kernels takes time(work) + k x this.
  virtual Time kernel_gap() const = 0;
  virtual std::string name() const = 0;
  // For reports: how `work` was priced (cheap; call it beside time()).
  virtual PriceNote note(const OpWork& work) const = 0;
  // For `epsim explain`: the whole derivation of time(work), several lines of text.
  virtual std::string explain(const OpWork& work) const = 0;
};

// Roofline under efficiency factors: the larger of compute time (FLOPs at the peak of the op's
// precision x MFU: an fp8 GEMM at peak_fp8, the rest at peak_bf16) and memory time (bytes at HBM
// bandwidth x efficiency).
class NominalCostModel final : public CostModel {
 public:
  explicit NominalCostModel(GpuSpec gpu) : gpu_(std::move(gpu)) {}
  Time time(const OpWork& work) const override {
    return max(work.flops / gpu_.effective_flops(work.precision), work.bytes / gpu_.effective_hbm());
  }
  Time kernel_gap() const override { return gpu_.kernel_gap; }
  std::string name() const override { return "nominal(" + gpu_.name + ")"; }
  PriceNote note(const OpWork&) const override { return {name(), "roofline", 1.0, ""}; }
  std::string explain(const OpWork& work) const override;

 private:
  GpuSpec gpu_;
};

}  // namespace epsim
