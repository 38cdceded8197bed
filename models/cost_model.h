// Prices an op: how long one GPU takes for an OpWork.
#pragma once

#include <string>

#include "models/gpu_spec.h"
#include "models/layer_ops.h"
#include "models/units.h"

namespace epsim {

class CostModel {
 public:
  virtual ~CostModel() = default;
  virtual Time time(const OpWork& work) const = 0;
  virtual std::string name() const = 0;
};

// Roofline under efficiency factors: the larger of compute time (FLOPs at peak x MFU) and memory
// time (bytes at HBM bandwidth x efficiency).
class NominalCostModel final : public CostModel {
 public:
  explicit NominalCostModel(GpuSpec gpu) : gpu_(std::move(gpu)) {}
  Time time(const OpWork& work) const override {
    return max(work.flops / gpu_.effective_flops(), work.bytes / gpu_.effective_hbm());
  }
  std::string name() const override { return "nominal(" + gpu_.name + ")"; }

 private:
  GpuSpec gpu_;
};

}  // namespace epsim
