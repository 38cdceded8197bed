#include <doctest/doctest.h>

#include "models/errors.h"
#include "sim/analytical_network.h"
#include "sim/executor.h"

using namespace epsim;

namespace {
Cluster two_gpus() {
  ClusterSpec spec;
  spec.nodes = 1;
  spec.gpus_per_node = 2;
  return Cluster(spec);
}

// Runs the graph on the analytical network of `cluster`.
void execute(TaskGraph& g, const Cluster& cluster, const SmSharing& sm) {
  Simulator sim;
  AnalyticalNetwork net(sim, cluster);
  Executor exec(sim, net, g, sm);
  exec.run();
}

// GPU 0 -> GPU 1, 4.5 MB over NVLink (11 us of flows), GPU 0 carrying a round of 20 us fixed +
// 30 us moving work (its dispatch implementation's own part).
TaskId round_collective(TaskGraph& g, const Cluster& cluster) {
  const Cluster* cl = &cluster;
  return g.collective(2, Phase::Dispatch, 0, 0, [cl] {
    CommPlan p;
    p.add(*cl, 0, 1, Bytes(4500000));
    p.rounds = {RoundWork{Time::us(20), Time::us(30)}, RoundWork{}};
    return p;
  });
}
}  // namespace

// Two GPUs of one node. GPU 0 computes 100 us; at time 0 a collective sends 4.5 MB from GPU 0 to
// GPU 1 over NVLink (450 GB/s: 10 us, + 2 x 0.5 us latency = 11 us). While it runs, communication
// holds 66 of 132 SMs, so the compute runs at half speed: 5.5 us of work done in the first 11 us,
// 94.5 us left at full speed -> it ends at 105.5 us.
TEST_CASE("compute slows down while a collective holds SMs") {
  const Cluster cluster = two_gpus();
  auto run = [&](int comm_sms) {
    TaskGraph g;
    const TaskId work = g.compute(0, Phase::Experts, 0, 0, Time::us(100));
    const TaskId other = g.compute(1, Phase::Experts, 0, 0, Time::us(1));
    const Cluster* cl = &cluster;
    const TaskId c = g.collective(2, Phase::Dispatch, 0, 0, [cl] {
      CommPlan p;
      p.add(*cl, 0, 1, Bytes(4500000));
      return p;
    });
    Simulator sim;
    AnalyticalNetwork net(sim, cluster);
    Executor exec(sim, net, g, SmSharing{132, comm_sms});
    exec.run();
    CHECK(g.task(g.arrival(c, 1)).end == Time::us(11));
    (void)other;
    return g.task(work).end;
  };
  CHECK(run(66) == Time::us(105.5));
  CHECK(run(0) == Time::us(100));
}


// A round of 20 us fixed + 30 us moving work on GPU 0 while it computes 100 us: the fixed part at
// 1 / (1 + 1) ends at 40 us; the moving part at 1 / (1 + 2) does 20 us of work by 100 us, when the
// compute ends, and its last 10 us at full speed: the GPU's part ends at 110 us. Alone: 50 us.
TEST_CASE("a round's fixed and moving parts slow down by their own factors beside compute") {
  const Cluster cluster = two_gpus();
  auto run = [&](bool compute) {
    TaskGraph g;
    if (compute) g.compute(0, Phase::Experts, 0, 0, Time::us(100));
    const TaskId c = round_collective(g, cluster);
    SmSharing sm{132, 0};
    sm.round_stretch = 2.0;
    sm.fixed_stretch = 1.0;
    execute(g, cluster, sm);
    CHECK(g.task(g.arrival(c, 1)).end == Time::us(11));
    return g.task(g.arrival(c, 0)).end;
  };
  CHECK(run(true) == Time::us(110));
  CHECK(run(false) == Time::us(50));
}

