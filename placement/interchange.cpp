#include "placement/interchange.h"

#include <algorithm>
#include <cmath>
#include <optional>

#include "models/config.h"
#include "models/errors.h"

namespace epsim {

namespace {
std::size_t z(int i) { return static_cast<std::size_t>(i); }

std::string at(const std::string& where, const std::string& key, std::size_t i) {
  return where + ":" + key + "[" + std::to_string(i) + "]";
}

// A per-layer array of a file: one row for every MoE layer, one per MoE layer, or (SGLang) one per
// model layer, whose MoE layers' rows are the ones read.
class LayerRows {
 public:
  LayerRows(const nlohmann::json& j, std::string where, std::string key, const MoeModelSpec& model, bool per_model_layer)
      : j_(j), where_(std::move(where)), key_(std::move(key)), model_(model) {
    const std::size_t M = z(model.moe_layers()), L = z(model.layers);
    if (!j.is_array() || j.empty()) throw ConfigError(where_ + ":" + key_, json_text(j), "must be a non-empty array of rows");
    if (per_model_layer) {
      if (j.size() != L && j.size() != M)
        throw ConfigError(where_ + ":" + key_, std::to_string(j.size()) + " rows", "must have one row per layer (" + std::to_string(L) + ")");
      by_model_layer_ = j.size() == L;
    } else if (j.size() != 1 && j.size() != M) {
      throw ConfigError(where_ + ":" + key_, std::to_string(j.size()) + " rows",
                        "must have one row or one per MoE layer (" + std::to_string(M) + ")");
    }
  }
  // Rows the reader produces: 1 (the file has one for every layer) or one per MoE layer.
  int count() const { return j_.size() == 1 && !by_model_layer_ ? 1 : model_.moe_layers(); }
  std::size_t index(int moe_index) const {
    if (by_model_layer_) return z(model_.moe_layer(moe_index));
    return j_.size() == 1 ? 0 : z(moe_index);
  }
  const nlohmann::json& row(int moe_index) const { return j_[index(moe_index)]; }
  std::string path(int moe_index) const { return at(where_, key_, index(moe_index)); }

