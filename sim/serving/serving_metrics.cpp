#include "sim/serving/serving_metrics.h"

#include <algorithm>
#include <cmath>

namespace epsim::serving {

Percentiles percentiles(std::vector<double> ms) {
  Percentiles p;
  p.count = static_cast<int>(ms.size());
  if (ms.empty()) return p;
  std::sort(ms.begin(), ms.end());
  double sum = 0;
  for (double v : ms) sum += v;
  p.mean = sum / static_cast<double>(ms.size());
  auto rank = [&](double q) {
    const auto k = static_cast<std::size_t>(std::ceil(q * static_cast<double>(ms.size())));
    return ms[std::min(ms.size(), std::max<std::size_t>(1, k)) - 1];
  };
  p.p50 = rank(0.50);
  p.p90 = rank(0.90);
  p.p99 = rank(0.99);
  p.max = ms.back();
  return p;
}

nlohmann::json to_json(const Percentiles& p) {
  return {{"mean", p.mean}, {"p50", p.p50}, {"p90", p.p90}, {"p99", p.p99}, {"max", p.max}, {"count", p.count}};
}

ServingMetrics serving_metrics(const ServingResult& r, const ServingSpec& spec) {
  ServingMetrics m;
  std::vector<double> ttft, tpot, e2e, transfer;
  double out_tokens = 0, in_tokens = 0, good_tokens = 0;
  int good = 0;
  for (const RequestState& s : r.requests) {
    const double t = (s.first_token - s.req.arrival).to_ms();
    const double e = (s.finish - s.req.arrival).to_ms();
    ttft.push_back(t);
    e2e.push_back(e);
    bool ok = spec.ttft_ms <= 0 || t <= spec.ttft_ms;
    if (s.req.output > 1) {
      const double per = (s.finish - s.first_token).to_ms() / static_cast<double>(s.req.output - 1);
      tpot.push_back(per);
      ok = ok && (spec.tpot_ms <= 0 || per <= spec.tpot_ms);
    }
    if (s.transfer_end != Time::infinity()) transfer.push_back((s.transfer_end - s.transfer_start).to_ms());
    out_tokens += static_cast<double>(s.req.output);
    in_tokens += static_cast<double>(s.req.input);
    if (ok) {
      ++good;
      good_tokens += static_cast<double>(s.req.output);
    }
  }
  m.ttft = percentiles(ttft);
  m.tpot = percentiles(tpot);
  m.e2e = percentiles(e2e);
  m.kv_transfer = percentiles(transfer);
  m.duration_s = (r.end - r.first_arrival).to_seconds();
  const double d = m.duration_s > 0 ? m.duration_s : 1.0;
  const double gpus = static_cast<double>(r.gpus);
  m.output_tokens_per_s = out_tokens / d;
  m.output_tokens_per_s_per_gpu = m.output_tokens_per_s / gpus;
  m.output_tokens_per_s_per_node = m.output_tokens_per_s / static_cast<double>(r.nodes);
  m.input_tokens_per_s_per_gpu = in_tokens / d / gpus;
  const double window = (r.window_end - r.window_start).to_seconds();
  m.sustained_output_tokens_per_s_per_gpu = window > 0 ? r.window_tokens / window / gpus : m.output_tokens_per_s_per_gpu;
  m.requests_per_s = static_cast<double>(r.requests.size()) / d;
  m.goodput_requests_per_s = static_cast<double>(good) / d;
  m.goodput_tokens_per_s_per_gpu = good_tokens / d / gpus;
  m.attainment = static_cast<double>(good) / static_cast<double>(r.requests.size());
  m.little_l = r.mean_in_system;
  const double span = (r.last_arrival - r.first_arrival).to_seconds();
  const double lambda = r.nominal_rate > 0 ? r.nominal_rate
                        : span > 0       ? static_cast<double>(r.requests.size() - 1) / span
                                         : 0.0;
  m.little_lambda_w = lambda * m.e2e.mean / 1e3;
  return m;
}

}  // namespace epsim::serving
