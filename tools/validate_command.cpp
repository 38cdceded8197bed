// epsim validate: the simulator against measured expert-parallel MoE layers (kernels/results/ep*.json,
// written by kernels/ep_layer.cu): per case the measured and predicted total and per-phase times with
// errors, then per file the median and max total-time error against the target.
#include <cmath>
#include <fstream>

#include <boost/program_options.hpp>
#include <fmt/format.h>

#include "models/errors.h"
#include "sim/ep_layer_validation.h"
#include "tools/commands.h"

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

const char* const kShort[] = {"gate", "perm", "count", "disp", "expert", "comb", "unperm"};

void print(const FileValidation& v, bool phases) {
  fmt::print("{}: {}, {} cases\n", v.file, v.device, v.cases.size());
  fmt::print("  {:<34} {:>10} {:>10} {:>7}  phase error % (predicted vs measured):", "case", "measured", "predicted", "error");
  for (const char* s : kShort) fmt::print(" {:>6}", s);
  fmt::print("\n");
  for (const auto& c : v.cases) {
    fmt::print("  {:<34} {:>10.1f} {:>10.1f} {:>+6.1f}%  {:<39}", c.label, c.measured_us, c.predicted_us, c.error_pct(),
               std::abs(c.error_pct()) > 10.0 ? "MISS (> 10%)" : "");
    for (const auto& p : c.phases) fmt::print(" {:>+6.0f}", p.error_pct());
    fmt::print("\n");
    if (!phases) continue;
    fmt::print("  {:<34} {:>68}", "", "measured us:");
    for (const auto& p : c.phases) fmt::print(" {:>6.0f}", p.measured_us);
    fmt::print("\n  {:<34} {:>68}", "", "predicted us:");
    for (const auto& p : c.phases) fmt::print(" {:>6.0f}", p.predicted_us);
    fmt::print("\n");
  }
  int within = 0;
  for (const auto& c : v.cases) within += std::abs(c.error_pct()) <= 10.0 ? 1 : 0;
  fmt::print("  summary: total-time error median {:.2f}%, max {:.2f}%; {} of {} cases within 10%; target (median <= 5%, every case <= 10%): {}\n\n",
             v.median_abs_error_pct(), v.max_abs_error_pct(), within, v.cases.size(), v.meets_target() ? "met" : "MISSED");
}

}  // namespace

int validate_command(const Args& args) {
  const ValidateOptions o = parse(args);
  fmt::print("epsim validate: {} file(s); each case simulated as one node of the file's GPUs (H100: h100-sxm, else h200), cost model\n"
             "the preset's measured profile (h100-measured, h200-measured)\n"
             "(per-expert GEMMs), network.dispatch_impl = the case's dispatch, routing = its measured counts; times in us\n"
             "(phases: max over GPUs of the per-step sum of the phase; they overlap under dual and chunks)\n\n", o.files.size());
  nlohmann::json out = nlohmann::json::array();
  for (const auto& f : o.files) {
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