 private:
  const nlohmann::json& j_;
  std::string where_, key_;
  const MoeModelSpec& model_;
  bool by_model_layer_ = false;
};

// The keys one format uses for slot -> expert, expert -> slots and replica counts.
struct MapKeys {
  const char* phy2log;
  const char* log2phy;
  const char* logcnt;
};
constexpr MapKeys kEplbKeys{"phy2log", "log2phy", "logcnt"};
constexpr MapKeys kVllmKeys{"physical_to_logical_map", "logical_to_physical_map", "logical_replica_count"};

std::vector<int> slot_row(const nlohmann::json& row, const std::string& where, int experts, int ep, std::size_t width) {
  if (!row.is_array() || row.empty()) throw ConfigError(where, json_text(row), "must be a non-empty array");
  if (width && row.size() != width) throw ConfigError(where, std::to_string(row.size()) + " slots", "every layer must have " + std::to_string(width));
  if (row.size() % z(ep) != 0) throw ConfigError(where, std::to_string(row.size()) + " slots", "must be a multiple of ep = " + std::to_string(ep));
  std::vector<int> p;
  std::vector<int> count(z(experts), 0);
  for (std::size_t s = 0; s < row.size(); ++s) {
    const auto& v = row[s];
    if (!v.is_number_integer() || v.get<std::int64_t>() < -1 || v.get<std::int64_t>() >= experts)
      throw ConfigError(where + "[" + std::to_string(s) + "]", json_text(v), "must be an expert in [0, " + std::to_string(experts) + ") or -1 (empty)");
    p.push_back(v.get<int>());
    if (p.back() >= 0) ++count[z(p.back())];
  }
  for (int e = 0; e < experts; ++e)
    if (count[z(e)] == 0) throw ConfigError(where, "(expert " + std::to_string(e) + " absent)", "every expert needs a slot");
  return p;
}

// Replica counts and expert -> slots rows, when the file gives them, must agree with the slots.
void check_inverse(const nlohmann::json& j, const std::string& where, const MapKeys& keys, const MoeModelSpec& model, int l,
                   const std::vector<int>& p) {
  const int experts = model.routed_experts;
  std::vector<int> count(z(experts), 0);
  for (int e : p)
    if (e >= 0) ++count[z(e)];
  if (j.contains(keys.logcnt)) {
    const LayerRows cnt(j.at(keys.logcnt), where, keys.logcnt, model, false);
    const auto& crow = cnt.row(l);
    for (int e = 0; e < experts; ++e)
      if (!crow.is_array() || crow.size() != z(experts) || crow[z(e)] != count[z(e)])
        throw ConfigError(cnt.path(l), json_text(crow), std::string("must count each expert's slots in ") + keys.phy2log);
  }
  if (!j.contains(keys.log2phy)) return;
  const LayerRows lp(j.at(keys.log2phy), where, keys.log2phy, model, false);
  const auto& lrow = lp.row(l);
  if (!lrow.is_array() || lrow.size() != z(experts)) throw ConfigError(lp.path(l), json_text(lrow), "must list the slots of every expert");
  for (int e = 0; e < experts; ++e) {
    const std::string here = lp.path(l) + "[" + std::to_string(e) + "]";
    if (!lrow[z(e)].is_array()) throw ConfigError(here, json_text(lrow[z(e)]), "must hold slot numbers");
    int listed = 0;
    for (const auto& s : lrow[z(e)]) {
      if (!s.is_number_integer()) throw ConfigError(here, json_text(lrow[z(e)]), "must hold slot numbers");
      const auto slot = s.get<std::int64_t>();
      if (slot < 0) continue;
      if (slot >= static_cast<std::int64_t>(p.size()) || p[static_cast<std::size_t>(slot)] != e)
        throw ConfigError(here, json_text(lrow[z(e)]), std::string("must name slots that ") + keys.phy2log + " gives this expert");
      ++listed;
    }
    if (listed != count[z(e)]) throw ConfigError(here, json_text(lrow[z(e)]), "must name every slot of the expert");
  }
}

Placement from_slot_maps(const nlohmann::json& j, const std::string& where, const MoeModelSpec& model, int ep, const MapKeys& keys,
                         bool per_model_layer) {
  const LayerRows rows(j.at(keys.phy2log), where, keys.phy2log, model, per_model_layer);
  std::vector<LayerPlacement> tables;
  std::size_t width = 0;
  for (int l = 0; l < rows.count(); ++l) {
    std::vector<int> p = slot_row(rows.row(l), rows.path(l), model.routed_experts, ep, width);
    width = p.size();
    check_inverse(j, where, keys, model, l, p);
    tables.emplace_back(model.routed_experts, ep, std::move(p));
  }
  const std::string strategy = j.contains("strategy") && j["strategy"].is_string() ? j["strategy"].get<std::string>() : "file";
  return Placement(strategy, model.moe_layer_list(), std::move(tables));
}

// vLLM's Ascend plugin: per MoE layer, per device, the expert of each local slot.
Placement from_device_lists(const nlohmann::json& j, const std::string& where, const MoeModelSpec& model, int ep) {
  const nlohmann::json& layers = j.at("layer_list");
  const std::string key = "layer_list";
  if (j.contains("moe_layer_count") && (!j["moe_layer_count"].is_number_integer() || j["moe_layer_count"].get<std::int64_t>() != static_cast<std::int64_t>(layers.size())))
    throw ConfigError(where + ":moe_layer_count", json_text(j["moe_layer_count"]), "must equal the length of layer_list");
  const LayerRows rows(layers, where, key, model, false);
  std::vector<LayerPlacement> tables;
  std::size_t width = 0;
  for (int l = 0; l < rows.count(); ++l) {
    const nlohmann::json& layer = rows.row(l);
    const std::string here = rows.path(l);
    if (!layer.is_object() || !layer.contains("device_list") || !layer["device_list"].is_array())
      throw ConfigError(here, json_text(layer), "must be an object with device_list");
    const nlohmann::json& devices = layer["device_list"];
    if (devices.size() != z(ep)) throw ConfigError(here + ".device_list", std::to_string(devices.size()) + " devices", "must list ep = " + std::to_string(ep) + " devices");
    nlohmann::json flat = nlohmann::json::array();
    std::size_t per_device = 0;
    for (std::size_t g = 0; g < devices.size(); ++g) {
      const std::string dev = here + ".device_list[" + std::to_string(g) + "]";
      const nlohmann::json& d = devices[g];
      if (!d.is_object() || !d.contains("device_expert") || !d["device_expert"].is_array() || d["device_expert"].empty())
        throw ConfigError(dev, json_text(d), "must be an object with a non-empty device_expert list");
      if (d.contains("device_id") && d["device_id"] != static_cast<int>(g)) throw ConfigError(dev + ".device_id", json_text(d["device_id"]), "must be " + std::to_string(g));
      if (g == 0) per_device = d["device_expert"].size();
      if (d["device_expert"].size() != per_device)
        throw ConfigError(dev + ".device_expert", json_text(d["device_expert"]), "every device must hold " + std::to_string(per_device) + " slots");
      for (const auto& e : d["device_expert"]) flat.push_back(e);
    }
    std::vector<int> p = slot_row(flat, here + ".device_list[*].device_expert", model.routed_experts, ep, width);
    width = p.size();
    tables.emplace_back(model.routed_experts, ep, std::move(p));
  }
  return Placement("file", model.moe_layer_list(), std::move(tables));
}

nlohmann::json padded_replicas(const LayerPlacement& t, std::size_t width) {
  nlohmann::json rows = nlohmann::json::array();
  for (int e = 0; e < t.experts(); ++e) {
    std::vector<int> r = t.replicas(e);
    r.resize(width, -1);
    rows.push_back(r);
  }
  return rows;
}

nlohmann::json number(double v) {
  if (std::floor(v) == v && std::fabs(v) < 9e15) return static_cast<std::int64_t>(v);
  return v;
}

std::vector<double> load_row(const nlohmann::json& row, const std::string& where, std::size_t width) {
  if (!row.is_array() || row.size() != width)
    throw ConfigError(where, json_text(row), "must hold one load per expert (" + std::to_string(width) + ")");
  std::vector<double> r;
  for (std::size_t e = 0; e < row.size(); ++e) {
    if (!row[e].is_number() || row[e].get<double>() < 0) throw ConfigError(where + "[" + std::to_string(e) + "]", json_text(row[e]), "must be a number >= 0");
    r.push_back(row[e].get<double>());
  }
  return r;
}

// A steps x rows x width array summed over steps (or a rows x width array as it is).
nlohmann::json sum_first_axis(const nlohmann::json& j) {
  if (!j.is_array() || j.empty() || !j[0].is_array() || j[0].empty() || !j[0][0].is_array()) return j;
  nlohmann::json out = j[0];
  for (std::size_t s = 1; s < j.size(); ++s) {
    if (!j[s].is_array() || j[s].size() != out.size()) return j;  // the row checks below name the problem
    for (std::size_t r = 0; r < out.size(); ++r)
      for (std::size_t e = 0; e < out[r].size() && e < j[s][r].size(); ++e)
        if (out[r][e].is_number() && j[s][r][e].is_number()) out[r][e] = out[r][e].get<double>() + j[s][r][e].get<double>();
  }
  return out;
}
}  // namespace

const std::vector<std::string>& interchange_format_names() {
  static const std::vector<std::string> names = {"eplb", "sglang", "vllm", "vllm-ascend"};
  return names;
}

InterchangeFormat interchange_format(const std::string& name, const std::string& key) {
  const auto& n = interchange_format_names();
  const auto it = std::find(n.begin(), n.end(), name);
  if (it == n.end()) throw ConfigError(key, "\"" + name + "\"", "must be one of: eplb, sglang, vllm, vllm-ascend");
  return static_cast<InterchangeFormat>(it - n.begin());
}

nlohmann::json placement_to_json(const Placement& placement, const MoeModelSpec& model, InterchangeFormat format) {
  const int E = placement.experts(), M = model.moe_layers();
  std::size_t maxcnt = 1;
  for (int l = 0; l < M; ++l)
    for (int e = 0; e < E; ++e) maxcnt = std::max(maxcnt, placement.moe_table(l).replicas(e).size());
  nlohmann::json j;
  switch (format) {
    case InterchangeFormat::eplb:
    case InterchangeFormat::vllm: {
      const MapKeys k = format == InterchangeFormat::eplb ? kEplbKeys : kVllmKeys;
      nlohmann::json phy2log = nlohmann::json::array(), log2phy = nlohmann::json::array(), logcnt = nlohmann::json::array();
      for (int l = 0; l < M; ++l) {
        const LayerPlacement& t = placement.moe_table(l);
        phy2log.push_back(t.phy2log());
        log2phy.push_back(padded_replicas(t, maxcnt));
        std::vector<int> cnt;
        for (int e = 0; e < E; ++e) cnt.push_back(t.replica_count(e));
        logcnt.push_back(cnt);
      }
      if (format == InterchangeFormat::eplb) {
        j["strategy"] = placement.strategy();
        j["num_layers"] = M;
        j["num_logical_experts"] = E;
        j["num_physical_experts"] = placement.tables().front().slots();
        j["num_gpus"] = placement.ep();
      }
      j[k.phy2log] = phy2log;
      j[k.log2phy] = log2phy;
      j[k.logcnt] = logcnt;
      return j;
    }
    case InterchangeFormat::sglang: {
      const int P = placement.tables().front().slots();
      nlohmann::json rows = nlohmann::json::array();
      for (int l = 0; l < model.layers; ++l) {
        if (model.is_moe(l)) {
          rows.push_back(placement.layer(l).phy2log());
          continue;
        }
        std::vector<int> trivial;  // SGLang's init_trivial row: physical p holds logical p mod E
        for (int p = 0; p < P; ++p) trivial.push_back(p % E);
        rows.push_back(trivial);
      }
      j["physical_to_logical_map"] = rows;
      return j;
    }
    case InterchangeFormat::vllm_ascend: {
      nlohmann::json layers = nlohmann::json::array();
      for (int l = 0; l < M; ++l) {
        const LayerPlacement& t = placement.moe_table(l);
        nlohmann::json devices = nlohmann::json::array();
        for (int g = 0; g < t.ep(); ++g) {
          const auto first = t.phy2log().begin() + static_cast<std::ptrdiff_t>(g) * t.slots_per_gpu();
          devices.push_back({{"device_id", g}, {"device_expert", std::vector<int>(first, first + t.slots_per_gpu())}});
        }
        layers.push_back({{"layer_id", l}, {"device_count", t.ep()}, {"device_list", devices}});
      }
      j["moe_layer_count"] = M;
      j["layer_list"] = layers;
      return j;
    }
  }
  return j;
}

Placement placement_from_json(const nlohmann::json& j, const std::string& where, const MoeModelSpec& model, int ep) {
  if (j.is_object() && j.contains("phy2log")) return from_slot_maps(j, where, model, ep, kEplbKeys, false);
  if (j.is_object() && j.contains("physical_to_logical_map")) {
    // SGLang writes one row per model layer, vLLM one per MoE layer.
    const nlohmann::json& rows = j["physical_to_logical_map"];
    const bool sglang = rows.is_array() && rows.size() == z(model.layers) && model.layers != model.moe_layers();
    return from_slot_maps(j, where, model, ep, kVllmKeys, sglang);
  }
  if (j.is_object() && j.contains("layer_list")) return from_device_lists(j, where, model, ep);
  throw ConfigError(where, json_text(j),
                    "must be a placement: an object with phy2log (EPLB), physical_to_logical_map (SGLang, vLLM) or "
                    "layer_list (vLLM Ascend expert map)");
}

Placement read_placement_file(const std::string& file, const MoeModelSpec& model, int ep) {
  return placement_from_json(read_json_file(file), file, model, ep);
}

nlohmann::json load_stats_to_json(const std::vector<std::vector<double>>& loads, const MoeModelSpec& model, InterchangeFormat format) {
  const int M = model.moe_layers();
  if (loads.size() != z(M)) throw SimulationError("load_stats_to_json: " + std::to_string(loads.size()) + " rows for " + std::to_string(M) + " MoE layers");
  auto row = [](const std::vector<double>& r) {
    nlohmann::json out = nlohmann::json::array();
    for (double v : r) out.push_back(number(v));
    return out;
  };
  nlohmann::json rows = nlohmann::json::array();
  switch (format) {
    case InterchangeFormat::eplb:
    case InterchangeFormat::vllm_ascend:
      for (const auto& r : loads) rows.push_back(row(r));
      return {{"load", rows}};
    case InterchangeFormat::sglang:
      for (int l = 0; l < model.layers; ++l) {
        const int i = model.moe_index(l);
        rows.push_back(row(i >= 0 ? loads[z(i)] : std::vector<double>(z(model.routed_experts), 0.0)));
      }
      return {{"logical_count", rows}};
    case InterchangeFormat::vllm:
      for (const auto& r : loads) rows.push_back(row(r));
      return {{"expert_load_pass", rows}};
  }
  return {};
}

std::vector<std::vector<double>> load_stats_from_json(const nlohmann::json& j, const std::string& where, const MoeModelSpec& model) {
  const std::size_t E = z(model.routed_experts);
  std::vector<std::vector<double>> out;
  auto finish = [&](std::vector<std::vector<double>> rows, const LayerRows& lr) {
    for (std::size_t l = 0; l < rows.size(); ++l) {
      double sum = 0;
      for (double v : rows[l]) sum += v;
      if (!(sum > 0)) throw ConfigError(lr.path(static_cast<int>(l)), json_text(lr.row(static_cast<int>(l))), "must not be all zero");
    }
    while (rows.size() < z(model.moe_layers())) rows.push_back(rows.front());
    return rows;
  };
  if (j.is_object() && j.contains("logical_count")) {  // SGLang: (steps x) layers x E
    const nlohmann::json counts = sum_first_axis(j["logical_count"]);
    const LayerRows lr(counts, where, "logical_count", model, true);
    for (int l = 0; l < lr.count(); ++l) out.push_back(load_row(lr.row(l), lr.path(l), E));
    return finish(std::move(out), lr);
  }
  if (j.is_object() && (j.contains("expert_load_window") || j.contains("expert_load_pass"))) {  // vLLM: physical loads
    const bool window = j.contains("expert_load_window");
    const char* key = window ? "expert_load_window" : "expert_load_pass";
    const nlohmann::json loads = window ? sum_first_axis(j[key]) : j[key];
    const LayerRows lr(loads, where, key, model, false);
    std::optional<LayerRows> map;
    if (j.contains("physical_to_logical_map")) map.emplace(j["physical_to_logical_map"], where, "physical_to_logical_map", model, false);
    for (int l = 0; l < lr.count(); ++l) {
      const nlohmann::json& row = lr.row(l);
      if (!map) {
        out.push_back(load_row(row, lr.path(l), E));
        continue;
      }
      const nlohmann::json& m = map->row(l);
      const std::vector<double> physical = load_row(row, lr.path(l), m.is_array() ? m.size() : 0);
      std::vector<double> logical(E, 0.0);
      for (std::size_t p = 0; p < physical.size(); ++p) {
        if (!m[p].is_number_integer() || m[p].get<std::int64_t>() < -1 || m[p].get<std::int64_t>() >= static_cast<std::int64_t>(E))
          throw ConfigError(map->path(l) + "[" + std::to_string(p) + "]", json_text(m[p]), "must be an expert in [0, " + std::to_string(E) + ") or -1 (empty)");
        if (m[p].get<int>() >= 0) logical[z(m[p].get<int>())] += physical[p];
      }
      out.push_back(std::move(logical));
    }
    return finish(std::move(out), lr);
  }
  const nlohmann::json& doc = j.is_object() && j.contains("load") ? j.at("load") : j;
  if (j.is_object() && !j.contains("load"))
    throw ConfigError(where, json_text(j), "must be load statistics: load (EPLB), logical_count (SGLang), expert_load_window or expert_load_pass (vLLM), or a bare array");
  const LayerRows lr(doc, where, "load", model, false);
  for (int l = 0; l < lr.count(); ++l) out.push_back(load_row(lr.row(l), lr.path(l), E));
  return finish(std::move(out), lr);
}

std::vector<std::vector<double>> read_load_stats(const std::string& file, const MoeModelSpec& model) {
  return load_stats_from_json(read_json_file(file), file, model);
}

}  // namespace epsim
