#include "sim/scenario.h"

#include <algorithm>
#include <filesystem>

#include <fmt/format.h>

#include "models/dispatch_impl.h"
#include "models/limits.h"
#include "sim/comm_scheme.h"
#include "sim/pipeline_schedule.h"

namespace epsim {

const Schema& NetworkSpec::schema() {
  static const Schema s{"network", {
      {"model", "string", "analytical", "", "analytical: each all-to-all priced by its most loaded link | flow: every flow drains at its max-min fair share of every link, re-solved as flows start and end, plus route latency (concurrent transfers contend)"},
      {"replay", "boolean", true, "", "reuse the solved timing of an all-to-all whose exact traffic was seen before, when its links are free (equal to solving it; false only to check or time that)"},
      {"completion_window", "number", 4e-3, "", "flow: a re-solve may also complete flows due a little later, so one solve serves many nearby ends; every flow then arrives within this fraction of its duration of its exact time (proven where flows share one link and start together, measured elsewhere: sim/flow_network.h). A flow goes early by at most a quarter of it, and each link drops at most a quarter of it x capacity x its youngest flow's age. 0 is exact. 4e-3 (the default: about the cost of the unproven 1e-3 rule before it, which let flows go up to 4e-3 early) kept every flow of a jittered 256-GPU all-to-all within 3.0e-3 and solved it 20x faster than exact (1e-3: within 6.8e-4, 7.8x); it must be in [0, 0.05]"},
      {"scheme", "string", "direct", "", "direct: one flow per GPU pair through the source GPU's NIC (NCCL all-to-all) | hierarchical: a token crosses InfiniBand once per remote node, to the same-rail GPU, which fans it out over NVLink (DeepEP normal kernels) | per-token: one message per (token, expert) pair, no deduplication (low-latency kernels)"},
      {"dispatch_impl", "string", "ideal", "", "ideal: dispatch and combine are only their flows on the links (under a calibrated cost model at NCCL's measured NVLink rate and round cost) | nccl: as kernels/ep_layer.cu with NCCL (permute, count exchange, rounds of grouped send/recv per (peer, expert) piece at 35 us + 3.1 us per piece + bytes / 286 GB/s, unpermute) | peer: the same with its own peer-pointer kernel (16 us + bytes / 370 GB/s per round, its own rows at 1240 GB/s); constants fitted to kernels/results/ep2-h200x2-* (models/dispatch_impl.cpp) | normal: DeepEP's throughput kernels: a token crosses InfiniBand once per destination node to the GPU of the same rail, which forwards it over NVLink; the combine is reduced there before going back; RDMA and NVLink stages pipelined; dispatch in precision.dispatch, combine in precision.combine; the kernels run on schedule.comm_sms SMs and move at most that many times comm_gbps_per_sm | low_latency: DeepEP's decode kernels: every (token, expert) copy written straight to the expert's GPU (RDMA across nodes, NVLink within), fixed per-expert receive buffers, no SMs held (compute overlaps fully). Both modes fix network.scheme (hierarchical, per-token) and run their flows at the transfer engines' achievable rates (network.*_efficiency, *_round_us, rdma_message_rate_m)"},
      {"nvlink_engine", "string", "sm", "", "normal: what moves its NVLink stage: sm (SM stores, held SMs) | copy_engine (the copy engine: no SMs, network.nvlink_ce_*)"},
      {"nvlink_sm_efficiency", "number", nullptr, "", "NVLink by SM stores: payload over line rate, in (0, 1] (default 0.956, DeepEP intranode 153 of 160 GB/s; calibrated: the measured peer dispatch over the scenario's NVLink)"},
      {"nvlink_sm_round_us", "number", nullptr, "us", "NVLink by SM stores: fixed cost per round and GPU (default 0: no public figure; calibrated: the peer dispatch's measured latency)"},
      {"nvlink_ce_efficiency", "number", nullptr, "", "NVLink by the copy engine: payload over line rate, in (0, 1] (default 1; calibrated: the measured P2P copy)"},
      {"nvlink_ce_round_us", "number", nullptr, "us", "NVLink by the copy engine: fixed cost per round and GPU (default 0; calibrated: the P2P copy's latency)"},
      {"rdma_efficiency", "number", nullptr, "", "GPU-initiated RDMA over InfiniBand: payload over line rate, in (0, 1] (default 0.86: DeepEP low-latency kernels, 42.9 of ~50 GB/s, models/transfer_engine.cpp)"},
      {"rdma_message_rate_m", "number", nullptr, "M/s", "RDMA: messages (one a token) per second through one NIC, millions; 0 = no limit (default 330: ConnectX-7)"},
      {"rdma_round_us", "number", nullptr, "us", "RDMA: fixed cost per round and GPU (default 18: DeepEP low-latency kernels at EP 256)"},
      {"nccl_efficiency", "number", nullptr, "", "dispatch_impl ideal under a calibrated cost model: NCCL's all-to-all on NVLink, payload over line rate (default 1; calibrated: the measured nccl_alltoall)"},
      {"nccl_round_us", "number", nullptr, "us", "the same: fixed cost per collective and GPU (default 0; calibrated: nccl_alltoall's latency)"},
      {"comm_gbps_per_sm", "number", nullptr, "GB/s", "what one SM of a dispatch/combine kernel moves (normal, peer): the kernels on schedule.comm_sms SMs move at most comm_sms times this (default 20: the least rate at which DeepEP's published normal-kernel runs on its default 20 SMs are not SM-bound, models/transfer_engine.cpp; calibrated: the peer dispatch's fitted per-SM rate when the profile has one)"},
      {"round_stretch", "number", nullptr, "", "dispatch_impl nccl, peer: a round's moving part (its bytes) progresses at 1 / (1 + this) while its GPU computes (default: the implementation's fitted value, models/dispatch_impl.cpp: nccl 1.4, peer 1.5)"},
      {"fixed_stretch", "number", nullptr, "", "dispatch_impl nccl, peer: a round's fixed part (latency, per-piece cost) progresses at 1 / (1 + this) while its GPU computes (default: nccl 0.45, peer 1.5)"},
      {"fixed_sm_share", "number", nullptr, "", "dispatch_impl nccl, peer: during a round's fixed part compute on its GPU loses this share of schedule.comm_sms, in [0, 1] (its moving part: all of them; default: nccl 0.125, peer 1)"},
      {"hbm_share", "number", nullptr, "", "dispatch_impl nccl, peer: HBM bandwidth share a round's moving part takes from compute bound by HBM, in [0, 0.95] (default: nccl 0, peer 0.4)"},
  }};
  return s;
}

NetworkSpec::Interference NetworkSpec::interference() const {
  const DispatchImpl impl = DispatchImpl::named(dispatch_impl);
  return {round_stretch.value_or(impl.round_stretch), fixed_stretch.value_or(impl.fixed_stretch),
          fixed_sm_share.value_or(impl.fixed_sm_share), hbm_share.value_or(impl.hbm_share)};
}

NetworkSpec NetworkSpec::from_json(const nlohmann::json& j, const std::string& path) {
  const nlohmann::json obj = j.is_null() ? nlohmann::json::object() : j;
  ConfigObject c(obj, path, schema());
  NetworkSpec n;
  n.model = c.choice("model", {"analytical", "flow"});
  n.scheme = c.choice("scheme", comm_scheme_names());
  n.replay = c.boolean("replay");
  n.completion_window = c.number("completion_window");
  if (!(n.completion_window >= 0.0 && n.completion_window <= kMaxCompletionWindow))
    c.fail("completion_window", fmt::format("must be in [0, {}] (a fraction of a flow's duration)", kMaxCompletionWindow));
  n.dispatch_impl = c.choice("dispatch_impl", DispatchImpl::names());
  n.nvlink_engine = c.choice("nvlink_engine", {"sm", "copy_engine"});
  // The two DeepEP modes fix the flow shape; the default `direct` (which scenario files often state)
  // gives way, another scheme is a contradiction.
  const std::string implied = n.dispatch_impl == "normal" ? "hierarchical" : n.dispatch_impl == "low_latency" ? "per-token" : "";
  if (!implied.empty()) {
    if (n.scheme != implied && n.scheme != "direct")
      c.fail("scheme", "dispatch_impl " + n.dispatch_impl + " sends its tokens as " + implied + " (leave network.scheme at direct)");
    n.scheme = implied;
  }
  // Each in its documented range (scenarios/README.md, Limits), so that 1e-300 is refused here.
  auto in_range = [&](const char* key, std::optional<double>& out, double lo, double hi, const char* unit) {
    if (c.has(key)) out = c.number_in(key, lo, hi, unit);
  };
  using namespace limits;
  in_range("nvlink_sm_efficiency", n.nvlink_sm_efficiency, kMinEfficiency, 1.0, "");
  in_range("nvlink_ce_efficiency", n.nvlink_ce_efficiency, kMinEfficiency, 1.0, "");
  in_range("rdma_efficiency", n.rdma_efficiency, kMinEfficiency, 1.0, "");
  in_range("nccl_efficiency", n.nccl_efficiency, kMinEfficiency, 1.0, "");
  in_range("nvlink_sm_round_us", n.nvlink_sm_round_us, 0.0, kMaxLatencyUs, "us");
  in_range("nvlink_ce_round_us", n.nvlink_ce_round_us, 0.0, kMaxLatencyUs, "us");
  in_range("rdma_round_us", n.rdma_round_us, 0.0, kMaxLatencyUs, "us");
  in_range("nccl_round_us", n.nccl_round_us, 0.0, kMaxLatencyUs, "us");
  in_range("comm_gbps_per_sm", n.comm_gbps_per_sm, kMinRate, kMaxRate, "GB/s");
  in_range("round_stretch", n.round_stretch, 0.0, 100.0, "");
  in_range("fixed_stretch", n.fixed_stretch, 0.0, 100.0, "");
  in_range("fixed_sm_share", n.fixed_sm_share, 0.0, 1.0, "");
  in_range("hbm_share", n.hbm_share, 0.0, 0.95, "");
  if (c.has("rdma_message_rate_m")) {  // 0: no limit
    n.rdma_message_rate_m = c.number_in("rdma_message_rate_m", 0.0, kMaxRate, "M/s (0 = no limit)");
    if (*n.rdma_message_rate_m > 0 && *n.rdma_message_rate_m < kMinRate)
      c.fail("rdma_message_rate_m", "must be 0 (no limit) or in [0.001, 1e+07] M/s");
  }
  return n;
}

const Schema& ScheduleSpec::schema() {
  static const Schema s{"schedule", {
      {"overlap", "any", "serial", "", "the overlap schedule: serial (one micro-batch; the dispatch waits for the shared expert) | dual-microbatch (two micro-batches of half the tokens, one computing while the other communicates; a micro-batch's next-layer attention starts once its combine is done) | decode-5stage (dual-microbatch with communication on 0 SMs): descriptions shipped in scenarios/schedules/; or a description file (.json) or an inline description object: per layer, stages of compute items and collectives per micro-batch, in issue order (sim/overlap_schedule.h, scenarios/README.md \"Overlap schedules\")"},
      {"chunks", "integer", 1, "", "token batches per dispatch and combine: an expert computes a batch as soon as it has arrived"},
      {"pipeline", "string", "1f1b", "", "with parallelism.pp > 1 (training), the pipeline schedule: 1f1b (warm-up forwards, then one forward one backward, then the remaining backwards; bubble (PP-1)(F+B)) | interleaved (Megatron's virtual pipeline: pipeline_chunks chunks of layers per rank; bubble (PP-1)(F+B)/chunks) | dualpipe (DeepSeek-V3's bidirectional schedule: half the micro-batches enter at each end, every rank holds two stages, a forward chunk runs overlapped with a backward chunk of another micro-batch and deferred weight gradients fill bubbles; bubble (PP/2-1)(F&B+B-3W))"},
      {"pipeline_micro_batches", "integer", 0, "", "with parallelism.pp > 1: micro-batches per step, each workload.tokens_per_gpu / M tokens per GPU (0: 2 x pp; interleaved: a multiple of pp; dualpipe: even and >= 2 x pp)"},
      {"pipeline_chunks", "integer", 2, "", "interleaved: chunks of consecutive layers per pipeline rank (virtual stages = pp x chunks)"},
      {"comm_sms", "integer", 24, "SMs", "SMs held by communication kernels while they run; concurrent compute runs at (gpu.sms - comm_sms) / gpu.sms speed, ops bound by HBM rather than SMs less so (dispatch_impl nccl and peer: only while the GPU's own round runs, network.fixed_sm_share of them in its fixed part; nccl: every op alike, sim/executor.h); under network.dispatch_impl normal and peer the kernels also move at most comm_sms x network.comm_gbps_per_sm (decode-5stage: 0; when not set and network.dispatch_impl is not ideal: that implementation's value: nccl and peer 64, the peer kernel's 64 blocks; normal 20, DeepEP's default; low_latency 0; models/dispatch_impl.cpp)"},
  }};
  return s;
}

ScheduleSpec ScheduleSpec::from_json(const nlohmann::json& j, const std::string& path) {
  const nlohmann::json obj = j.is_null() ? nlohmann::json::object() : j;
  ConfigObject c(obj, path, schema());
  ScheduleSpec s;
  s.program = OverlapSchedule::resolve(c.raw("overlap"), c.path_of("overlap"));
  s.overlap = s.program.name;
  s.chunks = c.integer_in<int>("chunks", 1, limits::kChunks);
  s.comm_sms = c.integer_in<int>("comm_sms", 0, limits::kSms);
  s.comm_sms_given = c.has("comm_sms");
  if (s.program.comm_sms) s.comm_sms = *s.program.comm_sms;
  s.pipeline = c.choice("pipeline", pipeline_schedule_names());
  s.pipeline_micro_batches = c.integer_in<int>("pipeline_micro_batches", 0, limits::kPipelineMicroBatches);
  s.pipeline_chunks = c.integer_in<int>("pipeline_chunks", 1, limits::kLayers);
  return s;
}

// parallelism.slots_per_gpu fixes the physical slots; the slots beyond the experts become eplb's
// redundant slots (placement.redundant_slots, which must then agree or be left out).
static void resolve_expert_slots(const Parallelism& par, const MoeModelSpec& model, PlacementSpec& placement) {
  if (par.slots_per_gpu == 0) return;
  const int extra = par.extra_slots(model);
  if (placement.redundant_slots > 0 && placement.redundant_slots != extra)
    throw ConfigError("placement.redundant_slots", std::to_string(placement.redundant_slots),
                      fmt::format("must equal ep x parallelism.slots_per_gpu - experts = {} x {} - {} = {} (or be left out)",
                                  par.ep, par.slots_per_gpu, par.ep * par.slots_per_gpu - extra, extra));
  if (extra > 0 && placement.strategy != "eplb" && placement.strategy != "file")
    throw ConfigError("placement.strategy", "\"" + placement.strategy + "\"",
                      fmt::format("parallelism.slots_per_gpu = {} leaves {} slots beyond the {} experts; they hold redundant "
                                  "experts, which the eplb strategy chooses (or a placement file gives): use eplb or file",
                                  par.slots_per_gpu, extra, par.ep * par.slots_per_gpu - extra));
  if (placement.strategy == "eplb") placement.redundant_slots = extra;
}

// parallelism.pp > 1: a training step whose micro-batches the pipeline schedule orders.
static void check_pipeline(const Scenario& s) {
  const int pp = s.parallelism.pp;
  const std::string v = std::to_string(pp);
  if (s.workload.mode != Mode::Training)
    throw ConfigError("parallelism.pp", v, "pipeline stages run a training step's forward and backward chunks: needs workload.mode = training");
  if (s.schedule.micro_batches() != 1)
    throw ConfigError("schedule.overlap", "\"" + s.schedule.overlap + "\"",
                      "with parallelism.pp > 1 the pipeline schedule (schedule.pipeline) orders the micro-batches: leave overlap serial");
  const int stages = s.schedule.pipeline_stages(pp);
  if (s.model.layers < stages)
    throw ConfigError("parallelism.pp", v, fmt::format("{} virtual stages need at least as many layers (model.layers = {})", stages, s.model.layers));
  const int mbs = s.schedule.pipeline_micro_batches_for(pp);
  make_pipeline_schedule(s.schedule.pipeline, pp, mbs, s.schedule.pipeline_chunks);  // throws if the shape does not fit
  if (s.workload.tokens_per_gpu < static_cast<std::int64_t>(mbs) * s.schedule.chunks)
    throw ConfigError("workload.tokens_per_gpu", std::to_string(s.workload.tokens_per_gpu),
                      fmt::format("must hold the {} pipeline micro-batches x {} chunks", mbs, s.schedule.chunks));
  const int stage_gpus = s.cluster.gpu_count() / pp;
  if (s.network.scheme == "hierarchical" && stage_gpus % s.cluster.gpus_per_node != 0)
    throw ConfigError("network.scheme", "\"hierarchical\"", "relays through whole nodes: a pipeline stage of " +
                                                                 std::to_string(stage_gpus) + " GPUs is part of one");
}

const Schema& Scenario::schema() {
  static const Schema s{"", {
      {"name", "string", "", "", "scenario name, printed in the summary"},
      {"description", "string", "", "", "free text"},
      {"model", "object", nlohmann::json::object(), "", "the MoE architecture (see model.*)"},
      {"precision", "object", nlohmann::json::object(), "", "number formats per op class, weights, dispatch, combine and KV cache; defaults from the model (see precision.*)"},
      {"gpu", "object", nlohmann::json::object(), "", "the GPU (see gpu.*)"},
      {"cluster", "object", nlohmann::json::object(), "", "nodes, NVLink and InfiniBand fabric (see cluster.*)"},
      {"parallelism", "object", nlohmann::json::object(), "", "attention TP and expert parallelism (see parallelism.*)"},
      {"workload", "object", nlohmann::json::object(), "", "prefill or decode step (see workload.*)"},
      {"routing", "object", nlohmann::json::object(), "", "the gate model (see routing.*)"},
      {"placement", "object", nlohmann::json::object(), "", "expert placement (see placement.*)"},
      {"network", "object", nlohmann::json::object(), "", "network model and communication scheme (see network.*)"},
      {"schedule", "object", nlohmann::json::object(), "", "overlap schedule (see schedule.*)"},
      {"cost_model", "object", nlohmann::json::object(), "", "nominal or calibrated op costs (see cost_model.*)"},
      {"faults", "object", nlohmann::json::object(), "", "slow GPUs, degraded or failed links, failed GPUs and nodes, noisy kernels (see faults.*)"},
      {"serving", "object", nullptr, "", "request-level serving: traffic, batching limits, prefill/decode pools, latency targets (see serving.*); read by epsim serve and epsim search, ignored by epsim run (default: absent)"},
  }};
  return s;
}

std::vector<const Schema*> Scenario::all_schemas() {
  return {&schema(), &MoeModelSpec::schema(), &Precision::schema(), &GpuSpec::schema(), &ClusterSpec::schema(),
          &Parallelism::schema(), &Workload::schema(), &RoutingSpec::schema(), &PlacementSpec::schema(),
          &NetworkSpec::schema(), &ScheduleSpec::schema(), &CostModelSpec::schema(), &FaultSpec::schema()};
}

namespace {
// routing.max_nodes against the model's group limit and the EP group's nodes.
void check_node_limit(const Scenario& s) {
  const int limit = s.routing.max_nodes;
  if (limit == 0) return;
  const MoeModelSpec& m = s.model;
  if (s.routing.group_limited && m.groups > 1 && m.topk_groups < m.groups)
    throw ConfigError("routing.max_nodes", std::to_string(limit),
                      "node-limited routing replaces the group limit (model.groups = " + std::to_string(m.groups) +
                          ", topk_groups = " + std::to_string(m.topk_groups) +
                          "): set routing.group_limited = false or model.topk_groups = model.groups");
  const int nodes = std::max(1, s.parallelism.ep / s.cluster.gpus_per_node);
  const int per_node = (m.routed_experts + nodes - 1) / nodes;
  if (static_cast<std::int64_t>(limit) * per_node < m.top_k)
    throw ConfigError("routing.max_nodes", std::to_string(limit),
                      "must leave room for top_k = " + std::to_string(m.top_k) + " experts (" + std::to_string(per_node) +
                          " routed experts per node of the EP group)");
}

// faults: against the parallelism and placement; its fabric part handed to the cluster.
void apply_faults(Scenario& s) {
  const FaultSpec& f = s.faults;
  const std::vector<int> down = f.down_gpus(s.cluster.gpus_per_node);
  const int G = s.cluster.gpu_count();
  const auto [key, value] = f.failure_key();
  if (!down.empty() && s.parallelism.ep != G)
    throw ConfigError(key, value,
                      fmt::format("failed GPUs need one EP group (parallelism.ep = all {} GPUs, here {}): the EP groups "
                                  "share one placement table, so a failure in one group would empty a slot in every group",
                                  G, s.parallelism.ep));
  if (f.replan_placement && s.placement.strategy != "eplb")
    throw ConfigError("faults.replan_placement", "true",
                      "only placement.strategy = eplb re-plans its slots over the live GPUs (here \"" + s.placement.strategy + "\")");
  s.cluster.link_factors = f.link_factors(s.cluster);
  s.cluster.failed_gpus = down;
  bool any = false;
  for (int g = 0; g < G && !any; ++g) any = s.serves_tokens(g);
  if (!any) throw ConfigError(key, value, "leaves no attention TP group whole: no GPU holds tokens");
}
}  // namespace

bool Scenario::serves_tokens(int g) const {
  const int tp = parallelism.attention_tp;
  const int first = g / tp * tp;
  for (int f : cluster.failed_gpus)
    if (f >= first && f < first + tp) return false;
  return true;
}

Scenario Scenario::from_json(const nlohmann::json& doc) {
  ConfigObject top(doc, "", schema());
  // A section given as null would read as all defaults (the sections' from_json take null for
  // "absent"): refuse it like any other non-object.
  for (const KeyDoc& k : schema().keys)
    if (k.type == "object" && top.has(k.key) && top.raw(k.key).is_null()) top.fail(k.key, "must be a JSON object");
  Scenario s;
  s.name = top.string("name");
  s.description = top.string("description");
  s.model = MoeModelSpec::from_json(top.raw("model"), "model");
  s.model.precision = Precision::from_json(top.raw("precision"), "precision", s.model.precision);
  s.gpu = GpuSpec::from_json(top.raw("gpu"), "gpu");
  s.cluster = ClusterSpec::from_json(top.raw("cluster"), "cluster", s.gpu.nvlink);
  s.parallelism = Parallelism::from_json(top.raw("parallelism"), "parallelism", s.model, s.cluster.gpu_count(),
                                         s.cluster.gpus_per_node);
  s.workload = Workload::from_json(top.raw("workload"), "workload");
  s.routing = RoutingSpec::from_json(top.raw("routing"), "routing");
  s.placement = PlacementSpec::from_json(top.raw("placement"), "placement");
  resolve_expert_slots(s.parallelism, s.model, s.placement);
  s.network = NetworkSpec::from_json(top.raw("network"), "network");
  s.schedule = ScheduleSpec::from_json(top.raw("schedule"), "schedule");
  s.cost_model = CostModelSpec::from_json(top.raw("cost_model"), "cost_model");
  s.faults = FaultSpec::from_json(top.raw("faults"), "faults", s.cluster);
  apply_faults(s);
  check_node_limit(s);
  if (!s.schedule.comm_sms_given && !s.schedule.program.comm_sms)
    s.schedule.comm_sms = DispatchImpl::named(s.network.dispatch_impl).comm_sms;
  if (s.schedule.comm_sms >= s.gpu.sms)
    throw ConfigError("schedule.comm_sms", std::to_string(s.schedule.comm_sms),
                      "must be < gpu.sms = " + std::to_string(s.gpu.sms));
  // Micro-batches per GPU: the overlap schedule's, or under pipeline stages 2 (forward and
  // backward) x the pipeline's micro-batches over the stages (each GPU holds layers / pp).
  const int pp = s.parallelism.pp;
  const std::int64_t micro = pp > 1 ? std::max<std::int64_t>(1, 2 * static_cast<std::int64_t>(s.schedule.pipeline_micro_batches_for(pp)) / pp)
                                    : s.schedule.micro_batches();
  const std::int64_t units = static_cast<std::int64_t>(s.model.layers) * s.cluster.gpu_count() * micro * s.schedule.chunks;
  if (units > limits::kStepUnits)
    throw ConfigError("model.layers", std::to_string(s.model.layers),
                      fmt::format("layers x GPUs x micro-batches x chunks = {} x {} x {} x {} = {}: must be <= {} (the step's task graph; "
                                  "scenarios/README.md, Limits)", s.model.layers, s.cluster.gpu_count(), micro,
                                  s.schedule.chunks, units, limits::kStepUnits));
  const std::int64_t gpus = s.cluster.gpu_count();
  const std::int64_t traffic = static_cast<std::int64_t>(s.model.moe_layers()) * gpus * gpus;
  if (traffic > limits::kTrafficUnits)
    throw ConfigError("model.layers", std::to_string(s.model.layers),
                      fmt::format("MoE layers x GPUs^2 = {} x {}^2 = {}: must be <= {} (each MoE layer's traffic matrices; "
                                  "scenarios/README.md, Limits)", s.model.moe_layers(), gpus, traffic, limits::kTrafficUnits));
  if (s.parallelism.pp > 1) check_pipeline(s);
  else if (s.workload.mode == Mode::Training && s.schedule.program.backward.empty())
    throw ConfigError("schedule.overlap", "\"" + s.schedule.overlap + "\"",
                      "the description has no backward stages, which workload.mode = training needs");
  if (s.workload.tokens() < s.schedule.micro_batches() * s.schedule.chunks)
    throw ConfigError("schedule.chunks", std::to_string(s.schedule.chunks),
                      "micro-batches x chunks must not exceed the tokens per GPU (" + std::to_string(s.workload.tokens()) + ")");
  return s;
}

namespace {
std::string resolved_against(const std::filesystem::path& dir, const std::string& value) {
  const std::filesystem::path p(value);
  if (value.empty() || p.is_absolute()) return value;
  return (dir / p).lexically_normal().string();
}
}  // namespace

nlohmann::json read_scenario_file(const std::string& file, const std::vector<const Schema*>& extra) {
  nlohmann::json doc = read_json_file(file);
  const std::filesystem::path dir = std::filesystem::path(file).parent_path();
  if (!doc.is_object() || dir.empty()) return doc;
  std::vector<const Schema*> schemas = Scenario::all_schemas();
  schemas.insert(schemas.end(), extra.begin(), extra.end());
  for (const Schema* schema : schemas) {
    if (schema->section.empty() || !doc.contains(schema->section) || !doc[schema->section].is_object()) continue;
    nlohmann::json& section = doc[schema->section];
    for (const KeyDoc& key : schema->keys) {
      const auto it = section.find(key.key);
      if (it == section.end() || !it->is_string()) continue;  // a wrong type is Scenario::from_json's to report
      const std::string value = it->get<std::string>();
      const auto& presets = calibration_presets();
      const bool path = key.unit == "path" ||
                        (schema->section == "cost_model" && key.key == "calibration" &&
                         std::find(presets.begin(), presets.end(), value) == presets.end());
      if (path) *it = resolved_against(dir, value);
    }
  }
  return doc;
}

}  // namespace epsim
