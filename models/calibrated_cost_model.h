// Prices ops from a calibration profile (curves fitted to kernel measurements).
//
// Op class -> measured family, size along the curve:
//   expert_mlp      expert_mlp_bf16, series by experts (ln efficiency interpolated in log experts
//                   between the measured counts), x = tokens per expert
//   shared_expert   expert_mlp_bf16 experts=1, x = tokens (its rows, tokens x tp)
//   dense_mlp       dense_mlp_bf16, x = tokens (rows)
//   gate            gate_topk, x = tokens
//   attention_proj, lm_head
//                   gemm_bf16, the (n, k) series whose n*k is nearest (in log) to the op's weights
//                   per row (FLOPs / 2 / rows), x = rows
//   permute         permute, x = tokens; unpermute: unpermute_combine, x = tokens
//   attention_core  prefill: attention_prefill (cuDNN SDPA), x = sequence length;
//                   decode: attention_decode (fastest of own split-KV and SDPA), x = KV bytes read
// time = baseline(FLOPs, bytes) / efficiency(x), where baseline = latency + slope x max(FLOPs /
// peak, bytes / bandwidth) at the family's ceilings (calibration_profile.h). Sizes outside the
// measured range are priced at the nearest end's efficiency and reported by note().
#pragma once

#include <string>

#include "models/calibration_profile.h"
#include "models/cost_model.h"
#include "models/op_family.h"

namespace epsim {

class CalibratedCostModel final : public CostModel {
 public:
  // Throws InputError when the profile lacks a family the simulator prices with.
  CalibratedCostModel(CalibrationProfile profile, std::string label);
  Time time(const OpWork& work) const override;
  std::string name() const override { return "calibrated(" + label_ + ")"; }
  PriceNote note(const OpWork& work) const override;
  std::string explain(const OpWork& work) const override;
  const CalibrationProfile& profile() const { return profile_; }
  // An op priced by a measured family (op_family.h): the two series nearest the query's blended,
  // time = calls x baseline(flops/calls, bytes/calls) / efficiency(x). Throws InputError when the
  // profile has no curve of the family. `why`, when given, receives the series used.
  Time time_family(const FamilyQuery& q, double flops, double bytes, std::string* why = nullptr) const;
  bool has_family(const std::string& family) const { return !profile_.family(family).empty(); }

 private:
  struct Pick {
    const CalibratedCurve* lo = nullptr;  // curve (or the lower of two series)
    const CalibratedCurve* hi = nullptr;  // the upper series when interpolating, else == lo
    double weight = 0;                    // of hi
    double x = 0;
    std::string x_name;
    std::string why;                      // how the series was chosen
    PriceNote note;
  };
  Pick pick(const OpWork& work, bool describe) const;  // describe: fill why and note (slower)
  double ln_efficiency(const Pick& p) const;

  CalibrationProfile profile_;
  std::string label_;
};

}  // namespace epsim
