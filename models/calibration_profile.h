// A calibrated cost profile: efficiency curves fitted from kernel measurements (`epsim calibrate`),
// with where they came from and how wrong they were on held-out points.
//
// Each curve belongs to a family (a measured kernel: "gemm_bf16", "expert_mlp_bf16", ...) and a
// series (the shape keys held fixed: {"n": 4096, "k": 7168}); along the series one size varies (x:
// "m", "tokens_per_expert", "seq", "bytes", ...). The roofline floor is max(FLOPs / peak, bytes /
// bandwidth) at the family's ceilings measured in the same run; a straight baseline, latency +
// slope x floor, is fitted to the series, and the curve stores ln(baseline / measured time) against
// x (where the roofline bends, clocks drift or a kernel changes algorithm). Pricing an op: the
// baseline of the op's own FLOPs and bytes, divided by the efficiency at the op's x. Families priced
// by bytes alone (copies, links, permute) have a second shape, "loglog": ln(time) is a natural cubic
// spline in log2 x through the measured points (loglog_spline.h), read as latency + size / rate
// segments. Profiles are JSON (schema "epsim-profile/1"); the measured points travel with them so
// `epsim explain` can show the neighbours of any price.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "models/curve_fit.h"
#include "models/latency_bandwidth_fit.h"
#include "models/loglog_spline.h"
#include "models/sm_rate_fit.h"
#include "models/units.h"

namespace epsim {

struct CurvePoint {
  double x = 0;
  Time measured;
  double flops = 0;
  double bytes = 0;
  std::string shape;  // the measured shape, as "key=value ..."
};

enum class CurveShape {
  Efficiency,  // baseline(FLOPs, bytes) / exp(log_efficiency(x))
  LogLog,      // exp(loglog(x)): time as a function of the size alone
};
const char* to_string(CurveShape s);  // "efficiency", "loglog"

struct CalibratedCurve {
  std::string family;
  CurveShape shape = CurveShape::Efficiency;
  std::map<std::string, std::int64_t> series;
  std::string x_key;
  std::string source;      // kernels/variants the points came from ("fastest of cublas_loop, cublas_grouped")
  FlopRate peak;           // ceilings of the floor
  Bandwidth bandwidth;
  Time latency;            // baseline = latency + slope x floor, fitted to the series (relative least squares)
  double slope = 1.0;
  LogCurve log_efficiency; // Efficiency: ln(baseline / time) against x: what the straight baseline misses
  LogLogSpline loglog;     // LogLog: ln(time) against log2 x
  std::vector<CurvePoint> points;

  Time floor(double flops, double bytes) const;     // max(FLOPs / peak, bytes / bandwidth)
  Time baseline(double flops, double bytes) const;  // latency + slope x floor
  double efficiency(double x) const;  // Efficiency: baseline / time, flat outside the measured x
  // Time of an op with these FLOPs and bytes at size x: baseline / efficiency(x) (Efficiency), or
  // the spline at x (LogLog: FLOPs and bytes are those of the measured shape at x).
  Time time(double flops, double bytes, double x) const;
  double min_x() const;  // the measured range of x
  double max_x() const;
  std::string series_text() const;  // "n=4096 k=7168" (or "-")
};

struct FamilyError {
  std::string family;
  std::string used_for;    // op classes the simulator prices with it, or "(profile only)"
  int points = 0;          // measured shapes in the family
  int heldout = 0;         // of which held out
  double median_pct = 0;   // |predicted - measured| / measured on the held-out points
  double max_pct = 0;
};

struct ProfileSource {
  std::string file;
  std::string device;
  int device_count = 0;
  std::string date;
  std::string git_commit;
  std::string libraries;
};

struct CalibrationProfile {
  std::string schema = "epsim-profile/1";
  std::vector<ProfileSource> sources;
  std::string command;     // the `epsim calibrate` line that wrote it
  std::string holdout;     // the holdout policy the errors were measured with
  std::string fit;         // how curves were fitted (text)
  std::vector<CalibratedCurve> curves;
  std::vector<FamilyError> errors;
  std::map<std::string, LatencyBandwidthFit> links;  // "p2p_copy", "nccl_alltoall", ...
  std::map<std::string, SmRateFit> sm_rates;         // "peer_dispatch": throughput against its SMs (sm_rate_fit.h)
  // Launch and dependency gap per kernel, back-to-back dependent kernels on one stream (JSON
  // "kernel_gap_us"; zero when the measurements had no kernel_gap rows).
  Time kernel_gap = Time::zero();
  // What an event recorded between two kernels adds to the second's time (JSON
  // "event_overhead_us"): the benchmarks time each repetition between events, a layer runs its
  // kernels back to back, so a measured price carries this once per call (zero when not measured).
  Time event_overhead = Time::zero();

  std::vector<const CalibratedCurve*> family(const std::string& name) const;
  const LatencyBandwidthFit* link(const std::string& name) const;

  nlohmann::json to_json() const;
  // Throws InputError naming `path` when the document is not a valid profile.
  static CalibrationProfile from_json(const nlohmann::json& j, const std::string& path);
  static CalibrationProfile load(const std::string& path);
};

}  // namespace epsim
