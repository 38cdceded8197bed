#include "tools/explore/headline_metrics.h"

#include <algorithm>

namespace epsim::explore {

namespace {
struct MetricInfo {
  const char* name;
  const char* label;
  const char* unit;
  const char* better;  // "lower", "higher" or ""
};
constexpr MetricInfo kMetrics[] = {
    {"step_time_ms", "step time", "ms", "lower"},
    {"tokens_per_s_per_gpu", "tokens/s per GPU", "tokens/s", "higher"},
    {"tokens_per_s_per_node", "tokens/s per node", "tokens/s", "higher"},
    {"compute_ms", "compute, summed over layers (worst GPU each)", "ms", "lower"},
    {"dispatch_ms", "dispatch, summed over layers", "ms", "lower"},
    {"combine_ms", "combine, summed over layers", "ms", "lower"},
    {"exposed_comm_ms", "exposed communication, summed over layers (worst GPU each)", "ms", "lower"},
    {"gpu_load_max_over_mean", "routed load of the busiest GPU / mean (worst MoE layer)", "", "lower"},
    {"memory_per_gpu_gb", "memory per GPU", "GB", "lower"},
    {"memory_fits", "memory fits (1) or not (0)", "", "higher"},
    {"busiest_link", "busiest link", "", ""},
    {"busiest_link_utilisation", "busiest link's utilisation", "", ""},
    {"bound_layer", "layer with the most time on the critical path", "", ""},
    {"events", "simulated events", "", ""},
};
}  // namespace

const std::vector<std::string>& headline_metric_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> v;
    for (const MetricInfo& m : kMetrics) v.emplace_back(m.name);
    return v;
  }();
  return names;
}

nlohmann::json headline_metric_info() {
  nlohmann::json j = nlohmann::json::object();
  for (const MetricInfo& m : kMetrics) j[m.name] = {{"label", m.label}, {"unit", m.unit}, {"better", m.better}};
  return j;
}

nlohmann::json headline_metrics(const nlohmann::json& report) {
  double compute = 0, dispatch = 0, combine = 0, exposed = 0, imbalance = 0;
  for (const auto& l : report.at("layers")) {
    compute += l.at("compute_ms").get<double>();
    dispatch += l.at("dispatch_ms").get<double>();
    combine += l.at("combine_ms").get<double>();
    exposed += l.at("exposed_comm_ms").get<double>();
    if (l.at("moe").get<bool>() && l.at("expert_tokens_mean").get<double>() > 0)
      imbalance = std::max(imbalance, l.at("expert_tokens_max").get<double>() / l.at("expert_tokens_mean").get<double>());
  }
  nlohmann::json m;
  m["step_time_ms"] = report.at("step_time_ms");
  m["tokens_per_s_per_gpu"] = report.at("tokens_per_s_per_gpu");
  m["tokens_per_s_per_node"] = report.at("tokens_per_s_per_node");
  m["compute_ms"] = compute;
  m["dispatch_ms"] = dispatch;
  m["combine_ms"] = combine;
  m["exposed_comm_ms"] = exposed;
  m["gpu_load_max_over_mean"] = imbalance;
  m["memory_per_gpu_gb"] = report.at("memory").at("per_gpu_gb");
  m["memory_fits"] = report.at("memory").at("fits");
  const auto& links = report.at("top_links");
  m["busiest_link"] = links.empty() ? nlohmann::json("") : links[0].at("link");
  m["busiest_link_utilisation"] = links.empty() ? nlohmann::json(0.0) : links[0].at("utilisation");
  m["bound_layer"] = report.at("bound_by").at("layer");
  m["events"] = report.at("events");
  return m;
}

}  // namespace epsim::explore
