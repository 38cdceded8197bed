#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <thread>
#include <stdexcept>

#include "sim/report.h"
#include "sim/simulation.h"
#include "tools/explore/headline_metrics.h"
#include "tools/explore/point_runner.h"
#include "tools/explore/thread_pool.h"

using namespace epsim;
using namespace epsim::explore;
using nlohmann::json;

namespace {
// 2 nodes x 2 GPUs, 2 layers (1 dense, 1 MoE), 256 tokens per GPU; `seed` varies the sampled gate.
json tiny(int seed, const std::string& overlap = "serial") {
  return json{{"model", {{"layers", 2}, {"dense_layers", 1}, {"routed_experts", 4}, {"top_k", 2}}},
              {"cluster", {{"nodes", 2}, {"gpus_per_node", 2}}},
              {"workload", {{"tokens_per_gpu", 256}}},
              {"routing", {{"distribution", "zipf"}, {"seed", seed}}},
              {"schedule", {{"overlap", overlap}}}};
}
std::string report_of(const json& doc) {
  Simulation sim(Scenario::from_json(doc));
  sim.run();
  return report_json(sim).dump();
}
}  // namespace

TEST_CASE("the thread pool runs every job, on several threads at once") {
  std::atomic<int> ran{0}, running{0}, most{0};
  {
    ThreadPool pool(2);
    CHECK(pool.size() == 2);
    for (int i = 0; i < 16; ++i)
      pool.submit([&] {
        const int now = ++running;
        int seen = most.load();
        while (now > seen && !most.compare_exchange_weak(seen, now)) {}
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
        --running;
        ++ran;
      });
  }  // joins after the queued jobs
  CHECK(ran == 16);
  CHECK(most <= 2);
}

TEST_CASE("a point's headline metrics are its report's figures") {
  const PointResult r = run_point(tiny(1));
  REQUIRE(r.ok());
  Simulation sim(Scenario::from_json(tiny(1)));
  sim.run();
  const json report = report_json(sim);
  CHECK(r.metrics == headline_metrics(report));
  CHECK(r.metrics["step_time_ms"] == report["step_time_ms"]);
  double exposed = 0;
  for (const auto& l : report["layers"]) exposed += l["exposed_comm_ms"].get<double>();
  CHECK(r.metrics["exposed_comm_ms"].get<double>() == exposed);
  CHECK(r.metrics["busiest_link"] == report["top_links"][0]["link"]);
  CHECK(r.scenario["routing"]["distribution"] == "zipf");  // resolved: given keys kept
  CHECK(r.scenario["network"]["model"] == "analytical");   // and defaults filled
  CHECK(r.wall_s > 0);
  for (const auto& name : headline_metric_names()) CHECK_MESSAGE(r.metrics.contains(name), name);
  CHECK(r.metrics.size() == headline_metric_names().size());
}

TEST_CASE("bad input comes back as the point's error; the same result travels as JSON") {
  json bad = tiny(1);
  bad["schedule"]["chunks"] = 0;
  const PointResult r = run_point(bad);
  CHECK_FALSE(r.ok());
  CHECK(r.error == "schedule.chunks = 0: must be an integer in [1, 64]");
  CHECK(r.metrics.is_null());
  const PointResult back = PointResult::from_json(json::parse(r.to_json().dump()));
  CHECK(back.error == r.error);
  const PointResult good = run_point(tiny(2));
  const PointResult good_back = PointResult::from_json(json::parse(good.to_json().dump()));
  CHECK(good_back.metrics == good.metrics);
  CHECK(good_back.scenario == good.scenario);
}

// DESIGN.md: no module reads a global, so simulations on several threads at once give exactly the
// reports they give one at a time. (Run once under ThreadSanitizer too; see README.)
TEST_CASE("simulations on concurrent threads share nothing: the same figures as one at a time, in order") {
  std::vector<json> docs;
  for (int s = 1; s <= 8; ++s) docs.push_back(tiny(s, s % 2 ? "serial" : "dual-microbatch"));
  std::vector<PointResult> alone;
  for (const auto& d : docs) alone.push_back(run_point(d));
  const std::vector<PointResult> together = run_points(docs, 3);
  REQUIRE(together.size() == docs.size());
  for (std::size_t i = 0; i < docs.size(); ++i) {
    CHECK(together[i].metrics == alone[i].metrics);
    CHECK(together[i].scenario == alone[i].scenario);
  }
  CHECK(alone[0].metrics != alone[2].metrics);  // the seeds do differ
  // Whole reports, two threads simulating at once.
  std::string a, b;
  {
    ThreadPool pool(2);
    pool.submit([&] { a = report_of(docs[0]); });
    pool.submit([&] { b = report_of(docs[1]); });
  }
  CHECK(a == report_of(docs[0]));
  CHECK(b == report_of(docs[1]));
}

TEST_CASE("point workers hand results back as they finish and carry a point's exception") {
  PointWorkers w(2, [](std::size_t i) {
    if (i == 3) throw std::logic_error("bug at 3");
    PointResult r;
    r.wall_s = static_cast<double>(i);
    return r;
  });
  CHECK(w.has_room());
  w.start(0);
  w.start(1);
  CHECK_FALSE(w.has_room());
  std::vector<double> got;
  while (w.in_flight() > 0)
    if (auto d = w.next_done(std::chrono::milliseconds(1000))) got.push_back(d->result.wall_s + 10.0 * static_cast<double>(d->index));
  std::sort(got.begin(), got.end());
  CHECK(got == std::vector<double>{0.0, 11.0});
  w.start(3);
  bool thrown = false;
  for (int tries = 0; tries < 100 && !thrown; ++tries) {
    try {
      w.next_done(std::chrono::milliseconds(100));
    } catch (const std::logic_error& e) {
      thrown = std::string(e.what()) == "bug at 3";
    }
  }
  CHECK(thrown);
}
