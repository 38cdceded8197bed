#include "models/gpu_spec.h"

#include <stdexcept>

namespace epsim {

namespace {
// Datasheet figures (dense, no sparsity). Memory in GB (1e9 bytes) as sold.
GpuSpec make(std::string name, double tflops, double fp8_tflops, double mfu, double hbm_tbps, double hbm_eff, double mem_gb,
             double nvlink_gbps_each_way) {
  GpuSpec g;
  g.name = std::move(name);
  g.peak_bf16 = FlopRate::tflops(tflops);
  g.peak_fp8 = FlopRate::tflops(fp8_tflops);
  g.mfu = mfu;
  g.hbm = Bandwidth::gb_per_s(hbm_tbps * 1000.0);
  g.hbm_efficiency = hbm_eff;
  g.memory = Bytes::gb(mem_gb);
  g.nvlink = Bandwidth::gb_per_s(nvlink_gbps_each_way);
  return g;
}
}  // namespace

std::vector<std::string> GpuSpec::preset_names() { return {"h100-seed", "h100-sxm", "h800", "h200"}; }

GpuSpec GpuSpec::preset(const std::string& name) {
  // h100-seed: SEED.md's card: 400 TFLOPS at 60% MFU, 1.8 TB/s at 80%, 64 GB; NVLink 4 (900 GB/s
  // both ways); SEED.md gives no FP8 figure, so FP8 at 2 x BF16, Hopper's ratio (below).
  // The others: NVIDIA datasheets. The H100 SXM5 datasheet (nvidia.com/en-us/data-center/h100,
  // "H100 SXM" column) lists BF16 1,979 and FP8 3,958 TFLOPS *with sparsity*; dense is half:
  // BF16 989.5 (kept at 989, the figure every shipped scenario was measured with) and FP8 1,979;
  // 3.35 TB/s, 80 GB. H800 SXM: H100 compute with NVLink cut to 400 GB/s both ways. H200 SXM
  // (nvidia.com/en-us/data-center/h200): the same tensor cores (BF16 1,979 / FP8 3,958 sparse),
  // 4.8 TB/s, 141 GB.
  if (name == "h100-seed") return make(name, 400, 800, 0.6, 1.8, 0.8, 64, 450);
  if (name == "h100-sxm") return make(name, 989, 1979, 0.6, 3.35, 0.8, 80, 450);
  if (name == "h800") return make(name, 989, 1979, 0.6, 3.35, 0.8, 80, 200);
  if (name == "h200") return make(name, 989, 1979, 0.6, 4.8, 0.8, 141, 450);
  throw std::out_of_range(name);
}

const Schema& GpuSpec::schema() {
  static const Schema s{"gpu", {
      {"preset", "string", "h100-seed", "", "h100-seed | h100-sxm | h800 | h200; the keys below override it"},
      {"peak_tflops", "number", nullptr, "TFLOPS", "dense BF16 peak (default: preset)"},
      {"peak_fp8_tflops", "number", nullptr, "TFLOPS", "dense FP8 peak, what GEMMs of a precision.* = fp8 op class reach at mfu (default: preset: h100-seed 800, 2 x its BF16 as Hopper; h100-sxm, h800, h200 1979, the datasheets' 3958 with sparsity halved; 2 x peak_tflops when only that is set)"},
      {"mfu", "number", nullptr, "", "fraction of peak a GEMM reaches, in (0,1] (default: preset, 0.6)"},
      {"hbm_tbps", "number", nullptr, "TB/s", "HBM bandwidth (default: preset)"},
      {"hbm_efficiency", "number", nullptr, "", "fraction of HBM bandwidth reached, in (0,1] (default: preset, 0.8)"},
      {"memory_gb", "number", nullptr, "GB", "device memory, 1e9 bytes (default: preset)"},
      {"nvlink_gbps", "number", nullptr, "GB/s", "NVLink per GPU each way (default: preset)"},
      {"sms", "integer", 132, "", "streaming multiprocessors"},
      {"kernel_gap_us", "number", 1.0, "us", "nominal cost model: the gap each kernel adds after the previous one on a stream (launch and dependency), added to every op's time per kernel it launches. 1 us: NVIDIA's \"Getting Started with CUDA Graphs\" (developer.nvidia.com/blog/cuda-graphs) measured back-to-back 2.9 us kernels in a stream at 3.8 us each; a calibrated profile gives its own measured kernel_gap_us (else 0: its curves are timed with their launches)"},
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
    c.fail("preset", "unknown GPU preset (known: h100-seed, h100-sxm, h800, h200)");
  }
  if (c.has("peak_tflops")) {
    g.peak_bf16 = FlopRate::tflops(c.positive("peak_tflops"));
    g.peak_fp8 = g.peak_bf16 * 2.0;
  }
  if (c.has("peak_fp8_tflops")) g.peak_fp8 = FlopRate::tflops(c.positive("peak_fp8_tflops"));
  if (c.has("mfu")) g.mfu = c.fraction("mfu");
  if (c.has("hbm_tbps")) g.hbm = Bandwidth::gb_per_s(c.positive("hbm_tbps") * 1000.0);
  if (c.has("hbm_efficiency")) g.hbm_efficiency = c.fraction("hbm_efficiency");
  if (c.has("memory_gb")) g.memory = Bytes::gb(c.positive("memory_gb"));
  if (c.has("nvlink_gbps")) g.nvlink = Bandwidth::gb_per_s(c.positive("nvlink_gbps"));
  g.sms = static_cast<int>(c.integer("sms", 1));
  g.kernel_gap = Time::us(c.non_negative("kernel_gap_us"));
  return g;
}

}  // namespace epsim
