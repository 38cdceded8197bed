#!/usr/bin/env python3
"""Roofline summary of an epsim-bench JSON: for chosen shapes, the floor
max(flops / peak_flops, bytes / peak_bw) against the measured median, using the ceilings measured
in the same file (best BF16 GEMM TFLOPS, best HBM copy GB/s, best one-way P2P GB/s).

Usage: summarize.py RESULT.json            (prints the roofline table, Markdown)
       summarize.py --quality RESULT.json  (prints the file's quality ratios as epsim-bench printed them)
"""
import json
import sys


def quality(d):
    print("| kernel / ceiling | measured | ceiling | ratio | target | met |")
    print("|---|---:|---:|---:|---:|---|")
    for q in d["quality"]:
        if q["ratio"] is None:
            print(f"| {q['name']} | n/a | n/a | n/a | {q['target']:.2f} | n/a |")
            continue
        print(f"| {q['name']} | {q['measured']:.1f} | {q['ceiling']:.1f} | {q['ratio']:.3f} | {q['target']:.2f} | "
              f"{'yes' if q['met'] else 'NO'} |")


def main():
    if sys.argv[1] == "--quality":
        quality(json.load(open(sys.argv[2])))
        return
    d = json.load(open(sys.argv[1]))
    rs = [r for r in d["results"] if r["check"]["pass"]]

    def best(kernel, key, pred=lambda r: True):
        v = [r[key] for r in rs if r["kernel"] == kernel and pred(r)]
        return max(v) if v else 0.0

    bf16 = best("gemm_bf16", "tflops") * 1e12
    fp8 = 2 * bf16  # Hopper's fp8 tensor rate is twice bf16
    hbm = best("hbm_copy", "gbps", lambda r: r["shape"]["bytes"] >= 256 << 20) * 1e9
    p2p = best("p2p_copy", "gbps", lambda r: r["variant"] == "ce_0to1") * 1e9
    print(f"Ceilings measured in this file: BF16 GEMM {bf16/1e12:.0f} TFLOPS (FP8 taken as 2x = {fp8/1e12:.0f}), "
          f"HBM copy {hbm/1e9:.0f} GB/s, P2P {p2p/1e9:.1f} GB/s one way.\n")
    print("| kernel | variant | shape | measured us | floor us | floor/measured | bound by |")
    print("|---|---|---|---:|---:|---:|---|")

    picks = [
        ("gemm_bf16", "cublas", {"m": 1, "n": 4096}), ("gemm_bf16", "cublas", {"m": 128, "n": 4096}),
        ("gemm_bf16", "cublas", {"m": 1024, "n": 4096}), ("gemm_bf16", "cublas", {"m": 4096, "n": 4096}),
        ("gemm_bf16", "cublas", {"m": 16384, "n": 4096}), ("gemm_bf16", "cublas", {"m": 4096, "n": 36864}),
        ("grouped_gemm_bf16", "cublas_loop", {"experts": 8, "tokens_per_expert": 16}),
        ("grouped_gemm_bf16", "cublas_strided", {"experts": 8, "tokens_per_expert": 256}),
        ("grouped_gemm_bf16", "cublas_loop", {"experts": 8, "tokens_per_expert": 1024}),
        ("grouped_gemm_bf16", "cublas_grouped", {"experts": 8, "tokens_per_expert": 1024, "balanced": 1}),
        ("expert_mlp_bf16", "cublas_loop", {"experts": 1, "tokens_per_expert": 128}),
        ("expert_mlp_bf16", "cublas_loop", {"experts": 8, "tokens_per_expert": 512}),
        ("expert_mlp_bf16", "cublas_loop", {"experts": 32, "tokens_per_expert": 2048}),
        ("expert_mlp_fp8", "cublaslt_loop", {"experts": 1, "tokens_per_expert": 128}),
        ("expert_mlp_fp8", "cublaslt_loop", {"experts": 8, "tokens_per_expert": 512}),
        ("expert_mlp_fp8", "cublaslt_loop", {"experts": 32, "tokens_per_expert": 2048}),
        ("dense_mlp_bf16", "cublas", {"tokens": 16}), ("dense_mlp_bf16", "cublas", {"tokens": 4096}),
        ("permute", "full_atomic_count+gather_pdl", {"tokens": 128}),
        ("permute", "full_atomic_count+gather_pdl", {"tokens": 4096}),
        ("permute", "full_stable_index+gather", {"tokens": 4096}),
        ("permute", "gather_only_simt_wb", {"tokens": 4096}),
        ("unpermute_combine", "own", {"tokens": 128}), ("unpermute_combine", "own", {"tokens": 4096}),
        ("gate_topk", "cublas+own_topk", {"tokens": 16}), ("gate_topk", "cublas+own_topk", {"tokens": 4096}),
        ("attention_prefill", "own_wmma_flash", {"seq": 4096}),
        ("sdpa_prefill_torch", "torch2.11.0_cudnn", {"seq": 4096}),
        ("attention_decode", "own_split_kv", {"batch": 1, "kv_len": 8192}),
        ("attention_decode", "own_split_kv", {"batch": 32, "kv_len": 2048}),
        ("sdpa_decode_torch", "torch2.11.0_cudnn", {"batch": 32, "kv_len": 2048}),
        ("hbm_copy", "cudaMemcpy", {"bytes": 1 << 30}),
        ("p2p_copy", "ce_0to1", {"bytes": 16 << 20}), ("p2p_copy", "ce_0to1", {"bytes": 1 << 30}),
        ("nccl_alltoall", "nccl", {"bytes": 4096}), ("nccl_alltoall", "nccl", {"bytes": 1 << 30}),
        # 2026-11-29 files: fixed grid of 264 CTAs, variant own_bidir
        ("peer_dispatch", "own_0to1", {"tokens": 1, "blocks": 1}),
        ("peer_dispatch", "own_bidir", {"tokens": 1171, "blocks": 264}),
        ("peer_dispatch", "own_bidir", {"tokens": 4682, "blocks": 264}),
        ("peer_dispatch", "own_bidir", {"tokens": 75000, "blocks": 264}),
        # later files: several configurations per size; the fastest one other than 32 CTAs
        ("peer_dispatch", "own_0to1", {"tokens": 1}),
        ("peer_dispatch", "own_0to1", {"tokens": 1171}),
        ("peer_dispatch", "own_tma_0to1", {"tokens": 1171}),
        ("peer_dispatch", "own_alltoall", {"tokens": 1171}),
        ("peer_dispatch", "own_0to1", {"tokens": 2048}),
        ("peer_dispatch", "own_alltoall", {"tokens": 4682}),
        ("peer_dispatch", "own_0to1", {"tokens": 75000}),
        ("peer_dispatch", "own_alltoall", {"tokens": 75000}),
        # copy-engine dispatch (h200x2-2026-11-30-copyengine.json on)
        ("peer_dispatch", "copyengine_0to1", {"tokens": 1}),
        ("peer_dispatch", "copyengine_0to1", {"tokens": 1171}),
        ("peer_dispatch", "copyengine_alltoall", {"tokens": 1171}),
        ("peer_dispatch", "copyengine_0to1", {"tokens": 2048}),
        ("peer_dispatch", "copyengine_alltoall", {"tokens": 4682}),
        ("peer_dispatch", "copyengine_0to1", {"tokens": 75000}),
    ]
    seen = set()
    for kernel, variant, shape in picks:
        m = [r for r in rs if r["kernel"] == kernel and r["variant"] == variant
             and all(r["shape"].get(k) == v for k, v in shape.items())]
        if kernel == "peer_dispatch" and "blocks" not in shape:
            m = sorted((r for r in m if r["shape"].get("blocks") != 32), key=lambda r: r["us_median"])
        if not m or id(m[0]) in seen:
            continue
        r = m[0]
        seen.add(id(r))
        link = r["kernel"] in ("p2p_copy", "peer_dispatch", "nccl_alltoall")
        peak_f = fp8 if "fp8" in kernel else bf16
        t_f = r["flops"] / peak_f if r["flops"] else 0.0
        bw = p2p if link else hbm
        if kernel == "nccl_alltoall":
            g = r["shape"].get("gpus", 2)
            t_b = r["bytes"] * (g - 1) / g / p2p  # all but the self chunk leaves the GPU
        else:
            t_b = r["bytes"] / bw
        floor = max(t_f, t_b) * 1e6
        by = ("NVLink" if link else "HBM") if t_b >= t_f else "tensor cores"
        sh = " ".join(f"{k}={v}" for k, v in r["shape"].items())
        print(f"| {kernel} | {variant} | {sh} | {r['us_median']:.1f} | {floor:.1f} | "
              f"{floor / r['us_median']:.2f} | {by} |")


if __name__ == "__main__":
    main()
