#!/usr/bin/env python3
"""Times PyTorch's scaled_dot_product_attention on the shapes epsim-bench uses for its own
attention kernels (the reference ceiling), each available backend separately.

Writes a JSON array of result objects in epsim-bench's schema; epsim-bench --extra FILE copies
them into its results. Usage: sdpa_torch.py OUT.json [--quick]
"""
import json
import math
import sys
import time

import torch
import torch.nn.functional as F

D, H = 128, 128


def backends():
    from torch.nn.attention import SDPBackend
    return [("flash", SDPBackend.FLASH_ATTENTION), ("cudnn", SDPBackend.CUDNN_ATTENTION),
            ("efficient", SDPBackend.EFFICIENT_ATTENTION)]


def rand(shape, gen, dtype=torch.bfloat16):
    """magnitudes in [0.25, 1) with random signs: never zero (filled in chunks: no large temporaries)"""
    out = torch.empty(shape, dtype=dtype, device="cuda")
    flat = out.view(-1)
    step = 1 << 26
    for i in range(0, flat.numel(), step):
        n = min(step, flat.numel() - i)
        u = torch.rand(n, generator=gen, device="cuda") * 1.5 - 0.75
        flat[i:i + n] = (u + torch.where(u >= 0, 0.25, -0.25)).to(dtype)
    return out


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
    # The host's time to enqueue one call (PyTorch's dispatch, tens of us) can exceed a small
    # attention's GPU time: spin the GPU for all of it, so that the events time the GPU alone.
    torch.cuda.synchronize()
    h0 = time.perf_counter()
    for i in range(3):
        fn(i)
    host_s = (time.perf_counter() - h0) / 3
    torch.cuda.synchronize()
    ev = [torch.cuda.Event(enable_timing=True) for _ in range(iters + 1)]
    torch.cuda._sleep(int(2_000_000 + 2.0e9 * host_s * iters * 1.5))  # cycles (~2 GHz)
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


def ref_attention(q, k, v, qrows, causal):
    """float64 attention for the query rows qrows of q [1, H, S, D] against k, v [1, Hkv, L, D]."""
    H, Hkv = q.shape[1], k.shape[1]
    g = H // Hkv
    qd = q[0][:, qrows].double()
    kd = k[0].double().repeat_interleave(g, 0)
    vd = v[0].double().repeat_interleave(g, 0)
    s = qd @ kd.transpose(-1, -2) / math.sqrt(q.shape[-1])
    if causal:
        pos = torch.tensor(qrows, device=q.device).view(1, -1, 1)
        keys = torch.arange(k.shape[2], device=q.device).view(1, 1, -1)
        s = s.masked_fill(keys > pos, float("-inf"))
    return torch.softmax(s, dim=-1) @ vd


# Attention configurations of the issue-14 rows: the fitted model's MLA heads and a generic MHA
# and GQA grid (64 query heads); the validation shapes (128 x 128 MHA, 32/8 GQA) are not measured.
PREFILL_CFGS = [("mla", 128, 128, 192, 128), ("mha", 64, 64, 128, 128), ("gqa", 64, 16, 128, 128)]
DECODE_CFGS = [("mha", 64, 64, 128, 128), ("gqa", 64, 16, 128, 128), ("gqa", 64, 8, 128, 128)]


