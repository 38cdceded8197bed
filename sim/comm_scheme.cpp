#include "sim/comm_scheme.h"

#include <stdexcept>

namespace epsim {

CommScheme comm_scheme_from_string(const std::string& name) {
  if (name == "direct") return CommScheme::Direct;
  throw std::out_of_range(name);
}

std::vector<std::string> comm_scheme_names() { return {"direct"}; }

void CommPlan::add(const Cluster& cluster, GpuId from, GpuId to, Bytes bytes) {
  if (bytes.count() <= 0 || from == to) return;
  flows.push_back(FlowSpec{cluster.route(from, to), bytes});
  src.push_back(from);
  dst.push_back(to);
}

namespace {
CommPlan direct(const Cluster& cluster, const DispatchMatrix& m, Bytes token_bytes, bool reverse) {
  CommPlan plan;
  const auto pairs = static_cast<std::size_t>(m.gpus) * static_cast<std::size_t>(m.gpus);
  plan.flows.reserve(pairs);
  plan.src.reserve(pairs);
  plan.dst.reserve(pairs);
  for (int s = 0; s < m.gpus; ++s)
    for (int d = 0; d < m.gpus; ++d) {
      const Bytes b = token_bytes * m.unique_at(s, d);
      if (reverse) plan.add(cluster, d, s, b);
      else plan.add(cluster, s, d, b);
    }
  return plan;
}
}  // namespace

CommPlan dispatch_plan(CommScheme scheme, const Cluster& cluster, const DispatchMatrix& m, Bytes token_bytes) {
  switch (scheme) {
    case CommScheme::Direct: return direct(cluster, m, token_bytes, false);
  }
  return {};
}

CommPlan combine_plan(CommScheme scheme, const Cluster& cluster, const DispatchMatrix& m, Bytes token_bytes) {
  switch (scheme) {
    case CommScheme::Direct: return direct(cluster, m, token_bytes, true);
  }
  return {};
}

}  // namespace epsim
