#include "placement/interchange.h"

#include <algorithm>

#include "models/config.h"
#include "models/errors.h"

namespace epsim {

namespace {
std::size_t z(int i) { return static_cast<std::size_t>(i); }

std::string at(const std::string& where, const std::string& key, std::size_t i) {
  return where + ":" + key + "[" + std::to_string(i) + "]";
}
std::string at(const std::string& where, const std::string& key, std::size_t i, std::size_t j) {
  return at(where, key, i) + "[" + std::to_string(j) + "]";
}

const nlohmann::json& rows_of(const nlohmann::json& j, const std::string& where, const std::string& key, int moe_layers) {
  if (!j.is_array() || j.empty()) throw ConfigError(where + ":" + key, json_text(j), "must be a non-empty array of rows");
  if (j.size() != 1 && j.size() != z(moe_layers))
    throw ConfigError(where + ":" + key, std::to_string(j.size()) + " rows",
                      "must have one row or one per MoE layer (" + std::to_string(moe_layers) + ")");
  return j;
}
}  // namespace

nlohmann::json placement_to_json(const Placement& placement, int moe_layers) {
  const int E = placement.experts();
  std::vector<std::vector<int>> phy2log, logcnt;
  std::vector<std::vector<std::vector<int>>> log2phy;
  std::size_t maxcnt = 1;
  for (int l = 0; l < moe_layers; ++l) {
    const LayerPlacement& t = placement.layer(placement.first_layer() + l);
    phy2log.push_back(t.phy2log());
    std::vector<int> cnt(z(E));
    for (int e = 0; e < E; ++e) {
      cnt[z(e)] = t.replica_count(e);
      maxcnt = std::max(maxcnt, t.replicas(e).size());
    }
    logcnt.push_back(std::move(cnt));
  }
  for (int l = 0; l < moe_layers; ++l) {
    const LayerPlacement& t = placement.layer(placement.first_layer() + l);
    std::vector<std::vector<int>> rows;
    for (int e = 0; e < E; ++e) {
      std::vector<int> r = t.replicas(e);
      r.resize(maxcnt, -1);
      rows.push_back(std::move(r));
    }
    log2phy.push_back(std::move(rows));
  }
  nlohmann::json j;
  j["strategy"] = placement.strategy();
  j["num_layers"] = moe_layers;
  j["num_logical_experts"] = E;
  j["num_physical_experts"] = placement.tables().front().slots();
  j["num_gpus"] = placement.ep();
  j["phy2log"] = phy2log;
  j["log2phy"] = log2phy;
  j["logcnt"] = logcnt;
  return j;
}

Placement placement_from_json(const nlohmann::json& j, const std::string& where, int experts, int ep, int moe_layers,
                              int first_layer) {
  if (!j.is_object() || !j.contains("phy2log")) throw ConfigError(where, json_text(j), "must be an object with phy2log");
  const nlohmann::json& rows = rows_of(j.at("phy2log"), where, "phy2log", moe_layers);
  std::vector<LayerPlacement> tables;
  std::size_t width = 0;
  for (std::size_t l = 0; l < rows.size(); ++l) {
    const auto& row = rows[l];
    if (!row.is_array() || row.empty()) throw ConfigError(at(where, "phy2log", l), json_text(row), "must be a non-empty array");
    if (l == 0) width = row.size();
    if (row.size() != width) throw ConfigError(at(where, "phy2log", l), std::to_string(row.size()) + " slots", "every layer must have " + std::to_string(width));
    if (row.size() % z(ep) != 0)
      throw ConfigError(at(where, "phy2log", l), std::to_string(row.size()) + " slots", "must be a multiple of ep = " + std::to_string(ep));
    std::vector<int> p;
    std::vector<int> count(z(experts), 0);
    for (std::size_t s = 0; s < row.size(); ++s) {
      const auto& v = row[s];
      if (!v.is_number_integer() || v.get<std::int64_t>() < -1 || v.get<std::int64_t>() >= experts)
        throw ConfigError(at(where, "phy2log", l, s), json_text(v), "must be an expert in [0, " + std::to_string(experts) + ") or -1 (empty)");
      p.push_back(v.get<int>());
      if (p.back() >= 0) ++count[z(p.back())];
    }
    for (int e = 0; e < experts; ++e)
      if (count[z(e)] == 0) throw ConfigError(at(where, "phy2log", l), "(expert " + std::to_string(e) + " absent)", "every expert needs a slot");
    if (j.contains("logcnt")) {
      const auto& cnt = rows_of(j.at("logcnt"), where, "logcnt", moe_layers);
      const auto& crow = cnt[cnt.size() == 1 ? 0 : l];
      for (int e = 0; e < experts; ++e)
        if (!crow.is_array() || crow.size() != z(experts) || crow[z(e)] != count[z(e)])
          throw ConfigError(at(where, "logcnt", l), json_text(crow), "must count each expert's slots in phy2log");
    }
    if (j.contains("log2phy")) {
      const auto& lp = rows_of(j.at("log2phy"), where, "log2phy", moe_layers);
      const auto& lrow = lp[lp.size() == 1 ? 0 : l];
      if (!lrow.is_array() || lrow.size() != z(experts))
        throw ConfigError(at(where, "log2phy", l), json_text(lrow), "must list the slots of every expert");
      for (int e = 0; e < experts; ++e) {
        int listed = 0;
        for (const auto& s : lrow[z(e)]) {
          if (!s.is_number_integer()) throw ConfigError(at(where, "log2phy", l, z(e)), json_text(lrow[z(e)]), "must hold slot numbers");
          const auto slot = s.get<std::int64_t>();
          if (slot < 0) continue;
          if (slot >= static_cast<std::int64_t>(p.size()) || p[static_cast<std::size_t>(slot)] != e)
            throw ConfigError(at(where, "log2phy", l, z(e)), json_text(lrow[z(e)]), "must name slots that phy2log gives this expert");
          ++listed;
        }
        if (listed != count[z(e)]) throw ConfigError(at(where, "log2phy", l, z(e)), json_text(lrow[z(e)]), "must name every slot of the expert");
      }
    }
    tables.emplace_back(experts, ep, std::move(p));
  }
  const std::string strategy = j.contains("strategy") && j["strategy"].is_string() ? j["strategy"].get<std::string>() : "file";
  return Placement(strategy, first_layer, std::move(tables));
}

Placement read_placement_file(const std::string& file, int experts, int ep, int moe_layers, int first_layer) {
  return placement_from_json(read_json_file(file), file, experts, ep, moe_layers, first_layer);
}

std::vector<std::vector<double>> load_stats_from_json(const nlohmann::json& j, const std::string& where, int experts,
                                                      int moe_layers) {
  const nlohmann::json& doc = j.is_object() && j.contains("load") ? j.at("load") : j;
  const nlohmann::json& rows = rows_of(doc, where, "load", moe_layers);
  std::vector<std::vector<double>> out;
  for (std::size_t l = 0; l < rows.size(); ++l) {
    const auto& row = rows[l];
    if (!row.is_array() || row.size() != z(experts))
      throw ConfigError(at(where, "load", l), json_text(row), "must hold one load per expert (" + std::to_string(experts) + ")");
    std::vector<double> r;
    double sum = 0;
    for (std::size_t e = 0; e < row.size(); ++e) {
      if (!row[e].is_number() || row[e].get<double>() < 0) throw ConfigError(at(where, "load", l, e), json_text(row[e]), "must be a number >= 0");
      r.push_back(row[e].get<double>());
      sum += r.back();
    }
    if (!(sum > 0)) throw ConfigError(at(where, "load", l), json_text(row), "must not be all zero");
    out.push_back(std::move(r));
  }
  while (out.size() < z(moe_layers)) out.push_back(out.front());
  return out;
}

std::vector<std::vector<double>> read_load_stats(const std::string& file, int experts, int moe_layers) {
  return load_stats_from_json(read_json_file(file), file, experts, moe_layers);
}

}  // namespace epsim
