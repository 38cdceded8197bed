#include "sim/dispatch_mode.h"

#include <algorithm>

#include "models/calibrated_cost_model.h"

namespace epsim {

bool is_calibrated(const CostModel& cost) { return dynamic_cast<const CalibratedCostModel*>(&cost) != nullptr; }

EngineRates engine_rates(const Scenario& sc, const CostModel& cost) {
  const auto* cal = dynamic_cast<const CalibratedCostModel*>(&cost);
  EngineRates r = cal ? EngineRates::calibrated(cal->profile(), sc.cost_model.calibration, sc.cluster.nvlink)
                      : EngineRates::defaults();
  const NetworkSpec& n = sc.network;
  auto set = [](const std::optional<double>& v, double& out) {
    if (v) out = *v;
  };
  auto set_us = [](const std::optional<double>& v, Time& out) {
    if (v) out = Time::us(*v);
  };
  set(n.nvlink_sm_efficiency, r.nvlink_sm.efficiency);
  set(n.nvlink_ce_efficiency, r.nvlink_ce.efficiency);
  set(n.rdma_efficiency, r.rdma.efficiency);
  set(n.nccl_efficiency, r.nccl.efficiency);
  set_us(n.nvlink_sm_round_us, r.nvlink_sm.round);
  set_us(n.nvlink_ce_round_us, r.nvlink_ce.round);
  set_us(n.rdma_round_us, r.rdma.round);
  set_us(n.nccl_round_us, r.nccl.round);
  if (n.rdma_message_rate_m) r.rdma.message_rate = *n.rdma_message_rate_m * 1e6;
  if (n.comm_gbps_per_sm) r.per_sm = Bandwidth::gb_per_s(*n.comm_gbps_per_sm);
  return r;
}

CommSetup comm_setup(const Scenario& sc, const EngineRates& rates, bool calibrated) {
  CommSetup s;
  s.scheme = comm_scheme_from_string(sc.network.scheme);
  const std::string& impl = sc.network.dispatch_impl;
  // Tokens in precision.dispatch and precision.combine (models/precision.h), whatever moves them:
  // an fp8 dispatch is fp8 bytes through NCCL too. (kernels/ep_layer.cu's layers, which nccl and
  // peer replay, sent bf16: their scenarios are bf16.)
  s.dispatch_token = sc.model.precision.dispatch_bytes_per_token(sc.model.hidden);
  s.combine_token = sc.model.precision.combine_bytes_per_token(sc.model.hidden);
  if (impl == "ideal" && calibrated) {
    s.nvlink = rates.nccl;
    TransferEngine ib = rates.rdma;
    ib.round = rates.nccl.round;  // the collective's own cost, measured on NVLink
    ib.message_rate = 0;          // NCCL packs tokens into large messages
    s.network = ib;
  } else if (impl == "normal") {
    s.nvlink_by_sms = sc.network.nvlink_engine == "sm";
    s.nvlink = s.nvlink_by_sms ? rates.nvlink_sm : rates.nvlink_ce;
    s.network = rates.rdma;
    s.kernel_links = true;
  } else if (impl == "low_latency") {
    s.nvlink = rates.nvlink_sm;
    s.network = rates.rdma;
  }
  return s;
}

Bandwidth kernel_rate(const Scenario& sc, const EngineRates& rates) {
  if (sc.network.dispatch_impl != "normal" || sc.schedule.comm_sms <= 0) return Bandwidth();
  return rates.per_sm * static_cast<double>(sc.schedule.comm_sms);
}

Bytes low_latency_buffers(const Scenario& sc, const CommSetup& setup, int slots_per_gpu) {
  if (sc.network.dispatch_impl != "low_latency") return Bytes(0);
  const std::int64_t tokens = sc.workload.tokens();
  const std::int64_t picks = sc.model.top_k + sc.parallelism.routed_shared(sc.model);
  return setup.dispatch_token * (static_cast<std::int64_t>(slots_per_gpu) * sc.parallelism.ep * tokens) +
         setup.combine_token * (tokens * picks);
}

namespace {
bool through_nic(const Cluster& cluster, const Route& r) {
  for (LinkId l : r) {
    const LinkKind k = cluster.link(l).kind;
    if (k == LinkKind::NicUp || k == LinkKind::NicDown) return true;
  }
  return false;
}

}  // namespace

void apply_engines(CommPlan& plan, const Cluster& cluster, const CommSetup& setup, Bytes message) {
  if (!setup.nvlink && !setup.network) return;
  for (std::size_t f = 0; f < plan.flows.size(); ++f) {
    FlowSpec& flow = plan.flows[f];
    const bool nic = through_nic(cluster, flow.route);
    const std::optional<TransferEngine>& engine = nic ? setup.network : setup.nvlink;
    if (!engine) continue;
    flow.bytes = engine->wire_bytes(flow.bytes, message, nic ? cluster.spec().nic : cluster.spec().nvlink);
    const LinkId kernel = cluster.kernel_link(plan.src[f]);
    if (setup.kernel_links && kernel >= 0 && (nic || setup.nvlink_by_sms)) {
      Route r;
      r.append(kernel, Time::zero());
      for (LinkId l : flow.route) r.append(l, Time::zero());
      r.latency = flow.route.latency;
      flow.route = r;
    }
    flow.route.latency += engine->round;
  }
}

CommPlan comm_plan(const CommSetup& setup, const Cluster& cluster, const DispatchMatrix& m, bool outbound) {
  const Bytes token = outbound ? setup.dispatch_token : setup.combine_token;
  CommPlan plan = outbound ? dispatch_plan(setup.scheme, cluster, m, token) : combine_plan(setup.scheme, cluster, m, token);
  apply_engines(plan, cluster, setup, token);
  return plan;
}

}  // namespace epsim
