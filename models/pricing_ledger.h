// Which cost model priced each op class of a step, and how far any op lay outside the measured
// range: what the report and the summary print (issue 7).
//
// Usage (sim/): keep one PricingLedger per step; call record(work, cost) wherever cost.time(work)
// is called; print summary() / write to_json(). record() asks the cost model for a PriceNote only
// once per distinct op shape, so it costs a map lookup per op.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include <nlohmann/json.hpp>

#include "models/cost_model.h"
#include "models/layer_ops.h"

namespace epsim {

struct ClassPricing {
  OpClass op;
  std::string model;               // CostModel::name()
  std::vector<std::string> curves; // distinct curves that priced it ("roofline" under nominal)
  std::int64_t ops = 0;            // ops recorded
  std::int64_t extrapolated = 0;   // of which outside the measured range
  std::int64_t fallback = 0;       // of which a calibrated model left to the nominal roofline (no measurement)
  double worst_gap = 1.0;          // largest extrapolation factor
  std::string worst_detail;        // its PriceNote::detail
};

class PricingLedger {
 public:
  void record(const OpWork& work, const CostModel& cost);
  // One entry per op class recorded, in OpClass order.
  std::vector<ClassPricing> summary() const;
  // [{"op": "expert_mlp", "model": ..., "curves": [...], "ops": n, "extrapolated": n, "fallback": n,
  //   "worst_gap": x, "worst_detail": "..."}, ...]
  nlohmann::json to_json() const;
  // One line per class: "expert_mlp  calibrated(h200-measured): expert_mlp_bf16 experts=1 by
  // tokens_per_expert; 58 of 58 ops extrapolated, up to 2.00x (tokens_per_expert 32768 above ...)".
  std::vector<std::string> lines() const;

 private:
  using Key = std::tuple<int, std::int64_t, int, std::int64_t, std::int64_t, std::int64_t, std::int64_t>;
  std::map<Key, PriceNote> notes_;
  std::map<int, ClassPricing> classes_;
};

}  // namespace epsim
