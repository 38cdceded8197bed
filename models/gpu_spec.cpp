#include "models/gpu_spec.h"

#include <stdexcept>

namespace epsim {

std::vector<std::string> GpuSpec::preset_names() { return {"h100-seed", "h100-sxm", "h800", "h200"}; }

nlohmann::json GpuSpec::preset_keys(const std::string& name) {
  // Datasheet figures (dense BF16, no sparsity), as the schema's keys. Memory in GB (1e9 bytes) as sold.
  // h100-seed: SEED.md's card: 400 TFLOPS at 60% MFU, 1.8 TB/s at 80%, 64 GB; NVLink 4 (900 GB/s
  // both ways). The others: NVIDIA datasheets (H100 SXM5 989 TFLOPS BF16, 3.35 TB/s, 80 GB;
  // H800 SXM: H100 compute with NVLink cut to 400 GB/s both ways; H200 SXM: 4.8 TB/s, 141 GB).
  auto keys = [](double tflops, double mfu, double hbm_tbps, double hbm_eff, double mem_gb, double nvlink_gbps) {
    return nlohmann::json{{"peak_tflops", tflops}, {"mfu", mfu},           {"hbm_tbps", hbm_tbps},
                          {"hbm_efficiency", hbm_eff}, {"memory_gb", mem_gb}, {"nvlink_gbps", nvlink_gbps}};
  };
  if (name == "h100-seed") return keys(400, 0.6, 1.8, 0.8, 64, 450);
  if (name == "h100-sxm") return keys(989, 0.6, 3.35, 0.8, 80, 450);
  if (name == "h800") return keys(989, 0.6, 3.35, 0.8, 80, 200);
  if (name == "h200") return keys(989, 0.6, 4.8, 0.8, 141, 450);
  throw std::out_of_range(name);
}

GpuSpec GpuSpec::preset(const std::string& name) {
  const nlohmann::json k = preset_keys(name);
  GpuSpec g;
  g.name = name;
  g.peak_bf16 = FlopRate::tflops(k["peak_tflops"].get<double>());
  g.mfu = k["mfu"].get<double>();
  g.hbm = Bandwidth::gb_per_s(k["hbm_tbps"].get<double>() * 1000.0);
  g.hbm_efficiency = k["hbm_efficiency"].get<double>();
  g.memory = Bytes::gb(k["memory_gb"].get<double>());
  g.nvlink = Bandwidth::gb_per_s(k["nvlink_gbps"].get<double>());
  return g;
}

const Schema& GpuSpec::schema() {
  static const Schema s{"gpu", {
      {"preset", "string", "h100-seed", "", "h100-seed | h100-sxm | h800 | h200; the keys below override it"},
      {"peak_tflops", "number", nullptr, "TFLOPS", "dense BF16 peak (default: preset)"},
      {"mfu", "number", nullptr, "", "fraction of peak a GEMM reaches, in (0,1] (default: preset, 0.6)"},
      {"hbm_tbps", "number", nullptr, "TB/s", "HBM bandwidth (default: preset)"},
      {"hbm_efficiency", "number", nullptr, "", "fraction of HBM bandwidth reached, in (0,1] (default: preset, 0.8)"},
      {"memory_gb", "number", nullptr, "GB", "device memory, 1e9 bytes (default: preset)"},
      {"nvlink_gbps", "number", nullptr, "GB/s", "NVLink per GPU each way (default: preset)"},
      {"sms", "integer", 132, "", "streaming multiprocessors"},
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
  if (c.has("peak_tflops")) g.peak_bf16 = FlopRate::tflops(c.positive("peak_tflops"));
  if (c.has("mfu")) g.mfu = c.fraction("mfu");
  if (c.has("hbm_tbps")) g.hbm = Bandwidth::gb_per_s(c.positive("hbm_tbps") * 1000.0);
  if (c.has("hbm_efficiency")) g.hbm_efficiency = c.fraction("hbm_efficiency");
  if (c.has("memory_gb")) g.memory = Bytes::gb(c.positive("memory_gb"));
  if (c.has("nvlink_gbps")) g.nvlink = Bandwidth::gb_per_s(c.positive("nvlink_gbps"));
  g.sms = static_cast<int>(c.integer("sms", 1));
  return g;
}

}  // namespace epsim
