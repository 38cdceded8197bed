#include "models/routing_trace.h"

#include <filesystem>
#include <fstream>
#include <map>
#include <numeric>
#include <sstream>

#include "models/apportion.h"
#include "models/config.h"
#include "models/errors.h"
#include "models/limits.h"
#include "models/selection_marginals.h"

namespace epsim {

namespace {

std::string ends(const std::string& s, std::size_t n) { return s.size() >= n ? s.substr(s.size() - n) : s; }

// A load entry: at most 2^40 selections, so that a row of up to limits::kExperts entries sums
// without overflow (the replay rescales rows to the step's own totals anyway).
constexpr std::int64_t kMaxCount = std::int64_t{1} << 40;

// One row of `experts` non-negative integers with a positive total.
void check_row(const std::int64_t* row, int experts, int top_k, const std::string& where, const std::string& value) {
  int nonzero = 0;
  for (int e = 0; e < experts; ++e) nonzero += row[e] > 0 ? 1 : 0;
  if (nonzero < top_k)
    throw ConfigError(where, value, "must have at least top_k = " + std::to_string(top_k) +
                                        " nonzero entries (a token selects top_k distinct experts), has " + std::to_string(nonzero));
}

std::vector<std::int64_t> load_row(const nlohmann::json& j, const std::string& where, int experts, int top_k) {
  const std::string n = std::to_string(experts);
  if (!j.is_array()) throw ConfigError(where, json_text(j), "must be an array of " + n + " token counts");
  if (j.size() != static_cast<std::size_t>(experts))
    throw ConfigError(where, json_text(j), "must have " + n + " entries (model.routed_experts), has " + std::to_string(j.size()));
  std::vector<std::int64_t> row;
  for (std::size_t e = 0; e < j.size(); ++e) {
    const auto& v = j[e];
    const bool in_range = v.is_number_integer() && (v.is_number_unsigned() ? v.get<std::uint64_t>() <= kMaxCount : v.get<std::int64_t>() >= 0);
    if (!in_range)
      throw ConfigError(where + "[" + std::to_string(e) + "]", json_text(v), "must be an integer in [0, " + std::to_string(kMaxCount) + "]");
    row.push_back(v.get<std::int64_t>());
  }
  check_row(row.data(), experts, top_k, where, json_text(j));
  return row;
}

std::int64_t parse_int(const std::string& cell, const std::string& where, const std::string& column, std::int64_t max) {
  std::size_t used = 0;
  long long v = -1;
  try {
    v = std::stoll(cell, &used);
  } catch (const std::logic_error&) {
    used = 0;
  }
  if (used != cell.size() || cell.empty() || v < 0 || v > max)
    throw ConfigError(where, "\"" + cell + "\"", "column " + column + " must be an integer in [0, " + std::to_string(max) + "]");
  return v;
}

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t\r") - b + 1);
}

}  // namespace

std::int64_t TraceShape::layer_of(std::size_t i) const {
  if (moe_layers.empty()) return first_moe_layer + static_cast<std::int64_t>(i);
  if (i < moe_layers.size()) return moe_layers[i];
  return moe_layers.back() + static_cast<std::int64_t>(i - moe_layers.size() + 1);
}

RoutingTrace RoutingTrace::read(const std::string& file, const std::string& key, const TraceShape& shape) {
  if (!std::filesystem::is_regular_file(file))
    throw ConfigError(key, "\"" + file + "\"", "cannot open the trace file (a path in a scenario file is relative to the file's folder)");
  if (ends(file, 5) == ".json") return from_json(read_json_file(file), file, shape);
  std::ifstream in(file);
  return from_csv(in, file, shape);
}

namespace {
// Per-source rows (a non-empty array of rows, each a load_row).
TraceEntry source_rows(const nlohmann::json& S, const std::string& where, int experts, int top_k) {
  if (!S.is_array() || S.empty()) throw ConfigError(where, json_text(S), "must be a non-empty array of per-source rows");
  TraceEntry e;
  for (std::size_t s = 0; s < S.size(); ++s) {
    const auto row = load_row(S[s], where + "[" + std::to_string(s) + "]", experts, top_k);
    e.load.insert(e.load.end(), row.begin(), row.end());
  }
  e.rows = static_cast<int>(S.size());
  return e;
}
}  // namespace

