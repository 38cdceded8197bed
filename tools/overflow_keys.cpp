#include "tools/overflow_keys.h"

#include <string>
#include <vector>

#include "models/config.h"

namespace epsim::cli {

namespace {

// The scenario keys that set the scale of each kind of overflowing quantity, most likely first.
std::vector<std::string> scale_keys(const std::string& op) {
  const std::vector<std::string> sizes = {"workload.tokens_per_gpu", "workload.batch_per_gpu", "workload.kv_len", "model.layers",
                                          "model.hidden", "model.expert_intermediate", "model.top_k"};
  std::vector<std::string> keys;
  if (op.find("Flops") != std::string::npos) keys = {"gpu.peak_tflops", "gpu.mfu"};
  else if (op.find("Bandwidth") != std::string::npos)
    keys = {"cluster.nic_gbps", "cluster.nvlink_gbps", "gpu.nvlink_gbps", "gpu.hbm_tbps", "gpu.hbm_efficiency", "cluster.oversubscription"};
  else if (op.find("Time") != std::string::npos || op.find("seconds") != std::string::npos)
    keys = {"gpu.peak_tflops", "gpu.mfu", "gpu.hbm_tbps", "cluster.nic_gbps", "cluster.nvlink_gbps"};
  keys.insert(keys.end(), sizes.begin(), sizes.end());
  if (op.find("Bytes") != std::string::npos) keys.insert(keys.end(), {"model.heads", "model.head_dim", "model.vocab"});
  return keys;
}

const nlohmann::json* find_key(const nlohmann::json& doc, const std::string& path) {
  const auto dot = path.find('.');
  if (!doc.is_object()) return nullptr;
  const auto section = doc.find(path.substr(0, dot));
  if (section == doc.end() || !section->is_object()) return nullptr;
  const auto it = section->find(path.substr(dot + 1));
  return it == section->end() ? nullptr : &*it;
}

// The first of `keys` the scenario sets (with its value), and the others it sets as "key = value, ...";
// the first key and "(default)" when it sets none.
struct Blame {
  std::string lead, lead_value = "(default)", others;
};

Blame blame(const nlohmann::json& doc, const std::vector<std::string>& keys) {
  Blame b;
  for (const auto& k : keys) {
    const nlohmann::json* v = find_key(doc, k);
    if (!v) continue;
    if (b.lead.empty()) {
      b.lead = k;
      b.lead_value = json_text(*v);
    } else {
      b.others += (b.others.empty() ? "" : ", ") + k + " = " + json_text(*v);
    }
  }
  if (b.lead.empty()) b.lead = keys.front();
  return b;
}

}  // namespace

void throw_scale_error(const UnitOverflow& e, const nlohmann::json& doc) {
  const Blame b = blame(doc, scale_keys(e.op()));
  throw ConfigError(b.lead, b.lead_value,
                    std::string("the step leaves the simulator's 64-bit range (") + e.what() + "); it is set by this key" +
                        (b.others.empty() ? "" : " and " + b.others) + " (scenarios/README.md, Limits)");
}

void throw_memory_error(const nlohmann::json& doc) {
  const std::vector<std::string> keys = {"cluster.nodes", "cluster.gpus", "cluster.gpus_per_node", "model.layers", "schedule.chunks",
                                         "schedule.pipeline_micro_batches", "workload.tokens_per_gpu", "model.routed_experts"};
  const Blame b = blame(doc, keys);
  throw ConfigError(b.lead, b.lead_value,
                    "the simulation ran out of memory (std::bad_alloc): inside the Limits but larger than this machine gives; it "
                    "is set by this key" + (b.others.empty() ? "" : " and " + b.others) + " (scenarios/README.md, Limits)");
}

}  // namespace epsim::cli
