// epsim net: one traffic pattern on one fabric, the simulator's nccl-tests. Parse -> build the
// cluster -> make the flows -> run them through the chosen network model -> report.
//
// Bandwidths follow nccl-tests (PERFORMANCE.md). With S the bytes one rank sends (the largest over
// ranks), t the completion time and n the ranks taking part:
//   alltoall, alltoall-jitter, zipf: algbw = S / t, busbw = algbw (n - 1) / n
//     (nccl-tests' S counts the rank's own chunk too: S = n B for an equal all-to-all of B per pair)
//   incast (gather-like):            algbw = S_total / t, busbw = algbw (n - 1) / n
//   permutation, file (send/recv):   algbw = busbw = S / t
// With -b/-e/-f (nccl-tests' minbytes, maxbytes, stepfactor) it sweeps sizes as nccl-tests does:
// a size is the bytes of one rank's buffer (an all-to-all sends size / n to each of the n ranks, its
// own included), and prints nccl-tests' columns. --calibration adds what a profile measured of
// NCCL's all-to-all (models/transfer_engine.h): its efficiency on NVLink and its fixed cost.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <optional>

#include <boost/program_options.hpp>
#include <fmt/format.h>

#include "models/calibration_profile.h"
#include "models/cost_model_spec.h"
#include "models/errors.h"
#include "models/limits.h"
#include "models/transfer_engine.h"
#include "sim/simulation.h"
#include "sim/simulator.h"
#include "sim/traffic_pattern.h"
#include "tools/byte_sizes.h"
#include "tools/commands.h"
#include "tools/end_error.h"
#include "tools/output_paths.h"
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
  double completion_window = 4e-3;  // flow: as network.completion_window (same default)
  bool vs_exact = false;            // also run at window 0; print each flow's error against it
  std::string csv;
  std::vector<std::int64_t> sizes;  // -b/-e/-f: per-rank buffer sizes, nccl-tests style (empty: --bytes per flow)
  std::string calibration;          // a profile name or path: NCCL's measured all-to-all terms
};

