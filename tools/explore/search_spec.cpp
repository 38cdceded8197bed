#include "tools/explore/search_spec.h"

#include <functional>

#include <fmt/format.h>

#include "models/limits.h"
#include "sim/scenario.h"
#include "sim/serving/serving_spec.h"
#include "tools/explore/base_scenario.h"

namespace epsim::explore {

namespace {

const Schema& top_schema() {
  static const Schema s{"search", {
      {"name", "string", "", "", "search name, printed and used for the output folder"},
      {"base", "any", "scenarios/seed.json", "", "the model, GPU, fabric, routing and cost model: a scenario file (relative to the working directory) or an inline scenario; its workload and serving sections are replaced"},
      {"set", "object", nlohmann::json::object(), "", "overrides applied to the base, {\"key.path\": value} as `epsim run --set` (e.g. gpu.preset)"},
      {"nodes", "integer", 32, "nodes", "the budget: a deployment uses at most this many nodes (of the base's cluster.gpus_per_node GPUs)"},
      {"traffic", "object", nlohmann::json::object(), "", "the requests (see search.traffic.*)"},
      {"targets", "object", nlohmann::json::object(), "", "latency targets (see search.targets.*)"},
      {"space", "object", nlohmann::json::object(), "", "what is searched (see search.space.*)"},
      {"confirm", "integer", 8, "", "points of the pruning pass's fronts (and the best others) re-run exactly: every layer, the flow network; the front printed is theirs"},
      {"configs_per_phase", "integer", 3, "", "pool configurations (instance nodes, TP, overlap, dispatch, placement) kept per phase after ranking them by their step tables (prefill: tokens/s per GPU; decode: tokens/s per GPU at each batch limit; colocated: both); their Pareto fronts first"},
      {"check_samples", "integer", 2, "", "serving.check_samples of the confirmed runs and written scenarios"},
  }};
  return s;
}

const Schema& traffic_schema() {
  static const Schema s{"search.traffic", {
      {"input_tokens", "integer", 2048, "tokens", "mean prompt length (serving.input_tokens)"},
      {"output_tokens", "integer", 256, "tokens", "mean output length (serving.output_tokens)"},
      {"length_spread", "number", 0.0, "", "serving.length_spread"},
      {"prefix_hit", "number", 0.0, "", "serving.prefix_hit"},
      {"requests", "integer", 600, "requests", "Poisson requests per simulated deployment (serving.requests)"},
      {"seed", "integer", 1, "", "serving.seed"},
      {"rate", "number", 0.0, "requests/s", "arrival rate every deployment serves; 0: each deployment at search.space.loads x its capacity (estimated from its step tables: prefill and decode tokens/s at its batch limits)"},
  }};
  return s;
}

const Schema& targets_schema() {
  static const Schema s{"search.targets", {
      {"ttft_ms", "number", 0.0, "ms", "time-to-first-token target at the percentile (0: none)"},
      {"tpot_ms", "number", 0.0, "ms", "time-per-output-token target at the percentile (0: none)"},
      {"percentile", "integer", 90, "", "50 | 90 | 99: the latency percentile the targets and the fronts use"},
  }};
  return s;
}

const Schema& space_schema() {
  static const Schema s{"search.space", {
      {"modes", "array", nlohmann::json::array({"colocated", "disaggregated"}), "", "colocated (one pool, instances of the budget's nodes) and/or disaggregated (a prefill and a decode pool)"},
      {"instance_nodes", "array", nlohmann::json::array({8, 16, 32}), "nodes", "nodes of one instance; its EP group is all its GPUs (parallelism.ep = nodes x gpus_per_node; when that does not divide the experts, parallelism.slots_per_gpu rounds up and eplb fills the extra slots)"},
      {"attention_tp", "array", nlohmann::json::array({4, 8}), "GPUs", "parallelism.attention_tp values"},
      {"overlap", "array", nlohmann::json::array({"serial"}), "", "schedule.overlap values"},
      {"chunks", "array", nlohmann::json::array({1}), "", "schedule.chunks values (token batches per dispatch and combine)"},
      {"dispatch_impl", "array", nlohmann::json::array({"ideal"}), "", "network.dispatch_impl values (e.g. normal, low_latency)"},
      {"placement", "array", nlohmann::json::array({"contiguous"}), "", "placement.strategy values"},
      {"prefill_nodes", "array", nlohmann::json::array({8, 16}), "nodes", "disaggregated: nodes of the prefill pool (a multiple of its instance's); the decode pool takes the instances that fit the rest of the budget"},
      {"max_batch_per_gpu", "array", nlohmann::json::array({4, 8, 16, 32}), "sequences", "serving.max_batch_per_gpu values (capped by what the KV cache holds)"},
      {"max_prefill_tokens_per_gpu", "array", nlohmann::json::array({2048, 8192}), "tokens", "serving.max_prefill_tokens_per_gpu values"},
      {"chunked_prefill", "array", nlohmann::json::array({true}), "", "serving.chunked_prefill values"},
      {"loads", "array", nlohmann::json::array({0.5, 0.8}), "", "arrival rate as a share of each deployment's estimated capacity, each in (0, 1.5] (when search.traffic.rate = 0)"},
  }};
  return s;
}

template <class T>
std::vector<T> list_of(const ConfigObject& c, const char* key, const std::function<T(const nlohmann::json&)>& read) {
  const nlohmann::json& v = c.raw(key);
  if (!v.is_array() || v.empty()) c.fail(key, "must be a non-empty array");
  std::vector<T> out;
  for (std::size_t i = 0; i < v.size(); ++i) {
    try {
      out.push_back(read(v[i]));
    } catch (const std::invalid_argument& e) {
      throw ConfigError(fmt::format("{}[{}]", c.path_of(key), i), json_text(v[i]), e.what());
    }
  }
  return out;
}

std::function<std::string(const nlohmann::json&)> one_of(std::vector<std::string> allowed) {
  return [allowed](const nlohmann::json& v) {
    std::string list;
    for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
    if (v.is_string())
      for (const auto& a : allowed)
        if (a == v.get<std::string>()) return a;
    throw std::invalid_argument("must be one of: " + list);
  };
}

std::function<std::int64_t(const nlohmann::json&)> integer_at_least(std::int64_t low) {
  return [low](const nlohmann::json& v) {
    if (!v.is_number_integer() || v.get<std::int64_t>() < low) throw std::invalid_argument(fmt::format("must be an integer >= {}", low));
    return v.get<std::int64_t>();
  };
}

}  // namespace

std::vector<const Schema*> SearchSpec::schemas() {
  return {&top_schema(), &traffic_schema(), &targets_schema(), &space_schema()};
}

SearchSpec SearchSpec::from_json(const nlohmann::json& j) {
  ConfigObject c(j, "", top_schema());
  SearchSpec s;
  s.name = c.string("name");
  s.base = base_scenario(c);
  s.base.erase("serving");
  s.base.erase("workload");
  try {
    (void)Scenario::from_json(s.base);
  } catch (const ConfigError& e) {
    throw ConfigError("base." + e.path(), e.value(), e.rule() + " (the search's base scenario)");
  }
  s.nodes = c.integer_in<int>("nodes", 1, limits::kGpus);

  ConfigObject t(c.raw("traffic"), "traffic", traffic_schema());
  s.traffic = {{"input_tokens", t.integer("input_tokens", 1)}, {"output_tokens", t.integer("output_tokens", 1)},
               {"length_spread", t.number("length_spread")}, {"prefix_hit", t.number("prefix_hit")},
               {"requests", t.integer("requests", 1)}, {"seed", t.integer("seed", 0)}};
  s.rate = t.number_in("rate", 0.0, 1e9, "requests/s");
  // The serving section's own rules (spread and hit ranges) under the search's paths.
  try {
    (void)serving::ServingSpec::from_json(s.traffic);
  } catch (const ConfigError& e) {
    const std::string key = e.path().substr(std::string("serving.").size());
    throw ConfigError("traffic." + key, json_text(t.raw(key)), e.rule());
  }

  ConfigObject g(c.raw("targets"), "targets", targets_schema());
  s.ttft_ms = g.number_in("ttft_ms", 0.0, 1e9, "ms");
  s.tpot_ms = g.number_in("tpot_ms", 0.0, 1e9, "ms");
  s.percentile = g.integer_in<int>("percentile", 1, 99);
  if (s.percentile != 50 && s.percentile != 90 && s.percentile != 99) g.fail("percentile", "must be 50, 90 or 99");

  ConfigObject p(c.raw("space"), "space", space_schema());
  SearchSpace& sp = s.space;
  sp.modes = list_of<std::string>(p, "modes", one_of({"colocated", "disaggregated"}));
  auto ints = [&](const char* key, std::int64_t low) {
    std::vector<int> out;
    for (std::int64_t v : list_of<std::int64_t>(p, key, integer_at_least(low))) {
      if (v > limits::kGpus) p.fail(key, fmt::format("{}: must be <= {} (scenarios/README.md, Limits)", v, limits::kGpus));
      out.push_back(static_cast<int>(v));
    }
    return out;
  };
  sp.instance_nodes = ints("instance_nodes", 1);
  sp.attention_tp = ints("attention_tp", 1);
  sp.overlap = list_of<std::string>(p, "overlap", one_of({"serial", "dual-microbatch", "decode-5stage"}));
  sp.chunks = ints("chunks", 1);
  sp.dispatch_impl = list_of<std::string>(p, "dispatch_impl", [](const nlohmann::json& v) {
    if (!v.is_string()) throw std::invalid_argument("must be a string (a network.dispatch_impl)");
    return v.get<std::string>();
  });
  sp.placement = list_of<std::string>(p, "placement", [](const nlohmann::json& v) {
    if (!v.is_string()) throw std::invalid_argument("must be a string (a placement.strategy)");
    return v.get<std::string>();
  });
  sp.prefill_nodes = ints("prefill_nodes", 1);
  sp.max_batch_per_gpu = list_of<std::int64_t>(p, "max_batch_per_gpu", integer_at_least(1));
  sp.max_prefill_tokens_per_gpu = list_of<std::int64_t>(p, "max_prefill_tokens_per_gpu", integer_at_least(1));
  sp.chunked_prefill = list_of<bool>(p, "chunked_prefill", [](const nlohmann::json& v) {
    if (!v.is_boolean()) throw std::invalid_argument("must be true or false");
    return v.get<bool>();
  });
  sp.loads = list_of<double>(p, "loads", [](const nlohmann::json& v) {
    if (!v.is_number() || !(v.get<double>() > 0 && v.get<double>() <= 1.5)) throw std::invalid_argument("must be a number in (0, 1.5]");
    return v.get<double>();
  });
  // The default sizes above the budget are dropped; sizes the specification gives must fit.
  if (!p.has("instance_nodes")) std::erase_if(sp.instance_nodes, [&](int n) { return n > s.nodes; });
  if (sp.instance_nodes.empty()) sp.instance_nodes = {s.nodes};
  if (!p.has("prefill_nodes")) std::erase_if(sp.prefill_nodes, [&](int n) { return n >= s.nodes; });
  for (int n : sp.instance_nodes)
    if (n > s.nodes) p.fail("instance_nodes", fmt::format("{} nodes: more than the budget, search.nodes = {}", n, s.nodes));
  s.confirm = c.integer_in<int>("confirm", 1, 1000);
  s.per_mode_configs = c.integer_in<int>("configs_per_phase", 1, 1000);
  s.check_samples = c.integer_in<int>("check_samples", 0, 64);
  return s;
}

}  // namespace epsim::explore
