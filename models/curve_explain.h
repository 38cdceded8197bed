// How a calibrated curve prices a size, as text for `epsim explain --family`: the curve's shape,
// its segments (the one holding x marked), the value at x and the measured points nearest x.
// Efficiency curves list their piecewise-linear ln(efficiency) segments; log-log curves list each
// interval between measured sizes as latency + size / rate (the chord of the spline there).
#pragma once

#include <string>

#include "models/calibration_profile.h"

namespace epsim {

std::string explain_curve(const CalibratedCurve& curve, double x);

}  // namespace epsim
