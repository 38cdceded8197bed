// epsim-simgrid-bench: the same traffic on the same two-level topology through SimGrid (S4U, CM02,
// pure max-min) and through epsim's FlowNetwork, in one process; prints both completion times, their
// relative difference and the wall-time ratio.
//
// Same latency treatment: epsim drains a flow at its max-min rate from its start and adds the
// route's latency after the last byte has left. SimGrid's CM02 instead waits the latency before
// draining and weighs flows by their route latency (RTT unfairness), which is not max-min; so SimGrid
// runs on zero-latency links (every flow then has the same weight, pure max-min) and each flow's
// route latency is added to its SimGrid drain end. Everything else is the same: links, capacities,
// routes, sizes, start times.
//
// SimGrid's engine is one per process, so `--case all` runs every case in a child process.
//
// `--window W` also runs epsim with completion window W and prints, against epsim's exact run,
// each flow's end error relative to its exact duration (every flow starts at 0): the most early and
// the most late flow, against the bound W; exit status 4 when either is beyond W.
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <simgrid/s4u.hpp>

#include "models/errors.h"
#include "tools/end_error.h"
#include "sim/flow_network.h"
#include "sim/simulator.h"
#include "sim/traffic_pattern.h"
#include "topology/cluster.h"

namespace sg4 = simgrid::s4u;

