#include "placement/gate_routing.h"

namespace epsim {

namespace {
template <class Gate>
ExpectedRouting expected(const Gate& gate, int layer, int sources, std::int64_t tokens) {
  if constexpr (requires { gate.selection_probabilities(layer); gate.spec().distribution; }) {
    if (gate.spec().distribution != "trace")
      return ExpectedRouting::from_probabilities(gate.selection_probabilities(layer), sources, static_cast<double>(tokens));
  }
  std::vector<RoutingSample> samples;
  for (int mb = 0; mb < 4; ++mb) samples.push_back(gate.sample(layer, mb, sources, tokens));
  return ExpectedRouting::mean(samples);
}
}  // namespace

ExpectedRouting gate_expected_routing(const GateModel& gate, int layer, int sources, std::int64_t tokens) {
  return expected(gate, layer, sources, tokens);
}

}  // namespace epsim
