#include "models/gpu_spec.h"

#include <stdexcept>

#include "models/limits.h"

namespace epsim {

std::vector<std::string> GpuSpec::preset_names() {
  return {"h100-seed", "h100-sxm", "h800", "h200", "h20", "b200", "gb200"};
}

nlohmann::json GpuSpec::preset_keys(const std::string& name) {
  // Dense tensor-core peaks (datasheets list FP8/BF16 "with sparsity": halved here), HBM, memory in
  // GB (1e9 bytes) as sold, NVLink per GPU each way (half the "total" figure), SMs. The nominal
  // factors (60% of peak, 80% of HBM) are SEED.md's for every preset. Sources (README, "GPU and
  // system presets"):
  //   h100-seed  SEED.md: 400 TFLOPS at 60% MFU, 1.8 TB/s at 80%, 64 GB; NVLink 4; FP8 2 x BF16.
  //   h100-sxm   NVIDIA H100 datasheet, SXM: BF16 1979 / FP8 3958 sparse, 3.35 TB/s, 80 GB,
  //              NVLink 900 GB/s; 132 SMs (Hopper whitepaper).
  //   h800       H100 SXM compute with NVLink cut to 400 GB/s (NVIDIA H800 brief; DeepSeek-V3 report).
  //   h200       NVIDIA H200 datasheet: the H100's tensor cores, 4.8 TB/s, 141 GB, NVLink 900 GB/s.
  //   h20        NVIDIA HGX H20 brief: BF16 148 / FP8 296 dense, 96 GB HBM3 at 4.0 TB/s, NVLink
  //              900 GB/s; 78 SMs (Geekbench 6 listing).
  //   b200       HGX B200 (1000 W): BF16 2.25 / FP8 4.5 PFLOPS dense, 180 GB HBM3e at 7.7 TB/s,
  //              NVLink 5 1.8 TB/s; 148 SMs (2 dies x 74, chipsandcheese.com "Nvidia's B200").
  //   gb200      one GPU of a GB200 NVL72 (NVIDIA's rack figures / 72, sparsity halved): BF16 2.5 /
  //              FP8 5 PFLOPS, 186 GB HBM3e (13.4 TB) at 8 TB/s (576 TB/s), NVLink 5 1.8 TB/s.
  auto keys = [](double tflops, double fp8_tflops, double hbm_tbps, double mem_gb, double nvlink_gbps, int sms) {
    return nlohmann::json{{"peak_tflops", tflops},   {"peak_fp8_tflops", fp8_tflops}, {"mfu", 0.6},
                          {"hbm_tbps", hbm_tbps},    {"hbm_efficiency", 0.8},         {"memory_gb", mem_gb},
                          {"nvlink_gbps", nvlink_gbps}, {"sms", sms}};
  };
  if (name == "h100-seed") return keys(400, 800, 1.8, 64, 450, 132);
  if (name == "h100-sxm") return keys(989, 1979, 3.35, 80, 450, 132);
  if (name == "h800") return keys(989, 1979, 3.35, 80, 200, 132);
  if (name == "h200") return keys(989, 1979, 4.8, 141, 450, 132);
  if (name == "h20") return keys(148, 296, 4.0, 96, 450, 78);
  if (name == "b200") return keys(2250, 4500, 7.7, 180, 900, 148);
  if (name == "gb200") return keys(2500, 5000, 8.0, 186, 900, 148);
  throw std::out_of_range(name);
}

GpuSpec GpuSpec::preset(const std::string& name) {
  const nlohmann::json k = preset_keys(name);
  GpuSpec g;
  g.name = name;
  g.peak_bf16 = FlopRate::tflops(k["peak_tflops"].get<double>());
  g.peak_fp8 = FlopRate::tflops(k["peak_fp8_tflops"].get<double>());
  g.mfu = k["mfu"].get<double>();
  g.hbm = Bandwidth::gb_per_s(k["hbm_tbps"].get<double>() * 1000.0);
  g.hbm_efficiency = k["hbm_efficiency"].get<double>();
  g.memory = Bytes::gb(k["memory_gb"].get<double>());
  g.nvlink = Bandwidth::gb_per_s(k["nvlink_gbps"].get<double>());
  g.sms = k["sms"].get<int>();
  return g;
}

const Schema& GpuSpec::schema() {
  static const Schema s{"gpu", {
      {"preset", "string", "h100-seed", "",
       "h100-seed | h100-sxm | h800 | h200 | h20 | b200 | gb200 (figures and sources: README, \"GPU and system presets\"); "
       "the keys below override it"},
      {"peak_tflops", "number", nullptr, "TFLOPS", "dense BF16 peak (default: preset)"},
      {"peak_fp8_tflops", "number", nullptr, "TFLOPS", "dense FP8 peak (default: preset; 2 x peak_tflops when only that is set)"},
      {"mfu", "number", nullptr, "", "fraction of peak a GEMM reaches, in [0.001, 1] (default: preset, 0.6)"},
      {"hbm_tbps", "number", nullptr, "TB/s", "HBM bandwidth (default: preset)"},
      {"hbm_efficiency", "number", nullptr, "", "fraction of HBM bandwidth reached, in [0.001, 1] (default: preset, 0.8)"},
      {"memory_gb", "number", nullptr, "GB", "device memory, 1e9 bytes (default: preset)"},
      {"nvlink_gbps", "number", nullptr, "GB/s", "NVLink per GPU each way (default: preset)"},
      {"sms", "integer", nullptr, "", "streaming multiprocessors (default: preset: 132 Hopper, 78 H20, 148 Blackwell)"},
      {"kernel_gap_us", "number", 1.0, "us", "nominal cost model: the gap each kernel adds after the previous one on a stream (launch and dependency), added to every op's time per kernel it launches. 1 us: NVIDIA's \"Getting Started with CUDA Graphs\" (developer.nvidia.com/blog/cuda-graphs) measured back-to-back 2.9 us kernels in a stream at 3.8 us each; under a calibrated cost model measured prices include their launches, and ops no measured family prices get the profile's measured kernel_gap_us (else this)"},
  }};
  return s;
}

GpuSpec GpuSpec::from_json(const nlohmann::json& j, const std::string& path) {
  const nlohmann::json obj = j.is_null() ? nlohmann::json::object() : j;
  ConfigObject c(obj, path, schema());
  const std::string name = c.string("preset");
  GpuSpec g;
  try {
    g = preset(name);
  } catch (const std::out_of_range&) {
    c.fail("preset", "unknown GPU preset (known: h100-seed, h100-sxm, h800, h200, h20, b200, gb200)");
  }
  using namespace limits;
  if (c.has("peak_tflops")) {
    g.peak_bf16 = FlopRate::tflops(c.number_in("peak_tflops", kMinRate, kMaxRate, "TFLOPS"));
    g.peak_fp8 = g.peak_bf16 * 2.0;
  }
  if (c.has("peak_fp8_tflops")) g.peak_fp8 = FlopRate::tflops(c.number_in("peak_fp8_tflops", kMinRate, kMaxRate, "TFLOPS"));
  if (c.has("mfu")) g.mfu = c.number_in("mfu", kMinEfficiency, 1.0);
  if (c.has("hbm_tbps")) g.hbm = Bandwidth::gb_per_s(c.number_in("hbm_tbps", kMinRate, kMaxRate, "TB/s") * 1000.0);
  if (c.has("hbm_efficiency")) g.hbm_efficiency = c.number_in("hbm_efficiency", kMinEfficiency, 1.0);
  if (c.has("memory_gb")) g.memory = Bytes::gb(c.number_in("memory_gb", kMinRate, kMaxMemoryGb, "GB"));
  if (c.has("nvlink_gbps")) g.nvlink = Bandwidth::gb_per_s(c.number_in("nvlink_gbps", kMinRate, kMaxRate, "GB/s"));
  if (c.has("sms")) g.sms = c.integer_in<int>("sms", 1, kSms);
  g.kernel_gap = Time::us(c.number_in("kernel_gap_us", 0.0, kMaxLatencyUs, "us"));
  return g;
}

}  // namespace epsim
