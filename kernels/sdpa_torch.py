#!/usr/bin/env python3
"""Times PyTorch's scaled_dot_product_attention on the shapes epsim-bench uses for its own
attention kernels (the reference ceiling), each available backend separately.

Writes a JSON array of result objects in epsim-bench's schema; epsim-bench --extra FILE copies
them into its results. Usage: sdpa_torch.py OUT.json [--quick] [--layer-only]
       sdpa_torch.py OUT.json --mla-only [--quick] [--git SHA] [--card TEXT]: only the MLA decode rows
       (mla_rows), written as an epsim-bench/1 file of their own
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


def mla_rows(add, quick, gen):
    """MLA decode as deployments run it (attn_torch.mla_*): the absorbed core over the compressed
    cache (mla_decode_torch), kv_b_proj's two absorbed per-head products (mla_absorb_torch), and the
    decode RoPE's KV-cache append copies (kv_append_torch, also the MHA/GQA layouts)."""
    import attn_torch as A

    H, KL, RP, NOPE, DV = 128, 512, 64, 128, 128
    scale = 1.0 / math.sqrt(NOPE + RP)
    pairs = [(16, 4096)] if quick else [(b, l) for b in (1, 4, 16, 64, 256) for l in (1024, 4096, 8192, 16384)]
    for B, L in pairs:
        shape = {"batch": B, "kv_len": L, "heads": H, "kv_lora": KL, "rope_dim": RP}
        try:
            cb = 2.0 * B * L * (KL + RP)
            nrot = max(1, min(8, math.ceil(4 * (60 << 20) / cb)))
            sets = [(rand((B, H, KL + RP), gen), rand((B, L, KL + RP), gen)) for _ in range(nrot)]
            scores = torch.empty((B, H, L), dtype=torch.bfloat16, device="cuda")
            olat = torch.empty((B, H, KL), dtype=torch.bfloat16, device="cuda")
            olat.fill_(float("nan"))
            q, c = sets[0]
            A.mla_decode(q, c, KL, scale, scores, olat)
            torch.cuda.synchronize()
            qd, cd = q[0].double(), c[0].double()
            ref = torch.softmax(qd @ cd.T * scale, -1) @ cd[:, :KL]
            err = rel_err(olat[0], ref)
            t = time_fn(lambda i: A.mla_decode(*sets[i % nrot], KL, scale, scores, olat), nrot)
            add("mla_decode_torch", "bmm_softmax_bmm", shape, t, A.mla_decode_flops(B, H, L, KL, RP), cb, err, 1e-2,
                "absorbed MLA core (3 kernels); float64 on batch 0; bytes: the compressed cache read once")
            del sets, scores, olat, q, c
        except Exception as e:
            print(f"mla decode B={B} L={L}: not run ({type(e).__name__}: {str(e)[:200]})")
        torch.cuda.empty_cache()

    ms = [16, 256] if quick else [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048]
    for n, k, what in [(KL, NOPE, "q_nope x W_UK"), (DV, KL, "latent out x W_UV")]:
        for m in ms:
            shape = {"m": m, "n": n, "k": k, "heads": H, "kv_lora": KL}
            try:
                nrot = 4  # 4 x 16.8 MB of weights: more than the L2, as in the layer (read once per layer)
                # as the layer lays them out: x a head-major view of token-major rows, out likewise
                sets = []
                for _ in range(nrot):
                    rows = rand((m, H * k * 2), gen)  # each head's k inputs inside a wider row (stride 2k)
                    x = rows.view(m, H, 2 * k)[:, :, :k].transpose(0, 1)
                    w = rand((H, k, n), gen) * (1.0 / math.sqrt(k))
                    sets.append((x, w))
                out_rows = torch.empty((m, H * (n + 64)), dtype=torch.bfloat16, device="cuda")
                out = out_rows.view(m, H, n + 64)[:, :, :n].transpose(0, 1)
                out.fill_(float("nan"))
                x, w = sets[0]
                A.mla_absorb(x, w, out)
                torch.cuda.synchronize()
                ref = x[:4].double() @ w[:4].double()
                err = rel_err(out[:4], ref)
                t = time_fn(lambda i: A.mla_absorb(*sets[i % nrot], out), nrot)
                add("mla_absorb_torch", "bmm", shape, t, 2.0 * m * H * n * k, 2.0 * (m * H * k + H * k * n + m * H * n),
                    err, 1e-2, what + ": one batched cuBLAS GEMM over the heads, strided views; float64 on heads 0-3")
                del sets, out_rows, out, x, w
            except Exception as e:
                print(f"mla absorb n={n} k={k} m={m}: not run ({type(e).__name__}: {str(e)[:200]})")
            torch.cuda.empty_cache()

    # the decode RoPE's KV append: one copy_ of B x segments x width elements into a cache slot
    bs = [16, 256] if quick else [1, 4, 16, 64, 256]
    Lc = 1024
    for segs, width in [(1, KL), (1, RP), (H, RP), (8, 128), (16, 128), (64, 128)]:
        for B in bs:
            shape = {"batch": B, "segments": segs, "width": width, "kv_len": Lc}
            try:
                src_rows = rand((B, 2 * segs * width), gen)  # the layer's kv rows: k then v
                src = src_rows.view(B, 2, segs, width)[:, 0]
                cache = torch.empty((B, segs, Lc, width), dtype=torch.bfloat16, device="cuda")
                dst = cache[:, :, Lc - 1]
                dst.fill_(float("nan"))
                dst.copy_(src)
                torch.cuda.synchronize()
                err = 0.0 if torch.equal(dst, src) else float("inf")
                t = time_fn(lambda i: dst.copy_(src), 1)
                add("kv_append_torch", "copy", shape, t, 0.0, 2.0 * 2.0 * B * segs * width, err, 0.0,
                    "copy_ into the cache slot of the new token; bit-exact check")
                del src_rows, src, cache, dst
            except Exception as e:
                print(f"kv append {segs}x{width} B={B}: not run ({type(e).__name__}: {str(e)[:200]})")
            torch.cuda.empty_cache()


def bench_doc(results, argv):
    """The rows as an epsim-bench/1 file of their own (no epsim-bench run: --mla-only)."""
    import datetime
    import os
    prop = torch.cuda.get_device_properties(0)
    opt = lambda k: argv[argv.index(k) + 1] if k in argv else ""  # noqa: E731
    return {"schema": "epsim-bench/1",
            "device": {"name": prop.name, "count": 1, "cc": f"{prop.major}.{prop.minor}",
                       "sm_count": prop.multi_processor_count, "memory_bytes": prop.total_memory,
                       "smi": os.environ.get("SMI", "")},
            "card": opt("--card"), "cuda": torch.version.cuda,
            "libraries": {"torch": torch.__version__, "cudnn": str(torch.backends.cudnn.version())},
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "git_commit": opt("--git"), "command": "sdpa_torch.py " + " ".join(argv[1:]),
            "timing": "CUDA events per repetition after warm-up; a GPU spin queued first covers the host's enqueue "
                      "time; median/min/max over the repetitions",
            "errors": [], "results": results}


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
    only_layer = "--layer-only" in sys.argv or "--mla-only" in sys.argv
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

    if "--mla-only" not in sys.argv:
        layer_rows(add, quick, gen)
    mla_rows(add, quick, gen)

    with open(out_path, "w") as f:
        json.dump(bench_doc(results, sys.argv) if "--mla-only" in sys.argv else results, f, indent=1)


if __name__ == "__main__":
    main()
