#include "models/cost_model.h"

#include <fmt/format.h>

namespace epsim {

std::string NominalCostModel::explain(const OpWork& w) const {
  const Time tc = w.flops / gpu_.effective_flops(w.precision);
  const Time tm = w.bytes / gpu_.effective_hbm();
  std::string s;
  s += fmt::format("  priced by {}: roofline under efficiency factors (no measurements)\n", name());
  s += fmt::format("  compute  {:.4g} GFLOP / ({:.0f} TFLOPS {} x {:.2f}) = {:.3f} us\n", w.flops.count() * 1e-9,
                   gpu_.peak(w.precision).to_tflops(), to_string(w.precision), gpu_.mfu, tc.to_us());
  s += fmt::format("  memory   {:.4g} MB / ({:.0f} GB/s x {:.2f}) = {:.3f} us\n", w.bytes.to_mb(), gpu_.hbm.to_gb_per_s(),
                   gpu_.hbm_efficiency, tm.to_us());
  s += fmt::format("  time = max(compute, memory) = {:.3f} us ({} bound)\n", time(w).to_us(), tc >= tm ? "compute" : "memory");
  return s;
}

}  // namespace epsim
