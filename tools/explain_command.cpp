// epsim explain: how one op's time is obtained under a scenario's cost model (FLOPs, bytes, the
// fitted curve and the measured neighbours), so a user can audit a number.
#include <algorithm>
#include <cmath>
#include <optional>

#include <boost/program_options.hpp>
#include <fmt/format.h>

#include "models/calibration_profile.h"
#include "models/config.h"
#include "models/cost_model_spec.h"
#include "models/curve_explain.h"
#include "models/errors.h"
#include "models/layer_ops.h"
#include "models/limits.h"
#include "sim/scenario.h"
#include "sim/serving/serving_spec.h"
#include "tools/commands.h"
#include "tools/overflow_keys.h"

namespace po = boost::program_options;

namespace epsim::cli {

namespace {

struct ExplainOptions {
  std::string scenario = "scenarios/seed.json";
  std::vector<std::string> sets;
  std::string op;
  // Sizes given on the command line; absent: the scenario's (no "0 means default").
  std::optional<std::int64_t> tokens, experts, seq, kv;
  std::string family;  // --family: explain a profile curve directly (network terms, profile-only families)
  std::string series;  // "key=value,key=value"
  double x = 0;
};

ExplainOptions parse(const Args& args) {
  ExplainOptions o;
  po::options_description desc;
  desc.add_options()("scenario", po::value(&o.scenario))("set", po::value(&o.sets)->composing())("op", po::value(&o.op))(
      "tokens", po::value<std::int64_t>())("experts", po::value<std::int64_t>())("seq", po::value<std::int64_t>())(
      "kv", po::value<std::int64_t>())("family", po::value(&o.family))("series", po::value(&o.series))("x", po::value(&o.x));
  po::positional_options_description pos;
  pos.add("scenario", 1);
  po::variables_map vm;
  po::store(po::command_line_parser(args).options(desc).positional(pos).run(), vm);
  po::notify(vm);
  // A size option, if given, in [1, max].
  auto size = [&](const char* name, std::int64_t max, std::optional<std::int64_t>& into) {
    if (!vm.count(name)) return;
    const std::int64_t v = vm[name].as<std::int64_t>();
    if (v < 1 || v > max)
      throw UsageError(fmt::format("--{} {}: must be in [1, {}] (leave it out for the scenario's value)", name, v, max));
    into = v;
  };
  size("tokens", limits::kTokensPerGpu * limits::kExperts, o.tokens);
  size("experts", limits::kExperts, o.experts);
  size("seq", limits::kTokensPerGpu, o.seq);
  size("kv", limits::kKvLen, o.kv);
  if (!o.family.empty()) {
    if (!o.op.empty()) throw UsageError("explain: give --op or --family, not both");
    if (!(o.x > 0 && std::isfinite(o.x))) throw UsageError("explain --family needs --x SIZE > 0 (bytes, tokens, ... as the family's x)");
    return o;
  }
  if (o.op.empty()) throw UsageError("explain needs --op (attention_proj, attention_core, gate, dense_mlp, expert_mlp, shared_expert, lm_head)");
  return o;
}

// `--family F --x X [--series k=v,...]`: one curve of the scenario's calibration profile.
int explain_family(const ExplainOptions& o, const Scenario& sc) {
  if (sc.cost_model.calibration.empty())
    throw UsageError("explain --family needs a calibrated cost model (e.g. --set cost_model.calibration=h200-measured)");
  const std::string path = resolve_calibration(calibration_for(sc.cost_model.calibration, sc.gpu));
  const CalibrationProfile profile = CalibrationProfile::load(path);
  std::vector<const CalibratedCurve*> curves = profile.family(o.family);
  if (curves.empty()) {
    std::string names;
    for (const auto& e : profile.errors) names += (names.empty() ? "" : ", ") + e.family;
    throw UsageError("--family " + o.family + ": not in " + path + " (families: " + names + ")");
  }
  std::string want = o.series;
  std::replace(want.begin(), want.end(), ',', ' ');
  if (!want.empty())
    curves.erase(std::remove_if(curves.begin(), curves.end(), [&](const CalibratedCurve* c) { return c->series_text() != want; }),
                 curves.end());
  if (curves.size() != 1) {
    std::string list;
    for (const auto* c : profile.family(o.family)) list += (list.empty() ? "" : "; ") + c->series_text();
    throw UsageError("--family " + o.family + (want.empty() ? " has several series" : " has no series " + o.series) +
                     ": pick one with --series (" + list + ", keys in that order, comma-separated)");
  }
  fmt::print("epsim explain: family {} of {} ({})\n", o.family, sc.cost_model.calibration, path);
  fmt::print("{}", explain_curve(*curves.front(), o.x));
  return 0;
}

// How one op of `sc` is priced (--op).
int explain_op(const ExplainOptions& o, const Scenario& sc) {
  const LayerOps ops(sc.model, sc.parallelism.attention_tp);
  const Workload& w = sc.workload;
  const std::int64_t T = o.tokens.value_or(w.tokens());
  OpWork work;
  std::string shape;
  if (o.op == "attention_proj") {
    work = ops.attention_proj(T);
    shape = fmt::format("{} tokens on this GPU, attention TP {} (GEMM rows {})", T, ops.tp(), work.rows);
  } else if (o.op == "attention_core") {
    if (w.mode == Mode::Decode) {
      const std::int64_t kv = o.kv.value_or(w.kv_len);
      work = ops.attention_core_decode(T, kv);
      shape = fmt::format("decode: {} sequences at KV length {}, attention TP {}", T, kv, ops.tp());
    } else {
      const std::int64_t seq = o.seq.value_or(w.seq_len);
      const std::int64_t seqs = std::max<std::int64_t>(1, T / seq);
      work = ops.attention_core_prefill(seqs, seq);
      shape = fmt::format("causal prefill: {} sequence(s) of {} tokens, attention TP {}", seqs, seq, ops.tp());
    }
  } else if (o.op == "gate") {
    work = ops.gate(T);
    shape = fmt::format("{} tokens", T);
  } else if (o.op == "dense_mlp") {
    work = ops.dense_mlp(T);
    shape = fmt::format("{} tokens, TP {} (rows {})", T, ops.tp(), work.tokens);
  } else if (o.op == "expert_mlp") {
    const int e = static_cast<int>(o.experts.value_or(sc.parallelism.experts_per_gpu));
    const std::int64_t t = o.tokens.value_or(T * sc.model.top_k);
    work = ops.expert_mlp(t, e);
    shape = fmt::format("{} routed tokens over {} expert(s) on this GPU{}", t, e,
                        o.tokens ? "" : " (default: tokens x top_k, the mean under uniform routing)");
  } else if (o.op == "shared_expert") {
    work = ops.shared_expert(T);
    shape = fmt::format("{} tokens, TP {} (rows {})", T, ops.tp(), work.tokens);
  } else if (o.op == "lm_head") {
    work = ops.lm_head(T);
    shape = fmt::format("{} tokens, TP {} (GEMM rows {})", T, ops.tp(), work.rows);
  } else {
    throw UsageError("--op " + o.op + ": unknown op (attention_proj, attention_core, gate, dense_mlp, expert_mlp, shared_expert, lm_head)");
  }
  const auto cost = make_cost_model(sc.cost_model, sc.gpu);
  fmt::print("epsim explain: {} in {} (model {}, GPU {})\n", to_string(work.op), sc.name, sc.model.name, sc.gpu.name);
  fmt::print("  shape: {}\n", shape);
  fmt::print("  work:  {:.6g} GFLOP, {:.6g} MB (layer_ops.h conventions: 2 FLOPs per multiply-add; weights read once, activations read and written once)\n",
             work.flops.count() * 1e-9, work.bytes.to_mb());
  fmt::print("{}", cost->explain(work));
  fmt::print("  => {:.3f} us per forward pass of this op ({})\n", cost->time(work).to_us(), cost->name());
  if (!sc.cost_model.calibration.empty()) {
    const NominalCostModel nominal(sc.gpu);
    fmt::print("  (for comparison: {} gives {:.3f} us)\n", nominal.name(), nominal.time(work).to_us());
  }
  return 0;
}

}  // namespace

int explain_command(const Args& args) {
  const ExplainOptions o = parse(args);
  nlohmann::json doc = read_scenario_file(o.scenario);
  for (const auto& s : o.sets) apply_override(doc, s);
  return with_scale_keys(doc, [&] {
    const Scenario sc = Scenario::from_json(doc);
    serving::check_serving_section(doc);
    return o.family.empty() ? explain_op(o, sc) : explain_family(o, sc);
  });
}

}  // namespace epsim::cli
