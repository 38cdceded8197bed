#include <doctest/doctest.h>

#include <map>
#include <regex>
#include <set>

#include "sim/chrome_trace.h"
#include "sim/simulation.h"

using namespace epsim;
using nlohmann::json;

namespace {
// 2 nodes x 2 GPUs, one expert per GPU, 2 layers (1 dense, 1 MoE), 256 tokens per GPU, top-2 of 4,
// hidden 1024 (a token is 2,048 bytes); attention TP 2 (its collectives overlap the dispatch of the
// other micro-batch under dual-microbatch).
json tiny(const std::string& overlap) {
  return json{{"model", {{"layers", 2}, {"dense_layers", 1}, {"hidden", 1024}, {"dense_intermediate", 2048},
                         {"expert_intermediate", 512}, {"routed_experts", 4}, {"top_k", 2}, {"heads", 8},
                         {"head_dim", 128}, {"vocab", 1000}}},
              {"cluster", {{"nodes", 2}, {"gpus_per_node", 2}}},
              {"parallelism", {{"attention_tp", 2}}},
              {"workload", {{"tokens_per_gpu", 256}}},
              {"schedule", {{"overlap", overlap}}}};
}

struct Slice {
  double ts, dur;
  json e;
};

// (pid, tid) -> slices by start.
std::map<std::pair<int, int>, std::vector<Slice>> threads(const json& trace) {
  std::map<std::pair<int, int>, std::vector<Slice>> out;
  for (const auto& e : trace["traceEvents"])
    if (e["ph"] == "X") out[{e["pid"].get<int>(), e["tid"].get<int>()}].push_back({e["ts"].get<double>(), e["dur"].get<double>(), e});
  for (auto& [k, v] : out) std::sort(v.begin(), v.end(), [](const Slice& a, const Slice& b) { return a.ts < b.ts; });
  return out;
}
}  // namespace

TEST_CASE("trace times are whole nanoseconds and slices on one thread never overlap") {
  Simulation sim(Scenario::from_json(tiny("dual-microbatch")));
  sim.run();
  const std::string text = chrome_trace(sim);
  // Every ts and dur is written with at most three decimals (microseconds to the nanosecond).
  const std::regex number(R"re("(ts|dur)":([0-9]+)(\.([0-9]+))?)re");
  int numbers = 0;
  for (auto it = std::sregex_iterator(text.begin(), text.end(), number); it != std::sregex_iterator(); ++it, ++numbers)
    CHECK((*it)[4].length() <= 3);
  CHECK(numbers > 100);
  const auto th = threads(json::parse(text));
  int comm_lanes = 0;
  for (const auto& [key, slices] : th) {
    if (key.second >= 2) ++comm_lanes;
    for (std::size_t i = 1; i < slices.size(); ++i)  // in whole nanoseconds, exactly
      CHECK(std::llround(slices[i - 1].ts * 1000) + std::llround(slices[i - 1].dur * 1000) <= std::llround(slices[i].ts * 1000));
  }
  CHECK(comm_lanes > 0);  // the TP collectives and the other micro-batch's dispatch overlap: a second lane
}

TEST_CASE("slice args: FLOPs, bytes and tokens") {
  Simulation sim(Scenario::from_json(tiny("serial")));
  sim.run();
  const auto th = threads(json::parse(chrome_trace(sim)));
  bool dispatch = false, experts = false;
  for (const auto& s : th.at({0, 1})) {
    if (s.e["name"] != "dispatch L1 mb0") continue;
    dispatch = true;
    // GPU 0 sends 128 tokens of 2,048 bytes to each of the 3 other GPUs and receives as much; its
    // expert gets 128 tokens from each of the 4 GPUs (itself included).
    CHECK(s.e["args"]["bytes_sent"] == 3 * 128 * 2048);
    CHECK(s.e["args"]["bytes_received"] == 3 * 128 * 2048);
    CHECK(s.e["args"]["tokens"] == 512);
  }
  bool down = false;
  for (const auto& s : th.at({0, 0})) {
    // 512 rows through the expert's MLP of 1024 -> 2 x 512 -> 1024: expert_up (gate and up,
    // 1024 -> 1024) 2 x 512 x 1024 x 1024 FLOPs, expert_down (512 -> 1024) 2 x 512 x 512 x 1024.
    if (s.e["name"] == "expert_up L1 mb0") {
      experts = true;
      CHECK(s.e["args"]["phase"] == "experts");
      CHECK(s.e["args"]["tokens"] == 512);
      CHECK(s.e["args"]["flops"].get<double>() == 2.0 * 512 * 1024 * 1024);
      CHECK(s.e["args"]["bytes"].get<std::int64_t>() > 0);
    }
    if (s.e["name"] == "expert_down L1 mb0") {
      down = true;
      CHECK(s.e["args"]["tokens"] == 512);
      CHECK(s.e["args"]["flops"].get<double>() == 2.0 * 512 * 512 * 1024);
    }
  }
  CHECK(dispatch);
  CHECK(experts);
  CHECK(down);
}

TEST_CASE("--trace-gpus and --trace-layers keep only those slices; the link counters stay") {
  Simulation sim(Scenario::from_json(tiny("serial")));
  sim.run();
  TraceOptions o;
  o.gpus = {1, 3};
  o.layers = {1};
  const json trace = json::parse(chrome_trace(sim, o));
  std::set<int> pids, layers;
  int counters = 0;
  for (const auto& e : trace["traceEvents"]) {
    if (e["ph"] == "X") {
      pids.insert(e["pid"].get<int>());
      layers.insert(e["args"]["layer"].get<int>());
    }
    if (e["ph"] == "C") ++counters;
  }
  CHECK(pids == std::set<int>{1, 3});
  CHECK(layers == std::set<int>{1});
  CHECK(counters > 0);
}

TEST_CASE("the top-link counter tracks carry every byte the busiest links carried") {
  Simulation sim(Scenario::from_json(tiny("serial")));
  const StepResult& r = sim.run();
  const LinkTimeline& tl = r.link_timeline;
  for (LinkId l : busiest_links(r, sim.cluster(), 4)) {
    double sum = 0;
    for (int b = 0; b < tl.bins(); ++b) sum += tl.bytes(l, b);
    CHECK(sum == doctest::Approx(static_cast<double>(r.links[static_cast<std::size_t>(l)].bytes.count())));
  }
  Time last = Time::zero();  // the last collective's end: the bins reach it
  for (int c = 0; c < sim.graph().collective_count(); ++c) last = max(last, sim.graph().task(sim.graph().collective_task(c)).end);
  CHECK(tl.width() * static_cast<double>(tl.bins_used()) >= last);
  CHECK(tl.width() * static_cast<double>(tl.bins_used() - 1) < last);
}
