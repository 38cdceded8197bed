#include "sim/traffic_pattern.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "models/errors.h"

namespace epsim {

namespace {

// splitmix64: a tiny, portable, well-mixed generator (the standard distributions are not portable).
class Stream {
 public:
  explicit Stream(std::uint64_t seed) : s_(seed) {}
  std::uint64_t next() {
    std::uint64_t z = (s_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }  // [0, 1)
  std::size_t below(std::size_t n) { return static_cast<std::size_t>(next() % n); }

 private:
  std::uint64_t s_;
};

// One whitespace-separated field of a pattern-file line and the column (1-based) it starts at.
struct Field {
  std::string text;
  int column = 0;
};

std::vector<Field> split_fields(const std::string& line) {
  std::vector<Field> out;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r')) ++i;
    if (i == line.size()) break;
    const std::size_t start = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t' && line[i] != '\r') ++i;
    out.push_back({line.substr(start, i - start), static_cast<int>(start) + 1});
  }
  return out;
}

// A decimal integer in [0, max] (digits only: no sign, no exponent, no trailing text).
std::int64_t field_value(const Field& f, const char* name, std::int64_t max, const std::string& where) {
  const bool digits = !f.text.empty() && f.text.size() <= 19 && f.text.find_first_not_of("0123456789") == std::string::npos;
  const std::int64_t v = digits ? std::stoll(f.text) : -1;
  if (!digits || v > max)
    throw InputError(where + ":" + std::to_string(f.column) + ": " + name + " \"" + f.text + "\": must be an integer in [0, " +
                     std::to_string(max) + "]");
  return v;
}

// Lines "src dst bytes"; '#' starts a comment; blank lines are skipped. Every other line must be
// exactly three decimal integers, src != dst, GPUs in range; errors name file:line:column.
std::vector<PairFlow> from_file(const std::string& path, int gpus) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) throw InputError("cannot read pattern file '" + path + "' (not a regular file)");
  if (std::filesystem::file_size(path, ec) > kMaxPatternFileBytes)
    throw InputError(path + ": pattern file larger than " + std::to_string(kMaxPatternFileBytes >> 20) + " MiB; not read");
  std::ifstream in(path);
  if (!in) throw InputError("cannot read pattern file '" + path + "'");
  std::vector<PairFlow> flows;
  std::string line;
  int lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (const auto hash = line.find('#'); hash != std::string::npos) line.resize(hash);
    const std::vector<Field> f = split_fields(line);
    if (f.empty()) continue;
    const std::string where = path + ":" + std::to_string(lineno);
    if (f.size() != 3)
      throw InputError(where + ":" + std::to_string(f.size() > 3 ? f[3].column : f.front().column) + ": expected 'src dst bytes', got " +
                       std::to_string(f.size()) + " field" + (f.size() == 1 ? "" : "s"));
    const auto src = static_cast<GpuId>(field_value(f[0], "src", gpus - 1, where));
    const auto dst = static_cast<GpuId>(field_value(f[1], "dst", gpus - 1, where));
    const std::int64_t bytes = field_value(f[2], "bytes", kMaxFlowBytes, where);
    if (src == dst) throw InputError(where + ":" + std::to_string(f[1].column) + ": dst " + f[1].text + ": must differ from src");
    flows.push_back(PairFlow{src, dst, Bytes(bytes)});
  }
  if (flows.empty()) throw InputError(path + ": no flows (want lines 'src dst bytes')");
  return flows;
}

}  // namespace

std::vector<std::string> traffic_pattern_names() {
  return {"alltoall", "alltoall-jitter", "incast", "permutation", "zipf", "file"};
}

std::vector<PairFlow> make_traffic(const TrafficSpec& spec, int gpus) {
  if (gpus < 2) throw ConfigError("--nodes x --gpus-per-node", std::to_string(gpus), "at least 2 GPUs");
  if (spec.pattern == "file" || !spec.file.empty()) {
    if (spec.file.empty()) throw ConfigError("--pattern-file", "\"\"", "pattern 'file' needs --pattern-file");
    return from_file(spec.file, gpus);
  }
  if (spec.bytes < 0 || spec.bytes > kMaxFlowBytes)
    throw ConfigError("--bytes", std::to_string(spec.bytes), "must be in [0, " + std::to_string(kMaxFlowBytes) + "]");
  const auto n = static_cast<std::size_t>(gpus);
  const auto B = static_cast<double>(spec.bytes);
  Stream rng(spec.seed);
  std::vector<PairFlow> flows;

  if (spec.pattern == "alltoall" || spec.pattern == "alltoall-jitter") {
    const bool jitter = spec.pattern == "alltoall-jitter";
    if (jitter && !(spec.jitter >= 0.0 && spec.jitter < 1.0))
      throw ConfigError("--jitter", std::to_string(spec.jitter), "must be in [0, 1)");
    flows.reserve(n * (n - 1));
    for (GpuId s = 0; s < gpus; ++s)
      for (GpuId d = 0; d < gpus; ++d) {
        if (s == d) continue;
        std::int64_t b = spec.bytes;
        if (jitter) b = std::llround(B * (1.0 - spec.jitter + 2.0 * spec.jitter * rng.uniform()));
        flows.push_back(PairFlow{s, d, Bytes(b)});
      }
  } else if (spec.pattern == "incast") {
    const int senders = spec.senders == 0 ? gpus - 1 : spec.senders;
    if (senders < 1 || senders > gpus - 1)
      throw ConfigError("--senders", std::to_string(spec.senders), "must be in [1, GPUs - 1]");
    for (GpuId s = 1; s <= senders; ++s) flows.push_back(PairFlow{s, 0, Bytes(spec.bytes)});
  } else if (spec.pattern == "permutation") {
    // Sattolo's shuffle: a uniformly random single cycle, so nobody sends to itself.
    std::vector<GpuId> to(n);
    for (std::size_t i = 0; i < n; ++i) to[i] = static_cast<GpuId>(i);
    for (std::size_t i = n - 1; i > 0; --i) std::swap(to[i], to[rng.below(i)]);
    for (std::size_t s = 0; s < n; ++s) flows.push_back(PairFlow{static_cast<GpuId>(s), to[s], Bytes(spec.bytes)});
  } else if (spec.pattern == "zipf") {
    if (!(spec.zipf_s >= 0.0)) throw ConfigError("--zipf-s", std::to_string(spec.zipf_s), "must be >= 0");
    std::vector<std::size_t> rank(n);
    for (std::size_t i = 0; i < n; ++i) rank[i] = i;
    for (std::size_t i = n - 1; i > 0; --i) std::swap(rank[i], rank[rng.below(i + 1)]);
    std::vector<double> p(n);
    double total = 0.0;
    for (std::size_t d = 0; d < n; ++d) total += (p[d] = std::pow(static_cast<double>(rank[d] + 1), -spec.zipf_s));
    flows.reserve(n * (n - 1));
    for (std::size_t s = 0; s < n; ++s) {
      const double others = total - p[s];
      for (std::size_t d = 0; d < n; ++d) {
        if (s == d) continue;
        const auto b = std::max<std::int64_t>(1, std::llround(B * static_cast<double>(n - 1) * p[d] / others));
        flows.push_back(PairFlow{static_cast<GpuId>(s), static_cast<GpuId>(d), Bytes(b)});
      }
    }
  } else {
    std::string names;
    for (const auto& p : traffic_pattern_names()) names += (names.empty() ? "" : "|") + p;
    throw ConfigError("--pattern", "\"" + spec.pattern + "\"", "one of " + names);
  }
  return flows;
}

}  // namespace epsim
