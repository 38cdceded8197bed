#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <set>
#include <string>

#include "models/errors.h"
#include "sim/ep_layer_validation.h"

using namespace epsim;

namespace {
const std::string kResults = std::string(EPSIM_SOURCE_DIR) + "/kernels/results/";

double median_abs(const std::vector<const CaseComparison*>& cs) {
  std::vector<double> e;
  for (const auto* c : cs) e.push_back(std::abs(c->error_pct()));
  std::sort(e.begin(), e.end());
  return e.empty() ? 0 : e.size() % 2 ? e[e.size() / 2] : 0.5 * (e[e.size() / 2 - 1] + e[e.size() / 2]);
}
}  // namespace

// The committed measurement of issue 8 (E = 32, 2 x H200) against the simulator, GPU-free, under
// the shipped h200-measured (the issue-14 refit) and the interference constants fitted on this file
// (tools/fit_interference.py, models/dispatch_impl.cpp). These figures are the README's
// ("Validating against a measured EP layer"); a model change that moves them must update both.
TEST_CASE("epsim validate: the E = 32 EP layer, nccl and peer dispatch") {
  const FileValidation v = validate_ep_layer_file(kResults + "ep2-h200x2-2026-11-29.json");
  REQUIRE(v.cases.size() == 80);
  for (const char* impl : {"nccl", "peer"}) {
    std::vector<const CaseComparison*> cs;
    for (const auto& c : v.cases)
      if (c.options["dispatch"] == impl) cs.push_back(&c);
    CAPTURE(impl);
    CHECK(median_abs(cs) <= 5.0);
  }
  // The target: median <= 5% and every one of the 80 cases within 10%.
  CHECK(v.meets_target());
  CHECK(v.median_abs_error_pct() == doctest::Approx(2.6530).epsilon(1e-3));
  CHECK(v.max_abs_error_pct() == doctest::Approx(7.2723).epsilon(1e-3));
  CHECK(std::count_if(v.cases.begin(), v.cases.end(), [](const auto& c) { return std::abs(c.error_pct()) <= 10.0; }) == 80);

  // The grid: cases within 10% cover every axis (tokens 256..16384, uniform and zipf:1.2,
  // serial and dual, 1 and 4 chunks), at least 12 of them, and their median is within 5%.
  std::vector<const CaseComparison*> within;
  std::set<std::string> tokens, skews, overlaps, chunks;
  for (const auto& c : v.cases) {
    if (std::abs(c.error_pct()) > 10.0) continue;
    within.push_back(&c);
    tokens.insert(std::to_string(c.options["tokens_per_gpu"].get<int>()));
    skews.insert(c.options["skew"].get<std::string>());
    overlaps.insert(c.options["overlap"].get<std::string>());
    chunks.insert(std::to_string(c.options["chunks"].get<int>()));
  }
  CHECK(within.size() >= 12);
  CHECK(tokens == std::set<std::string>{"256", "1024", "4096", "16384"});
  CHECK(skews == std::set<std::string>{"uniform", "zipf:1.2"});
  CHECK(overlaps == std::set<std::string>{"serial", "dual"});
  CHECK(chunks == std::set<std::string>{"1", "4"});
  CHECK(median_abs(within) <= 5.0);

  // Phases of a round alone (serial, 1 chunk, 4096 tokens, uniform): the dispatch round within 5%.
  for (const auto& c : v.cases) {
    if (c.options["tokens_per_gpu"] != 4096 || c.options["overlap"] != "serial" || c.options["chunks"] != 1 ||
        c.options["skew"] != "uniform" || c.options["layers"] != 1)
      continue;
    for (const auto& p : c.phases)
      if (p.phase == "dispatch_data" || p.phase == "permute" || p.phase == "unpermute") {
        CAPTURE(c.label);
        CAPTURE(p.phase);
        CHECK(std::abs(p.error_pct()) <= 6.0);
      }
  }
}

