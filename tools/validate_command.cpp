// epsim validate: the simulator against measured expert-parallel MoE layers (kernels/results/ep*.json,
// written by kernels/ep_layer.cu): per case the measured and predicted total and per-phase times with
// errors, then per file the median and max total-time error against the target. Whole-layer
// files (schema epsim-layer/1, kernels/epsim_layer.py) the same way, per op (sim/layer_validation.h).
#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>

#include <boost/program_options.hpp>
#include <fmt/format.h>

#include "models/errors.h"
#include "models/config.h"
#include "models/layer_measurement.h"
#include "sim/ep_layer_validation.h"
#include "sim/layer_validation.h"
#include "tools/commands.h"
#include "tools/output_paths.h"

namespace po = boost::program_options;

namespace epsim::cli {

namespace {

struct ValidateOptions {
  std::vector<std::string> files;
  std::vector<std::string> sets;
  std::string json;
  bool phases = false;
};

ValidateOptions parse(const Args& args) {
  ValidateOptions o;
  po::options_description desc;
  desc.add_options()("file", po::value(&o.files)->composing())("json", po::value(&o.json))("set", po::value(&o.sets)->composing())("phases", po::bool_switch(&o.phases));
  po::positional_options_description pos;
  pos.add("file", -1);
  po::variables_map vm;
  po::store(po::command_line_parser(args).options(desc).positional(pos).run(), vm);
  po::notify(vm);
  if (o.files.empty()) throw UsageError("validate needs at least one measured file (kernels/results/ep2-*.json)");
  return o;
}

// Column heads of the phases (a measured layer with --attention adds its attention ops, in order).
std::string short_name(const std::string& phase) {
  static const std::map<std::string, std::string> k = {
      {"gate", "gate"},        {"permute", "perm"},      {"dispatch_meta", "count"}, {"dispatch_data", "disp"},
      {"experts", "expert"},   {"combine", "comb"},      {"unpermute", "unperm"},    {"attn_norm", "anorm"},
      {"q_proj", "q"},         {"q_a_norm", "qanorm"},   {"q_b_proj", "qb"},         {"kv_proj", "kv"},
      {"kv_a_norm", "kvanrm"}, {"kv_b_proj", "kvb"},     {"rope", "rope"},           {"attn_core", "core"},
      {"o_proj", "o"},         {"attn_residual", "ares"}, {"ffn_norm", "fnorm"},     {"ffn_residual", "fres"}};
  const auto it = k.find(phase);
  return it == k.end() ? phase.substr(0, 6) : it->second;
}

void print_summary(const ErrorSummary& s) {
  fmt::print("  summary: total-time error median {:.2f}%, max {:.2f}%; {} of {} cases within 10%; target (median <= 5%, every case <= 10%): {}\n\n",
             s.median_abs_pct, s.max_abs_pct, s.within_10, s.cases, s.meets_target() ? "met" : "MISSED");
}

void print(const FileValidation& v, bool phases) {
  fmt::print("{}: {}, {} cases\n", v.file, v.device, v.cases.size());
  std::size_t w = 34;
  const CaseComparison* most = v.cases.empty() ? nullptr : &v.cases.front();
  for (const auto& c : v.cases) {
    w = std::max(w, c.label.size());
    if (c.phases.size() > most->phases.size()) most = &c;
  }
  fmt::print("  {:<{}} {:>10} {:>10} {:>7}  phase error % (predicted vs measured):", "case", w, "measured", "predicted", "error");
  if (most)
    for (const auto& p : most->phases) fmt::print(" {:>6}", short_name(p.phase));
  fmt::print("\n");
  for (const auto& c : v.cases) {
    fmt::print("  {:<{}} {:>10.1f} {:>10.1f} {:>+6.1f}%  {:<39}", c.label, w, c.measured_us, c.predicted_us, c.error_pct(),
               std::abs(c.error_pct()) > 10.0 ? "MISS (> 10%)" : "");
    for (const auto& p : c.phases) fmt::print(" {:>+6.0f}", p.error_pct());
    fmt::print("\n");
    if (!phases) continue;
    fmt::print("  {:<{}} {:>68}", "", w, "measured us:");
    for (const auto& p : c.phases) fmt::print(" {:>6.0f}", p.measured_us);
    fmt::print("\n  {:<{}} {:>68}", "", w, "predicted us:");
    for (const auto& p : c.phases) fmt::print(" {:>6.0f}", p.predicted_us);
    fmt::print("\n");
  }
  print_summary(v.summary());
}

// A whole-layer file: per case the layer's total (measured as one against the sum of the predicted
// ops), then each op: measured (events between ops) against predicted.
void print(const LayerFileValidation& v, bool all_ops) {
  fmt::print("{}: {}, {} cases (checks passed); predicted by the layer program under {}\n", v.file, v.device, v.cases.size(),
             v.cost_model);
  for (const auto& c : v.cases) {
    fmt::print("  {:<40} {:>10} {:>10} {:>7}\n", "case / op", "measured", "predicted", "error");
    fmt::print("  {:<40} {:>10.1f} {:>10.1f} {:>+6.1f}%  {}\n", c.label, c.measured_us, c.predicted_us, c.error_pct(),
               std::abs(c.error_pct()) > 10.0 ? "MISS (> 10%)" : "");
    for (const auto& o : c.ops) {
      if (!all_ops && o.measured && o.predicted && std::abs(o.error_pct()) <= 10.0 && o.measured_us < 0.05 * c.measured_us) continue;
      const std::string m = o.measured ? fmt::format("{:.1f}", o.measured_us) : "-";
      const std::string p = o.predicted ? fmt::format("{:.1f}", o.predicted_us) : "-";
      const std::string e = o.measured && o.predicted ? fmt::format("{:+.1f}%", o.error_pct())
                            : o.measured              ? "not in the simulator"
                                                      : "not measured";
      fmt::print("    {:<38} {:>10} {:>10} {:>7}\n", o.op, m, p, e);
    }
  }
  print_summary(v.summary());
}

}  // namespace

int validate_command(const Args& args) {
  const ValidateOptions o = parse(args);
  if (!o.json.empty()) require_writable_file("--json", o.json);
  fmt::print("epsim validate: {} file(s); each case simulated as one node of the file's GPUs (H100: h100-sxm, else h200), cost model\n"
             "the preset's measured profile (h100-measured, h200-measured)\n"
             "(per-expert GEMMs), network.dispatch_impl = the case's dispatch, routing = its measured counts; times in us\n"
             "(phases: max over GPUs of the per-step sum of the phase; they overlap under dual and chunks);\n"
             "whole-layer files (epsim-layer/1): one GPU, the simulator's layer program priced by the device's GPU preset and\n"
             "measured profile, the total (sum of predicted ops) against the layer measured as one, each op against its own time\n"
             "(ops within 10% and under 5% of the layer are left out; --phases lists every op)\n\n", o.files.size());
  nlohmann::json out = nlohmann::json::array();
  for (const auto& f : o.files) {
    if (is_layer_document(read_json_file(f))) {
      const LayerFileValidation v = validate_layer_file(f, o.sets);
      print(v, o.phases);
      out.push_back(to_json(v));
      continue;
    }
    const FileValidation v = validate_ep_layer_file(f, o.sets);
    print(v, o.phases);
    out.push_back(to_json(v));
  }
  if (!o.json.empty()) {
    std::ofstream os(o.json);
    if (!os) throw InputError(o.json + ": cannot write file");
    os << out.dump(1) << "\n";
    fmt::print("wrote {}\n", o.json);
  }
  return 0;
}

}  // namespace epsim::cli
