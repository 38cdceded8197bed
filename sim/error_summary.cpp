#include "sim/error_summary.h"

#include <algorithm>
#include <cmath>

namespace epsim {

ErrorSummary summarize_errors(const std::vector<double>& errors_pct) {
  ErrorSummary s;
  std::vector<double> a;
  for (double e : errors_pct) {
    a.push_back(std::abs(e));
    s.within_10 += std::abs(e) <= 10.0 ? 1 : 0;
    s.max_abs_pct = std::max(s.max_abs_pct, std::abs(e));
  }
  s.cases = static_cast<int>(a.size());
  std::sort(a.begin(), a.end());
  const std::size_t n = a.size();
  s.median_abs_pct = n == 0 ? 0.0 : n % 2 ? a[n / 2] : 0.5 * (a[n / 2 - 1] + a[n / 2]);
  return s;
}

}  // namespace epsim
