// Fits a CalibrationProfile from epsim-bench result files and measures its error on held-out
// points (`epsim calibrate`).
//
// Per family (a measured kernel, see families()): rows that passed their check are grouped by
// shape; repeated rows of one variant give their median, and among variants the fastest shape
// wins (kernels/README.md: "take the fastest passing row for a shape"). Each series is split
// deterministically into fit and held-out points, its ln(efficiency) curve is fitted on the fit
// points (LogCurve: piecewise linear in log2 x, smoothed least squares) and evaluated on the
// held-out ones. The profile's curves are then refitted on every point; the errors it records
// are those of the held-out evaluation.
#pragma once

#include <string>
#include <vector>

#include "models/bench_results.h"
#include "models/calibration_profile.h"

namespace epsim {

struct FamilyDef {
  std::string name;
  std::vector<std::string> kernels;
  std::vector<std::string> variants;     // empty: every variant (fastest per shape)
  std::vector<std::string> series_keys;  // shape keys held fixed along a curve
  std::string x_key;                     // the size along the curve (a shape key)
  std::vector<std::string> identity;     // extra shape keys that tell shapes apart (besides series and x)
  std::vector<std::pair<std::string, std::int64_t>> skip;  // rows with shape key == value are left out
  bool compute = true;                   // floor uses FLOPs at the GEMM peak (else bytes only)
  std::string bandwidth_from;            // "hbm" (hbm_copy peak) or "self" (the family's best GB/s)
  std::string used_for;                  // op classes priced with it
};

// The families `epsim calibrate` fits, in print order.
const std::vector<FamilyDef>& families();

struct HoldoutPolicy {
  double fraction = 0.25;            // every round(1/fraction)-th interior point of each series
  std::vector<std::string> shapes;   // or explicit shapes "kernel:key=value,key=value" (overrides fraction)
  double smoothing = 0.02;           // LogCurve second-difference weight
  std::string text() const;
};

struct HeldOutPoint {
  std::string family;
  std::string series;
  std::string shape;
  Time measured;
  Time predicted;
  double error_pct = 0;
};

struct CalibrationResult {
  CalibrationProfile profile;
  std::vector<HeldOutPoint> heldout;
};

// Throws InputError when no file has rows of any family, or a --holdout-shapes entry is malformed.
CalibrationResult calibrate(const std::vector<BenchFile>& files, const HoldoutPolicy& policy, const std::string& command);

}  // namespace epsim
