#include <doctest/doctest.h>

#include "models/bench_results.h"
#include "models/sm_rate_fit.h"

using namespace epsim;

namespace {
BenchRow row(int sms, double gbps, double bytes = 1e9, const char* kernel = "peer_dispatch_sms") {
  BenchRow r;
  r.kernel = kernel;
  r.variant = "own_0to1";
  r.shape = {{"blocks", sms}, {"sms", sms}};
  r.bytes = bytes;
  r.median = Time::seconds(bytes / (gbps * 1e9));
  return r;
}
}  // namespace

TEST_CASE("SM-rate fit: min(SMs x per-SM rate, ceiling) from a sweep, by hand") {
  BenchFile f;
  f.sm_count = 132;
  // 9 GB/s per SM up to the 360 GB/s ceiling (knee at 40 SMs); a small round and 2 CTAs per SM are left out.
  for (int s : {4, 8, 16, 32, 64, 132}) f.rows.push_back(row(s, std::min(9.0 * s, 360.0)));
  f.rows.push_back(row(48, 1.0, 1e5));                             // latency-bound size
  f.rows.push_back(row(264, 900.0, 1e9, "peer_dispatch"));         // 2 CTAs per SM
  const SmRateFit fit = fit_sm_rate({f});
  CHECK(fit.points.size() == 6);
  CHECK(fit.per_sm.to_gb_per_s() == doctest::Approx(9.0));
  CHECK(fit.ceiling.to_gb_per_s() == doctest::Approx(360.0));
  CHECK(fit.knee_sms() == 40);
  CHECK(fit_sm_rate({}).points.empty());
}

TEST_CASE("SM-rate fit on the committed two-GPU dispatch runs: 32 and 132 CTAs") {
  // kernels/results/h200x2-2026-11-30.json, own_0to1 at 1075.2 MB: 32 CTAs (one per SM) 3735.5 us =
  // 287.8 GB/s, 132 CTAs 2912.1 us = 369.2 GB/s: 8.99 GB/s per SM, knee at 42 SMs.
  const SmRateFit fit = fit_sm_rate({read_bench_file(std::string(EPSIM_SOURCE_DIR) + "/kernels/results/h200x2-2026-11-30.json")});
  REQUIRE(fit.points.size() == 2);
  CHECK(fit.points[0].first == 32);
  CHECK(fit.per_sm.to_gb_per_s() == doctest::Approx(1075200000.0 / 3735.5e-6 / 32 * 1e-9).epsilon(0.002));
  CHECK(fit.ceiling.to_gb_per_s() == doctest::Approx(369.2).epsilon(0.002));
  CHECK(fit.knee_sms() == 42);
}
