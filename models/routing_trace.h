// Routing traces: measured per-layer expert loads, replayed by the gate (`routing.distribution =
// "trace"`). Two formats, chosen by the file name (".json", else CSV):
//
// JSON
//   {"experts": 16,                                  // must equal model.routed_experts
//    "layers": [                                     // entry i is the i-th MoE layer
//      {"layer": 1, "load": [812, 790, ...]},        // per-expert selections summed over sources
//      {"sources": [[52, 49, ...], [47, 50, ...]]}   // or per source GPU, one row each
//    ]}
//   A layer may add "micro_batches": [[[...], [...]], ...]: per micro-batch, per-source rows as in
//   "sources" (what each micro-batch routed, e.g. from a measured dual micro-batch run); micro-batch
//   m of the step replays entry m mod count, else the layer's rows.
//   Every row (or load) needs at least top_k nonzero entries: a token selects top_k distinct experts.
//   "layer" is optional; when present it must be the i-th MoE layer's index (dense_layers + i when
//   every layer from dense_layers on is MoE).
// CSV (a header line, then one row per nonzero load; blank lines and lines starting with # skipped)
//   layer,expert,tokens            per-expert loads
//   layer,source,expert,tokens     per-source loads
//   `layer` is the layer index; the layers present must be the MoE layers in order from the first
//   (dense_layers, dense_layers + 1, ... when every layer from dense_layers on is MoE).
//
// Replay: a model with more MoE layers than the trace reuses the entries cyclically. Per-source
// rows: source GPU s replays row s mod rows. A row (or the per-expert load) is scaled to the step's
// selections (tokens x top_k per source, times the sources for per-expert loads), capped at one
// selection per token, and rounded by largest remainder; per-expert loads are then dealt to the
// sources evenly (+-1). When the totals match, the file's numbers come back exactly.
#pragma once

#include <cstdint>
#include <istream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace epsim {

// What a trace must fit: the model's routed experts, top-k and MoE layers.
struct TraceShape {
  int experts = 0;
  int top_k = 1;
  int first_moe_layer = 0;
  // The MoE layers' indexes when they are not every layer from first_moe_layer on (empty: they are).
  std::vector<int> moe_layers;
  // The layer of MoE entry i (past the model's last MoE layer: counted on from it).
  std::int64_t layer_of(std::size_t i) const;
};

struct TraceEntry {
  int rows = 0;                     // 0: per-expert loads only; else per-source rows
  std::vector<std::int64_t> load;   // rows == 0: [expert]; else [row * experts + expert]
  std::vector<TraceEntry> micro_batches;  // optional: per micro-batch, per-source rows
};

class RoutingTrace {
 public:
  // Errors throw ConfigError with path "<file>:<where>" (a JSON path or "line N"), the value and the
  // rule; a missing file is a ConfigError on `key` (the routing.trace path).
  static RoutingTrace read(const std::string& file, const std::string& key, const TraceShape& shape);
  static RoutingTrace from_json(const nlohmann::json& j, const std::string& file, const TraceShape& shape);
  static RoutingTrace from_csv(std::istream& in, const std::string& file, const TraceShape& shape);

  int experts() const { return experts_; }
  int entries() const { return static_cast<int>(entries_.size()); }
  const TraceEntry& entry(int i) const { return entries_[static_cast<std::size_t>(i)]; }
  // The entry replayed at `moe_index` (0 = first MoE layer), cyclic.
  const TraceEntry& for_moe_layer(int moe_index) const { return entry(moe_index % entries()); }

  // Selection counts for `sources` GPUs of `tokens` tokens each in micro-batch `micro_batch`:
  // counts[s * experts + e].
  std::vector<std::int64_t> counts(int moe_index, int micro_batch, int sources, std::int64_t tokens, int top_k) const;
  // Per-token selection probability of each expert (sums to top_k), averaged over sources.
  std::vector<double> probabilities(int moe_index, int top_k) const;

 private:
  int experts_ = 0;
  std::vector<TraceEntry> entries_;
};

}  // namespace epsim
