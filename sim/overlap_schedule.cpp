#include "sim/overlap_schedule.h"

#include <array>
#include <filesystem>
#include <map>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "models/errors.h"
#include "models/limits.h"

namespace epsim {

namespace {
constexpr std::array<ScheduleOp, 9> kOps = {ScheduleOp::MoeOut, ScheduleOp::Attention, ScheduleOp::MoeIn,
                                            ScheduleOp::Shared, ScheduleOp::Dense,     ScheduleOp::Counts,
                                            ScheduleOp::Dispatch, ScheduleOp::Experts, ScheduleOp::Combine};
// Ops the backward does not run: the previous layer's unpermute and the count exchange (forward only).
bool forward_only(ScheduleOp op) { return op == ScheduleOp::MoeOut || op == ScheduleOp::Counts; }

const Schema& stage_schema() {
  static const Schema s{"stage", {
      {"compute", "array", nlohmann::json::array(), "", "items issued on every GPU's compute stream, in order"},
      {"comm", "array", nlohmann::json::array(), "", "collectives issued on the communication stream after the stage's compute items, in order"},
      {"note", "string", "", "", "free text"},
  }};
  return s;
}

const Schema& item_schema() {
  static const Schema s{"item", {
      {"op", "string", nullptr, "", "moe_out | attention | moe_in | shared | dense | counts | dispatch | experts | combine"},
      {"mb", "integer", 0, "", "micro-batch, 0-based"},
      {"chain", "boolean", false, "", "shared: the micro-batch's next item waits for it"},
  }};
  return s;
}

ScheduleOp op_named(const std::string& name, const std::string& path, const std::string& value) {
  for (ScheduleOp op : kOps)
    if (name == to_string(op)) return op;
  throw ConfigError(path, value, "unknown op (known: moe_out, attention, moe_in, shared, dense, counts, dispatch, experts, combine)");
}

// "op@mb" or {"op": ..., "mb": ..., "chain": ...}.
ScheduleItem parse_item(const nlohmann::json& j, const std::string& path, int micro_batches) {
  ScheduleItem item;
  if (j.is_string()) {
    const std::string s = j.get<std::string>();
    const auto at = s.find('@');
    if (at == std::string::npos) throw ConfigError(path, json_text(j), "must look like \"op@micro-batch\" (\"attention@0\") or be an object");
    item.op = op_named(s.substr(0, at), path, json_text(j));
    try {
      std::size_t used = 0;
      item.micro_batch = std::stoi(s.substr(at + 1), &used);
      if (used != s.size() - at - 1) throw std::invalid_argument("trailing");
    } catch (const std::exception&) {
      throw ConfigError(path, json_text(j), "the micro-batch after @ must be an integer");
    }
  } else {
    ConfigObject c(j, path, item_schema());
    item.op = op_named(c.string("op"), c.path_of("op"), json_text(c.raw("op")));
    item.micro_batch = c.integer_in<int>("mb", 0, 63);
    item.chain = c.boolean("chain");
    if (item.chain && item.op != ScheduleOp::Shared) c.fail("chain", "only shared takes chain (every other item is chained already)");
  }
  if (item.micro_batch < 0 || item.micro_batch >= micro_batches)
    throw ConfigError(path, json_text(j), fmt::format("micro-batch must be in [0, {})", micro_batches));
  return item;
}

// Every micro-batch runs each op of the pass once, in an order its data allows.
void check_pass(const std::vector<ScheduleStage>& stages, const std::vector<std::string>& item_paths, bool forward,
                int micro_batches, const std::string& path) {
  std::map<std::pair<int, ScheduleOp>, std::size_t> at;  // (mb, op) -> position in issue order
  std::size_t pos = 0;
  for (const ScheduleStage& s : stages)
    for (const auto* list : {&s.compute, &s.comm})
      for (const ScheduleItem& it : *list) {
        if (!forward && forward_only(it.op))
          throw ConfigError(item_paths[pos], fmt::format("\"{}@{}\"", to_string(it.op), it.micro_batch),
                            "the backward runs no moe_out or counts (its MoE block starts with the dispatch)");
        if (!at.emplace(std::make_pair(it.micro_batch, it.op), pos).second)
          throw ConfigError(item_paths[pos], fmt::format("\"{}@{}\"", to_string(it.op), it.micro_batch), "listed twice in one layer");
        ++pos;
      }
  // (before, after): `after` needs what `before` produced.
  const std::vector<std::pair<ScheduleOp, ScheduleOp>> forward_order = {
      {ScheduleOp::MoeOut, ScheduleOp::Attention}, {ScheduleOp::Attention, ScheduleOp::MoeIn}, {ScheduleOp::MoeIn, ScheduleOp::Counts},
      {ScheduleOp::Counts, ScheduleOp::Dispatch},
      {ScheduleOp::Dispatch, ScheduleOp::Experts}, {ScheduleOp::Experts, ScheduleOp::Combine}, {ScheduleOp::Attention, ScheduleOp::Shared},
      {ScheduleOp::Attention, ScheduleOp::Dense}};
  const std::vector<std::pair<ScheduleOp, ScheduleOp>> backward_order = {
      {ScheduleOp::Dispatch, ScheduleOp::Experts}, {ScheduleOp::Experts, ScheduleOp::Combine}, {ScheduleOp::Combine, ScheduleOp::Attention},
      {ScheduleOp::Attention, ScheduleOp::MoeIn}, {ScheduleOp::Attention, ScheduleOp::Shared}, {ScheduleOp::Attention, ScheduleOp::Dense}};
  for (int mb = 0; mb < micro_batches; ++mb) {
    for (ScheduleOp op : kOps)
      if ((forward || !forward_only(op)) && !at.count({mb, op}))
        throw ConfigError(path, "(stages)", fmt::format("micro-batch {} lacks {}", mb, to_string(op)));
    for (const auto& [before, after] : forward ? forward_order : backward_order) {
      const std::size_t a = at.at({mb, before}), b = at.at({mb, after});
      if (b < a)
        throw ConfigError(item_paths[b], fmt::format("\"{}@{}\"", to_string(after), mb),
                          fmt::format("must come after {}@{}, whose output it needs", to_string(before), mb));
    }
  }
}

std::vector<ScheduleStage> parse_pass(const nlohmann::json& j, const std::string& path, bool forward, int micro_batches) {
  if (!j.is_array() || j.empty()) throw ConfigError(path, json_text(j), "must be a non-empty array of stages");
  std::vector<ScheduleStage> stages;
  std::vector<std::string> item_paths;
  for (std::size_t i = 0; i < j.size(); ++i) {
    const std::string sp = fmt::format("{}[{}]", path, i);
    ConfigObject c(j[i], sp, stage_schema());
    ScheduleStage stage;
    for (const char* list : {"compute", "comm"}) {
      const nlohmann::json& items = c.raw(list);
      if (!items.is_array()) c.fail(list, "must be an array of items");
      for (std::size_t k = 0; k < items.size(); ++k) {
        const std::string ip = fmt::format("{}.{}[{}]", sp, list, k);
        const ScheduleItem item = parse_item(items[k], ip, micro_batches);
        const bool comm = std::string(list) == "comm";
        if (is_collective(item.op) != comm)
          throw ConfigError(ip, json_text(items[k]),
                            comm ? "is a compute item: list it under compute" : "is a collective: list it under comm");
        (comm ? stage.comm : stage.compute).push_back(item);
        item_paths.push_back(ip);
      }
    }
    stages.push_back(std::move(stage));
  }
  // item_paths follow issue order only if every stage lists compute before comm, as parsed above.
  check_pass(stages, item_paths, forward, micro_batches, path);
  return stages;
}

std::filesystem::path shipped_file(const std::string& name, const std::string& path) {
  namespace fs = std::filesystem;
  for (const fs::path& dir : {fs::path(EPSIM_SCHEDULE_DIR), fs::path("scenarios/schedules")})
    if (fs::exists(dir / (name + ".json"))) return dir / (name + ".json");
  throw ConfigError(path, "\"" + name + "\"",
                    "shipped schedule description not found (looked in " + std::string(EPSIM_SCHEDULE_DIR) + " and ./scenarios/schedules)");
}
}  // namespace

const char* to_string(ScheduleOp op) {
  switch (op) {
    case ScheduleOp::MoeOut: return "moe_out";
    case ScheduleOp::Attention: return "attention";
    case ScheduleOp::MoeIn: return "moe_in";
    case ScheduleOp::Shared: return "shared";
    case ScheduleOp::Dense: return "dense";
    case ScheduleOp::Counts: return "counts";
    case ScheduleOp::Dispatch: return "dispatch";
    case ScheduleOp::Experts: return "experts";
    case ScheduleOp::Combine: return "combine";
  }
  return "?";
}

bool is_collective(ScheduleOp op) { return op == ScheduleOp::Counts || op == ScheduleOp::Dispatch || op == ScheduleOp::Combine; }

const Schema& OverlapSchedule::schema() {
  static const Schema s{"schedule.overlap", {
      {"name", "string", "custom", "", "the schedule's name, printed in the summary"},
      {"description", "string", "", "", "free text"},
      {"micro_batches", "integer", 1, "", "micro-batches the step's tokens are split into (near-equal shares)"},
      {"comm_sms", "integer", nullptr, "SMs", "when given, forces schedule.comm_sms (decode-5stage: 0, communication on no SMs)"},
      {"forward", "array", nullptr, "", "one layer's stages: [{\"compute\": [items], \"comm\": [items]}, ...]; an item is \"op@mb\" or {\"op\", \"mb\", \"chain\"}"},
      {"backward", "array", nlohmann::json::array(), "", "one layer's backward stages (training; the MoE items first, no moe_out)"},
  }};
  return s;
}

OverlapSchedule OverlapSchedule::from_json(const nlohmann::json& j, const std::string& path) {
  ConfigObject c(j, path, schema());
  OverlapSchedule s;
  s.name = c.string("name");
  s.description = c.string("description");
  s.micro_batches = c.integer_in<int>("micro_batches", 1, 64);
  if (c.has("comm_sms")) s.comm_sms = c.integer_in<int>("comm_sms", 0, limits::kSms);
  s.forward = parse_pass(c.raw("forward"), c.path_of("forward"), true, s.micro_batches);
  if (!c.raw("backward").empty()) s.backward = parse_pass(c.raw("backward"), c.path_of("backward"), false, s.micro_batches);
  return s;
}

const std::vector<std::string>& OverlapSchedule::shipped() {
  static const std::vector<std::string> names = {"serial", "dual-microbatch", "decode-5stage", "dual-interleaved"};
  return names;
}

OverlapSchedule OverlapSchedule::resolve(const nlohmann::json& value, const std::string& path) {
  if (value.is_object()) return from_json(value, path);
  if (!value.is_string())
    throw ConfigError(path, json_text(value), "must be a shipped schedule's name, a description file or a description object");
  const std::string v = value.get<std::string>();
  std::filesystem::path file;
  for (const auto& name : shipped())
    if (v == name) file = shipped_file(name, path);
  if (file.empty()) {
    if (v.size() < 5 || v.substr(v.size() - 5) != ".json" || !std::filesystem::exists(v))
      throw ConfigError(path, json_text(value),
                        "must be one of " + fmt::format("{}", fmt::join(shipped(), ", ")) +
                            ", an existing description file (.json) or a description object");
    file = v;
  }
  OverlapSchedule s = from_json(read_json_file(file.string()), path + " (" + file.filename().string() + ")");
  if (s.name == "custom") s.name = file.stem().string();
  return s;
}

}  // namespace epsim