RoutingTrace RoutingTrace::from_json(const nlohmann::json& j, const std::string& file, const TraceShape& shape) {
  const int experts = shape.experts;
  const std::string at = file + ":";
  if (!j.is_object()) throw ConfigError(file, json_text(j), "a JSON trace must be an object with keys experts and layers");
  for (const auto& [k, v] : j.items())
    if (k != "experts" && k != "layers") throw ConfigError(at + k, json_text(v), "unknown key (known here: experts, layers)");
  if (!j.contains("experts") || !j["experts"].is_number_integer() || j["experts"].get<std::int64_t>() != experts)
    throw ConfigError(at + "experts", j.contains("experts") ? json_text(j["experts"]) : "(missing)",
                      "must equal model.routed_experts = " + std::to_string(experts));
  if (!j.contains("layers") || !j["layers"].is_array() || j["layers"].empty())
    throw ConfigError(at + "layers", j.contains("layers") ? json_text(j["layers"]) : "(missing)",
                      "must be a non-empty array, one entry per MoE layer");
  RoutingTrace t;
  t.experts_ = experts;
  const auto& layers = j["layers"];
  for (std::size_t i = 0; i < layers.size(); ++i) {
    const std::string where = at + "layers[" + std::to_string(i) + "]";
    const auto& L = layers[i];
    if (!L.is_object()) throw ConfigError(where, json_text(L), "must be an object with load or sources");
    for (const auto& [k, v] : L.items())
      if (k != "layer" && k != "load" && k != "sources" && k != "micro_batches")
        throw ConfigError(where + "." + k, json_text(v), "unknown key (known here: layer, load, sources, micro_batches)");
    if (L.contains("layer")) {
      const std::int64_t want = shape.layer_of(i);
      if (!L["layer"].is_number_integer() || L["layer"].get<std::int64_t>() != want)
        throw ConfigError(where + ".layer", json_text(L["layer"]),
                          "entry " + std::to_string(i) + " is MoE layer " + std::to_string(want) +
                              (shape.moe_layers.empty() ? " (dense_layers + " + std::to_string(i) + ")" : " (model.moe_layer_ids[" + std::to_string(i) + "])"));
    }
    if (L.contains("load") == L.contains("sources"))
      throw ConfigError(where, json_text(L), "must have exactly one of load (per expert) or sources (per source GPU)");
    TraceEntry e;
    if (L.contains("load")) {
      e.load = load_row(L["load"], where + ".load", experts, shape.top_k);
    } else {
      e = source_rows(L["sources"], where + ".sources", experts, shape.top_k);
    }
    if (L.contains("micro_batches")) {
      const auto& M = L["micro_batches"];
      if (!M.is_array() || M.empty())
        throw ConfigError(where + ".micro_batches", json_text(M), "must be a non-empty array of per-micro-batch source rows");
      for (std::size_t m = 0; m < M.size(); ++m)
        e.micro_batches.push_back(source_rows(M[m], where + ".micro_batches[" + std::to_string(m) + "]", experts, shape.top_k));
    }
    t.entries_.push_back(std::move(e));
  }
  return t;
}

RoutingTrace RoutingTrace::from_csv(std::istream& in, const std::string& file, const TraceShape& shape) {
  const int experts = shape.experts, first_moe_layer = shape.first_moe_layer;
  std::string line;
  int line_no = 0;
  std::vector<std::string> header;
  // (layer, source, expert) -> tokens; source -1 for per-expert files.
  std::map<std::int64_t, std::map<std::pair<std::int64_t, std::int64_t>, std::int64_t>> cells;
  while (std::getline(in, line)) {
    ++line_no;
    const std::string where = file + ":line " + std::to_string(line_no);
    const std::string t = trim(line);
    if (t.empty() || t[0] == '#') continue;
    std::vector<std::string> cols;
    std::stringstream ss(t);
    for (std::string c; std::getline(ss, c, ',');) cols.push_back(trim(c));
    if (!t.empty() && t.back() == ',') cols.push_back("");
    if (header.empty()) {
      header = cols;
      if (header != std::vector<std::string>{"layer", "expert", "tokens"} &&
          header != std::vector<std::string>{"layer", "source", "expert", "tokens"})
        throw ConfigError(where, "\"" + t + "\"", "the header must be layer,expert,tokens or layer,source,expert,tokens");
      continue;
    }
    if (cols.size() != header.size())
      throw ConfigError(where, "\"" + t + "\"", "must have " + std::to_string(header.size()) + " columns like the header");
    const bool per_source = header.size() == 4;
    const std::int64_t layer = parse_int(cols[0], where, "layer", limits::kLayers);
    const std::int64_t source = per_source ? parse_int(cols[1], where, "source", limits::kGpus - 1) : -1;
    const std::int64_t expert = parse_int(cols[per_source ? 2 : 1], where, "expert", limits::kExperts);
    const std::int64_t tokens = parse_int(cols[per_source ? 3 : 2], where, "tokens", kMaxCount);
    if (expert >= experts)
      throw ConfigError(where, "\"" + t + "\"", "expert must be < model.routed_experts = " + std::to_string(experts));
    if (layer < first_moe_layer)
      throw ConfigError(where, "\"" + t + "\"", "layer must be a MoE layer (>= dense_layers = " + std::to_string(first_moe_layer) + ")");
    if (!cells[layer].emplace(std::make_pair(source, expert), tokens).second)
      throw ConfigError(where, "\"" + t + "\"", "repeats an earlier row's layer, source and expert");
  }
  if (header.empty() || cells.empty()) throw ConfigError(file, "(no data rows)", "a CSV trace needs a header and at least one row");
  RoutingTrace tr;
  tr.experts_ = experts;
  std::size_t entry = 0;
  for (const auto& [layer, m] : cells) {
    const std::string where = file + ":layer " + std::to_string(layer);
    const std::int64_t expected_layer = shape.layer_of(entry++);
    if (layer != expected_layer)
      throw ConfigError(where, std::to_string(layer),
                        (shape.moe_layers.empty() ? "layers must be consecutive from dense_layers = " + std::to_string(first_moe_layer)
                                                  : std::string("layers must be the MoE layers (model.moe_layer_ids) in order")) +
                            " (missing layer " + std::to_string(expected_layer) + ")");
    TraceEntry e;
    std::int64_t rows = 0;
    for (const auto& [key, v] : m) rows = std::max(rows, key.first + 1);
    e.rows = static_cast<int>(rows);
    e.load.assign(static_cast<std::size_t>(std::max<std::int64_t>(rows, 1) * experts), 0);
    for (const auto& [key, v] : m)
      e.load[static_cast<std::size_t>(std::max<std::int64_t>(key.first, 0) * experts + key.second)] = v;
    for (std::int64_t r = 0; r < std::max<std::int64_t>(rows, 1); ++r) {
      const std::int64_t* row = e.load.data() + r * experts;
      check_row(row, experts, shape.top_k, rows ? where + " source " + std::to_string(r) : where,
                std::to_string(std::accumulate(row, row + experts, std::int64_t{0})) + " tokens");
    }
    tr.entries_.push_back(std::move(e));
  }
  return tr;
}