def layer_rows(add, quick, gen):
    """attention_fwd / attention_bwd (causal prefill, the layer's views) and attention_decode_torch."""
    import attn_torch as A

    seqs = [1024] if quick else [512, 1024, 2048, 4096, 8192, 16384]
    for kind, H, Hkv, dqk, dv in PREFILL_CFGS:
        for T in seqs:
            shape = {"batch": 1, "seq": T, "heads": H, "kv_heads": Hkv, "head_dim_qk": dqk, "head_dim_v": dv,
                     "causal": 1}
            try:
                nrot = 2
                sets = [A.layer_buffers(kind, T, H, Hkv, dqk, dv, lambda sh: rand(sh, gen)) for _ in range(nrot)]
                views = [A.layer_views(kind, T, H, Hkv, dqk, dv, b) for b in sets]
                q, k, v = views[0]
                o, _ = A.attn_fwd(q, k, v, T)
                torch.cuda.synchronize()
                be = A.backend_of(q, k, v, True)
                qrows = sorted(set([0, T // 3, T // 2, T - 1]))
                g = H // Hkv
                ref = ref_attention(q[:, :g], k[:, :1], v[:, :1], qrows, True)
                got = o.view(T, H, dv)[qrows][:, :g].transpose(0, 1)
                err = rel_err(got, ref)
                t = time_fn(lambda i: A.attn_fwd(*views[i % nrot], T), nrot)
                nbytes = 2.0 * T * (H * dqk + Hkv * (dqk + dv) + H * dv)
                add("attention_fwd", be, shape, t, A.fwd_flops(T, H, dqk, dv), nbytes, err, 1e-2,
                    "layer views; float64 on query rows " + str(qrows) + " of the first kv group")
                # backward: graph kept, dO random
                do = rand((T, H * dv), gen)
                ctxs = []
                for b in views:
                    _, c = A.attn_fwd(*b, T, grad=True)
                    ctxs.append(c)
                outs = [torch.empty((T, H * dqk), dtype=torch.bfloat16, device="cuda"),
                        torch.empty((T, Hkv * dqk), dtype=torch.bfloat16, device="cuda"),
                        torch.empty((T, Hkv * dv), dtype=torch.bfloat16, device="cuda")]
                dq, dk, dvv = A.attn_bwd(ctxs[0], do, T)
                torch.cuda.synchronize()
                bad = sum(int((~torch.isfinite(x)).sum().item()) for x in (dq, dk, dvv))
                err_b, note = 0.0, "dq/dk/dv scanned for non-finite values"
                if T <= 2048:
                    # float64 autograd of one kv group (its g query heads and kv head 0)
                    qs = q[:, :g].detach().double().requires_grad_()
                    ks = k[:, :1].detach().double().requires_grad_()
                    vs = v[:, :1].detach().double().requires_grad_()
                    ref_o = ref_attention(qs, ks, vs, list(range(T)), True).unsqueeze(0)
                    dos = do.view(T, H, dv)[:, :g].transpose(0, 1).unsqueeze(0).double()
                    rq, rk, rv = torch.autograd.grad(ref_o, (qs, ks, vs), dos)
                    err_b = max(rel_err(dq[:, :g], rq), rel_err(dk[:, :1], rk), rel_err(dvv[:, :1], rv))
                    note = "float64 autograd of the first kv group (dq, dk, dv)"
                if bad:
                    err_b = float("inf")
                t = time_fn(lambda i: A.attn_bwd(ctxs[i % nrot], do, T, outs), nrot)
                be_b = A.backend_of(*ctxs[0][1:], True, True) or be
                add("attention_bwd", be_b, shape, t, A.bwd_flops(T, H, dqk, dv), 2 * nbytes + 2.0 * T * H * dv * 2,
                    err_b, 2e-2, note)
                del sets, views, ctxs, q, k, v, dq, dk, dvv
            except Exception as e:
                print(f"attention {kind} T={T}: not run ({type(e).__name__}: {str(e)[:200]})")
            torch.cuda.empty_cache()

    pairs = [(16, 4096)] if quick else [(16, 1024), (16, 4096), (16, 8192), (64, 1024), (64, 4096), (64, 8192),
                                         (256, 1024), (256, 4096), (256, 8192)]
    for kind, H, Hkv, dqk, dv in DECODE_CFGS:
        for B, L in pairs:
            kvb = 2.0 * B * Hkv * L * (dqk + dv)
            if kvb > 24e9:
                continue
            shape = {"batch": B, "kv_len": L, "heads": H, "kv_heads": Hkv, "head_dim_qk": dqk, "head_dim_v": dv}
            try:
                nrot = max(1, min(4, math.ceil(4 * (60 << 20) / kvb)))
                sets = [(rand((B, H, 1, dqk), gen), rand((B, Hkv, L, dqk), gen), rand((B, Hkv, L, dv), gen))
                        for _ in range(nrot)]
                q, k, v = sets[0]
                with torch.no_grad():
                    o, be = A.sdpa(q, k, v, False)
                torch.cuda.synchronize()
                ref = ref_attention(q[:1], k[:1], v[:1], [0], False)
                err = rel_err(o[:1, :, :1].reshape(ref.shape), ref)

                def run(i):
                    with torch.no_grad():
                        return A.sdpa(*sets[i % nrot], False)[0]
                t = time_fn(run, nrot)
                add("attention_decode_torch", be, shape, t, 2.0 * B * H * L * (dqk + dv), kvb + 2.0 * B * H * (dqk + dv),
                    err, 1e-2, "float64 on batch 0")
                del sets, q, k, v
            except Exception as e:
                print(f"decode {kind} B={B} L={L}: not run ({type(e).__name__}: {str(e)[:200]})")
            torch.cuda.empty_cache()


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
    only_layer = "--layer-only" in sys.argv
    for S in ([] if only_layer else [1024] if quick else [512, 1024, 2048, 4096, 8192]):
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
    for B in ([] if only_layer else [8] if quick else [1, 8, 32, 128]):
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

    layer_rows(add, quick, gen)

    with open(out_path, "w") as f:
        json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
