#!/usr/bin/env python3
"""Times PyTorch's scaled_dot_product_attention on the shapes epsim-bench uses for its own
attention kernels (the reference ceiling), each available backend separately.

Writes a JSON array of result objects in epsim-bench's schema; epsim-bench --extra FILE copies
them into its results. Usage: sdpa_torch.py OUT.json [--quick]
"""
import json
import math
import sys

import torch
import torch.nn.functional as F

D, H = 128, 128


def backends():
    from torch.nn.attention import SDPBackend
    return [("flash", SDPBackend.FLASH_ATTENTION), ("cudnn", SDPBackend.CUDNN_ATTENTION),
            ("efficient", SDPBackend.EFFICIENT_ATTENTION)]


def rand(shape, gen):
    # magnitudes in [0.25, 1) with random signs: never zero
    mag = torch.rand(shape, generator=gen, device="cuda") * 0.75 + 0.25
    sign = torch.randint(0, 2, shape, generator=gen, device="cuda") * 2 - 1
    return (mag * sign).to(torch.bfloat16)


def time_fn(fn, nrot, budget_ms=150.0, max_iters=100):
    for i in range(3):
        fn(i)
    torch.cuda.synchronize()
    a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    a.record()
    fn(3)
    b.record()
    b.synchronize()
    est = max(a.elapsed_time(b), 1e-3)
    iters = int(min(max(budget_ms / est, 5), max_iters))
    ev = [torch.cuda.Event(enable_timing=True) for _ in range(iters + 1)]
    torch.cuda._sleep(int(2_000_000))  # keep the queue ahead of the GPU (cycles)
    for i in range(iters):
        ev[i].record()
        fn(i + 4)
    ev[iters].record()
    ev[iters].synchronize()
    t = sorted(ev[i].elapsed_time(ev[i + 1]) * 1000.0 for i in range(iters))
    med = t[iters // 2] if iters % 2 else 0.5 * (t[iters // 2 - 1] + t[iters // 2])
    return med, t[0], t[-1], iters


def rel_err(out, ref):
    out = out.double()
    ref = ref.double()
    if not torch.isfinite(out).all():
        return float("inf")
    return ((out - ref).norm() / ref.norm()).item()


def math_ref(q, k, v, causal):
    s = (q.float() @ k.float().transpose(-1, -2)) / math.sqrt(D)
    if causal:
        n = s.shape[-1]
        mask = torch.ones(n, n, device=s.device, dtype=torch.bool).triu(1)
        s = s.masked_fill(mask, float("-inf"))
    return torch.softmax(s.double(), dim=-1).float() @ v.float()


def main():
    out_path = sys.argv[1]
    quick = "--quick" in sys.argv
    gen = torch.Generator(device="cuda")
    gen.manual_seed(1234)
    results = []
    l2 = 60 << 20
    ver = torch.__version__.split("+")[0]

    def add(kernel, variant, shape, t, flops, nbytes, err, thr, note):
        med, mn, mx, iters = t
        results.append({
            "kernel": kernel, "variant": f"torch{ver}_{variant}", "shape": shape,
            "us_median": med, "us_min": mn, "us_max": mx, "iters": iters,
            "flops": flops, "bytes": nbytes, "tflops": flops / (med * 1e-6) / 1e12,
            "gbps": nbytes / (med * 1e-6) / 1e9,
            "check": {"rel_err": err, "threshold": thr, "pass": bool(err <= thr), "note": note}})
        print(f"{kernel:18s} {variant:10s} {json.dumps(shape):70s} {med:10.2f} us "
              f"{flops / (med * 1e-6) / 1e12:7.1f} TF err={err:.2e}", flush=True)

    from torch.nn.attention import sdpa_kernel

    # prefill: B=1, causal
    for S in ([1024] if quick else [512, 1024, 2048, 4096, 8192]):
        n = H * S * D
        nrot = max(1, min(4, math.ceil(4 * l2 / (n * 2 * 4))))
        sets = [tuple(rand((1, H, S, D), gen) for _ in range(3)) for _ in range(nrot)]
        q, k, v = sets[0]
        ref = math_ref(q[:, :2], k[:, :2], v[:, :2], True)
        for name, be in backends():
            try:
                with sdpa_kernel([be]):
                    o = F.scaled_dot_product_attention(q, k, v, is_causal=True)
                    torch.cuda.synchronize()
                    err = rel_err(o[:, :2], ref)
                    t = time_fn(lambda i: F.scaled_dot_product_attention(*sets[i % nrot], is_causal=True), nrot)
            except Exception as e:  # backend not available for this shape
                print(f"sdpa prefill {name} S={S}: not run ({type(e).__name__}: {str(e)[:120]})")
                continue
            add("sdpa_prefill_torch", name, {"batch": 1, "seq": S, "heads": H, "head_dim": D, "causal": 1},
                t, 4.0 * H * S * S * D / 2, n * 2 * 4, err, 1e-2, "vs float32/64 math on heads 0-1")
        del sets, q, k, v
        torch.cuda.empty_cache()

    # decode: one query per (batch, head), KV length L
    for B in ([8] if quick else [1, 8, 32, 128]):
        for L in ([4096] if quick else [512, 2048, 8192, 32768]):
            if B * L > 131072:
                continue
            kv = B * H * L * D
            nrot = max(1, min(8, math.ceil(4 * l2 / (kv * 4))))
            sets = [(rand((B, H, 1, D), gen), rand((B, H, L, D), gen), rand((B, H, L, D), gen))
                    for _ in range(nrot)]
            q, k, v = sets[0]
            ref = math_ref(q[:1], k[:1], v[:1], False)
            for name, be in backends():
                try:
                    with sdpa_kernel([be]):
                        o = F.scaled_dot_product_attention(q, k, v)
                        torch.cuda.synchronize()
                        err = rel_err(o[:1], ref)
                        t = time_fn(lambda i: F.scaled_dot_product_attention(*sets[i % nrot]), nrot)
                except Exception as e:
                    print(f"sdpa decode {name} B={B} L={L}: not run ({type(e).__name__}: {str(e)[:120]})")
                    continue
                add("sdpa_decode_torch", name, {"batch": B, "kv_len": L, "heads": H, "head_dim": D},
                    t, 4.0 * B * H * L * D, kv * 2 * 2 + B * H * D * 2 * 2, err, 1e-2,
                    "vs float32/64 math on batch 0")
            del sets, q, k, v
            torch.cuda.empty_cache()

    with open(out_path, "w") as f:
        json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
