#include "sim/layer_listing.h"

#include <algorithm>

#include <fmt/format.h>

#include "models/apportion.h"
#include "models/op_pricing.h"

namespace epsim {

Time LayerListing::total() const {
  Time t = Time::zero();
  for (const OpRow& o : ops) t += o.time;
  return t;
}

LayerShape step_layer_shape(const Scenario& sc, std::int64_t tokens, int queries) {
  const Workload& w = sc.workload;
  LayerShape s;
  s.mode = w.mode;
  s.tokens = tokens;
  s.seqs = std::max<std::int64_t>(1, w.sequences() * tokens / w.tokens());
  s.seq_len = w.seq_len;
  s.kv_len = w.kv_len;
  s.cached = w.prefix_tokens();
  s.queries = queries;
  // Prefill needs logits of each sequence's last token; decode and training of every token.
  s.logits = w.mode == Mode::Prefill ? s.seqs : tokens;
  return s;
}

namespace {
OpRow row(const LayerOp& op, const CostModel& cost) {
  const PriceNote note = cost.note(op.work);
  std::string by = note.model + ": " + note.curve;
  if (note.extrapolated()) by += " (extrapolated " + fmt::format("{:.2f}x", note.extrapolation) + ")";
  return {op.name.str(), to_string(op.block), price_op(op, cost).time, op.work.flops, op.work.bytes, op.work.precision,
          op.work.kernels, by};
}
}  // namespace

OpsReport list_layer_ops(const Scenario& sc, const CostModel& cost, std::int64_t expert_rows) {
  const Workload& w = sc.workload;
  const int mbs = sc.schedule.micro_batches();
  const int queries = w.queries_per_sequence();
  const std::int64_t units = w.mode == Mode::Decode ? w.batch_per_gpu : w.tokens();
  OpsReport r;
  r.cost_model = cost.name();
  r.kernel_gap = cost.kernel_gap();
  r.tokens = equal_share(units, 0, mbs) * queries;
  r.expert_rows = expert_rows > 0 ? expert_rows : r.tokens * sc.model.top_k;
  const LayerOps ops(sc.model, sc.parallelism.attention_tp);
  const LayerProgram program(ops, sc.model.shared_experts - sc.parallelism.routed_shared(sc.model));
  const LayerShape shape = step_layer_shape(sc, r.tokens, queries);
  const int slots = std::max(1, sc.parallelism.experts_per_gpu);
  std::vector<int> layers;  // the first dense layer and the first MoE layer
  for (bool moe : {false, true})
    for (int l = 0; l < sc.model.layers; ++l)
      if (sc.model.is_moe(l) == moe) {
        layers.push_back(l);
        break;
      }
  std::sort(layers.begin(), layers.end());
  std::vector<Pass> passes = {Pass::Forward};
  if (w.mode == Mode::Training) passes.push_back(Pass::Backward);
  for (int l : layers)
    for (Pass pass : passes) {
      LayerListing listing{l, sc.model.is_moe(l), pass, {}};
      LayerShape layer_shape = shape;
      layer_shape.window = sc.model.window_of(l);
      for (Block b : program.blocks(listing.moe, pass)) {
        const std::vector<LayerOp> block =
            b == Block::Experts ? program.experts(r.expert_rows, slots, pass) : program.block(b, layer_shape, pass);
        for (const LayerOp& op : block) listing.ops.push_back(row(op, cost));
      }
      r.layers.push_back(std::move(listing));
    }
  return r;
}

nlohmann::json to_json(const OpsReport& r) {
  nlohmann::json layers = nlohmann::json::array();
  for (const LayerListing& l : r.layers) {
    nlohmann::json ops = nlohmann::json::array();
    for (const OpRow& o : l.ops)
      ops.push_back({{"op", o.op}, {"block", o.block}, {"time_us", o.time.to_us()}, {"gflop", o.flops.count() * 1e-9},
                     {"mb", o.bytes.to_mb()}, {"precision", to_string(o.precision)}, {"kernels", o.kernels}, {"priced_by", o.priced_by}});
    layers.push_back({{"layer", l.layer}, {"kind", l.moe ? "moe" : "dense"}, {"pass", l.pass == Pass::Forward ? "forward" : "backward"},
                      {"total_us", l.total().to_us()}, {"ops", ops}});
  }
  return {{"cost_model", r.cost_model}, {"kernel_gap_us", r.kernel_gap.to_us()}, {"gpu_tokens", r.tokens},
          {"expert_rows", r.expert_rows}, {"layers", layers}};
}

std::string ops_table(const OpsReport& r) {
  std::string s = fmt::format("  ops of one layer on one GPU ({} tokens of micro-batch 0; {} routed rows; {}, kernel gap {:.3f} us):\n",
                              r.tokens, r.expert_rows, r.cost_model, r.kernel_gap.to_us());
  for (const LayerListing& l : r.layers) {
    const double total = l.total().to_us();
    s += fmt::format("\n  {} layer {}, {}\n", l.moe ? "MoE" : "dense", l.layer, l.pass == Pass::Forward ? "forward" : "backward");
    s += fmt::format("  {:<24} {:>11} {:>7} {:>10} {:>10} {:>5}  {}\n", "op", "time us", "share", "GFLOP", "MB", "prec", "priced by");
    for (const OpRow& o : l.ops)
      s += fmt::format("  {:<24} {:>11.3f} {:>6.1f}% {:>10.3f} {:>10.3f} {:>5}  {}\n", o.op, o.time.to_us(),
                       total > 0 ? 100.0 * o.time.to_us() / total : 0.0, o.flops.count() * 1e-9, o.bytes.to_mb(),
                       to_string(o.precision), o.priced_by);
    s += fmt::format("  {:<24} {:>11.3f} {:>6.1f}%\n", "total", total, 100.0);
  }
  return s;
}

}  // namespace epsim
