#include "sim/serving/serving_spec.h"

#include <limits>

#include <fmt/format.h>

#include "models/limits.h"
#include "sim/scenario.h"

namespace epsim::serving {

namespace {

const Schema& top_schema() {
  static const Schema s{"serving", {
      {"arrivals", "string", "poisson", "", "poisson: `requests` requests at exponential gaps of mean 1 / rate, lengths from input_tokens, output_tokens and length_spread | trace: replay the CSV file `trace`"},
      {"rate", "number", 1.0, "requests/s", "poisson: arrival rate over the whole deployment, > 0"},
      {"requests", "integer", 1000, "requests", "poisson: how many requests arrive"},
      {"trace", "string", "", "path", "trace: CSV with a row per request, arrival_s,input_tokens,output_tokens (seconds from 0, non-decreasing; a header row and # comments are skipped)"},
      {"input_tokens", "integer", 2048, "tokens", "poisson: mean prompt length"},
      {"output_tokens", "integer", 256, "tokens", "poisson: mean tokens generated per request, the first by the prefill"},
      {"length_spread", "number", 0.0, "", "poisson: each length is drawn uniform in mean x [1 - s, 1 + s] and rounded (at least 1); 0 = every request the same, in [0, 1)"},
      {"seed", "integer", 1, "", "seed of the arrival gaps and lengths"},
      {"prefix_hit", "number", 0.0, "", "fraction of each prompt found in the prefix cache, in [0, 1): its first floor(input x hit) tokens are not computed (their KV is held; at least one token is computed)"},
      {"max_batch_per_gpu", "integer", 64, "sequences", "continuous batching: sequences a GPU holds at once, prefilling or decoding (a DP rank of attention TP n holds n x this)"},
      {"max_prefill_tokens_per_gpu", "integer", 8192, "tokens", "prompt tokens a GPU computes in one prefill step (a DP rank of attention TP n: n x this)"},
      {"chunked_prefill", "boolean", true, "", "true: a prompt longer than the step's room is split over several prefill steps | false: whole prompts only (a prompt longer than the budget runs alone)"},
      {"kv_memory_fraction", "number", 0.9, "", "share of the GPU memory left after weights, activations and communication buffers that holds KV cache, in (0, 1]; a request is admitted when its whole KV (prompt + output) fits"},
      {"instances", "integer", 1, "", "colocated: identical instances of the scenario (each its whole cluster); arrivals go to the instance with the fewest requests"},
      {"disaggregated", "boolean", false, "", "false: one pool runs prefill and decode steps | true: a prefill pool and a decode pool (serving.prefill, serving.decode); a request's KV cache moves from its prefill GPUs to its decode GPUs over the fabric after its prefill"},
      {"prefill", "object", nlohmann::json::object(), "", "disaggregated: the prefill pool (see serving.prefill.*)"},
      {"decode", "object", nlohmann::json::object(), "", "disaggregated: the decode pool (see serving.decode.*)"},
      {"ttft_ms", "number", 0.0, "ms", "time-to-first-token target for goodput (0: none)"},
      {"tpot_ms", "number", 0.0, "ms", "time-per-output-token target for goodput (0: none)"},
      {"step_pricing", "string", "interpolated", "", "interpolated: step times at a grid of batch shapes (decode: sequences per GPU x KV length; prefill: tokens per GPU x keys per query), priced by the step simulator and interpolated bilinearly; the error is measured on check_samples shapes | exact: every distinct shape priced by the step simulator (slow)"},
      {"check_samples", "integer", 4, "", "interpolated: shapes per step table also priced exactly after the run, to report the interpolation error"},
  }};
  return s;
}

const Schema& pool_schema(const std::string& name) {
  static const Schema prefill{"serving.prefill", {
      {"instances", "integer", 1, "", "identical prefill instances (each its whole cluster)"},
      {"set", "object", nlohmann::json::object(), "", "the prefill instance's scenario: the base scenario with these {\"key.path\": value} overrides (e.g. cluster.nodes, parallelism.ep, schedule.overlap)"},
  }};
  static const Schema decode{"serving.decode", {
      {"instances", "integer", 1, "", "identical decode instances (each its whole cluster)"},
      {"set", "object", nlohmann::json::object(), "", "the decode instance's scenario: the base scenario with these {\"key.path\": value} overrides"},
  }};
  return name == "prefill" ? prefill : decode;
}

PoolSpec pool_from_json(const ConfigObject& top, const std::string& name) {
  ConfigObject c(top.raw(name), "serving." + name, pool_schema(name));
  PoolSpec p;
  p.instances = c.integer_in<int>("instances", 1, limits::kGpus);
  p.set = c.raw("set");
  if (!p.set.is_object()) c.fail("set", "must be an object of {\"key.path\": value}");
  return p;
}

nlohmann::json pool_to_json(const PoolSpec& p) { return {{"instances", p.instances}, {"set", p.set}}; }

}  // namespace

std::vector<const Schema*> ServingSpec::schemas() {
  return {&top_schema(), &pool_schema("prefill"), &pool_schema("decode")};
}

ServingSpec ServingSpec::from_json(const nlohmann::json& j) {
  const nlohmann::json obj = j.is_null() ? nlohmann::json::object() : j;
  ConfigObject c(obj, "serving", top_schema());
  ServingSpec s;
  s.arrivals = c.choice("arrivals", {"poisson", "trace"}) == "poisson" ? Arrivals::Poisson : Arrivals::Trace;
  // Ranges (scenarios/README.md, Limits): the run's cost grows with requests x output tokens.
  s.rate = c.number_in("rate", 1e-6, 1e9, "requests/s");
  s.requests = c.integer_in<std::int64_t>("requests", 1, limits::kRequests);
  s.trace = c.string("trace");
  if (s.arrivals == Arrivals::Trace && s.trace.empty()) c.fail("trace", "arrivals = trace needs a CSV file");
  s.input_tokens = c.integer_in<std::int64_t>("input_tokens", 1, limits::kTokensPerGpu);
  s.output_tokens = c.integer_in<std::int64_t>("output_tokens", 1, limits::kTokensPerGpu);
  s.length_spread = c.number("length_spread");
  if (!(s.length_spread >= 0 && s.length_spread < 1)) c.fail("length_spread", "must be in [0, 1)");
  s.seed = c.integer_in<std::uint64_t>("seed", 0, std::numeric_limits<std::int64_t>::max());
  s.prefix_hit = c.number("prefix_hit");
  if (!(s.prefix_hit >= 0 && s.prefix_hit < 1)) c.fail("prefix_hit", "must be in [0, 1)");
  s.max_batch_per_gpu = c.integer_in<std::int64_t>("max_batch_per_gpu", 1, limits::kTokensPerGpu);
  s.max_prefill_tokens_per_gpu = c.integer_in<std::int64_t>("max_prefill_tokens_per_gpu", 1, limits::kTokensPerGpu);
  s.chunked_prefill = c.boolean("chunked_prefill");
  s.kv_memory_fraction = c.fraction("kv_memory_fraction");
  s.disaggregated = c.boolean("disaggregated");
  s.colocated.instances = c.integer_in<int>("instances", 1, limits::kGpus);
  if (s.disaggregated && c.has("instances"))
    c.fail("instances", "disaggregated pools give their own counts (serving.prefill.instances, serving.decode.instances)");
  for (const char* pool : {"prefill", "decode"})
    if (!s.disaggregated && c.has(pool)) c.fail(pool, "a prefill or decode pool needs serving.disaggregated = true");
  s.prefill = pool_from_json(c, "prefill");
  s.decode = pool_from_json(c, "decode");
  s.ttft_ms = c.number_in("ttft_ms", 0.0, 1e9, "ms");
  s.tpot_ms = c.number_in("tpot_ms", 0.0, 1e9, "ms");
  s.pricing = c.choice("step_pricing", {"interpolated", "exact"}) == "exact" ? StepPricing::Exact : StepPricing::Interpolated;
  s.check_samples = c.integer_in<int>("check_samples", 0, 64);
  return s;
}

nlohmann::json ServingSpec::to_json() const {
  nlohmann::json j = {
      {"arrivals", arrivals == Arrivals::Poisson ? "poisson" : "trace"},
      {"rate", rate},
      {"requests", requests},
      {"trace", trace},
      {"input_tokens", input_tokens},
      {"output_tokens", output_tokens},
      {"length_spread", length_spread},
      {"seed", seed},
      {"prefix_hit", prefix_hit},
      {"max_batch_per_gpu", max_batch_per_gpu},
      {"max_prefill_tokens_per_gpu", max_prefill_tokens_per_gpu},
      {"chunked_prefill", chunked_prefill},
      {"kv_memory_fraction", kv_memory_fraction},
      {"disaggregated", disaggregated},
      {"ttft_ms", ttft_ms},
      {"tpot_ms", tpot_ms},
      {"step_pricing", pricing == StepPricing::Exact ? "exact" : "interpolated"},
      {"check_samples", check_samples},
  };
  if (disaggregated) {
    j["prefill"] = pool_to_json(prefill);
    j["decode"] = pool_to_json(decode);
  } else {
    j["instances"] = colocated.instances;
  }
  return j;
}

nlohmann::json pool_document(const nlohmann::json& doc, const PoolSpec& pool, const std::string& pool_name) {
  nlohmann::json out = doc;
  out.erase("serving");
  const std::string where = "serving." + pool_name + ".set";
  for (auto it = pool.set.begin(); it != pool.set.end(); ++it) {
    if (it.key().empty() || it.key().front() == '.' || it.key().back() == '.')
      throw ConfigError(where + "." + it.key(), json_text(it.value()), "must be a scenario key path such as cluster.nodes");
    if (it.key().rfind("serving", 0) == 0)
      throw ConfigError(where + "." + it.key(), json_text(it.value()), "a pool sets scenario keys, not serving keys");
    apply_override(out, it.key() + "=" + it.value().dump());
  }
  try {
    (void)Scenario::from_json(out);
  } catch (const ConfigError& e) {
    // Name the override the user wrote when it is the culprit; else say which pool's scenario.
    if (pool.set.contains(e.path())) throw ConfigError(where + "." + e.path(), e.value(), e.rule());
    throw ConfigError(e.path(), e.value(), e.rule() + " (in the " + pool_name + " pool's scenario)");
  }
  return out;
}

void check_serving_section(const nlohmann::json& doc) {
  if (!doc.is_object() || !doc.contains("serving")) return;
  const ServingSpec s = ServingSpec::from_json(doc.at("serving"));
  for (const auto& [pool, name] : {std::pair{&s.colocated, "colocated"}, {&s.prefill, "prefill"}, {&s.decode, "decode"}})
    if (!pool->set.empty()) (void)pool_document(doc, *pool, name);
}

}  // namespace epsim::serving
