// epsim calibrate: kernel measurements -> calibrated cost profile, with held-out error per family.
#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>

#include <boost/program_options.hpp>
#include <fmt/format.h>

#include "models/bench_results.h"
#include "models/calibrated_cost_model.h"
#include "models/calibration_fit.h"
#include "models/layer_prediction.h"
#include "models/config.h"
#include "models/errors.h"
#include "tools/commands.h"
#include "tools/output_paths.h"

namespace po = boost::program_options;

namespace epsim::cli {

namespace {

struct CalibrateOptions {
  std::vector<std::string> results;
  std::string out;
  double holdout = 0.25;
  std::vector<std::string> holdout_shapes;
  double smoothing = 0.02;
  bool verbose = false;
  std::vector<std::string> check_layers;  // epsim-layer/1 files priced with the fitted profile
};

CalibrateOptions parse(const Args& args) {
  CalibrateOptions o;
  po::options_description desc;
  desc.add_options()("results", po::value(&o.results)->composing())("out,o", po::value(&o.out))(
      "holdout", po::value(&o.holdout))("holdout-shapes", po::value(&o.holdout_shapes)->multitoken()->composing())(
      "smoothing", po::value(&o.smoothing))("verbose,v", po::bool_switch(&o.verbose))(
      "check-layer", po::value(&o.check_layers)->multitoken()->composing());
  po::positional_options_description pos;
  pos.add("results", -1);
  po::variables_map vm;
  po::store(po::command_line_parser(args).options(desc).positional(pos).run(), vm);
  po::notify(vm);
  if (o.results.empty()) throw UsageError("calibrate needs at least one RESULTS.json (epsim-bench output)");
  if (!(o.holdout >= 0 && o.holdout < 1)) throw UsageError(fmt::format("--holdout {}: must be in [0, 1)", o.holdout));
  if (!(o.smoothing >= 0 && std::isfinite(o.smoothing)))
    throw UsageError(fmt::format("--smoothing {}: must be a finite number >= 0", o.smoothing));
  if (!o.out.empty()) require_writable_file("-o", o.out);
  return o;
}

double median_of(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// Whole-layer measurements priced op by op with the profile just fitted (layer_prediction.h).
void check_layers(const CalibrationProfile& profile, const std::vector<std::string>& paths, bool verbose) {
  const CalibratedCostModel model(profile, "fitted");
  fmt::print("\n  whole-layer check: each op priced from its recorded FLOPs, bytes and shape with the profile above;\n"
             "  error = sum of predicted ops vs the layer measured as one\n");
  for (const auto& path : paths) {
    const MeasuredLayerFile f = read_layer_file(path);
    fmt::print("\n  {}: {}{}, {} cases, kernel_gap_us {:.2f}\n", f.path, f.device, f.card.empty() ? "" : " (" + f.card + ")",
               f.cases.size(), f.kernel_gap_us);
    fmt::print("  {:<34} {:>11} {:>11} {:>11} {:>8}  {}\n", "case", "layer us", "ops us", "predicted", "error", "largest op errors");
    std::map<std::string, std::vector<double>> by_group;
    std::map<std::string, std::vector<double>> by_family;
    for (const auto& c : f.cases) {
      if (!c.passed) {
        fmt::print("  {:<34} check failed: not priced\n", c.label);
        continue;
      }
      const LayerPrediction p = predict_layer(model, c);
      std::vector<std::pair<double, std::string>> worst;
      for (const auto& o : p.ops) {
        const double e = o.predicted > Time::zero() ? (o.predicted / o.measured - 1) * 100 : -100.0;
        if (!o.family.empty()) by_family[o.family].push_back(std::abs(e));
        worst.push_back({std::abs(e) * o.measured.to_us(), fmt::format("{} {:+.0f}%", o.name, e)});
      }
      std::sort(worst.rbegin(), worst.rend());
      std::string w;
      for (std::size_t i = 0; i < std::min<std::size_t>(3, worst.size()); ++i) w += (i ? ", " : "") + worst[i].second;
      fmt::print("  {:<34} {:>11.1f} {:>11.1f} {:>11.1f} {:>+7.1f}%  {}{}\n", c.label, c.layer.to_us(), p.measured_ops.to_us(),
                 p.predicted.to_us(), p.error_pct(), w, std::abs(p.error_pct()) > 10 ? "  MISS (> 10%)" : "");
      by_group[c.model_name + " " + c.phase].push_back(std::abs(p.error_pct()));
      by_group["all"].push_back(std::abs(p.error_pct()));
      if (verbose)
        for (const auto& o : p.ops)
          fmt::print("      {:<26} measured {:>10.2f} us  predicted {:>10.2f} us  {:<22} {}\n", o.name, o.measured.to_us(),
                     o.predicted.to_us(), o.family.empty() ? "(no family)" : o.family, o.why);
    }
    fmt::print("  {:<26} {:>6} {:>10} {:>10}  target (median <= 5%, every case <= 10%)\n", "group", "cases", "median %", "max %");
    for (const auto& [g, v] : by_group) {
      const double mx = *std::max_element(v.begin(), v.end()), md = median_of(v);
      fmt::print("  {:<26} {:>6} {:>10.2f} {:>10.2f}  {}\n", g, v.size(), md, mx, md <= 5 && mx <= 10 ? "met" : "MISSED");
    }
    if (verbose)
      for (const auto& [fam, v] : by_family)
        fmt::print("  op family {:<22} {:>5} ops  median |error| {:>6.2f}%  max {:>7.2f}%\n", fam, v.size(), median_of(v),
                   *std::max_element(v.begin(), v.end()));
  }
}

}  // namespace

int calibrate_command(const Args& args) {
  const CalibrateOptions o = parse(args);
  std::string command = "epsim calibrate";
  for (const auto& a : args) command += " " + a;
  std::vector<BenchFile> files;
  std::vector<std::string> skipped;
  for (const auto& r : o.results) {
    const nlohmann::json doc = read_json_file(r);
    if (is_bench_document(doc)) files.push_back(parse_bench_file(doc, r));
    else skipped.push_back(r + " (schema " + (doc.is_object() && doc.contains("schema") ? json_text(doc["schema"]) : "?") + ")");
  }
  if (files.empty()) throw InputError("calibrate: none of the files is an epsim-bench/1 result");
  HoldoutPolicy policy;
  policy.fraction = o.holdout;
  policy.shapes = o.holdout_shapes;
  policy.smoothing = o.smoothing;
  const CalibrationResult res = calibrate(files, policy, command);
  const CalibrationProfile& p = res.profile;

  fmt::print("epsim calibrate: {} file(s)\n", files.size());
  for (const auto& s : p.sources)
    fmt::print("  {}: {} x{}, {}, commit {}, {}\n", s.file, s.device, s.device_count, s.date, s.git_commit, s.libraries);
  for (const auto& s : skipped) fmt::print("  skipped {}: not an epsim-bench/1 kernel result\n", s);
  fmt::print("  holdout: {}\n\n", p.holdout);
  fmt::print("  {:<19} {:<26} {:>6} {:>5} {:>9} {:>9}  {}\n", "family", "prices", "shapes", "held", "median %",
             "max %", "target (<=5 / <=15)");
  bool all_met = true;
  for (const auto& e : p.errors) {
    const bool met = e.heldout == 0 || (e.median_pct <= 5.0 && e.max_pct <= 15.0);
    all_met = all_met && met;
    fmt::print("  {:<19} {:<26} {:>6} {:>5} {:>9.2f} {:>9.2f}  {}\n", e.family, e.used_for, e.points, e.heldout,
               e.median_pct, e.max_pct, e.heldout == 0 ? "no held-out points" : met ? "met" : "MISSED");
  }
  if (o.verbose) {
    fmt::print("\n  held-out points:\n");
    for (const auto& h : res.heldout)
      fmt::print("  {:<19} {:<22} {:<60} measured {:>10.3f} us  predicted {:>10.3f} us  {:>6.2f} %\n", h.family, h.series,
                 h.shape, h.measured.to_us(), h.predicted.to_us(), h.error_pct);
  }
  if (p.kernel_gap > Time::zero())
    fmt::print("\n  kernel_gap_us {:.3f} (back-to-back dependent empty kernels on one stream, per kernel); event_overhead_us {:.3f}\n",
               p.kernel_gap.to_us(), p.event_overhead.to_us());
  fmt::print("\n  latency + bandwidth fits (time = latency + bytes / bandwidth, relative least squares):\n");
  for (const auto& [name, l] : p.links)
    fmt::print("  {:<19} latency {:>8.2f} us  bandwidth {:>8.1f} GB/s\n", name, l.latency.to_us(), l.bandwidth.to_gb_per_s());
  fmt::print("  (the profile's curves for these families are log-log splines; {} their segments)\n",
             o.verbose ? "below," : "-v lists");
  for (const auto& [name, f] : p.sm_rates) {
    std::string pts;
    for (const auto& [sms, gbps] : f.points) pts += fmt::format("{}{} SMs {:.1f}", pts.empty() ? "" : ", ", sms, gbps);
    fmt::print("\n  throughput against SMs (min(SMs x per-SM rate, ceiling), models/sm_rate_fit.h):\n");
    fmt::print("  {:<19} per SM {:>6.2f} GB/s  ceiling {:>7.1f} GB/s  knee {} SMs  ({} GB/s)\n", name, f.per_sm.to_gb_per_s(),
               f.ceiling.to_gb_per_s(), f.knee_sms(), pts);
  }
  if (o.verbose) {
    for (const auto& c : p.curves) {
      if (c.shape != CurveShape::LogLog) continue;
      fmt::print("\n  {} {} by {}: latency + {} / rate per segment (chords of the spline)\n", c.family, c.series_text(),
                 c.x_key, c.x_key);
      for (const auto& g : c.loglog.segments())
        fmt::print("  {:>14.6g} .. {:<14.6g} {:>10.3f} -> {:>10.3f} us  latency {:>9.3f} us  rate {:>10.4g} {}\n", g.x0, g.x1,
                   g.t0 * 1e6, g.t1 * 1e6, g.latency * 1e6, c.x_key == "bytes" ? g.rate * 1e-9 : g.rate * 1e-6,
                   c.x_key == "bytes" ? "GB/s" : c.x_key + "/us");
    }
  }
  if (!o.out.empty()) {
    std::ofstream out(o.out);
    if (!out) throw InputError(o.out + ": cannot write the profile");
    out << p.to_json().dump(1) << "\n";
    fmt::print("\n  wrote {} ({} curves)\n", o.out, p.curves.size());
  }
  if (!all_met) fmt::print("\n  some families miss the held-out error target (see above)\n");
  if (!o.check_layers.empty()) check_layers(p, o.check_layers, o.verbose);
  return 0;
}

}  // namespace epsim::cli
