// Prices ops from a calibration profile (curves fitted to kernel measurements).
//
// Op class (and precision: bf16 families below; fp8 ops use the fp8 family where the table in the
// .cpp names one, e.g. expert_mlp_fp8) -> measured family, size along the curve:
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
// measured range are priced at the nearest end's efficiency and reported by note(). Ops no family
// prices (or whose family the profile lacks) fall back to the nominal roofline, also noted.
#pragma once

#include <string>

#include "models/calibration_profile.h"
#include "models/cost_model.h"
#include "models/gpu_spec.h"
#include "models/op_family.h"

namespace epsim {

// The measured family that prices `work` (by op class, precision, and prefill or decode attention),
// or nullptr where none does yet: one table in calibrated_cost_model.cpp, the hook for new families.
const char* calibrated_family(const OpWork& work);

class CalibratedCostModel final : public CostModel {
 public:
  // Ops with no family in the table, or whose family the profile lacks, are priced by the nominal
  // roofline of `fallback` (the scenario's GPU) and their PriceNote says so. Throws InputError
  // when a family the table names has curves of the wrong shape.
  CalibratedCostModel(CalibrationProfile profile, std::string label, GpuSpec fallback = GpuSpec::preset("h100-seed"));
  Time time(const OpWork& work) const override;
  // 0: measured prices include each kernel's launch (events around every repetition less the
  // profile's event overhead, kernels/README.md). An op no family prices gets the nominal time
  // plus the profile's measured kernel_gap_us (else the GPU preset's) per kernel, inside time().
  Time kernel_gap() const override { return Time::zero(); }
  std::string name() const override { return "calibrated(" + label_ + ")"; }
  PriceNote note(const OpWork& work) const override;
  std::string explain(const OpWork& work) const override;
  const CalibrationProfile& profile() const { return profile_; }
  // An op priced by a measured family (op_family.h): the two series nearest the query's blended,
  // time = calls x baseline(flops/calls, bytes/calls) / efficiency(x) (flops, bytes: the query's own
  // where it gives them), plus each of its further parts (q.more) priced the same way; a part whose
  // family the profile lacks is left out. Throws InputError when the profile has no curve of the
  // query's own family. `why`, when given, receives the series used.
  Time time_family(const FamilyQuery& q, double flops, double bytes, std::string* why = nullptr) const;
  bool has_family(const std::string& family) const { return !profile_.family(family).empty(); }

 private:
  Time time_one(const FamilyQuery& q, double flops, double bytes, std::string* why) const;
  struct Pick {
    const CalibratedCurve* lo = nullptr;  // curve (or the lower of two series)
    const CalibratedCurve* hi = nullptr;  // the upper series when interpolating, else == lo
    double weight = 0;                    // of hi
    double x = 0;
    std::string x_name;
    std::string why;                      // how the series was chosen
    PriceNote note;
    bool fallback = false;                // no measured family: the nominal roofline prices it
    bool within = false;                  // measured with the op before it (its family's price covers both)
    bool by_name = false;                 // priced by the op's own family (op_family.h), `query`
    FamilyQuery query;
  };
  Pick pick(const OpWork& work, bool describe) const;  // describe: fill why and note (slower)
  double ln_efficiency(const Pick& p) const;

  CalibrationProfile profile_;
  std::string label_;
  NominalCostModel nominal_;
  // The profile was fitted from the issue-14 op series (it has their families, e.g. rmsnorm): an op
  // of the layer program is priced by its own family, found by its name (op_family.h), wherever
  // the profile has that family; other ops, and every op of an older profile, by op class.
  bool per_op_ = false;
};

}  // namespace epsim