// `row` scaled to `total` selections with at most `cap` per expert, rounded exactly.
static std::vector<std::int64_t> scale_row(const std::int64_t* row, int experts, std::int64_t total, std::int64_t cap) {
  std::vector<double> w(static_cast<std::size_t>(experts));
  for (int e = 0; e < experts; ++e) w[static_cast<std::size_t>(e)] = static_cast<double>(row[e]);
  const auto x = water_fill(w, std::vector<double>(w.size(), static_cast<double>(cap)), static_cast<double>(total));
  return apportion(x, total);
}

std::vector<std::int64_t> RoutingTrace::counts(int moe_index, int micro_batch, int sources, std::int64_t tokens, int top_k) const {
  const TraceEntry& layer = for_moe_layer(moe_index);
  const TraceEntry& t = layer.micro_batches.empty()
                            ? layer
                            : layer.micro_batches[static_cast<std::size_t>(micro_batch) % layer.micro_batches.size()];
  const std::size_t E = static_cast<std::size_t>(experts_);
  std::vector<std::int64_t> out(static_cast<std::size_t>(sources) * E, 0);
  const std::int64_t picks = tokens * top_k;
  if (t.rows > 0) {
    for (int s = 0; s < sources; ++s) {
      const auto row = scale_row(t.load.data() + static_cast<std::size_t>(s % t.rows) * E, experts_, picks, tokens);
      std::copy(row.begin(), row.end(), out.begin() + static_cast<std::ptrdiff_t>(static_cast<std::size_t>(s) * E));
    }
    return out;
  }
  // Per-expert totals: scale to all sources' selections, then deal each expert's load to the
  // sources, floor(L / S) each and the remainders one by one round the sources, continuing where
  // the previous expert stopped, so every source ends with exactly tokens x top_k.
  const auto load = scale_row(t.load.data(), experts_, picks * sources, tokens * sources);
  std::int64_t next = 0;
  for (std::size_t e = 0; e < E; ++e) {
    const std::int64_t base = load[e] / sources, rem = load[e] % sources;
    for (int s = 0; s < sources; ++s) out[static_cast<std::size_t>(s) * E + e] = base;
    for (std::int64_t r = 0; r < rem; ++r) ++out[static_cast<std::size_t>((next + r) % sources) * E + e];
    next = (next + rem) % sources;
  }
  return out;
}

std::vector<double> RoutingTrace::probabilities(int moe_index, int top_k) const {
  const TraceEntry& t = for_moe_layer(moe_index);
  const std::size_t E = static_cast<std::size_t>(experts_);
  std::vector<double> w(E, 0.0);
  for (std::size_t i = 0; i < t.load.size(); ++i) w[i % E] += static_cast<double>(t.load[i]);
  return water_fill(w, std::vector<double>(E, 1.0), top_k);
}

}  // namespace epsim
