#include "sim/scenario.h"

#include "sim/comm_scheme.h"

namespace epsim {

const Schema& NetworkSpec::schema() {
  static const Schema s{"network", {
      {"model", "string", "analytical", "", "analytical: each all-to-all priced by its most loaded link"},
      {"scheme", "string", "direct", "", "direct: one flow per GPU pair through the source GPU's NIC (NCCL all-to-all)"},
  }};
  return s;
}

NetworkSpec NetworkSpec::from_json(const nlohmann::json& j, const std::string& path) {
  const nlohmann::json obj = j.is_null() ? nlohmann::json::object() : j;
  ConfigObject c(obj, path, schema());
  NetworkSpec n;
  n.model = c.choice("model", {"analytical"});
  n.scheme = c.choice("scheme", comm_scheme_names());
  return n;
}

const Schema& ScheduleSpec::schema() {
  static const Schema s{"schedule", {
      {"overlap", "string", "serial", "", "serial: every phase of every layer one after another"},
  }};
  return s;
}

ScheduleSpec ScheduleSpec::from_json(const nlohmann::json& j, const std::string& path) {
  const nlohmann::json obj = j.is_null() ? nlohmann::json::object() : j;
  ConfigObject c(obj, path, schema());
  ScheduleSpec s;
  s.overlap = c.choice("overlap", {"serial"});
  return s;
}

const Schema& Scenario::schema() {
  static const Schema s{"", {
      {"name", "string", "", "", "scenario name, printed in the summary"},
      {"description", "string", "", "", "free text"},
      {"model", "object", nlohmann::json::object(), "", "the MoE architecture (see model.*)"},
      {"gpu", "object", nlohmann::json::object(), "", "the GPU (see gpu.*)"},
      {"cluster", "object", nlohmann::json::object(), "", "nodes, NVLink and InfiniBand fabric (see cluster.*)"},
      {"parallelism", "object", nlohmann::json::object(), "", "attention TP and expert parallelism (see parallelism.*)"},
      {"workload", "object", nlohmann::json::object(), "", "prefill or decode step (see workload.*)"},
      {"routing", "object", nlohmann::json::object(), "", "the gate model (see routing.*)"},
      {"placement", "object", nlohmann::json::object(), "", "expert placement (see placement.*)"},
      {"network", "object", nlohmann::json::object(), "", "network model and communication scheme (see network.*)"},
      {"schedule", "object", nlohmann::json::object(), "", "overlap schedule (see schedule.*)"},
  }};
  return s;
}

std::vector<const Schema*> Scenario::all_schemas() {
  return {&schema(), &MoeModelSpec::schema(), &GpuSpec::schema(), &ClusterSpec::schema(),
          &Parallelism::schema(), &Workload::schema(), &RoutingSpec::schema(), &PlacementSpec::schema(),
          &NetworkSpec::schema(), &ScheduleSpec::schema()};
}

Scenario Scenario::from_json(const nlohmann::json& doc) {
  ConfigObject top(doc, "", schema());
  Scenario s;
  s.name = top.string("name");
  s.description = top.string("description");
  s.model = MoeModelSpec::from_json(top.raw("model"), "model");
  s.gpu = GpuSpec::from_json(top.raw("gpu"), "gpu");
  s.cluster = ClusterSpec::from_json(top.raw("cluster"), "cluster", s.gpu.nvlink);
  s.parallelism = Parallelism::from_json(top.raw("parallelism"), "parallelism", s.model, s.cluster.gpu_count(),
                                         s.cluster.gpus_per_node);
  s.workload = Workload::from_json(top.raw("workload"), "workload");
  s.routing = RoutingSpec::from_json(top.raw("routing"), "routing");
  s.placement = PlacementSpec::from_json(top.raw("placement"), "placement");
  s.network = NetworkSpec::from_json(top.raw("network"), "network");
  s.schedule = ScheduleSpec::from_json(top.raw("schedule"), "schedule");
  return s;
}

}  // namespace epsim