NetOptions parse(const Args& args) {
  NetOptions o;
  std::string seed = "1", bytes, minbytes, maxbytes, stepbytes;
  std::int64_t stepfactor = 2;
  po::options_description desc;
  desc.add_options()("nodes", po::value(&o.nodes))("gpus-per-node", po::value(&o.gpus_per_node))(
      "pattern", po::value(&o.traffic.pattern))("bytes", po::value(&bytes))("seed", po::value(&seed))(
      "minbytes,b", po::value(&minbytes))("maxbytes,e", po::value(&maxbytes))("stepfactor,f", po::value(&stepfactor))(
      "stepbytes,i", po::value(&stepbytes))("calibration", po::value(&o.calibration))(
      "pattern-file", po::value(&o.traffic.file))("csv", po::value(&o.csv))("senders", po::value<int>())(
      "jitter", po::value(&o.traffic.jitter))("zipf-s", po::value(&o.traffic.zipf_s))("nic-gbps", po::value(&o.nic_gbps))(
      "nvlink-gbs", po::value(&o.nvlink_gbs))("oversubscription", po::value(&o.oversubscription))(
      "nodes-per-leaf", po::value(&o.nodes_per_leaf))("model", po::value(&o.model))(
      "completion-window", po::value(&o.completion_window))("vs-exact", po::bool_switch(&o.vs_exact));
  po::variables_map vm;
  po::store(po::command_line_parser(args).options(desc).run(), vm);
  po::notify(vm);
  // Digits only: std::stoull would take "-1" as 2^64 - 1 and "12abc" as 12.
  if (seed.empty() || seed.size() > 19 || seed.find_first_not_of("0123456789") != std::string::npos)
    throw ConfigError("--seed", seed, "must be an integer in [0, 2^63 - 1]");
  o.traffic.seed = std::stoull(seed);
  if (vm.count("senders")) {  // absent: every other GPU; there is no "0 means all"
    o.traffic.senders = vm["senders"].as<int>();
    if (o.traffic.senders < 1) throw ConfigError("--senders", std::to_string(o.traffic.senders), "must be in [1, GPUs - 1]");
  }
  if (!o.traffic.file.empty()) o.traffic.pattern = "file";
  if (!bytes.empty()) o.traffic.bytes = parse_byte_size(bytes, "--bytes");
  if (!minbytes.empty()) {
    if (o.traffic.pattern == "file") throw ConfigError("-b", "\"" + minbytes + "\"", "sizes do not apply to --pattern-file");
    const std::int64_t lo = parse_byte_size(minbytes, "-b");
    const std::int64_t hi = maxbytes.empty() ? lo : parse_byte_size(maxbytes, "-e");
    o.sizes = size_sweep(lo, hi, stepfactor, stepbytes.empty() ? 0 : parse_byte_size(stepbytes, "-i"));
  } else if (!maxbytes.empty() || !stepbytes.empty()) {
    throw ConfigError(maxbytes.empty() ? "-i" : "-e", "\"" + (maxbytes.empty() ? stepbytes : maxbytes) + "\"", "needs -b MINBYTES");
  }
  using namespace limits;
  auto in_range = [](const char* name, std::int64_t v, std::int64_t lo, std::int64_t hi) {
    if (v < lo || v > hi) throw ConfigError(name, std::to_string(v), fmt::format("must be an integer in [{}, {}]", lo, hi));
  };
  in_range("--nodes", o.nodes, 1, kNetGpus);
  in_range("--gpus-per-node", o.gpus_per_node, 1, kNetGpus);
  in_range("--nodes-per-leaf", o.nodes_per_leaf, 1, kNetGpus);
  const std::int64_t gpus = static_cast<std::int64_t>(o.nodes) * o.gpus_per_node;
  in_range("--nodes x --gpus-per-node", gpus, 2, kNetGpus);
  const std::string& p = o.traffic.pattern;
  if ((p == "alltoall" || p == "alltoall-jitter" || p == "zipf") && gpus > kGpus)
    throw ConfigError("--nodes x --gpus-per-node", std::to_string(gpus),
                      fmt::format("--pattern {} has GPUs^2 flows: at most {} GPUs", p, kGpus));
  auto rate = [](const char* name, double v, double lo, double hi) {
    if (!(v >= lo && v <= hi)) throw ConfigError(name, fmt::format("{}", v), fmt::format("must be in [{:g}, {:g}]", lo, hi));
  };
  rate("--nic-gbps", o.nic_gbps, kMinRate, kMaxRate);
  rate("--nvlink-gbs", o.nvlink_gbs, kMinRate, kMaxRate);
  rate("--oversubscription", o.oversubscription, 1.0, kMaxOversubscription);
  rate("--zipf-s", o.traffic.zipf_s, 0.0, 16.0);
  if (o.model != "flow" && o.model != "analytical")
    throw ConfigError("--model", "\"" + o.model + "\"", "flow or analytical");
  if (!(o.completion_window >= 0.0 && o.completion_window <= NetworkSpec::kMaxCompletionWindow))
    throw ConfigError("--completion-window", fmt::format("{}", o.completion_window),
                      fmt::format("must be in [0, {}]", NetworkSpec::kMaxCompletionWindow));
  if (o.vs_exact && o.model != "flow")
    throw ConfigError("--vs-exact", "--model " + o.model, "compares the flow model's completion window with its exact run: needs --model flow");
  if (o.vs_exact && !o.sizes.empty())
    throw ConfigError("--vs-exact", "-b", "applies to one run, not a size sweep");
  return o;
}

struct Bandwidths {
  double algbw = 0.0;  // GB/s
  double busbw = 0.0;  // GB/s
};

Bandwidths nccl_bandwidths(const std::string& pattern, const std::vector<PairFlow>& flows, int gpus, Time t) {
  if (t <= Time::zero() || flows.empty()) return {};
  std::vector<Bytes> sent(static_cast<std::size_t>(gpus));
  std::vector<char> part(static_cast<std::size_t>(gpus), 0);
  Bytes total;
  for (const PairFlow& f : flows) {
    sent[static_cast<std::size_t>(f.src)] += f.bytes;
    part[static_cast<std::size_t>(f.src)] = part[static_cast<std::size_t>(f.dst)] = 1;
    total += f.bytes;
  }
  const double n = static_cast<double>(std::count(part.begin(), part.end(), 1));
  const double s_max = static_cast<double>(std::max_element(sent.begin(), sent.end())->count());
  const double sec = t.to_seconds();
  if (pattern == "alltoall" || pattern == "alltoall-jitter" || pattern == "zipf") {
    // nccl-tests' per-rank buffer includes the rank's own chunk: (n / (n - 1)) x what it sends.
    const double algbw = s_max * n / (n - 1.0) / sec * 1e-9;
    return {algbw, algbw * (n - 1.0) / n};
  }
  if (pattern == "incast") {
    const double algbw = static_cast<double>(total.count()) * n / (n - 1.0) / sec * 1e-9;
    return {algbw, algbw * (n - 1.0) / n};
  }
  const double algbw = s_max / sec * 1e-9;
  return {algbw, algbw};
}

}  // namespace

