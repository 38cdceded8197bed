#include "sim/fault_report.h"

#include <algorithm>

#include <fmt/format.h>

namespace epsim {

namespace {
std::string join(const std::vector<int>& v) {
  std::string s;
  for (std::size_t i = 0; i < v.size() && i < 16; ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return v.size() > 16 ? s + ", ..." : s;
}
}  // namespace

nlohmann::json faults_json(const Simulation& sim) {
  const FaultSpec& f = sim.scenario().faults;
  if (!f.any()) return nullptr;
  const StepResult& r = sim.result();
  const Cluster& cl = sim.cluster();
  nlohmann::json slow = nlohmann::json::object();
  for (const auto& [gpu, speed] : f.gpu_compute) slow[std::to_string(gpu)] = speed;
  nlohmann::json degraded = nlohmann::json::object(), failed_links = nlohmann::json::array();
  for (const Link& l : cl.links()) {
    if (l.failed) failed_links.push_back(l.name);
    else if (const auto it = cl.spec().link_factors.find(l.name); it != cl.spec().link_factors.end()) degraded[l.name] = it->second;
  }
  nlohmann::json j = {{"gpu_compute", slow},
                      {"degraded_links", degraded},
                      {"failed_links", failed_links},
                      {"failed_gpus", r.failed_gpus},
                      {"serving_gpus", r.serving_gpus},
                      {"tokens_per_s", r.tokens_per_s()},
                      {"lost_experts", r.lost_experts},
                      {"lost_selections", r.lost_selections},
                      {"lost_share", r.selections > 0 ? static_cast<double>(r.lost_selections) / static_cast<double>(r.selections) : 0.0},
                      {"placement", r.failed_gpus.empty() ? "healthy"
                                    : f.replan_placement ? "re-planned over the live GPUs"
                                                         : "healthy plan, failed GPUs' slots emptied"},
                      {"kernel_jitter", f.kernel_jitter}};
  if (f.kernel_jitter != "none") j["kernel_cv"] = f.kernel_cv;
  if (f.kernel_jitter == "measured") j["kernel_spread_file"] = f.kernel_spread_file;
  return j;
}

std::vector<std::string> fault_lines(const Simulation& sim) {
  const FaultSpec& f = sim.scenario().faults;
  std::vector<std::string> out;
  if (!f.any()) return out;
  const StepResult& r = sim.result();
  const Cluster& cl = sim.cluster();
  for (const auto& [gpu, speed] : f.gpu_compute) out.push_back(fmt::format("GPU {} computes at {}x speed", gpu, speed));
  std::vector<std::string> failed;
  for (const Link& l : cl.links()) {
    if (l.failed) failed.push_back(l.name);
    else if (const auto it = cl.spec().link_factors.find(l.name); it != cl.spec().link_factors.end())
      out.push_back(fmt::format("link {} at {}x bandwidth", l.name, it->second));
  }
  if (!failed.empty()) out.push_back(fmt::format("links down (routes detour): {}", fmt::join(failed, ", ")));
  if (!r.failed_gpus.empty()) {
    out.push_back(fmt::format("{} GPUs down ({}); {} of {} GPUs hold tokens; placement: {}", r.failed_gpus.size(),
                              join(r.failed_gpus), r.serving_gpus, r.gpus,
                              f.replan_placement ? "re-planned over the live GPUs" : "healthy plan, failed GPUs' slots emptied"));
    const std::vector<int>& lost = r.lost_experts;
    // emplace_back, not push_back of a temporary: with the standard headers precompiled
    // (cmake/precompiled_headers.cmake) GCC 12 at -O3 flags the move of that temporary with a
    // false -Warray-bounds (a known GCC 12 false positive on std::string).
    if (lost.empty()) out.emplace_back("every expert has a live replica: every token is served");
    else
      out.push_back(fmt::format("{} experts lost ({}): {} (token, expert) selections dropped, {:.2f}% of all", lost.size(),
                                join(lost), r.lost_selections,
                                100.0 * static_cast<double>(r.lost_selections) / static_cast<double>(std::max<std::int64_t>(1, r.selections))));
  }
  if (f.kernel_jitter == "lognormal") out.push_back(fmt::format("noisy kernels: lognormal, CV {} per compute task", f.kernel_cv));
  if (f.kernel_jitter == "measured") out.push_back(fmt::format("noisy kernels: per-op CVs measured in {}", f.kernel_spread_file));
  return out;
}

}  // namespace epsim
