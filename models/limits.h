// Upper bounds on the scenario's sizes, and the reason for each (scenarios/README.md, "Limits").
//
// Every integer key is range-checked before it is narrowed (ConfigObject::integer_in); these are
// the bounds that do not come from another key. They follow from what one simulation holds in
// memory and from the 64-bit counts (Time in picoseconds, Bytes) its arithmetic must stay inside.
// A value above a bound is bad input (exit status 2), never a truncation.
#pragma once

#include <cstdint>

namespace epsim::limits {

// GPUs in the cluster (nodes x gpus_per_node). The route table and the per-layer traffic matrices
// hold GPUs^2 entries: 4096 GPUs take 2.5 GB and 20 s for 8 seed layers on this machine.
inline constexpr std::int64_t kGpus = 4096;
// GPUs of `epsim net`'s fabric: it holds no traffic matrix and builds routes from the topology on
// demand, so memory grows with its flows; patterns with GPUs^2 flows (alltoall, alltoall-jitter,
// zipf) stay within kGpus (16.7 M flows). A 16,384-GPU permutation takes 0.14 s and 46 MB.
inline constexpr std::int64_t kNetGpus = std::int64_t{1} << 16;
// Transformer layers: the largest published models have under 200; the step's tasks grow with it.
inline constexpr std::int64_t kLayers = 1024;
// The step's task graph: layers x GPUs x micro-batches x chunks (about 12 tasks each) must stay
// under 2^22 units (50 million tasks, a few GB). The seed at 2 micro-batches x 8 chunks is 249,856.
inline constexpr std::int64_t kStepUnits = std::int64_t{1} << 22;
// Each MoE layer builds traffic matrices of GPUs^2 entries (0.1 to 0.25 us each on the 2-core
// machine): MoE layers x GPUs^2 must stay under 2^32 (about 15 minutes at the bound; the seed is
// 58 x 65,536 = 3.8 M).
inline constexpr std::int64_t kTrafficUnits = std::int64_t{1} << 32;
// Pipeline micro-batches per step (schedule.pipeline_micro_batches): each is a pass of every stage.
inline constexpr std::int64_t kPipelineMicroBatches = 4096;
// Tokens per GPU per step (prefill, training) and sequences per GPU (decode): 2^20.
inline constexpr std::int64_t kTokensPerGpu = std::int64_t{1} << 20;
// KV-cache length of a decode sequence: 2^24 tokens (16.7 M).
inline constexpr std::int64_t kKvLen = std::int64_t{1} << 24;
// Token batches per dispatch and combine.
inline constexpr std::int64_t kChunks = 64;
// Hidden dimension and MLP widths (the largest published: 16,384 and 53,248).
inline constexpr std::int64_t kHidden = std::int64_t{1} << 16;
inline constexpr std::int64_t kIntermediate = std::int64_t{1} << 18;
// Routed experts per layer: gate samples hold GPUs x experts counts per layer.
inline constexpr std::int64_t kExperts = 4096;
// Attention heads and per-head widths.
inline constexpr std::int64_t kHeads = 1024;
inline constexpr std::int64_t kHeadDim = 4096;
// Vocabulary: 2^24 (the largest published: 256 k).
inline constexpr std::int64_t kVocab = std::int64_t{1} << 24;
// Streaming multiprocessors per GPU (H100: 132).
inline constexpr std::int64_t kSms = 4096;
// Slot swaps topology_aware's local search evaluates per layer (time grows linearly).
inline constexpr std::int64_t kSearchMoves = 1'000'000;
// Requests of an `epsim serve` run (serving.requests): its cost grows with requests x output tokens.
inline constexpr std::int64_t kRequests = 1'000'000;
// Steps of `epsim run --steps` / `compare --steps`: each is a whole simulation.
inline constexpr std::int64_t kSteps = 10'000;

// Rates and other physical numbers: [min, max] wide enough for any hardware, narrow enough that a
// rate of 1e-300 (an op taking 1e300 s) or 1e300 is refused where it is read, with its key. Sizes
// at their bounds over rates at their minimums can still leave Time's range (+-106 days): that
// throws UnitOverflow, printed as bad input with the keys that set the scale.
inline constexpr double kMinRate = 1e-3;          // TFLOPS, TB/s, GB/s, Gb/s
inline constexpr double kMaxRate = 1e7;
inline constexpr double kMinEfficiency = 1e-3;    // mfu, hbm_efficiency: fractions of peak
inline constexpr double kMaxMemoryGb = 1e6;       // GB of device memory (1 PB)
inline constexpr double kMaxOversubscription = 1e3;
inline constexpr double kMaxLatencyUs = 1e6;      // one link's latency: at most 1 s
inline constexpr double kMaxBiasStep = 1.0;       // routing.bias_step, log-weight per step
inline constexpr double kMaxCapacityFactor = 4096;  // routing.capacity_factor: = routed_experts never drops

}  // namespace epsim::limits