namespace {
// What a calibration profile measured of NCCL's all-to-all on NVLink (the nccl transfer engine):
// NVLink flows carry payload / efficiency bytes, and every collective adds its fixed cost.
struct NcclTerms {
  TransferEngine engine;
  std::string label;
};

std::optional<NcclTerms> nccl_terms(const std::string& calibration, Bandwidth nvlink) {
  if (calibration.empty()) return std::nullopt;
  const std::string path = resolve_calibration(calibration);
  const CalibrationProfile profile = CalibrationProfile::load(path);
  if (profile.link("nccl_alltoall") == nullptr)
    throw ConfigError("--calibration", "\"" + calibration + "\"", "the profile has no nccl_alltoall measurement");
  return NcclTerms{EngineRates::calibrated(profile, calibration, nvlink).nccl, calibration};
}

struct NetRun {
  Time end;                // completion of the last flow (calibrated: plus the collective's fixed cost)
  std::vector<Time> done;  // per flow
  double wall_s = 0;
  std::string model;
  std::string solver;      // flow model: its solve counts
  std::string solver_work; // flow model: flows re-filled, level changes, bottleneck moves
};

NetRun run_flows(const NetOptions& o, const Cluster& cluster, const std::vector<PairFlow>& flows, const std::optional<NcclTerms>& nccl) {
  const auto t0 = std::chrono::steady_clock::now();
  Simulator sim;
  NetworkSpec net_spec;
  net_spec.model = o.model;
  net_spec.completion_window = o.completion_window;
  const std::unique_ptr<Network> net = make_network(net_spec, sim, cluster);
  NetRun run;
  run.done.assign(flows.size(), Time::zero());
  {
    Transfer t;
    t.flows.reserve(flows.size());
    for (const PairFlow& f : flows) {
      const Route& route = cluster.route(f.src, f.dst);
      Bytes bytes = f.bytes;
      if (nccl && cluster.same_domain(f.src, f.dst)) bytes = nccl->engine.wire_bytes(f.bytes, f.bytes, cluster.spec().nvlink);
      t.flows.push_back(FlowSpec{route, bytes});
    }
    t.on_flow_done = [&](std::size_t i) { run.done[i] = sim.now() + (nccl ? nccl->engine.round : Time::zero()); };
    t.on_done = [&] { run.end = sim.now() + (nccl ? nccl->engine.round : Time::zero()); };
    net->start(std::move(t));
  }
  sim.run();
  run.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  run.model = net->name();
  if (const std::optional<SolverWork> s = net->solver_work()) {
    run.solver = fmt::format("{} solves, {} full fills, {} completion batches, {} flows completed early by the window",
                             s->solves, s->full_fills, s->batches, s->early);
    run.solver_work = fmt::format("{} flows re-filled ({} of them at a new rate), {} level changes, {} bottleneck moves", s->flows_refilled,
                                  s->rates_changed, s->levels_changed, s->moves);
  }
  return run;
}

// Bytes per flow for a per-rank buffer of `size` bytes, as nccl-tests divides it: an all-to-all
// sends size / n to each of its n ranks (its own chunk included); send/recv and incast send size.
std::int64_t flow_bytes_of(const std::string& pattern, std::int64_t size, int ranks) {
  const bool alltoall = pattern == "alltoall" || pattern == "alltoall-jitter" || pattern == "zipf";
  const std::int64_t b = alltoall ? size / ranks : size;
  if (b < 1) throw ConfigError("-b", std::to_string(size), "must be at least the rank count " + std::to_string(ranks) + " (one byte to each rank)");
  return b;
}

// nccl-tests' table: per size, its bytes per rank, float count, time and bandwidths.
void sweep(const NetOptions& o, const Cluster& cluster, const std::optional<NcclTerms>& nccl) {
  for (const std::int64_t size : o.sizes) flow_bytes_of(o.traffic.pattern, size, cluster.gpu_count());  // checked first
  fmt::print("# epsim net: {} on {} GPUs ({} nodes x {}), model {}{}\n", o.traffic.pattern, cluster.gpu_count(), o.nodes,
             o.gpus_per_node, o.model, nccl ? ", NCCL terms of " + nccl->label : "");
  fmt::print("# size: bytes of one rank's buffer (nccl-tests); all-to-all: size / n to each rank\n");
  fmt::print("# {:>12} {:>12} {:>6} {:>12} {:>12} {:>12}\n", "size", "count", "type", "time(us)", "algbw(GB/s)", "busbw(GB/s)");
  double wall = 0;
  for (const std::int64_t size : o.sizes) {
    TrafficSpec spec = o.traffic;
    spec.bytes = flow_bytes_of(o.traffic.pattern, size, cluster.gpu_count());
    const std::vector<PairFlow> flows = make_traffic(spec, cluster.gpu_count());
    const NetRun run = run_flows(o, cluster, flows, nccl);
    wall += run.wall_s;
    const Bandwidths bw = nccl_bandwidths(o.traffic.pattern, flows, cluster.gpu_count(), run.end);
    fmt::print("  {:>12} {:>12} {:>6} {:>12.2f} {:>12.2f} {:>12.2f}\n", size, size / 4, "float", run.end.to_us(), bw.algbw, bw.busbw);
  }
  fmt::print("# {} sizes in {:.3f} s wall time\n", o.sizes.size(), wall);
}
// --vs-exact: the same flows at window 0; each flow's end against it relative to its exact duration
// (every flow starts at 0). Prints the most early and the most late; returns whether both are within
// the window (sim/flow_network.h says what it promises).
bool compare_with_exact(const NetOptions& o, const Cluster& cluster, const std::vector<PairFlow>& flows,
                        const std::optional<NcclTerms>& nccl, const NetRun& run) {
  NetOptions exact_o = o;
  exact_o.completion_window = 0.0;
  const NetRun exact = run_flows(exact_o, cluster, flows, nccl);
  const auto seconds = [](const std::vector<Time>& done) {
    std::vector<double> s(done.size());
    for (std::size_t i = 0; i < done.size(); ++i) s[i] = done[i].to_seconds();
    return s;
  };
  const EndError err = end_error(seconds(run.done), seconds(exact.done));
  const bool met = err.within(o.completion_window);
  fmt::print("  vs exact         most early {:.2e}, most late {:.2e} of a flow's duration (window {:g}: {}); exact: completion {:.3f} us, wall {:.3f} s\n",
             err.early, err.late, o.completion_window, met ? "met" : "EXCEEDED", exact.end.to_us(), exact.wall_s);
  return met;
}

}  // namespace

