// epsim net: one traffic pattern on one fabric, the simulator's nccl-tests. Parse -> build the
// cluster -> make the flows -> run them through the chosen network model -> report.
//
// Bandwidths follow nccl-tests (PERFORMANCE.md). With S the bytes one rank sends (the largest over
// ranks), t the completion time and n the ranks taking part:
//   alltoall, alltoall-jitter, zipf: algbw = S / t, busbw = algbw (n - 1) / n
//     (nccl-tests' S counts the rank's own chunk too: S = n B for an equal all-to-all of B per pair)
//   incast (gather-like):            algbw = S_total / t, busbw = algbw (n - 1) / n
//   permutation, file (send/recv):   algbw = busbw = S / t
#include <chrono>
#include <cstdio>
#include <fstream>

#include <boost/program_options.hpp>
#include <fmt/format.h>

#include "models/errors.h"
#include "sim/flow_network.h"
#include "sim/simulation.h"
#include "sim/simulator.h"
#include "sim/traffic_pattern.h"
#include "tools/commands.h"
#include "topology/cluster.h"

namespace po = boost::program_options;

namespace epsim::cli {

namespace {

struct NetOptions {
  int nodes = 32;
  int gpus_per_node = 8;
  TrafficSpec traffic;
  double nic_gbps = 400.0;        // Gb/s per GPU NIC
  double nvlink_gbs = 450.0;      // GB/s per GPU, each way
  double oversubscription = 1.0;
  int nodes_per_leaf = 32;
  std::string model = "flow";
  double completion_window = 1e-3;  // flow: as network.completion_window
  std::string csv;
};

NetOptions parse(const Args& args) {
  NetOptions o;
  std::string seed = "1";
  po::options_description desc;
  desc.add_options()("nodes", po::value(&o.nodes))("gpus-per-node", po::value(&o.gpus_per_node))(
      "pattern", po::value(&o.traffic.pattern))("bytes", po::value(&o.traffic.bytes))("seed", po::value(&seed))(
      "pattern-file", po::value(&o.traffic.file))("csv", po::value(&o.csv))("senders", po::value(&o.traffic.senders))(
      "jitter", po::value(&o.traffic.jitter))("zipf-s", po::value(&o.traffic.zipf_s))("nic-gbps", po::value(&o.nic_gbps))(
      "nvlink-gbs", po::value(&o.nvlink_gbs))("oversubscription", po::value(&o.oversubscription))(
      "nodes-per-leaf", po::value(&o.nodes_per_leaf))("model", po::value(&o.model))(
      "completion-window", po::value(&o.completion_window));
  po::variables_map vm;
  po::store(po::command_line_parser(args).options(desc).run(), vm);
  po::notify(vm);
  try {
    o.traffic.seed = std::stoull(seed);
  } catch (const std::exception&) {
    throw ConfigError("--seed", seed, "a non-negative integer");
  }
  if (!o.traffic.file.empty()) o.traffic.pattern = "file";
  if (o.nodes < 1) throw ConfigError("--nodes", std::to_string(o.nodes), "must be >= 1");
  if (o.gpus_per_node < 1) throw ConfigError("--gpus-per-node", std::to_string(o.gpus_per_node), "must be >= 1");
  if (!(o.nic_gbps > 0)) throw ConfigError("--nic-gbps", fmt::format("{}", o.nic_gbps), "must be > 0");
  if (!(o.nvlink_gbs > 0)) throw ConfigError("--nvlink-gbs", fmt::format("{}", o.nvlink_gbs), "must be > 0");
  if (!(o.oversubscription >= 1.0))
    throw ConfigError("--oversubscription", fmt::format("{}", o.oversubscription), "must be >= 1");
  if (o.nodes_per_leaf < 1) throw ConfigError("--nodes-per-leaf", std::to_string(o.nodes_per_leaf), "must be >= 1");
  if (o.model != "flow" && o.model != "analytical")
    throw ConfigError("--model", "\"" + o.model + "\"", "flow or analytical");
  if (!(o.completion_window >= 0.0 && o.completion_window <= NetworkSpec::kMaxCompletionWindow))
    throw ConfigError("--completion-window", fmt::format("{}", o.completion_window),
                      fmt::format("must be in [0, {}]", NetworkSpec::kMaxCompletionWindow));
  return o;
}

struct Bandwidths {
  double algbw = 0.0;  // GB/s
  double busbw = 0.0;  // GB/s
};

Bandwidths nccl_bandwidths(const std::string& pattern, const std::vector<PairFlow>& flows, int gpus, Time t) {
  if (t <= Time::zero() || flows.empty()) return {};
  std::vector<std::int64_t> sent(static_cast<std::size_t>(gpus), 0);
  std::vector<char> part(static_cast<std::size_t>(gpus), 0);
  std::int64_t total = 0;
  for (const PairFlow& f : flows) {
    sent[static_cast<std::size_t>(f.src)] += f.bytes.count();
    part[static_cast<std::size_t>(f.src)] = part[static_cast<std::size_t>(f.dst)] = 1;
    total += f.bytes.count();
  }
  const double n = static_cast<double>(std::count(part.begin(), part.end(), 1));
  const double s_max = static_cast<double>(*std::max_element(sent.begin(), sent.end()));
  const double sec = t.to_seconds();
  if (pattern == "alltoall" || pattern == "alltoall-jitter" || pattern == "zipf") {
    // nccl-tests' per-rank buffer includes the rank's own chunk: (n / (n - 1)) x what it sends.
    const double algbw = s_max * n / (n - 1.0) / sec * 1e-9;
    return {algbw, algbw * (n - 1.0) / n};
  }
  if (pattern == "incast") {
    const double algbw = static_cast<double>(total) * n / (n - 1.0) / sec * 1e-9;
    return {algbw, algbw * (n - 1.0) / n};
  }
  const double algbw = s_max / sec * 1e-9;
  return {algbw, algbw};
}

}  // namespace

int net_command(const Args& args) {
  for (std::size_t i = 0; i < args.size(); ++i)
    if (args[i] == "--pattern=moe" || (args[i] == "--pattern" && i + 1 < args.size() && args[i + 1] == "moe"))
      return net_moe_command(args);
  const NetOptions o = parse(args);
  ClusterSpec spec;
  spec.nodes = o.nodes;
  spec.gpus_per_node = o.gpus_per_node;
  spec.nic = Bandwidth::gbit_per_s(o.nic_gbps);
  spec.nvlink = Bandwidth::gb_per_s(o.nvlink_gbs);
  spec.oversubscription = o.oversubscription;
  spec.nodes_per_leaf = o.nodes_per_leaf;
  const Cluster cluster(spec);
  std::vector<PairFlow> flows = make_traffic(o.traffic, cluster.gpu_count());

  const auto t0 = std::chrono::steady_clock::now();
  Simulator sim;
  NetworkSpec net_spec;
  net_spec.model = o.model;
  net_spec.completion_window = o.completion_window;
  const std::unique_ptr<Network> net = make_network(net_spec, sim, cluster);
  std::vector<Time> done(flows.size(), Time::zero());
  Time end = Time::zero();
  {
    Transfer t;
    t.flows.reserve(flows.size());
    for (const PairFlow& f : flows) t.flows.push_back(FlowSpec{cluster.route(f.src, f.dst), f.bytes});
    t.on_flow_done = [&](std::size_t i) { done[i] = sim.now(); };
    t.on_done = [&] { end = sim.now(); };
    net->start(std::move(t));
  }
  sim.run();
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  const Bandwidths bw = nccl_bandwidths(o.traffic.pattern, flows, cluster.gpu_count(), end);
  std::int64_t total = 0;
  for (const PairFlow& f : flows) total += f.bytes.count();
  fmt::print("epsim net: {} on {} GPUs ({} nodes x {}), model {}\n", o.traffic.pattern, cluster.gpu_count(), o.nodes,
             o.gpus_per_node, net->name());
  fmt::print("  flows            {}\n", flows.size());
  fmt::print("  bytes            {} ({:.3f} GB)\n", total, static_cast<double>(total) * 1e-9);
  fmt::print("  completion time  {:.3f} us\n", end.to_us());
  fmt::print("  algbw            {:.2f} GB/s\n", bw.algbw);
  fmt::print("  busbw            {:.2f} GB/s\n", bw.busbw);
  fmt::print("  wall time        {:.3f} s\n", wall);
  if (const auto* flow = dynamic_cast<const FlowNetwork*>(net.get())) {
    const auto& s = flow->solver_stats();
    fmt::print("  solver           {} solves, {} full fills, {} completion batches\n", s.solves, s.full_fills,
               flow->stats().batches);
  }
  if (!o.csv.empty()) {
    std::ofstream out(o.csv);
    if (!out) throw InputError("cannot write '" + o.csv + "'");
    out << "flow,src,dst,bytes,completion_us\n";
    for (std::size_t i = 0; i < flows.size(); ++i)
      out << fmt::format("{},{},{},{},{:.6f}\n", i, flows[i].src, flows[i].dst, flows[i].bytes.count(), done[i].to_us());
    if (!out) throw InputError("cannot write '" + o.csv + "'");
  }
  return 0;
}

}  // namespace epsim::cli