// The other committed files (held out: nothing was fitted on them): every case of the peer-blocks
// and -repeat files within 10% (the target met); the rest pinned at their figures (README's table):
// E = 16 misses by its 16384-token GEMMs (serial one-chunk cases +8..+11%: priced slower than the
// layer ran them), the one-GPU files by the causes the README lists.
TEST_CASE("epsim validate: the other EP layer files") {
  const FileValidation pb = validate_ep_layer_file(kResults + "ep2-h200x2-peerblocks-2026-11-29.json");
  CHECK(pb.meets_target());
  CHECK(pb.median_abs_error_pct() == doctest::Approx(3.1200).epsilon(1e-3));
  CHECK(pb.max_abs_error_pct() == doctest::Approx(8.6707).epsilon(1e-3));
  const FileValidation rep = validate_ep_layer_file(kResults + "ep2-h200x2-2026-11-29-repeat.json");
  CHECK(rep.meets_target());
  CHECK(rep.median_abs_error_pct() == doctest::Approx(2.1225).epsilon(1e-3));
  CHECK(rep.max_abs_error_pct() == doctest::Approx(8.5221).epsilon(1e-3));
  const FileValidation e16 = validate_ep_layer_file(kResults + "ep2-h200x2-e16-2026-11-29.json");
  CHECK(e16.median_abs_error_pct() == doctest::Approx(3.2158).epsilon(1e-3));
  CHECK(e16.max_abs_error_pct() == doctest::Approx(12.3821).epsilon(1e-3));
  const FileValidation one = validate_ep_layer_file(kResults + "ep1-h200x2-2026-11-29.json");
  CHECK(one.median_abs_error_pct() == doctest::Approx(5.6631).epsilon(1e-3));
  CHECK(one.max_abs_error_pct() == doctest::Approx(14.8028).epsilon(1e-3));
  // The same one-GPU grid measured on an H100 (held out), priced by h100-measured.
  const FileValidation h100 = validate_ep_layer_file(kResults + "ep1-h100-2026-12-06.json");
  CHECK(h100.cases.size() == 64);
  CHECK(h100.median_abs_error_pct() == doctest::Approx(4.4015).epsilon(1e-3));
  CHECK(h100.max_abs_error_pct() == doctest::Approx(17.8563).epsilon(1e-3));
}

// Issue 16's whole-decoder-layer program (epsim-ep-layer --attention gqa --seq-len 512, --gpus 1)
// on one H100, its first GPU run (2026-12-07; held out: nothing fitted on it), priced by
// h100-measured. The figures are kernels/results/README.md's and README's ("Whole decoder layers
// with two-batch overlap"). Its misses are peer rounds beside GEMMs on one GPU (under-predicted, as
// in the MoE-only one-GPU files); attn_core is the program's own flash kernel while the profile
// prices cuDNN SDPA, so it is predicted 50-77% faster than it ran; the attention GEMMs of serial
// one-chunk cases, priced from the GEMM rows alone, within 10.1% (10.5 checked).
TEST_CASE("epsim validate: whole decoder layers with GQA attention on one H100") {
  const FileValidation v = validate_ep_layer_file(kResults + "ep1-h100-attn-2026-12-07.json");
  REQUIRE(v.cases.size() == 48);
  CHECK(v.median_abs_error_pct() == doctest::Approx(5.1671).epsilon(1e-3));
  CHECK(v.max_abs_error_pct() == doctest::Approx(13.6399).epsilon(1e-3));
  CHECK_FALSE(v.meets_target());
  int within = 0;
  for (const auto& c : v.cases) {
    CAPTURE(c.label);
    CHECK(c.options["attention"] == "gqa");
    if (std::abs(c.error_pct()) <= 10.0) {
      ++within;
    } else {
      CHECK(c.options["dispatch"] == "peer");
      CHECK(c.error_pct() < 0);
    }
    const bool alone = c.options["overlap"] == "serial" && c.options["chunks"] == 1;
    for (const auto& p : c.phases) {
      CAPTURE(p.phase);
      if (p.phase == "attn_core") CHECK((p.error_pct() < -50.0 && p.error_pct() > -77.0));
      if (alone && (p.phase == "q_proj" || p.phase == "kv_proj" || p.phase == "o_proj")) CHECK(std::abs(p.error_pct()) <= 10.5);
    }
  }
  CHECK(within == 43);
}

TEST_CASE("epsim validate: bad input names the file, the path and the rule") {
  nlohmann::json doc = {{"schema", "epsim-bench/1"}, {"cases", nlohmann::json::array()}};
  CHECK_THROWS_WITH_AS(validate_ep_layer(doc, "x.json"), doctest::Contains("x.json.schema = \"epsim-bench/1\""), InputError);
  doc["schema"] = "epsim-ep-layer/1";
  doc["cases"] = nlohmann::json::array({{{"options", {{"gpus", 2}}}}});
  CHECK_THROWS_WITH_AS(validate_ep_layer(doc, "x.json"), doctest::Contains("x.json:cases[0].options.experts: missing"), InputError);
}
