#include "models/pricing_ledger.h"

#include <algorithm>

#include <fmt/format.h>

namespace epsim {

void PricingLedger::record(const OpWork& w, const CostModel& cost) {
  const Key key{static_cast<int>(w.op), w.tokens, w.experts, w.rows, w.seq_len, w.kv_len, w.bytes.count()};
  auto it = notes_.find(key);
  if (it == notes_.end()) it = notes_.emplace(key, cost.note(w)).first;
  const PriceNote& n = it->second;
  auto [c, fresh] = classes_.try_emplace(static_cast<int>(w.op));
  ClassPricing& cp = c->second;
  if (fresh) {
    cp.op = w.op;
    cp.model = n.model;
  }
  if (std::find(cp.curves.begin(), cp.curves.end(), n.curve) == cp.curves.end()) cp.curves.push_back(n.curve);
  ++cp.ops;
  if (n.fallback) ++cp.fallback;
  if (n.extrapolated()) {
    ++cp.extrapolated;
    if (n.extrapolation > cp.worst_gap) {
      cp.worst_gap = n.extrapolation;
      cp.worst_detail = n.detail;
    }
  }
}

std::vector<ClassPricing> PricingLedger::summary() const {
  std::vector<ClassPricing> out;
  for (const auto& [k, c] : classes_) out.push_back(c);
  return out;
}

nlohmann::json PricingLedger::to_json() const {
  nlohmann::json j = nlohmann::json::array();
  for (const auto& c : summary())
    j.push_back({{"op", to_string(c.op)}, {"model", c.model}, {"curves", c.curves}, {"ops", c.ops},
                 {"extrapolated", c.extrapolated}, {"fallback", c.fallback}, {"worst_gap", c.worst_gap}, {"worst_detail", c.worst_detail}});
  return j;
}

std::vector<std::string> PricingLedger::lines() const {
  std::vector<std::string> out;
  for (const auto& c : summary()) {
    std::string curves;
    for (const auto& s : c.curves) curves += (curves.empty() ? "" : ", ") + s;
    std::string tail = c.extrapolated == 0
                           ? "inside the measured range"
                           : fmt::format("{} of {} ops extrapolated, up to {:.2f}x ({})", c.extrapolated, c.ops, c.worst_gap,
                                         c.worst_detail);
    if (curves == "roofline") tail = "no measurements";
    if (c.fallback > 0)
      tail = c.fallback == c.ops ? "no measurement: nominal roofline"
                                 : fmt::format("{} of {} ops without measurement (nominal roofline); {}", c.fallback, c.ops, tail);
    out.push_back(fmt::format("{:<18} {}: {}; {}", to_string(c.op), c.model, curves, tail));
  }
  return out;
}

}  // namespace epsim