namespace {

using namespace epsim;
using Clock = std::chrono::steady_clock;

struct Case {
  std::string name;
  std::string what;
  int nodes;
  int gpus_per_node;
  TrafficSpec traffic;
  bool simgrid = true;  // false: too large for SimGrid on this machine (epsim alone, timed)
};

std::vector<Case> cases() {
  TrafficSpec a2a;
  a2a.pattern = "alltoall";
  TrafficSpec jitter;
  jitter.pattern = "alltoall-jitter";
  TrafficSpec zipf;
  zipf.pattern = "zipf";
  TrafficSpec incast;
  incast.pattern = "incast";
  incast.senders = 64;
  return {
      {"alltoall-256", "256 GPUs (32x8), equal all-to-all, 1 MB per flow", 32, 8, a2a},
      {"jitter-128", "128 GPUs (16x8), all-to-all, sizes 1 MB +-50%", 16, 8, jitter},
      {"zipf-128", "128 GPUs (16x8), zipf(1.0)-skewed all-to-all, 1 MB mean", 16, 8, zipf},
      {"incast-64", "72 GPUs (9x8), 64-to-1 incast, 1 MB per flow", 9, 8, incast},
      {"jitter-256", "256 GPUs (32x8), all-to-all, sizes 1 MB +-50%", 32, 8, jitter},
      {"jitter-512", "512 GPUs (64x8), all-to-all, sizes 1 MB +-50%", 64, 8, jitter, false},
      {"alltoall-2048", "2048 GPUs (256x8), equal all-to-all, 1 MB per flow", 256, 8, a2a, false},
  };
}

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

struct Outcome {
  std::vector<double> done;  // per flow, seconds
  double wall = 0.0;         // seconds of wall time for the simulation proper
};

Outcome run_epsim(const Cluster& cluster, const std::vector<PairFlow>& flows, double window = 0.0) {
  Outcome out;
  out.done.assign(flows.size(), 0.0);
  const auto t0 = Clock::now();
  Simulator sim;
  FlowNetwork net(sim, cluster.links(), true, window);
  Transfer t;
  t.flows.reserve(flows.size());
  for (const PairFlow& f : flows) t.flows.push_back(FlowSpec{cluster.route(f.src, f.dst), f.bytes});
  t.on_flow_done = [&](std::size_t i) { out.done[i] = sim.now().to_seconds(); };
  net.start(std::move(t));
  sim.run();
  out.wall = seconds_since(t0);
  return out;
}

// SimGrid drain ends (zero-latency links), plus each route's latency.
Outcome run_simgrid(const Cluster& cluster, const std::vector<PairFlow>& flows) {
  int argc = 2;
  char arg0[] = "epsim-simgrid-bench";
  char arg1[] = "--log=root.thres:critical";
  char* argv[] = {arg0, arg1, nullptr};
  sg4::Engine engine(&argc, argv);
  sg4::Engine::set_config("network/model:CM02");
  sg4::Engine::set_config("network/optim:Full");
  sg4::Engine::set_config("network/crosstraffic:0");
  sg4::Engine::set_config("network/TCP-gamma:1e12");
  sg4::Engine::set_config("network/latency-factor:1");
  sg4::Engine::set_config("network/bandwidth-factor:1");
  sg4::Engine::set_config("network/weight-S:0");

  auto* zone = sg4::create_full_zone("fabric");
  std::vector<sg4::Host*> hosts;
  for (int g = 0; g < cluster.gpu_count(); ++g) hosts.push_back(zone->create_host("gpu" + std::to_string(g), 1e12));
  std::vector<sg4::Link*> links;
  for (const Link& l : cluster.links())
    links.push_back(zone->create_link(l.name, l.bandwidth.bytes_per_second())->set_latency(0.0)->seal());
  std::vector<char> needed(static_cast<std::size_t>(cluster.gpu_count() * cluster.gpu_count()), 0);
  for (const PairFlow& f : flows) needed[static_cast<std::size_t>(f.src * cluster.gpu_count() + f.dst)] = 1;
  for (GpuId s = 0; s < cluster.gpu_count(); ++s)
    for (GpuId d = 0; d < cluster.gpu_count(); ++d) {
      if (!needed[static_cast<std::size_t>(s * cluster.gpu_count() + d)]) continue;
      std::vector<sg4::LinkInRoute> path;
      for (LinkId l : cluster.route(s, d)) path.emplace_back(links[static_cast<std::size_t>(l)]);
      zone->add_route(hosts[static_cast<std::size_t>(s)]->get_netpoint(),
                      hosts[static_cast<std::size_t>(d)]->get_netpoint(), nullptr, nullptr, path, false);
    }
  zone->seal();

  // One actor per source GPU starts all its flows at 0 and records each one's end as it comes in
  // (an actor per flow would exceed the process's memory mappings at 65,280 flows).
  Outcome out;
  out.done.assign(flows.size(), 0.0);
  std::vector<std::vector<std::size_t>> by_source(hosts.size());
  for (std::size_t i = 0; i < flows.size(); ++i) by_source[static_cast<std::size_t>(flows[i].src)].push_back(i);
  const auto t0 = Clock::now();
  for (std::size_t s = 0; s < hosts.size(); ++s) {
    if (by_source[s].empty()) continue;
    sg4::Actor::create("src" + std::to_string(s), hosts[s], [&hosts, &flows, &out, mine = by_source[s]] {
      std::vector<sg4::CommPtr> pending;
      std::vector<std::size_t> which;
      for (const std::size_t i : mine) {
        pending.push_back(sg4::Comm::sendto_async(hosts[static_cast<std::size_t>(flows[i].src)],
                                                  hosts[static_cast<std::size_t>(flows[i].dst)],
                                                  static_cast<std::uint64_t>(flows[i].bytes.count())));
        which.push_back(i);
      }
      while (!pending.empty()) {
        const auto k = static_cast<std::size_t>(sg4::Comm::wait_any(pending));
        out.done[which[k]] = sg4::Engine::get_clock();
        pending.erase(pending.begin() + static_cast<std::ptrdiff_t>(k));
        which.erase(which.begin() + static_cast<std::ptrdiff_t>(k));
      }
    });
  }
  engine.run();
  out.wall = seconds_since(t0);
  for (std::size_t i = 0; i < flows.size(); ++i)
    out.done[i] += cluster.route(flows[i].src, flows[i].dst).latency.to_seconds();
  return out;
}

// Each flow's end under the window against its exact end, relative to its exact duration (every
// flow starts at 0, so the duration is its exact end): most early (<= 0) and most late (>= 0).
// Returns whether both are within the window (sim/flow_network.h says what it promises).
bool print_window_error(const Cluster& cluster, const std::vector<PairFlow>& flows, const Outcome& exact, double window) {
  const Outcome w = run_epsim(cluster, flows, window);
  const cli::EndError err = cli::end_error(w.done, exact.done);
  const bool met = err.within(window);
  std::printf("  window %.0e  wall %.3f s (exact %.3f s), per flow against exact, relative to its duration: most early %.2e, most late %.2e (bound %.0e: %s)\n",
              window, w.wall, exact.wall, err.early, err.late, window, met ? "met" : "EXCEEDED");
  return met;
}

int run_case(const Case& c, bool with_simgrid, double window) {
  ClusterSpec spec;
  spec.nodes = c.nodes;
  spec.gpus_per_node = c.gpus_per_node;
  const Cluster cluster(spec);
  const auto flows = make_traffic(c.traffic, cluster.gpu_count());
  const Outcome e = std::getenv("EPSIM_BENCH_SKIP_EPSIM") ? Outcome{std::vector<double>(flows.size(), 1.0), 1.0} : run_epsim(cluster, flows);
  const double e_end = *std::max_element(e.done.begin(), e.done.end());
  std::printf("case %s: %s\n  flows %zu\n", c.name.c_str(), c.what.c_str(), flows.size());
  std::printf("  epsim    completion %.9f ms   wall %.3f s\n", e_end * 1e3, e.wall);
  const int window_status = window > 0.0 && !print_window_error(cluster, flows, e, window) ? 4 : 0;
  if (!with_simgrid || !c.simgrid) return window_status;
  const Outcome s = run_simgrid(cluster, flows);
  const double s_end = *std::max_element(s.done.begin(), s.done.end());
  double worst = 0.0;
  for (std::size_t i = 0; i < flows.size(); ++i) worst = std::max(worst, std::abs(e.done[i] - s.done[i]) / s.done[i]);
  const double rel = std::abs(e_end - s_end) / s_end;
  std::printf("  simgrid  completion %.9f ms   wall %.3f s\n", s_end * 1e3, s.wall);
  std::printf("  relative difference: completion %.2e, worst flow %.2e (target <= 1e-6: %s)\n", rel, worst,
              worst <= 1e-6 ? "met" : "MISSED");
  std::printf("  wall-time ratio simgrid / epsim: %.1fx\n", s.wall / e.wall);
  return std::max(window_status, worst <= 1e-6 ? 0 : 3);
}

void usage() {
  std::printf(
      "usage: epsim-simgrid-bench [--case NAME|all] [--epsim-only] [--window W] [--list]\n"
      "Runs each case through SimGrid 3.x (S4U, CM02, optim Full, no cross-traffic, TCP gamma 1e12,\n"
      "factors 1: pure max-min) and through epsim's flow network; prints both completion times, the\n"
      "relative difference (worst flow and whole transfer) and the wall-time ratio. Exit status 3 when a\n"
      "case differs by more than 1e-6. Cases too large for SimGrid here run epsim alone. --window W also\n"
      "runs epsim with completion window W and prints its most early and most late flow against the\n"
      "exact run, relative to each flow's exact duration; exit status 4 when one is beyond W.\n");
}

}  // namespace