// Interference that follows the GPU's own round (dispatch_impl nccl, peer): GPU 0 computes 100 us
// of an HBM-bound op (sm_bound 0) beside a round of 20 us fixed + 30 us moving work; 66 of 132 SMs
// held, half of them (33) during the fixed part; both parts progress at 1 / (1 + 1) beside compute.
// every_kernel: the op loses the SMs' share though its roofline bound is HBM. Fixed part 0..40 us
// (20 us at 0.5), the compute at 99/132 = 0.75 meanwhile: 30 us done; moving part 40..100 us (30 us
// at 0.5), the compute at 66/132 = 0.5: 30 us more; the round ends at 100 us and the compute does
// its last 40 us at full speed: 140 us. Without every_kernel the op is not slowed (no HBM share):
// 100 us, and so is the round (it ends with the compute). Before the round starts and after it
// ends nothing is slowed, though the collective (its flows, 11 us) is in flight or done.
TEST_CASE("by round: compute slows only while its GPU's round runs, by a share of the SMs in the fixed part") {
  const Cluster cluster = two_gpus();
  auto run = [&](bool every_kernel) {
    TaskGraph g;
    const TaskId work = g.compute(0, Phase::Experts, 0, 0, Time::us(100));
    g.tasks()[static_cast<std::size_t>(work)].sm_bound = 0.0;
    const TaskId c = round_collective(g, cluster);
    SmSharing sm{132, 66};
    sm.round_stretch = 1.0;
    sm.fixed_stretch = 1.0;
    sm.by_round = true;
    sm.fixed_sm_share = 0.5;
    sm.every_kernel = every_kernel;
    execute(g, cluster, sm);
    CHECK(g.task(g.arrival(c, 1)).end == Time::us(11));
    CHECK(g.task(g.arrival(c, 0)).end == Time::us(100));
    return g.task(work).end;
  };
  CHECK(run(true) == Time::us(140));
  CHECK(run(false) == Time::us(100));
}

TEST_CASE("a dependency cycle is reported, not hung") {
  TaskGraph g;
  const TaskId a = g.compute(0, Phase::Gate, 0, 0, Time::us(1));
  const TaskId b = g.compute(0, Phase::Gate, 0, 0, Time::us(1));
  g.depend(a, b);
  g.depend(b, a);
  ClusterSpec spec;
  spec.nodes = 1;
  spec.gpus_per_node = 1;
  const Cluster cluster(spec);
  Simulator sim;
  AnalyticalNetwork net(sim, cluster);
  Executor exec(sim, net, g);
  CHECK_THROWS_AS(exec.run(), SimulationError);
}

// A run of three ops on GPU 0 (A and C SM-bound, B bound by HBM), each 4 us, while an 11 us
// NVLink collective holds half the SMs (hbm_share 0): A at half speed 0..8 us, B at full speed
// 8..12, C after the collective at full speed 12..16. The run takes one planning event instead of
// one per op; a fourth op that also waits for GPU 1 (an HBM-bound 17 us op) starts at 17 us.
TEST_CASE("a run of back-to-back ops: each at its own rate, one event for the run") {
  const Cluster cluster = two_gpus();
  TaskGraph g;
  const TaskId a = g.compute(0, Phase::Experts, 0, 0, Time::us(4));
  const TaskId b = g.compute(0, Phase::Experts, 0, 0, Time::us(4));
  const TaskId c = g.compute(0, Phase::Experts, 0, 0, Time::us(4));
  const TaskId d = g.compute(0, Phase::Experts, 0, 0, Time::us(4));
  const TaskId other = g.compute(1, Phase::Experts, 0, 0, Time::us(17));
  g.tasks()[static_cast<std::size_t>(b)].sm_bound = 0.0;
  g.tasks()[static_cast<std::size_t>(other)].sm_bound = 0.0;
  g.depend(a, b);
  g.depend(b, c);
  g.depend(c, d);
  g.depend(other, d);
  const Cluster* cl = &cluster;
  g.collective(2, Phase::Dispatch, 0, 0, [cl] {
    CommPlan p;
    p.add(*cl, 0, 1, Bytes(4500000));
    return p;
  });
  Simulator sim;
  AnalyticalNetwork net(sim, cluster);
  Executor exec(sim, net, g, SmSharing{132, 66});
  exec.run();
  CHECK(g.task(a).end == Time::us(8));
  CHECK(g.task(b).start == Time::us(8));
  CHECK(g.task(b).end == Time::us(12));
  CHECK(g.task(c).start == Time::us(12));
  CHECK(g.task(c).end == Time::us(16));
  CHECK(g.task(d).start == Time::us(17));
  CHECK(g.task(d).end == Time::us(21));
  // Unmerged, a, b and c would each fire an event; here the comm end re-plans the run once.
  CHECK(sim.events_executed() < 12);
}
