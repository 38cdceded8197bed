// The serving tools' step pricer: a batch of scenario documents on the sweep engine's thread pool
// (tools/explore/point_runner.h), each its own Simulation.
#pragma once

#include "sim/serving/step_table.h"

namespace epsim::explore {

// Step ms of each document on `threads` threads (0: all cores). A rejected document throws
// InputError with the scenario's message.
serving::BatchPricer threaded_pricer(int threads);

}  // namespace epsim::explore