int main(int argc, char** argv) {
  std::string which = "all";
  bool with_simgrid = true;
  double window = 0.0;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--case" && i + 1 < argc) which = argv[++i];
    else if (a == "--window" && i + 1 < argc) {
      char* end = nullptr;
      window = std::strtod(argv[++i], &end);
      if (*end != '\0' || !(window >= 0.0 && window < 1.0)) {
        std::fprintf(stderr, "epsim-simgrid-bench: --window '%s': must be a number in [0, 1)\n", argv[i]);
        return 2;
      }
    }
    else if (a == "--epsim-only") with_simgrid = false;
    else if (a == "--list") {
      for (const Case& c : cases()) std::printf("%-14s %s\n", c.name.c_str(), c.what.c_str());
      return 0;
    } else {
      usage();
      return a == "--help" || a == "-h" ? 0 : 2;
    }
  }
  try {
    int status = 0;
    bool found = false;
    for (const Case& c : cases()) {
      if (which != "all" && which != c.name) continue;
      found = true;
      if (which != "all" || !with_simgrid) {
        status = std::max(status, run_case(c, with_simgrid, window));
        continue;
      }
      std::fflush(stdout);
      const pid_t child = fork();  // one SimGrid engine per process
      if (child < 0) throw std::runtime_error("fork failed");
      if (child == 0) {
        const int rc = run_case(c, with_simgrid, window);
        std::fflush(stdout);
        _exit(rc);
      }
      int ws = 0;
      waitpid(child, &ws, 0);
      status = std::max(status, WIFEXITED(ws) ? WEXITSTATUS(ws) : 1);
    }
    if (!found) {
      std::fprintf(stderr, "epsim-simgrid-bench: unknown case '%s' (try --list)\n", which.c_str());
      return 2;
    }
    return status;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "epsim-simgrid-bench: error: %s\n", e.what());
    return 1;
  }
}
