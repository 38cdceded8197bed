#include "models/calibration_profile.h"

#include <algorithm>
#include <cmath>

#include "models/config.h"
#include "models/errors.h"

namespace epsim {

Time CalibratedCurve::floor(double flops, double bytes) const {
  double s = 0;
  if (peak.per_second() > 0) s = std::max(s, flops / peak.per_second());
  if (bandwidth.bytes_per_second() > 0) s = std::max(s, bytes / bandwidth.bytes_per_second());
  return Time::seconds(s);
}

Time CalibratedCurve::baseline(double flops, double bytes) const {
  return latency + Time::seconds(slope * floor(flops, bytes).to_seconds());
}

const char* to_string(CurveShape s) { return s == CurveShape::LogLog ? "loglog" : "efficiency"; }

double CalibratedCurve::efficiency(double x) const { return std::exp(log_efficiency.at(x)); }

Time CalibratedCurve::time(double flops, double bytes, double x) const {
  if (shape == CurveShape::LogLog) return Time::seconds(loglog.seconds(x));
  return Time::seconds(baseline(flops, bytes).to_seconds() / efficiency(x));
}

double CalibratedCurve::min_x() const { return shape == CurveShape::LogLog ? loglog.min_x() : log_efficiency.min_x(); }
double CalibratedCurve::max_x() const { return shape == CurveShape::LogLog ? loglog.max_x() : log_efficiency.max_x(); }

std::string CalibratedCurve::series_text() const {
  std::string s;
  for (const auto& [k, v] : series) s += (s.empty() ? "" : " ") + k + "=" + std::to_string(v);
  return s.empty() ? "-" : s;
}

std::vector<const CalibratedCurve*> CalibrationProfile::family(const std::string& name) const {
  std::vector<const CalibratedCurve*> out;
  for (const auto& c : curves)
    if (c.family == name) out.push_back(&c);
  return out;
}

const LatencyBandwidthFit* CalibrationProfile::link(const std::string& name) const {
  auto it = links.find(name);
  return it == links.end() ? nullptr : &it->second;
}

nlohmann::json CalibrationProfile::to_json() const {
  nlohmann::json j;
  j["schema"] = schema;
  j["provenance"]["command"] = command;
  j["provenance"]["holdout"] = holdout;
  j["provenance"]["fit"] = fit;
  j["provenance"]["sources"] = nlohmann::json::array();
  for (const auto& s : sources)
    j["provenance"]["sources"].push_back({{"file", s.file}, {"device", s.device}, {"device_count", s.device_count},
                                          {"date", s.date}, {"git_commit", s.git_commit}, {"libraries", s.libraries}});
  j["heldout_error"] = nlohmann::json::array();
  for (const auto& e : errors)
    j["heldout_error"].push_back({{"family", e.family}, {"used_for", e.used_for}, {"points", e.points},
                                  {"heldout", e.heldout}, {"median_pct", e.median_pct}, {"max_pct", e.max_pct}});
  j["kernel_gap_us"] = kernel_gap.to_us();
  j["event_overhead_us"] = event_overhead.to_us();
  j["links"] = nlohmann::json::object();
  for (const auto& [name, l] : links)
    j["links"][name] = {{"latency_us", l.latency.to_us()}, {"bandwidth_gbps", l.bandwidth.to_gb_per_s()}};
  if (!sm_rates.empty()) {
    j["sm_rates"] = nlohmann::json::object();
    for (const auto& [name, f] : sm_rates) {
      nlohmann::json pts = nlohmann::json::array();
      for (const auto& [sms, gbps] : f.points) pts.push_back({{"sms", sms}, {"gbps", gbps}});
      j["sm_rates"][name] = {{"per_sm_gbps", f.per_sm.to_gb_per_s()}, {"ceiling_gbps", f.ceiling.to_gb_per_s()}, {"points", pts}};
    }
  }
  j["curves"] = nlohmann::json::array();
  for (const auto& c : curves) {
    nlohmann::json cj;
    cj["family"] = c.family;
    cj["series"] = c.series;
    cj["x"] = c.x_key;
    cj["source"] = c.source;
    cj["peak_tflops"] = c.peak.to_tflops();
    cj["bandwidth_gbps"] = c.bandwidth.to_gb_per_s();
    cj["latency_us"] = c.latency.to_us();
    cj["slope"] = c.slope;
    cj["shape"] = to_string(c.shape);
    if (c.shape == CurveShape::LogLog) {
      cj["knots"] = c.loglog.xs();
      cj["ln_seconds"] = c.loglog.ln_seconds();
    } else {
      cj["knots"] = c.log_efficiency.xs();
      cj["ln_efficiency"] = c.log_efficiency.values();
    }
    cj["points"] = nlohmann::json::array();
    for (const auto& p : c.points)
      cj["points"].push_back({{"x", p.x}, {"us", p.measured.to_us()}, {"flops", p.flops}, {"bytes", p.bytes}, {"shape", p.shape}});
    j["curves"].push_back(std::move(cj));
  }
  return j;
}

CalibrationProfile CalibrationProfile::from_json(const nlohmann::json& j, const std::string& path) {
  if (!j.is_object() || !j.contains("schema") || j["schema"] != "epsim-profile/1")
    throw InputError(path + ": not a calibration profile (missing \"schema\": \"epsim-profile/1\")");
  CalibrationProfile p;
  try {
    const auto& prov = j.at("provenance");
    p.command = prov.value("command", "");
    p.holdout = prov.value("holdout", "");
    p.fit = prov.value("fit", "");
    for (const auto& s : prov.at("sources"))
      p.sources.push_back({s.value("file", ""), s.value("device", ""), s.value("device_count", 0), s.value("date", ""),
                           s.value("git_commit", ""), s.value("libraries", "")});
    for (const auto& e : j.at("heldout_error"))
      p.errors.push_back({e.at("family").get<std::string>(), e.value("used_for", ""), e.value("points", 0),
                          e.value("heldout", 0), e.value("median_pct", 0.0), e.value("max_pct", 0.0)});
    p.kernel_gap = Time::us(j.value("kernel_gap_us", 0.0));
    p.event_overhead = Time::us(j.value("event_overhead_us", 0.0));
    for (const auto& [name, l] : j.at("links").items())
      p.links[name] = {Time::us(l.at("latency_us").get<double>()), Bandwidth::gb_per_s(l.at("bandwidth_gbps").get<double>())};
    if (j.contains("sm_rates"))
      for (const auto& [name, f] : j.at("sm_rates").items()) {
        SmRateFit fit;
        fit.per_sm = Bandwidth::gb_per_s(f.at("per_sm_gbps").get<double>());
        fit.ceiling = Bandwidth::gb_per_s(f.at("ceiling_gbps").get<double>());
        for (const auto& pt : f.at("points")) fit.points.emplace_back(pt.at("sms").get<int>(), pt.at("gbps").get<double>());
        p.sm_rates[name] = std::move(fit);
      }
    for (const auto& cj : j.at("curves")) {
      CalibratedCurve c;
      c.family = cj.at("family").get<std::string>();
      c.series = cj.at("series").get<std::map<std::string, std::int64_t>>();
      c.x_key = cj.at("x").get<std::string>();
      c.source = cj.value("source", "");
      c.peak = FlopRate::tflops(cj.at("peak_tflops").get<double>());
      c.bandwidth = Bandwidth::gb_per_s(cj.at("bandwidth_gbps").get<double>());
      c.latency = Time::us(cj.at("latency_us").get<double>());
      c.slope = cj.at("slope").get<double>();
      const std::string shape = cj.value("shape", "efficiency");
      if (shape == "loglog") {
        c.shape = CurveShape::LogLog;
        c.loglog = LogLogSpline(cj.at("knots").get<std::vector<double>>(), cj.at("ln_seconds").get<std::vector<double>>());
      } else if (shape == "efficiency") {
        c.log_efficiency = LogCurve(cj.at("knots").get<std::vector<double>>(), cj.at("ln_efficiency").get<std::vector<double>>());
      } else {
        throw InputError(path + ": curve " + c.family + " has shape \"" + shape + "\" (expected efficiency or loglog)");
      }
      for (const auto& pj : cj.at("points"))
        c.points.push_back({pj.at("x").get<double>(), Time::us(pj.at("us").get<double>()), pj.value("flops", 0.0),
                            pj.value("bytes", 0.0), pj.value("shape", "")});
      p.curves.push_back(std::move(c));
    }
  } catch (const nlohmann::json::exception& e) {
    throw InputError(path + ": malformed calibration profile: " + e.what());
  } catch (const std::invalid_argument& e) {
    throw InputError(path + ": malformed calibration profile: " + e.what());
  }
  if (p.curves.empty()) throw InputError(path + ": calibration profile has no curves");
  return p;
}

CalibrationProfile CalibrationProfile::load(const std::string& path) { return from_json(read_json_file(path), path); }

}  // namespace epsim
