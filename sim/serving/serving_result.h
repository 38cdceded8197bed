// What a serving run produced: every request's times, each pool's steps and KV cache over time,
// and the figures derived from them (serving_metrics).
#pragma once

#include <string>
#include <vector>

#include "models/units.h"
#include "sim/serving/pool_instance.h"
#include "sim/serving/request_state.h"
#include "sim/serving/step_table.h"

namespace epsim::serving {

// One sample of a pool's KV cache.
struct KvSample {
  Time time;
  double gb_per_gpu = 0;      // KV held, mean over the pool's GPUs
  double max_rank_share = 0;  // the fullest DP rank: KV held / its capacity
};

struct PoolResult {
  std::string name;
  int instances = 0, nodes = 0, gpus = 0, ranks = 0;  // nodes and gpus: the whole pool
  double rank_kv_tokens = 0;                           // per DP rank
  InstanceStats stats;                                 // summed over instances
  std::vector<KvSample> kv;                            // over time
  double kv_peak_gb_per_gpu = 0;
  std::vector<TableCheck> checks;                      // the step table's interpolation error
  int table_runs = 0;                                  // step-simulator runs that priced it
};

struct ServingResult {
  std::vector<RequestState> requests;
  std::vector<PoolResult> pools;
  int gpus = 0, nodes = 0;
  Time first_arrival, last_arrival, end;  // end: the last token
  // Little's law: the time-average number of requests in the system over [first, last arrival].
  double mean_in_system = 0;
  double nominal_rate = 0;  // requests/s asked (poisson), 0 for a trace
  // Output tokens produced while the middle of the traffic arrived (between the arrivals of the
  // 10th and the 90th percentile request), and that window: the sustained rate without the start
  // (batches filling) and the end (draining).
  double window_tokens = 0;
  Time window_start, window_end;
};

}  // namespace epsim::serving
