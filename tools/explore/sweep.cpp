#include "tools/explore/sweep.h"

#include <chrono>
#include <filesystem>
#include <map>

#include <fmt/format.h>

#include "models/errors.h"
#include "sim/report.h"
#include "sim/scenario.h"
#include "tools/explore/headline_metrics.h"
#include "tools/explore/point_runner.h"
#include "tools/explore/progress.h"
#include "tools/explore/results_file.h"

namespace epsim::explore {

namespace {

std::string axes_text(const SweepPoint& p) {
  std::string s;
  for (auto it = p.axes.begin(); it != p.axes.end(); ++it) s += (s.empty() ? "" : " ") + it.key() + "=" + it.value().dump();
  return s.empty() ? "(base)" : s;
}

std::string point_line(const SweepPoint& p, const PointResult& r) {
  if (!r.ok()) return fmt::format("{} {}: error: {}", p.id, axes_text(p), r.error);
  return fmt::format("{} {}: step {:.3f} ms, {:.1f} tokens/s per GPU ({:.3f} s)", p.id, axes_text(p),
                     r.metrics.at("step_time_ms").get<double>(), r.metrics.at("tokens_per_s_per_gpu").get<double>(), r.wall_s);
}

std::string csv_cell(const nlohmann::json& v) {
  const std::string s = v.is_string() ? v.get<std::string>() : v.is_null() ? "" : v.dump();
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string q = "\"";
  for (char ch : s) q += ch == '"' ? std::string("\"\"") : std::string(1, ch);
  return q + "\"";
}

}  // namespace

nlohmann::json sweep_record(const SweepPoint& p, const PointResult& r, const std::string& version) {
  nlohmann::json j = r.to_json();
  j["id"] = p.id;
  j["index"] = p.index;
  j["axes"] = p.axes;
  j["version"] = version;
  return j;
}

void check_points(const SweepSpec& spec, const std::vector<SweepPoint>& points, const std::vector<std::size_t>& which) {
  if (spec.skip_invalid) return;
  for (std::size_t i : which) {
    const SweepPoint& p = points[i];
    try {
      Scenario::from_json(p.doc);
    } catch (const ConfigError& e) {
      throw ConfigError(e.path(), e.value(), e.rule() + fmt::format(" (sweep point {}: {}; \"skip_invalid\": true records it and goes on)", p.index, axes_text(p)));
    } catch (const InputError& e) {
      throw InputError(std::string(e.what()) + fmt::format(" (sweep point {}: {})", p.index, axes_text(p)));
    }
  }
}

std::string summary_csv(const SweepSpec& spec, const std::vector<SweepPoint>& points, const std::vector<nlohmann::json>& records) {
  std::map<std::string, const nlohmann::json*> by_id;
  for (const auto& r : records) by_id[r.at("id").get<std::string>()] = &r;
  const std::vector<std::string> keys = spec.axis_keys();
  // Cells appended one at a time (GCC 12 warns, wrongly, on "," + std::string temporaries).
  std::string out = "index,id";
  const auto cell = [&out](const std::string& s) {
    out += ',';
    out += s;
  };
  for (const auto& k : keys) cell(k);
  for (const auto& m : headline_metric_names()) cell(m);
  out += ",wall_s,error\n";
  for (const SweepPoint& p : points) {
    auto it = by_id.find(p.id);
    if (it == by_id.end()) continue;
    const nlohmann::json& r = *it->second;
    out += fmt::format("{},{}", p.index, p.id);
    for (const auto& k : keys) cell(csv_cell(p.axes.at(k)));
    for (const auto& m : headline_metric_names()) cell(r.contains("metrics") ? csv_cell(r["metrics"].value(m, nlohmann::json())) : "");
    cell(csv_cell(r.at("wall_s")));
    cell(csv_cell(r.value("error", nlohmann::json())));
    out += '\n';
  }
  return out;
}

SweepRun::SweepRun(const SweepSpec& spec, SweepOptions o) : spec_(spec), o_(std::move(o)), points_(spec.points()) {
  std::filesystem::create_directories(o_.out);
  results_ = std::make_unique<ResultsFile>(o_.out + "/results.jsonl");
  // What the results are points of (the HTML report reads the axis order and name).
  write_file(o_.out + "/sweep.json",
             nlohmann::json{{"name", spec_.name}, {"axes", spec_.axis_keys()}, {"points", points_.size()}, {"version", o_.version}}.dump(2) + "\n");
  for (const SweepPoint& p : points_) {
    if (results_->ids().count(p.id)) ++skipped_;
    else queue_.push_back(p.index);
  }
  check_points(spec_, points_, {queue_.begin(), queue_.end()});
}

SweepRun::~SweepRun() = default;

SweepSummary SweepRun::run(RemoteWorkers* remote) {
  const auto t0 = std::chrono::steady_clock::now();
  SweepSummary sum;
  sum.points = points_.size();
  sum.skipped = skipped_;
  Progress progress(points_.size(), skipped_, o_.tty, o_.tty ? stderr : stdout);
  const auto done = [&](std::size_t index, PointResult r) {
    results_->append(sweep_record(points_[index], r, o_.version));
    ++sum.ran;
    progress.point_done(point_line(points_[index], r), !r.ok());
  };
  {
    PointWorkers workers(o_.threads, [this](std::size_t i) { return run_point(points_[i].doc, spec_.steps); });
    const auto refill = [&] {
      while (workers.has_room() && !queue_.empty()) {
        workers.start(queue_.front());
        queue_.pop_front();
      }
    };
    while (!queue_.empty() || workers.in_flight() > 0 || (remote && !remote->finished())) {
      refill();
      if (remote) remote->serve(queue_, done);
      // With remote workers the loop also polls the network, so it waits briefly.
      if (auto d = workers.next_done(std::chrono::milliseconds(remote ? 1 : 500))) {
        refill();  // the freed thread starts its next point before this one is written (fsync)
        done(d->index, std::move(d->result));
      }
    }
  }
  progress.finish();

  std::map<std::string, std::size_t> index_of;
  for (const SweepPoint& p : points_) index_of[p.id] = p.index;
  for (const auto& r : results_->records()) {
    auto it = index_of.find(r.at("id").get<std::string>());
    if (it == index_of.end() || !r.contains("error")) continue;
    if (sum.failed++ == 0) sum.first_error = fmt::format("point {} ({}): {}", it->second, axes_text(points_[it->second]), r["error"].get<std::string>());
  }
  const std::string csv = o_.out + "/summary.csv";
  write_file(csv + ".tmp", summary_csv(spec_, points_, results_->records()));
  std::filesystem::rename(csv + ".tmp", csv);
  sum.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return sum;
}

}  // namespace epsim::explore
