#include "tools/explore/deployment_search.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>

#include <fmt/format.h>

#include "models/errors.h"
#include "sim/scenario.h"
#include "sim/serving/kv_budget.h"
#include "sim/serving/serving_run.h"
#include "tools/explore/pareto.h"
#include "tools/explore/serving_pricer.h"

namespace epsim::explore {

using serving::DecodeShape;
using serving::PrefillShape;
using serving::Role;

// ---- points and documents -------------------------------------------------------------------

nlohmann::json PoolChoice::set(int gpus_per_node) const {
  return {{"cluster.nodes", nodes},
          {"parallelism.ep", nodes * gpus_per_node},
          {"parallelism.attention_tp", tp},
          {"parallelism.slots_per_gpu", slots},
          {"placement.strategy", slots > 0 ? std::string("eplb") : placement},
          {"schedule.overlap", overlap},
          {"schedule.chunks", chunks},
          {"network.dispatch_impl", dispatch_impl}};
}

std::string PoolChoice::label(int gpus_per_node) const {
  std::string s = fmt::format("{} nodes, EP {}", nodes, nodes * gpus_per_node);
  if (slots > 0) s += fmt::format(" ({} slots/GPU, eplb)", slots);
  s += fmt::format(", TP {}, {}", tp, overlap);
  if (chunks > 1) s += fmt::format(" x {} chunks", chunks);
  if (dispatch_impl != "ideal") s += ", " + dispatch_impl;
  if (placement != "contiguous" && slots == 0) s += ", " + placement;
  return s;
}

std::string SearchPoint::label(int gpus_per_node) const {
  if (!disaggregated) return fmt::format("colocated {} x [{}]", decode_instances, decode.label(gpus_per_node));
  return fmt::format("prefill {} x [{}] + decode {} x [{}]", prefill_instances, prefill.label(gpus_per_node), decode_instances,
                     decode.label(gpus_per_node));
}

namespace {

void apply_set(nlohmann::json& doc, const nlohmann::json& set) {
  for (auto it = set.begin(); it != set.end(); ++it) apply_override(doc, it.key() + "=" + it.value().dump());
}

// The instance scenario of a pool choice (analytical or flow network).
nlohmann::json pool_doc(const SearchSpec& spec, const PoolChoice& c, int gpn, const std::string& network) {
  nlohmann::json d = spec.base;
  apply_set(d, c.set(gpn));
  d["network"]["model"] = network;
  return d;
}

std::int64_t max_length(std::int64_t mean, double spread) {
  return std::max<std::int64_t>(1, std::llround(static_cast<double>(mean) * (1.0 + spread)));
}

}  // namespace

nlohmann::json point_document(const SearchSpec& spec, const SearchPoint& p, int gpn, const std::string& network, int check_samples) {
  nlohmann::json d = pool_doc(spec, p.decode, gpn, network);
  if (!spec.name.empty()) d["name"] = spec.name;
  d["description"] = "epsim search: " + p.label(gpn);
  const std::int64_t in = spec.traffic.at("input_tokens"), out = spec.traffic.at("output_tokens");
  nlohmann::json w = {{"mode", "decode"}, {"batch_per_gpu", std::max<std::int64_t>(1, p.batch_held)}, {"kv_len", in + out / 2}};
  d["workload"] = w;
  nlohmann::json s = spec.traffic;
  s["arrivals"] = "poisson";
  s["rate"] = p.rate;
  s["max_batch_per_gpu"] = p.max_batch;
  s["max_prefill_tokens_per_gpu"] = p.prefill_tokens;
  s["chunked_prefill"] = p.chunked;
  s["ttft_ms"] = spec.ttft_ms;
  s["tpot_ms"] = spec.tpot_ms;
  s["check_samples"] = check_samples;
  if (p.disaggregated) {
    s["disaggregated"] = true;
    nlohmann::json pre = p.prefill.set(gpn);
    pre["network.model"] = network;
    s["prefill"] = {{"instances", p.prefill_instances}, {"set", pre}};
    s["decode"] = {{"instances", p.decode_instances}, {"set", nlohmann::json::object()}};
  } else {
    s["instances"] = p.decode_instances;
  }
  d["serving"] = s;
  return d;
}

void mark_fronts(std::vector<SearchPoint>& points) {
  std::vector<std::size_t> feasible;
  for (std::size_t i = 0; i < points.size(); ++i) {
    points[i].front_tpot = points[i].front_ttft = false;
    if (points[i].error.empty() && points[i].feasible) feasible.push_back(i);
  }
  std::vector<ParetoItem> tpot, ttft;
  for (std::size_t i : feasible) {
    tpot.push_back({points[i].throughput, points[i].tpot});
    ttft.push_back({points[i].throughput, points[i].ttft});
  }
  for (std::size_t k : pareto_front(tpot)) points[feasible[k]].front_tpot = true;
  for (std::size_t k : pareto_front(ttft)) points[feasible[k]].front_ttft = true;
}

namespace {

// ---- characterisation -----------------------------------------------------------------------

struct DecodeFigure {
  std::int64_t held = 0;     // sequences per GPU (the busiest rank's share)
  double tokens_per_s = 0;   // per GPU
  double step_ms = 0;
};

struct ConfigInfo {
  PoolChoice choice;
  nlohmann::json doc;  // analytical
  int gpus = 0;
  bool prefill_ok = false, decode_ok = false;
  std::map<std::int64_t, double> prefill_rate;  // budget -> prompt tokens/s per GPU
  double one_prompt_ms = 0;                     // one prompt alone on a rank
  std::map<std::int64_t, DecodeFigure> decode;  // batch limit -> figure
  double best_prefill() const {
    double b = 0;
    for (const auto& [k, v] : prefill_rate) b = std::max(b, v);
    return b;
  }
  double best_decode() const {
    double b = 0;
    for (const auto& [k, v] : decode) b = std::max(b, v.tokens_per_s);
    return b;
  }
};

struct Traffic {
  std::int64_t input = 1, output = 1, input_max = 1, output_max = 1;
  double hit = 0;
  double computed() const { return static_cast<double>(input) * (1.0 - hit); }
  // Mean keys per prompt query: the cached prefix plus half the computed part.
  double prompt_keys() const { return static_cast<double>(input) * hit + (computed() + 1.0) / 2.0; }
};

serving::ServingSpec limits(const Traffic& t, std::int64_t batch, std::int64_t prefill) {
  serving::ServingSpec s;
  s.input_tokens = t.input;
  s.output_tokens = t.output;
  s.max_batch_per_gpu = batch;
  s.max_prefill_tokens_per_gpu = prefill;
  return s;
}

// Why `c` cannot serve (empty: it can), and its figures when it can.
std::string characterise(ConfigInfo& info, const SearchSpec& spec, const Traffic& t, serving::TableCache& tables) {
  Scenario sc;
  try {
    sc = Scenario::from_json(info.doc);
  } catch (const ConfigError& e) {
    return e.what();
  }
  info.gpus = sc.cluster.gpu_count();
  const int tp = sc.parallelism.attention_tp;
  const std::int64_t smallest_batch = *std::min_element(spec.space.max_batch_per_gpu.begin(), spec.space.max_batch_per_gpu.end());
  const std::int64_t smallest_prefill =
      *std::min_element(spec.space.max_prefill_tokens_per_gpu.begin(), spec.space.max_prefill_tokens_per_gpu.end());
  std::string why;
  try {
    const serving::KvBudget pre = serving::kv_budget(sc, limits(t, smallest_batch, smallest_prefill), Role::Prefill, "prefill");
    info.prefill_ok = pre.rank_tokens >= t.input_max;
    if (!info.prefill_ok) why = fmt::format("a DP rank holds {} KV tokens, a prompt needs up to {}", pre.rank_tokens, t.input_max);
  } catch (const ConfigError& e) {
    why = e.rule();
  }
  serving::StepTable& table = tables.table(info.doc, serving::StepPricing::Interpolated);
  const double tokens_per_step = sc.workload.mtp_tokens > 0 ? [&] {
    Workload w = sc.workload;
    w.batch_per_gpu = 1;
    return w.output_tokens();
  }() : 1.0;
  for (std::int64_t b : spec.space.max_batch_per_gpu) {
    serving::KvBudget dec;
    try {
      dec = serving::kv_budget(sc, limits(t, b, smallest_prefill), Role::Decode, "decode");
    } catch (const ConfigError& e) {
      why = e.rule();
      continue;
    }
    if (dec.rank_tokens < t.input_max + t.output_max) {
      why = fmt::format("a DP rank holds {} KV tokens, a request needs up to {}", dec.rank_tokens, t.input_max + t.output_max);
      continue;
    }
    const std::int64_t rank_held = std::min(b * tp, dec.rank_tokens / (t.input + t.output));
    DecodeFigure f;
    f.held = (rank_held + tp - 1) / tp;
    f.step_ms = table.decode({f.held, static_cast<double>(t.input) + static_cast<double>(t.output) / 2.0}).to_ms();
    f.tokens_per_s = static_cast<double>(rank_held) / tp * tokens_per_step / (f.step_ms * 1e-3);
    info.decode[b] = f;
  }
  info.decode_ok = !info.decode.empty();
  if (info.prefill_ok) {
    for (std::int64_t p : spec.space.max_prefill_tokens_per_gpu)
      info.prefill_rate[p] = static_cast<double>(p) / (table.prefill({p, t.prompt_keys()}).to_ms() * 1e-3);
    const auto one = static_cast<std::int64_t>(std::ceil(t.computed() / tp));
    info.one_prompt_ms = table.prefill({std::max<std::int64_t>(1, one), t.prompt_keys()}).to_ms();
  }
  return info.prefill_ok || info.decode_ok ? "" : why;
}

// Up to `keep` of `n` items: those on the Pareto front of (gain, cost) first, by decreasing gain,
// then the others by decreasing gain.
std::vector<std::size_t> keep_best(const std::vector<ParetoItem>& items, const std::vector<std::size_t>& owner, int keep) {
  std::vector<std::size_t> out;
  auto add = [&](std::size_t o) {
    if (static_cast<int>(out.size()) < keep && std::find(out.begin(), out.end(), o) == out.end()) out.push_back(o);
  };
  for (std::size_t i : pareto_front(items)) add(owner[i]);
  std::vector<std::size_t> order(items.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return items[a].gain > items[b].gain; });
  for (std::size_t i : order) add(owner[i]);
  return out;
}

// Every pool configuration of the space (one per placement only when eplb fills extra slots).
std::vector<PoolChoice> pool_choices(const SearchSpace& sp, int gpn, int experts) {
  std::vector<PoolChoice> out;
  for (int n : sp.instance_nodes)
    for (int tp : sp.attention_tp)
      for (const std::string& o : sp.overlap)
        for (int ch : sp.chunks)
          for (const std::string& di : sp.dispatch_impl)
            for (const std::string& pl : sp.placement) {
              PoolChoice c{n, tp, 0, ch, o, di, pl};
              const int ep = n * gpn;
              if (experts % ep != 0) c.slots = (experts + ep - 1) / ep;
              if (c.slots > 0 && pl != sp.placement.front()) continue;  // eplb either way
              out.push_back(c);
            }
  return out;
}

// ---- serving the points ---------------------------------------------------------------------

double at_percentile(const serving::Percentiles& p, int percentile) {
  return percentile == 50 ? p.p50 : percentile == 90 ? p.p90 : p.p99;
}

void serve_point(SearchPoint& p, const SearchSpec& spec, int gpn, const std::string& network, int check_samples,
                 serving::TableCache& tables, bool check) {
  try {
    const nlohmann::json doc = point_document(spec, p, gpn, network, check_samples);
    const serving::ServingRun run = serving::run_serving(doc, tables, check);
    const serving::ServingMetrics& m = run.metrics;
    p.throughput = m.sustained_output_tokens_per_s_per_gpu;
    p.ttft = at_percentile(m.ttft, spec.percentile);
    p.tpot = at_percentile(m.tpot, spec.percentile);
    p.attainment = m.attainment;
    p.feasible = (spec.ttft_ms <= 0 || p.ttft <= spec.ttft_ms) && (spec.tpot_ms <= 0 || p.tpot <= spec.tpot_ms);
    p.gpus = run.result.gpus;
    p.nodes = run.result.nodes;
    p.doc = doc;
  } catch (const ConfigError& e) {
    p.error = e.what();
  } catch (const InputError& e) {
    p.error = e.what();
  }
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

SearchResult run_search(const SearchSpec& spec, int threads, const SearchProgress& progress) {
  SearchResult res;
  const Scenario base = Scenario::from_json(spec.base);
  const int gpn = base.cluster.gpus_per_node;
  res.gpus_per_node = gpn;
  const int experts = base.model.routed_experts + base.parallelism.routed_shared(base.model);
  Traffic t;
  t.input = spec.traffic.at("input_tokens");
  t.output = spec.traffic.at("output_tokens");
  const double spread = spec.traffic.at("length_spread");
  t.input_max = max_length(t.input, spread);
  t.output_max = max_length(t.output, spread);
  t.hit = spec.traffic.at("prefix_hit");

  // 1-2. Pool configurations and their step tables (analytical network, layers extrapolated).
  const auto t0 = std::chrono::steady_clock::now();
  serving::TableCache cheap(threaded_pricer(threads), true);
  std::vector<ConfigInfo> configs;
  for (const PoolChoice& c : pool_choices(spec.space, gpn, experts)) {
    ++res.configs;
    ConfigInfo info;
    info.choice = c;
    info.doc = pool_doc(spec, c, gpn, "analytical");
    const std::string why = characterise(info, spec, t, cheap);
    if (!why.empty()) {
      res.rejected.push_back(c.label(gpn) + ": " + why);
      continue;
    }
    progress(fmt::format("  config {}: prefill {:.0f} tokens/s/GPU, decode up to {:.1f} tokens/s/GPU", c.label(gpn),
                         info.best_prefill(), info.best_decode()));
    configs.push_back(std::move(info));
  }
  res.characterise_s = seconds_since(t0);

  // Kept per phase: a prefill configuration must fit a prefill pool of search.space.prefill_nodes,
  // a decode one the rest of the budget.
  auto want = [&](const char* mode) { return std::find(spec.space.modes.begin(), spec.space.modes.end(), mode) != spec.space.modes.end(); };
  auto prefill_fits = [&](const PoolChoice& c) {
    for (int pn : spec.space.prefill_nodes)
      if (pn % c.nodes == 0 && pn < spec.nodes) return true;
    return false;
  };
  auto decode_fits = [&](const PoolChoice& c) {
    for (int pn : spec.space.prefill_nodes)
      if (spec.nodes - pn >= c.nodes) return true;
    return false;
  };
  std::vector<ParetoItem> pre, dec, col;
  std::vector<std::size_t> pre_owner, dec_owner, col_owner;
  for (std::size_t i = 0; i < configs.size(); ++i) {
    const ConfigInfo& c = configs[i];
    const bool disaggregated = want("disaggregated");
    if (c.prefill_ok && disaggregated && prefill_fits(c.choice)) {
      pre.push_back({c.best_prefill(), c.one_prompt_ms});
      pre_owner.push_back(i);
    }
    for (const auto& [b, f] : c.decode) {
      if (disaggregated && decode_fits(c.choice)) {
        dec.push_back({f.tokens_per_s, f.step_ms});
        dec_owner.push_back(i);
      }
      if (!c.prefill_ok || !want("colocated")) continue;
      for (const auto& [p, rate] : c.prefill_rate) {
        // Requests/s per GPU: a request costs its computed prompt at the prefill rate and its other
        // output tokens at the decode rate, on the same GPUs.
        const double per_gpu = 1.0 / (t.computed() / rate + static_cast<double>(t.output - 1) / f.tokens_per_s);
        col.push_back({per_gpu, f.step_ms});
        col_owner.push_back(i);
      }
    }
  }
  const int keep = spec.per_mode_configs;
  const std::vector<std::size_t> keep_pre = keep_best(pre, pre_owner, keep), keep_dec = keep_best(dec, dec_owner, keep),
                                 keep_col = keep_best(col, col_owner, keep);
  auto names = [&](const char* phase, const std::vector<std::size_t>& k) {
    for (std::size_t i : k) res.kept.push_back(std::string(phase) + ": " + configs[i].choice.label(gpn));
  };
  names("prefill", keep_pre);
  names("decode", keep_dec);
  names("colocated", keep_col);

  // 3. Candidates and the pruning pass.
  const auto t1 = std::chrono::steady_clock::now();
  const std::vector<double> loads = spec.rate > 0 ? std::vector<double>{1.0} : spec.space.loads;
  auto add_points = [&](SearchPoint shape, const ConfigInfo* pre_c, const ConfigInfo& dec_c) {
    std::vector<std::int64_t> held;  // a larger limit the KV cache caps to a held batch seen already adds nothing
    std::vector<std::int64_t> limits = spec.space.max_batch_per_gpu;
    std::sort(limits.begin(), limits.end());
    for (std::int64_t b : limits) {
      auto f = dec_c.decode.find(b);
      if (f == dec_c.decode.end()) continue;
      if (std::find(held.begin(), held.end(), f->second.held) != held.end()) continue;
      held.push_back(f->second.held);
      for (std::int64_t p : spec.space.max_prefill_tokens_per_gpu)
        for (bool chunked : spec.space.chunked_prefill)
          for (double load : loads) {
            SearchPoint q = shape;
            q.max_batch = b;
            q.prefill_tokens = p;
            q.chunked = chunked;
            q.load = load;
            q.batch_held = f->second.held;
            const double pre_rate = (pre_c ? *pre_c : dec_c).prefill_rate.at(p);  // tokens/s per GPU
            const double dec_rate = f->second.tokens_per_s;
            double capacity;  // requests/s
            if (!q.disaggregated) {
              capacity = q.decode_instances * dec_c.gpus / (t.computed() / pre_rate + static_cast<double>(t.output - 1) / dec_rate);
            } else {
              const double prefill_cap = q.prefill_instances * pre_c->gpus * pre_rate / t.computed();
              const double decode_cap = t.output > 1 ? q.decode_instances * dec_c.gpus * dec_rate / static_cast<double>(t.output - 1)
                                                     : prefill_cap;
              capacity = std::min(prefill_cap, decode_cap);
            }
            q.rate = spec.rate > 0 ? spec.rate : load * capacity;
            res.pruned.push_back(q);
          }
    }
  };
  if (want("colocated"))
    for (std::size_t i : keep_col) {
      SearchPoint s;
      s.decode = s.prefill = configs[i].choice;
      s.decode_instances = spec.nodes / configs[i].choice.nodes;
      add_points(s, nullptr, configs[i]);
    }
  if (want("disaggregated"))
    for (std::size_t ip : keep_pre)
      for (std::size_t id : keep_dec)
        for (int pn : spec.space.prefill_nodes) {
          const PoolChoice& cp = configs[ip].choice;
          const PoolChoice& cd = configs[id].choice;
          if (pn % cp.nodes != 0 || pn >= spec.nodes) continue;
          const int kd = (spec.nodes - pn) / cd.nodes;
          if (kd < 1) continue;
          SearchPoint s;
          s.disaggregated = true;
          s.prefill = cp;
          s.decode = cd;
          s.prefill_instances = pn / cp.nodes;
          s.decode_instances = kd;
          add_points(s, &configs[ip], configs[id]);
        }
  progress(fmt::format("  pruning pass: {} deployments on the analytical network (layers extrapolated)", res.pruned.size()));
  for (SearchPoint& p : res.pruned) serve_point(p, spec, gpn, "analytical", 0, cheap, false);
  mark_fronts(res.pruned);
  res.prune_runs = cheap.runs();
  res.prune_s = seconds_since(t1);

  // 4. Confirmation: the pruning fronts first, then the best others (feasible first).
  std::vector<std::size_t> order;
  for (std::size_t i = 0; i < res.pruned.size(); ++i)
    if (res.pruned[i].error.empty()) order.push_back(i);
  auto rank = [&](const SearchPoint& p) { return (p.front_tpot || p.front_ttft ? 0 : p.feasible ? 1 : 2); };
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    const SearchPoint &x = res.pruned[a], &y = res.pruned[b];
    if (rank(x) != rank(y)) return rank(x) < rank(y);
    if (rank(x) == 2 && x.attainment != y.attainment) return x.attainment > y.attainment;
    return x.throughput > y.throughput;
  });
  if (static_cast<int>(order.size()) > spec.confirm) order.resize(static_cast<std::size_t>(spec.confirm));
  const auto t2 = std::chrono::steady_clock::now();
  progress(fmt::format("  confirming {} deployments on the flow network, every layer", order.size()));
  serving::TableCache exact(threaded_pricer(threads));
  std::map<std::string, double> decode_steps;  // the written scenarios' `epsim run` steps, by document
  for (std::size_t i : order) {
    SearchPoint p = res.pruned[i];
    p.error.clear();
    p.front_tpot = p.front_ttft = false;
    serve_point(p, spec, gpn, "flow", spec.check_samples, exact, false);
    if (p.error.empty()) {
      // What `epsim run` gives on the written scenario: its decode step at the held batch.
      nlohmann::json step = p.doc;
      step.erase("serving");
      auto [it, added] = decode_steps.emplace(step.dump(), 0.0);
      if (added) {
        it->second = threaded_pricer(threads)({p.doc}).front();
        ++res.confirm_runs;
      }
      p.decode_step_ms = it->second;
    }
    res.confirmed.push_back(std::move(p));
  }
  // The interpolation against exact runs, once per table over every confirmed run's shapes.
  for (serving::StepTable* table : exact.tables()) {
    const Scenario sc = Scenario::from_json(table->document());
    double worst = 0;
    std::string where;
    const std::vector<serving::TableCheck> checks = table->check(spec.check_samples);
    for (const serving::TableCheck& c : checks)
      if (std::abs(c.error()) >= worst) {
        worst = std::abs(c.error());
        where = fmt::format("{} {} at {:.1f}: {:.3f} ms interpolated, {:.3f} ms exact", c.phase, c.size, c.keys, c.interpolated_ms, c.exact_ms);
      }
    res.check_max_error = std::max(res.check_max_error, worst);
    if (!checks.empty())
      res.checks.push_back(fmt::format("{} nodes, EP {}, TP {}, {}, {}: {} shapes, max |error| {:.2f}% ({})", sc.cluster.nodes,
                                       sc.parallelism.ep, sc.parallelism.attention_tp, sc.schedule.overlap, sc.network.dispatch_impl,
                                       checks.size(), worst * 100.0, where));
  }
  mark_fronts(res.confirmed);
  res.confirm_runs += exact.runs();
  res.confirm_s = seconds_since(t2);
  return res;
}

}  // namespace epsim::explore
