#include "tools/explore/serving_pricer.h"

#include "models/errors.h"
#include "tools/explore/point_runner.h"

namespace epsim::explore {

serving::BatchPricer threaded_pricer(int threads) {
  return [threads](const std::vector<nlohmann::json>& docs) {
    const std::vector<PointResult> results =
        docs.size() == 1 ? std::vector<PointResult>{run_point(docs.front())} : run_points(docs, threads);
    std::vector<double> ms;
    ms.reserve(results.size());
    for (const PointResult& r : results) {
      if (!r.ok()) throw InputError(r.error + " (pricing a serving step)");
      ms.push_back(r.metrics.at("step_time_ms").get<double>());
    }
    return ms;
  };
}

}  // namespace epsim::explore
