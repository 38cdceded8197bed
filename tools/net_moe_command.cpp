// epsim net --pattern moe: one MoE dispatch and combine of a uniform gate on an EP group, each alone
// on the network, in a DeepEP mode, printed per rank as MoE communication libraries print them
// (sim/moe_exchange.h: bytes of the tokens a rank sends for the dispatch and receives for the
// combine, RDMA and NVLink apart, over its time).
#include <algorithm>
#include <fstream>

#include <boost/program_options.hpp>
#include <fmt/format.h>

#include "models/errors.h"
#include "sim/moe_exchange.h"
#include "tools/commands.h"
#include "tools/output_paths.h"

namespace po = boost::program_options;

namespace epsim::cli {

namespace {

struct MoeOptions {
  std::string mode = "normal";
  int ep = 64;
  int gpus_per_node = 8;
  std::int64_t tokens = 4096;
  std::int64_t hidden = 7168;
  int topk = 8;
  int experts = 256;
  int groups = 1;
  int topk_groups = 1;
  bool fp8 = false;
  int comm_sms = -1;  // -1: the mode's default
  double nic_gbps = 400.0;
  std::string model = "flow";
  std::string calibration;
  std::string csv;
};

MoeOptions parse(const Args& args) {
  MoeOptions o;
  std::string pattern;
  po::options_description desc;
  desc.add_options()("pattern", po::value(&pattern))("mode", po::value(&o.mode))("ep", po::value(&o.ep))(
      "gpus-per-node", po::value(&o.gpus_per_node))("tokens", po::value(&o.tokens))("hidden", po::value(&o.hidden))(
      "topk", po::value(&o.topk))("experts", po::value(&o.experts))("groups", po::value(&o.groups))(
      "topk-groups", po::value(&o.topk_groups))("fp8", po::bool_switch(&o.fp8))("comm-sms", po::value(&o.comm_sms))(
      "nic-gbps", po::value(&o.nic_gbps))("model", po::value(&o.model))("calibration", po::value(&o.calibration))(
      "csv", po::value(&o.csv));
  po::variables_map vm;
  po::store(po::command_line_parser(args).options(desc).run(), vm);
  po::notify(vm);
  if (o.mode != "normal" && o.mode != "low_latency") throw ConfigError("--mode", "\"" + o.mode + "\"", "normal or low_latency");
  if (o.ep < 1 || o.gpus_per_node < 1 || (o.ep > o.gpus_per_node && o.ep % o.gpus_per_node != 0))
    throw ConfigError("--ep", std::to_string(o.ep), "must be >= 1 and a multiple of --gpus-per-node when above it");
  return o;
}

// The scenario of one MoE layer on `ep` GPUs (every key checked as a scenario's would be).
Scenario scenario_of(const MoeOptions& o) {
  const int gpn = std::min(o.ep, o.gpus_per_node);
  nlohmann::json doc = {
      {"name", "net moe"},
      {"model", {{"layers", 2}, {"dense_layers", 1}, {"hidden", o.hidden}, {"routed_experts", o.experts}, {"top_k", o.topk},
                 {"groups", o.groups}, {"topk_groups", o.topk_groups}, {"shared_experts", 0}, {"attention", "none"}, {"vocab", 0}}},
      {"precision", {{"dispatch", o.fp8 ? "fp8" : "bf16"}}},
      {"cluster", {{"gpus", o.ep}, {"gpus_per_node", gpn}, {"nic_gbps", o.nic_gbps}}},
      {"parallelism", {{"ep", o.ep}}},
      {"workload", {{"mode", "prefill"}, {"tokens_per_gpu", o.tokens}}},
      {"network", {{"model", o.model}, {"dispatch_impl", o.mode}}},
  };
  if (o.comm_sms >= 0) doc["schedule"] = {{"comm_sms", o.comm_sms}};
  if (!o.calibration.empty()) doc["cost_model"] = {{"calibration", o.calibration}};
  return Scenario::from_json(doc);
}

struct Summary {
  double time_mean = 0, time_max = 0, rdma = 0, nvlink = 0, rdma_gb = 0, nvlink_gb = 0;  // us, GB/s (mean over ranks), GB per rank
};

Summary summarise(const std::vector<RankExchange>& ranks) {
  Summary s;
  for (const auto& r : ranks) {
    s.time_mean += r.time.to_us();
    s.time_max = std::max(s.time_max, r.time.to_us());
    s.rdma += r.rdma_gbps();
    s.nvlink += r.nvlink_gbps();
    s.rdma_gb += r.rdma.to_gb();
    s.nvlink_gb += r.nvlink.to_gb();
  }
  const double n = static_cast<double>(ranks.size());
  s.time_mean /= n;
  s.rdma /= n;
  s.nvlink /= n;
  s.rdma_gb /= n;
  s.nvlink_gb /= n;
  return s;
}

std::string engine_text(const char* name, const TransferEngine& e, Bandwidth line) {
  std::string s = fmt::format("{} {:.3f} x {:.0f} GB/s", name, e.efficiency, line.to_gb_per_s());
  if (e.round > Time::zero()) s += fmt::format(", round {:.2f} us", e.round.to_us());
  if (e.message_rate > 0) s += fmt::format(", {:.0f} M msg/s", e.message_rate * 1e-6);
  return s;
}

}  // namespace

int net_moe_command(const Args& args) {
  const MoeOptions o = parse(args);
  if (!o.csv.empty()) require_writable_file("--csv", o.csv);  // before the run
  const Scenario sc = scenario_of(o);
  const MoeExchange x = moe_exchange(sc);
  const int gpn = sc.cluster.gpus_per_node;
  fmt::print("epsim net: moe {}, EP {} ({} nodes x {}), {} tokens per rank, hidden {}, top-{} of {} experts{}, model {}\n", o.mode,
             o.ep, sc.cluster.nodes, gpn, o.tokens, o.hidden, o.topk, o.experts,
             o.groups > 1 ? fmt::format(" ({} groups, {} per token)", o.groups, o.topk_groups) : "", sc.network.model);
  fmt::print("  tokens: dispatch {} B ({}), combine {} B (bf16)\n", x.setup.dispatch_token.count(), o.fp8 ? "fp8" : "bf16",
             x.setup.combine_token.count());
  fmt::print("  engines ({}): {}; {}\n", x.rates.source, engine_text("rdma", x.rates.rdma, sc.cluster.nic),
             o.mode == "normal" && sc.network.nvlink_engine != "sm" ? engine_text("nvlink_ce", x.rates.nvlink_ce, sc.cluster.nvlink)
                                                                    : engine_text("nvlink_sm", x.rates.nvlink_sm, sc.cluster.nvlink));
  if (x.kernel_rate.bytes_per_second() > 0)
    fmt::print("  kernels: {} SMs x {:.2f} GB/s = {:.1f} GB/s per GPU\n", sc.schedule.comm_sms, x.rates.per_sm.to_gb_per_s(),
               x.kernel_rate.to_gb_per_s());
  else
    fmt::print("  kernels: no SMs held\n");
  fmt::print("\n  {:<9} {:>12} {:>12} {:>12} {:>12} {:>12} {:>12}\n", "", "mean us", "max us", "RDMA GB/s", "NVLink GB/s",
             "RDMA MB", "NVLink MB");
  for (const auto& [name, ranks] : {std::pair{"dispatch", &x.dispatch}, std::pair{"combine", &x.combine}}) {
    const Summary s = summarise(*ranks);
    fmt::print("  {:<9} {:>12.1f} {:>12.1f} {:>12.1f} {:>12.1f} {:>12.1f} {:>12.1f}\n", name, s.time_mean, s.time_max, s.rdma,
               s.nvlink, s.rdma_gb * 1e3, s.nvlink_gb * 1e3);
  }
  fmt::print("  (per rank: bytes of the tokens it sends in the dispatch and receives in the combine over its time; mean over ranks)\n");
  if (!o.csv.empty()) {
    std::ofstream out(o.csv);
    if (!out) throw InputError("cannot write '" + o.csv + "'");
    out << "rank,phase,time_us,rdma_bytes,nvlink_bytes,rdma_gbps,nvlink_gbps\n";
    for (const auto& [name, ranks] : {std::pair{"dispatch", &x.dispatch}, std::pair{"combine", &x.combine}})
      for (std::size_t g = 0; g < ranks->size(); ++g) {
        const RankExchange& r = (*ranks)[g];
        out << fmt::format("{},{},{:.3f},{},{},{:.3f},{:.3f}\n", g, name, r.time.to_us(), r.rdma.count(), r.nvlink.count(),
                           r.rdma_gbps(), r.nvlink_gbps());
      }
    if (!out) throw InputError("cannot write '" + o.csv + "'");
  }
  return 0;
}

}  // namespace epsim::cli