int net_command(const Args& args) {
  for (std::size_t i = 0; i < args.size(); ++i)
    if (args[i] == "--pattern=moe" || (args[i] == "--pattern" && i + 1 < args.size() && args[i + 1] == "moe"))
      return net_moe_command(args);
  const NetOptions o = parse(args);
  if (!o.csv.empty()) require_writable_file("--csv", o.csv);  // before the run
  ClusterSpec spec;
  spec.nodes = o.nodes;
  spec.gpus_per_node = o.gpus_per_node;
  spec.nic = Bandwidth::gbit_per_s(o.nic_gbps);
  spec.nvlink = Bandwidth::gb_per_s(o.nvlink_gbs);
  spec.oversubscription = o.oversubscription;
  spec.nodes_per_leaf = o.nodes_per_leaf;
  const Cluster cluster(spec);
  const std::optional<NcclTerms> nccl = nccl_terms(o.calibration, spec.nvlink);
  if (!o.sizes.empty()) {
    sweep(o, cluster, nccl);
    return 0;
  }
  std::vector<PairFlow> flows = make_traffic(o.traffic, cluster.gpu_count());
  const NetRun run = run_flows(o, cluster, flows, nccl);
  const Bandwidths bw = nccl_bandwidths(o.traffic.pattern, flows, cluster.gpu_count(), run.end);
  Bytes total_bytes;
  for (const PairFlow& f : flows) total_bytes += f.bytes;
  const std::int64_t total = total_bytes.count();
  fmt::print("epsim net: {} on {} GPUs ({} nodes x {}), model {}\n", o.traffic.pattern, cluster.gpu_count(), o.nodes,
             o.gpus_per_node, run.model);
  fmt::print("  flows            {}\n", flows.size());
  fmt::print("  bytes            {} ({:.3f} GB)\n", total, static_cast<double>(total) * 1e-9);
  if (nccl)
    fmt::print("  calibrated       {}: NCCL all-to-all at {:.3f} of NVLink's line rate, {:.3f} us per collective\n", nccl->label,
               nccl->engine.efficiency, nccl->engine.round.to_us());
  fmt::print("  completion time  {:.3f} us\n", run.end.to_us());
  fmt::print("  algbw            {:.2f} GB/s\n", bw.algbw);
  fmt::print("  busbw            {:.2f} GB/s\n", bw.busbw);
  fmt::print("  wall time        {:.3f} s\n", run.wall_s);
  if (!run.solver.empty()) fmt::print("  solver           {}\n", run.solver);
  if (!run.solver_work.empty()) fmt::print("  solver work      {}\n", run.solver_work);
  const bool within = !o.vs_exact || compare_with_exact(o, cluster, flows, nccl, run);
  if (!o.csv.empty()) {
    std::ofstream out(o.csv);  // checked writable before the run; this catches a disk that filled since
    if (!out) throw InputError("cannot write '" + o.csv + "'");
    out << "flow,src,dst,bytes,completion_us\n";
    for (std::size_t i = 0; i < flows.size(); ++i)
      out << fmt::format("{},{},{},{},{:.6f}\n", i, flows[i].src, flows[i].dst, flows[i].bytes.count(), run.done[i].to_us());
    if (!out) throw InputError("cannot write '" + o.csv + "'");
  }
  return within ? 0 : 4;
}

}  // namespace epsim::cli
