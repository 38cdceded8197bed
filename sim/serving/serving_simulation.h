// The request-level serving simulation: requests arrive, the pools' instances batch and step
// (sim/serving/pool_instance.h), and in a disaggregated deployment each request's KV cache moves
// from its prefill rank's GPUs to its decode rank's GPUs as flows on the fabric the pools share
// (the scenario's network model: analytical or flow), once a decode rank has room for it.
//
// Everything runs on one event engine (sim/simulator.h): arrivals, step ends, transfer arrivals, in
// (time, sequence) order, so a run is deterministic. Hand-offs: a finished prefill goes to the
// decode instance with the fewest requests that has a rank with room (prompt + output KV, a free
// slot); when none has, it waits, first come first served, and its KV stays on the prefill rank.
#pragma once

#include <vector>

#include "sim/serving/deployment.h"
#include "sim/serving/request.h"
#include "sim/serving/serving_result.h"
#include "sim/serving/step_pricer.h"

namespace epsim::serving {

// Simulates `requests` on `deployment`; pricers[i] prices deployment.pools[i]'s steps.
// Throws ConfigError when a request can never fit a rank (its KV exceeds a rank's capacity).
ServingResult simulate_serving(const Deployment& deployment, const std::vector<Request>& requests,
                               const std::vector<StepPricer*>& pricers);

}  // namespace epsim::serving
