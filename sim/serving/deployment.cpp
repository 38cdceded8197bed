#include "sim/serving/deployment.h"

#include <fmt/format.h>

#include "models/errors.h"

namespace epsim::serving {

namespace {

PoolPlan make_pool(const nlohmann::json& doc, const ServingSpec& spec, const PoolSpec& pool, Role role, int first_node) {
  PoolPlan p;
  p.name = to_string(role);
  p.doc = pool_document(doc, pool, p.name);
  p.scenario = Scenario::from_json(p.doc);
  // A pipeline's steps are not batch shapes of one instance (decode under PP runs micro-batches
  // through the stages); not modelled here.
  if (p.scenario.parallelism.pp > 1)
    throw ConfigError("parallelism.pp", std::to_string(p.scenario.parallelism.pp),
                      "epsim serve prices steps of one pipeline stage group: needs pp = 1 (in the " + p.name + " pool's scenario)");
  if (p.scenario.workload.mode == Mode::Training)
    throw ConfigError("workload.mode", "\"training\"", "a serving pool runs prefill and decode steps (in the " + p.name + " pool's scenario)");
  p.instances = pool.instances;
  p.nodes = p.scenario.cluster.nodes;
  p.first_node = first_node;
  p.budget = kv_budget(p.scenario, spec, role, p.name);
  PoolSetup& s = p.setup;
  s.role = role;
  s.gpus = p.scenario.cluster.gpu_count();
  s.tp = p.scenario.parallelism.attention_tp;
  s.rank_slots = spec.max_batch_per_gpu * s.tp;
  s.rank_kv_tokens = p.budget.rank_tokens;
  s.rank_prefill_tokens = spec.max_prefill_tokens_per_gpu * s.tp;
  s.chunked = spec.chunked_prefill;
  Workload w = p.scenario.workload;
  if (role == Role::Prefill) {
    w.mtp_tokens = 0;
  } else if (w.mtp_tokens > 0) {
    w.mode = Mode::Decode;
    w.batch_per_gpu = 1;
  }
  s.tokens_per_decode_step = w.mtp_tokens > 0 ? w.output_tokens() : 1.0;
  return p;
}

}  // namespace

int Deployment::nodes() const {
  int n = 0;
  for (const PoolPlan& p : pools) n += p.instances * p.nodes;
  return n;
}

int Deployment::gpus() const {
  int n = 0;
  for (const PoolPlan& p : pools) n += p.gpus();
  return n;
}

Deployment Deployment::plan(const nlohmann::json& doc) {
  Deployment d;
  d.doc = doc;
  if (!doc.is_object()) throw ConfigError("(top level)", json_text(doc), "must be a JSON object");
  d.spec = ServingSpec::from_json(doc.contains("serving") ? doc.at("serving") : nlohmann::json());
  if (!d.spec.disaggregated) {
    d.pools.push_back(make_pool(doc, d.spec, d.spec.colocated, Role::Colocated, 0));
    return d;
  }
  PoolPlan prefill = make_pool(doc, d.spec, d.spec.prefill, Role::Prefill, 0);
  PoolPlan decode = make_pool(doc, d.spec, d.spec.decode, Role::Decode, prefill.instances * prefill.nodes);
  const ClusterSpec& a = prefill.scenario.cluster;
  const ClusterSpec& b = decode.scenario.cluster;
  // The pools share one fabric (the KV cache moves over it): the same node shape and links.
  auto same = [&](const char* key, auto x, auto y) {
    if (x != y)
      throw ConfigError("serving.decode.set.cluster." + std::string(key), fmt::format("{}", y),
                        fmt::format("the pools share one fabric: must equal the prefill pool's {}", x));
  };
  same("gpus_per_node", a.gpus_per_node, b.gpus_per_node);
  same("nic_gbps", a.nic.bytes_per_second() * 8e-9, b.nic.bytes_per_second() * 8e-9);
  same("nvlink_gbps", a.nvlink.to_gb_per_s(), b.nvlink.to_gb_per_s());
  same("topology", a.topology, b.topology);
  same("oversubscription", a.oversubscription, b.oversubscription);
  d.pools.push_back(std::move(prefill));
  d.pools.push_back(std::move(decode));
  return d;
}

}  // namespace epsim::serving
