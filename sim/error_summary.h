// Predicted against measured over a set of cases: the median and largest |error| and the issue's
// target (median <= 5%, every case <= 10%), for `epsim validate`'s EP-layer and whole-layer files.
#pragma once

#include <vector>

namespace epsim {

struct ErrorSummary {
  int cases = 0;
  int within_10 = 0;       // cases with |error| <= 10%
  double median_abs_pct = 0;
  double max_abs_pct = 0;
  bool meets_target() const { return cases > 0 && median_abs_pct <= 5.0 && max_abs_pct <= 10.0; }
};

// `errors_pct`: (predicted - measured) / measured x 100 per case.
ErrorSummary summarize_errors(const std::vector<double>& errors_pct);

}  // namespace epsim
