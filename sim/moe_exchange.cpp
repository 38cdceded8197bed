#include "sim/moe_exchange.h"

#include "models/gate_model.h"
#include "placement/dispatch_matrix.h"
#include "placement/placement.h"
#include "sim/simulation.h"
#include "sim/simulator.h"

namespace epsim {

namespace {
// Per rank, when its part of one collective of `plan` ended, run alone on a fresh network.
std::vector<Time> rank_times(const NetworkSpec& spec, const Cluster& cluster, CommPlan plan) {
  Simulator sim;
  const std::unique_ptr<Network> net = make_network(spec, sim, cluster);
  std::vector<Time> done(static_cast<std::size_t>(cluster.gpu_count()), Time::zero());
  Transfer t;
  t.endpoints = cluster.gpu_count();
  t.flows = std::move(plan.flows);
  t.src = std::move(plan.src);
  t.dst = std::move(plan.dst);
  t.on_endpoint_done = [&](GpuId g) { done[static_cast<std::size_t>(g)] = sim.now(); };
  net->start(std::move(t));
  sim.run();
  return done;
}

// The tokens rank s sends (the combine brings the same ones back), by the class of link they cross.
RankExchange rank_tokens(const DispatchMatrix& m, const std::string& impl, int s, Bytes token) {
  RankExchange r;
  const int gpn = m.gpus_per_node, home = s / gpn;
  for (int d = home * gpn; d < (home + 1) * gpn; ++d)
    if (d != s) r.nvlink += token * (impl == "low_latency" ? m.copies_at(s, d) : m.unique_at(s, d));
  for (int n = 0; n < m.nodes(); ++n) {
    if (n == home) continue;
    if (impl == "normal") {
      r.rdma += token * m.node_unique[static_cast<std::size_t>(s) * static_cast<std::size_t>(m.nodes()) + static_cast<std::size_t>(n)];
      continue;
    }
    for (int d = n * gpn; d < (n + 1) * gpn; ++d) r.rdma += token * (impl == "low_latency" ? m.copies_at(s, d) : m.unique_at(s, d));
  }
  return r;
}
}  // namespace

MoeExchange moe_exchange(const Scenario& sc) {
  const std::unique_ptr<CostModel> cost = make_cost_model(sc.cost_model, sc.gpu);
  MoeExchange out;
  out.rates = engine_rates(sc, *cost);
  out.setup = comm_setup(sc, out.rates, is_calibrated(*cost));
  out.kernel_rate = kernel_rate(sc, out.rates);
  ClusterSpec spec = sc.cluster;
  spec.kernel_rate = out.kernel_rate;
  const Cluster cluster(spec);
  const GateModel gate(sc.routing, sc.model, sc.parallelism.routed_shared(sc.model));
  const Placement placement =
      Placement::make(sc.placement, PlacementInputs{sc.parallelism.as_routed(sc.model), sc.parallelism.ep, cluster, gate,
                                                    sc.workload.tokens(), expert_compute_per_token(sc.model, sc.gpu)});
  const int layer = sc.model.dense_layers;
  const DispatchMatrix m =
      build_dispatch(gate.sample(layer, 0, cluster.gpu_count(), sc.workload.tokens()), placement.layer(layer),
                     cluster.gpus_per_node(), placement.replica_choice());
  for (const bool outbound : {true, false}) {
    const std::vector<Time> t = rank_times(sc.network, cluster, comm_plan(out.setup, cluster, m, outbound));
    auto& ranks = outbound ? out.dispatch : out.combine;
    for (int g = 0; g < cluster.gpu_count(); ++g) {
      RankExchange r = rank_tokens(m, sc.network.dispatch_impl, g, outbound ? out.setup.dispatch_token : out.setup.combine_token);
      r.time = t[static_cast<std::size_t>(g)];
      ranks.push_back(r);
    }
  }
  return out;
}

}  // namespace epsim
