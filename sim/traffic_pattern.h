// Synthetic traffic for network-only runs (`epsim net`, epsim-simgrid-bench): who sends how many
// bytes to whom, as a list of (source GPU, destination GPU, bytes).
//
// Patterns, with B the --bytes value and n the number of GPUs:
//   alltoall         every ordered pair (s, d), s != d, sends B            n (n - 1) flows
//   alltoall-jitter  as alltoall, each size uniform in [B (1 - j), B (1 + j)], j = jitter (0.5)
//   incast           `senders` GPUs (1..senders; default all others) each send B to GPU 0
//   permutation      every GPU sends B to one other; a random cyclic permutation (no fixed point)
//   zipf             skewed all-to-all: destination d is hot with probability p_d ~ 1 / rank^s
//                    (ranks shuffled by the seed); s sends B (n - 1) p_d / sum_{e != s} p_e to d, so
//                    every GPU sends as much as in alltoall
//   file             lines "src dst bytes" ('#' starts a comment): three decimal integers, src != dst;
//                    anything else stops with file:line:column
// Everything random comes from a splitmix64 stream of `seed`: the same input gives the same flows
// on every platform.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "models/units.h"
#include "topology/link.h"

namespace epsim {

// Bytes of one flow (--bytes, a pattern-file line): 2^40, so that sums over every flow stay in int64.
inline constexpr std::int64_t kMaxFlowBytes = std::int64_t{1} << 40;
inline constexpr std::uintmax_t kMaxPatternFileBytes = std::uintmax_t{256} << 20;

struct TrafficSpec {
  std::string pattern = "alltoall";
  std::int64_t bytes = 1'000'000;  // B, bytes per flow (the mean for jitter)
  std::uint64_t seed = 1;
  int senders = 0;                 // incast: 0 means every other GPU (epsim net: --senders absent)
  double jitter = 0.5;             // alltoall-jitter: relative half-width
  double zipf_s = 1.0;             // zipf exponent
  std::string file;                // pattern "file"
};

struct PairFlow {
  GpuId src;
  GpuId dst;
  Bytes bytes;
};

std::vector<std::string> traffic_pattern_names();

// Throws ConfigError (path "--pattern", "--bytes", ...) for bad values, InputError for bad files.
std::vector<PairFlow> make_traffic(const TrafficSpec& spec, int gpus);

}  // namespace epsim
