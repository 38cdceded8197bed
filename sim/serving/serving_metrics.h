// The figures of a serving run: latency percentiles, throughput per GPU and per node, goodput
// under the targets, Little's law.
//
// TTFT = first token - arrival (the end of the step that finished the prompt); TPOT = (last token -
// first token) / (output - 1), for requests of two or more output tokens; end-to-end = last token -
// arrival. Percentiles by nearest rank (the ceil(p n)-th smallest). Throughput counts output tokens
// (and, apart, prompt tokens) over [first arrival, last token]. Goodput: requests meeting every
// target set (a request of one output token has no TPOT to miss).
#pragma once

#include <vector>

#include <nlohmann/json.hpp>

#include "sim/serving/serving_result.h"
#include "sim/serving/serving_spec.h"

namespace epsim::serving {

struct Percentiles {
  double mean = 0, p50 = 0, p90 = 0, p99 = 0, max = 0;  // ms
  int count = 0;
};
Percentiles percentiles(std::vector<double> ms);

struct ServingMetrics {
  Percentiles ttft, tpot, e2e, kv_transfer;
  double duration_s = 0;                // first arrival to last token
  double output_tokens_per_s = 0;       // all GPUs
  double output_tokens_per_s_per_gpu = 0, output_tokens_per_s_per_node = 0;
  double input_tokens_per_s_per_gpu = 0;
  // Output tokens/s per GPU while the middle 80% of the requests arrived (serving_result.h); the
  // whole-run figure when they all arrive at once.
  double sustained_output_tokens_per_s_per_gpu = 0;
  double requests_per_s = 0;
  double goodput_requests_per_s = 0;    // requests meeting the targets
  double goodput_tokens_per_s_per_gpu = 0;
  double attainment = 0;                // share of requests meeting the targets
  // Little's law over [first, last arrival]: time-average requests in the system, and arrival rate
  // (the one asked for when Poisson, else measured) x mean end-to-end latency.
  double little_l = 0, little_lambda_w = 0;
};

ServingMetrics serving_metrics(const ServingResult& r, const ServingSpec& spec);
nlohmann::json to_json(const Percentiles& p);

}  // namespace epsim::serving
