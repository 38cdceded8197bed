#include "sim/serving/step_table.h"

#include <algorithm>
#include <cmath>

#include "models/errors.h"
#include "sim/scenario.h"
#include "sim/simulation.h"

namespace epsim::serving {

namespace {

std::int64_t pow2_floor(double x) {
  std::int64_t p = 1;
  while (static_cast<double>(p * 2) <= x) p *= 2;
  return p;
}

std::int64_t pow2_ceil(double x) {
  std::int64_t p = 1;
  while (static_cast<double>(p) < x) p *= 2;
  return p;
}

// The grid's neighbours of x among {lo} + powers of two above lo: (below, above), equal on a node.
std::pair<std::int64_t, std::int64_t> bracket(double x, std::int64_t lo) {
  if (x <= static_cast<double>(lo)) return {lo, lo};
  std::int64_t below = std::max(lo, pow2_floor(x));
  std::int64_t above = pow2_ceil(x);
  if (static_cast<double>(below) == x) above = below;
  return {below, above};
}

double lerp(double x, double x0, double x1, double y0, double y1) {
  return x1 == x0 ? y0 : y0 + (y1 - y0) * (x - x0) / (x1 - x0);
}

}  // namespace

BatchPricer sequential_pricer() {
  return [](const std::vector<nlohmann::json>& docs) {
    std::vector<double> out;
    out.reserve(docs.size());
    for (const nlohmann::json& d : docs) {
      Simulation sim(Scenario::from_json(d));
      sim.run_steps(1);
      out.push_back(sim.result().step_time.to_ms());
    }
    return out;
  };
}

StepTable::StepTable(nlohmann::json pool_doc, BatchPricer pricer, StepTableOptions options)
    : doc_(std::move(pool_doc)), scenario_(Scenario::from_json(doc_)),
      cost_(make_cost_model(scenario_.cost_model, scenario_.gpu)), pricer_(std::move(pricer)), options_(options) {
  const Scenario& sc = scenario_;
  const std::int64_t split = static_cast<std::int64_t>(sc.schedule.micro_batches()) * sc.schedule.chunks;
  t_min_ = pow2_ceil(static_cast<double>(std::max<std::int64_t>(2, split)));
  const int per_sequence = 1 + sc.workload.mtp_tokens;
  b_min_ = std::max<std::int64_t>(1, (split + per_sequence - 1) / per_sequence);
  decode_extra_ = {{"mtp_tokens", sc.workload.mtp_tokens}, {"mtp_acceptance", sc.workload.mtp_acceptance}};
  dense_layers_ = sc.model.dense_layers;
  moe_layers_ = sc.model.layers - sc.model.dense_layers;
}

nlohmann::json StepTable::with_workload(const nlohmann::json& workload) const {
  nlohmann::json d = doc_;
  d["workload"] = workload;
  return d;
}

std::vector<double> StepTable::price(const std::vector<nlohmann::json>& workloads) {
  std::vector<nlohmann::json> docs;
  const bool extrapolate = options_.extrapolate_layers && moe_layers_ > 4;
  for (const nlohmann::json& w : workloads) {
    nlohmann::json d = with_workload(w);
    if (!extrapolate) {
      docs.push_back(std::move(d));
      continue;
    }
    for (int moe : {2, 4}) {
      nlohmann::json short_doc = d;
      short_doc["model"]["layers"] = dense_layers_ + moe;
      short_doc["model"]["dense_layers"] = dense_layers_;
      docs.push_back(std::move(short_doc));
    }
  }
  const std::vector<double> ms = pricer_(docs);
  runs_ += static_cast<int>(docs.size());
  if (!extrapolate) return ms;
  std::vector<double> out;
  for (std::size_t i = 0; i < workloads.size(); ++i) {
    const double t2 = ms[2 * i], t4 = ms[2 * i + 1];
    out.push_back(t2 + (t4 - t2) / 2.0 * static_cast<double>(moe_layers_ - 2));
  }
  return out;
}

// ---- prefill --------------------------------------------------------------------------------

// Node (T, S): T tokens per GPU whose queries see (S + 1) / 2 keys on average.
static nlohmann::json prefill_node_workload(std::int64_t tokens, std::int64_t s) {
  if (s <= tokens) return {{"mode", "prefill"}, {"tokens_per_gpu", tokens}, {"seq_len", s}};
  const std::int64_t prefix = (s - tokens) / 2;
  const std::int64_t len = prefix + tokens;
  // floor(len x hit) = prefix: the half token keeps rounding away from the boundary.
  const double hit = (static_cast<double>(prefix) + 0.5) / static_cast<double>(len);
  return {{"mode", "prefill"}, {"tokens_per_gpu", len}, {"seq_len", len}, {"prefix_hit", hit}};
}

std::pair<nlohmann::json, PrefillShape> StepTable::exact_prefill(const PrefillShape& shape, std::int64_t min_tokens) {
  const std::int64_t t = std::max<std::int64_t>(min_tokens, shape.tokens);
  const double half = (static_cast<double>(t) + 1.0) / 2.0;
  if (shape.keys >= half) {
    const std::int64_t prefix = std::llround(shape.keys - half);
    const std::int64_t len = prefix + t;
    const double hit = (static_cast<double>(prefix) + 0.5) / static_cast<double>(len);
    nlohmann::json w = {{"mode", "prefill"}, {"tokens_per_gpu", len}, {"seq_len", len}};
    if (prefix > 0) w["prefix_hit"] = hit;
    return {w, PrefillShape{t, static_cast<double>(prefix) + half}};
  }
  const std::int64_t s = std::clamp<std::int64_t>(std::llround(2.0 * shape.keys - 1.0), 1, t);
  const std::int64_t rounded = std::llround(static_cast<double>(t) / static_cast<double>(s));
  const std::int64_t n = std::max<std::int64_t>({1, rounded, (min_tokens + s - 1) / s});
  return {{{"mode", "prefill"}, {"tokens_per_gpu", n * s}, {"seq_len", s}},
          PrefillShape{n * s, (static_cast<double>(s) + 1.0) / 2.0}};
}

void StepTable::ensure_prefill(const std::vector<Key>& nodes) {
  std::vector<Key> missing;
  for (const Key& k : nodes)
    if (!prefill_nodes_.count(k) && std::find(missing.begin(), missing.end(), k) == missing.end()) missing.push_back(k);
  if (missing.empty()) return;
  std::vector<nlohmann::json> w;
  for (const Key& k : missing) w.push_back(prefill_node_workload(k.first, k.second));
  const std::vector<double> ms = price(w);
  for (std::size_t i = 0; i < missing.size(); ++i) prefill_nodes_[missing[i]] = ms[i];
}

double StepTable::prefill_ms(std::int64_t tokens, double keys) {
  const auto [t0, t1] = bracket(static_cast<double>(tokens), t_min_);
  // S = 2K - 1 between powers of two (K >= 1, so S >= 1).
  const double s = std::max(1.0, 2.0 * keys - 1.0);
  const auto [s0, s1] = bracket(s, 1);
  ensure_prefill({{t0, s0}, {t0, s1}, {t1, s0}, {t1, s1}});
  auto at = [&](std::int64_t t) {
    return lerp(s, static_cast<double>(s0), static_cast<double>(s1), prefill_nodes_.at({t, s0}), prefill_nodes_.at({t, s1}));
  };
  const double x = std::max(static_cast<double>(tokens), static_cast<double>(t_min_));
  return lerp(x, static_cast<double>(t0), static_cast<double>(t1), at(t0), at(t1));
}

Time StepTable::prefill(const PrefillShape& busiest, const PrefillShape& mean) {
  const Time top = uniform_prefill(busiest);
  if (mean.tokens >= busiest.tokens) return top;
  const Time base = uniform_prefill(mean);
  const Time own = rank_work(busiest) - rank_work(mean);
  return min(top, max(base, base + own));
}

Time StepTable::rank_work(const PrefillShape& asked) const {
  const PrefillShape shape{std::max(asked.tokens, t_min_), std::max(1.0, asked.keys)};
  const nlohmann::json w = exact_prefill(shape, t_min_).first;
  const std::int64_t len = w.at("seq_len"), seqs = w.at("tokens_per_gpu").get<std::int64_t>() / len;
  const auto cached = static_cast<std::int64_t>(static_cast<double>(len) * w.value("prefix_hit", 0.0));
  const std::int64_t tokens = seqs * (len - cached);
  const MoeModelSpec& m = scenario_.model;
  const LayerOps ops(m, scenario_.parallelism.attention_tp);
  auto t = [&](const OpWork& op) { return cost_->time(op); };
  Time per_layer = Time::zero();
  if (m.attention != AttentionKind::None) per_layer = t(ops.attention_proj(tokens)) + t(ops.attention_core_prefill(seqs, len, cached));
  Time moe = t(ops.gate(tokens));
  if (m.shared_experts > scenario_.parallelism.routed_shared(m)) moe += t(ops.shared_expert(tokens));
  Time total = per_layer * static_cast<double>(m.layers) + t(ops.dense_mlp(tokens)) * static_cast<double>(m.dense_layers) +
               moe * static_cast<double>(m.layers - m.dense_layers);
  if (m.vocab > 0) total += t(ops.lm_head(seqs));
  return total;
}

Time StepTable::uniform_prefill(const PrefillShape& asked) {
  const PrefillShape shape{std::max(asked.tokens, t_min_), std::max(1.0, asked.keys)};
  if (options_.pricing == StepPricing::Exact) {
    const auto [w, exact] = exact_prefill(shape, t_min_);
    const Key key{exact.tokens, std::llround(2.0 * exact.keys)};
    auto it = exact_prefill_.find(key);
    if (it == exact_prefill_.end()) it = exact_prefill_.emplace(key, price({w}).front()).first;
    return Time::ms(it->second);
  }
  const PrefillShape exact = exact_prefill(shape, t_min_).second;
  ++seen_prefill_[{exact.tokens, std::llround(2.0 * exact.keys)}];
  return Time::ms(prefill_ms(shape.tokens, shape.keys));
}

// ---- decode ---------------------------------------------------------------------------------

void StepTable::ensure_decode(const std::vector<Key>& nodes) {
  std::vector<Key> missing;
  for (const Key& k : nodes)
    if (!decode_nodes_.count(k) && std::find(missing.begin(), missing.end(), k) == missing.end()) missing.push_back(k);
  if (missing.empty()) return;
  std::vector<nlohmann::json> w;
  for (const Key& k : missing) {
    nlohmann::json d = {{"mode", "decode"}, {"batch_per_gpu", k.first}, {"kv_len", k.second}};
    d.update(decode_extra_);
    w.push_back(d);
  }
  const std::vector<double> ms = price(w);
  for (std::size_t i = 0; i < missing.size(); ++i) decode_nodes_[missing[i]] = ms[i];
}

double StepTable::decode_ms(std::int64_t batch, double kv) {
  const auto [b0, b1] = bracket(static_cast<double>(batch), b_min_);
  const double k = std::max(1.0, kv);
  const auto [k0, k1] = bracket(k, 1);
  ensure_decode({{b0, k0}, {b0, k1}, {b1, k0}, {b1, k1}});
  auto at = [&](std::int64_t b) {
    return lerp(k, static_cast<double>(k0), static_cast<double>(k1), decode_nodes_.at({b, k0}), decode_nodes_.at({b, k1}));
  };
  const double x = std::max(static_cast<double>(batch), static_cast<double>(b_min_));
  return lerp(x, static_cast<double>(b0), static_cast<double>(b1), at(b0), at(b1));
}

Time StepTable::decode(const DecodeShape& shape) {
  const Key exact{std::max(b_min_, shape.batch), std::max<std::int64_t>(1, std::llround(shape.kv))};
  if (options_.pricing == StepPricing::Exact) {
    auto it = exact_decode_.find(exact);
    if (it == exact_decode_.end()) {
      nlohmann::json d = {{"mode", "decode"}, {"batch_per_gpu", exact.first}, {"kv_len", exact.second}};
      d.update(decode_extra_);
      it = exact_decode_.emplace(exact, price({d}).front()).first;
    }
    return Time::ms(it->second);
  }
  ++seen_decode_[exact];
  return Time::ms(decode_ms(shape.batch, shape.kv));
}

// ---- the interpolation against exact runs ---------------------------------------------------

namespace {
// Up to n of the keys, evenly spread over their sorted order.
std::vector<std::pair<std::int64_t, std::int64_t>> spread(const std::vector<std::pair<std::int64_t, std::int64_t>>& keys, int n) {
  if (static_cast<int>(keys.size()) <= n) return keys;
  std::vector<std::pair<std::int64_t, std::int64_t>> out;
  for (int i = 0; i < n; ++i)
    out.push_back(keys[static_cast<std::size_t>((2 * i + 1) * static_cast<std::int64_t>(keys.size()) / (2 * n))]);
  return out;
}
}  // namespace

std::vector<TableCheck> StepTable::check(int samples) {
  std::vector<TableCheck> out;
  if (options_.pricing != StepPricing::Interpolated || samples <= 0) return out;
  // Shapes that are not grid nodes (on a node interpolation is exact by construction).
  std::vector<Key> pre, dec;
  for (const auto& [k, count] : seen_prefill_) {
    const bool t_node = k.first == t_min_ || (k.first > t_min_ && pow2_floor(static_cast<double>(k.first)) == k.first);
    const std::int64_t s = k.second - 1;  // 2K - 1
    if (!(t_node && s >= 1 && pow2_floor(static_cast<double>(s)) == s)) pre.push_back(k);
  }
  for (const auto& [k, count] : seen_decode_) {
    const bool b_node = k.first == b_min_ || pow2_floor(static_cast<double>(k.first)) == k.first;
    if (!(b_node && pow2_floor(static_cast<double>(k.second)) == k.second)) dec.push_back(k);
  }
  // Split the samples between the phases in proportion, at least one each where there are shapes.
  int n_pre = pre.empty() ? 0 : dec.empty() ? samples : std::max(1, samples / 2);
  int n_dec = dec.empty() ? 0 : samples - n_pre;
  if (n_dec == 0 && !dec.empty() && samples > 1) n_dec = 1, n_pre = samples - 1;
  const auto pre_pick = spread(pre, n_pre), dec_pick = spread(dec, n_dec);
  std::vector<nlohmann::json> workloads;
  for (const Key& k : pre_pick) {
    const PrefillShape shape{k.first, static_cast<double>(k.second) / 2.0};
    workloads.push_back(exact_prefill(shape, t_min_).first);
    out.push_back({"prefill", k.first, shape.keys, prefill_ms(k.first, shape.keys), 0});
  }
  for (const Key& k : dec_pick) {
    nlohmann::json d = {{"mode", "decode"}, {"batch_per_gpu", k.first}, {"kv_len", k.second}};
    d.update(decode_extra_);
    workloads.push_back(d);
    out.push_back({"decode", k.first, static_cast<double>(k.second), decode_ms(k.first, static_cast<double>(k.second)), 0});
  }
  // Exact runs always: never extrapolated.
  std::vector<nlohmann::json> docs;
  for (const nlohmann::json& w : workloads) docs.push_back(with_workload(w));
  const std::vector<double> ms = pricer_(docs);
  runs_ += static_cast<int>(docs.size());
  for (std::size_t i = 0; i < out.size(); ++i) out[i].exact_ms = ms[i];
  return out;
}

}  // namespace epsim::serving
