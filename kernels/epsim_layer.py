#!/usr/bin/env python3
"""epsim-layer: one whole MoE decoder layer on one GPU, op by op (issue 14; kernels/README.md).

Ops run through libepsim_ops.so (the GEMMs and own kernels epsim-bench times) and attn_torch.py
(PyTorch SDPA, the same code as the bench's attention rows). Each case is checked against a
float64 reference before timing; per-op times come from CUDA events between the ops, the layer's
own time from a separate pass with events only around each repetition.

usage: epsim_layer.py --lib build/libepsim_ops.so --out FILE.json [--quick] [--models a,b]
       [--phases prefill,decode,train] [--precisions bf16,fp8] [--card TEXT] [--git SHA]
"""
import argparse
import ctypes
import datetime
import gc
import json
import math
import os
import sys
import time
import traceback
import zlib

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import attn_torch as A  # noqa: E402

VP, I, LL, FL, DB = ctypes.c_void_p, ctypes.c_int, ctypes.c_longlong, ctypes.c_float, ctypes.c_double
BF = torch.bfloat16
F8 = torch.float8_e4m3fn

MODELS = {
    # the fitted model shape (DeepSeek-V3): its GEMMs and attention heads are in the bench rows
    "dsv3-mla": dict(hidden=7168, attention="mla", heads=128, kv_heads=128, head_dim=128, q_lora_rank=1536,
                     kv_lora_rank=512, qk_nope_head_dim=128, qk_rope_head_dim=64, v_head_dim=128,
                     routed_experts=256, top_k=8, expert_intermediate=2048, shared_experts=1, local_experts=8),
    # validation shapes, never measured by the bench: the seed's MHA and a hidden-4096 GQA model
    "seed-mha": dict(hidden=7168, attention="mha", heads=128, kv_heads=128, head_dim=128, q_lora_rank=0,
                     kv_lora_rank=0, qk_nope_head_dim=0, qk_rope_head_dim=0, v_head_dim=128,
                     routed_experts=256, top_k=8, expert_intermediate=2048, shared_experts=1, local_experts=8),
    "gqa4096": dict(hidden=4096, attention="gqa", heads=32, kv_heads=8, head_dim=128, q_lora_rank=0,
                    kv_lora_rank=0, qk_nope_head_dim=0, qk_rope_head_dim=0, v_head_dim=128,
                    routed_experts=256, top_k=8, expert_intermediate=1536, shared_experts=1, local_experts=8),
}


class Ops:
    SIG = {
        "fp8_probe": [VP, ctypes.POINTER(I), ctypes.POINTER(I), ctypes.POINTER(I)],
        "gemm_bf16": [I, I, I, I, VP, VP, VP, I, FL, VP],
        "gemm_fp8": [I, I, I, VP, VP, VP, VP, VP, VP],
        "rmsnorm": [VP, LL, VP, VP, VP, I, I, FL, VP],
        "rmsnorm_bwd": [VP, VP, LL, VP, VP, VP, VP, I, I, VP],
        "rope": [VP, I, I, LL, I, I, I, I, I, FL, VP],
        "mla_rope": [VP, VP, VP, VP, I, I, I, I, VP],
        "mla_rope_bwd": [VP, VP, VP, VP, VP, I, I, I, I, VP],
        "swiglu": [VP, VP, LL, I, VP],
        "swiglu_bwd": [VP, VP, VP, LL, I, VP],
        "quant_act": [VP, LL, I, I, VP, VP, VP, I, VP],
        "residual_add": [VP, VP, VP, LL, VP],
        "gate_topk": [VP, I, I, I, I, I, VP, VP, VP],
        "map_local": [VP, LL, I, VP],
        "permute": [VP, VP, I, I, I, I, VP, VP, VP, VP, VP],
        "unpermute": [VP, VP, VP, I, I, I, VP, VP],
        "unpermute_bwd": [VP, VP, VP, VP, I, I, I, VP, VP, VP],
        "router_topk_bwd": [VP, VP, VP, I, I, I, VP, VP],
        "spin": [VP, DB],
        "empty_kernel": [VP],
    }

    def __init__(self, path):
        self.lib = ctypes.CDLL(path)
        self.lib.epsim_last_error.restype = ctypes.c_char_p
        self.lib.epsim_fp8_note.restype = ctypes.c_char_p
        for name, args in self.SIG.items():
            f = getattr(self.lib, "epsim_" + name)
            f.argtypes = args
            f.restype = I

    def __getattr__(self, name):
        f = getattr(self.lib, "epsim_" + name)

        def call(*args):
            if f(*args) != 0:
                raise RuntimeError(f"epsim_{name}: {self.lib.epsim_last_error().decode()}")
        return call


def p(t):
    return None if t is None else t.data_ptr()


def rnd(shape, lo, hi, gen, dtype=BF):
    """uniform magnitudes in [lo, hi), random signs (never zero); filled in chunks so that large
    tensors (KV caches) need no large temporaries."""
    out = torch.empty(shape, dtype=dtype, device="cuda")
    flat = out.view(-1)
    step = 1 << 26
    for i in range(0, flat.numel(), step):
        n = min(step, flat.numel() - i)
        u = torch.rand(n, generator=gen, device="cuda") * 2 - 1  # sign and magnitude from one draw
        flat[i:i + n] = (torch.sign(u) * (lo + (hi - lo) * u.abs())).to(dtype)
    return out


class Op:
    def __init__(self, name, fn, flops=0.0, nbytes=0.0, kernels=1, precision="bf16", shape=None):
        self.name, self.fn, self.flops, self.bytes = name, fn, float(flops), float(nbytes)
        self.kernels, self.precision, self.shape = kernels, precision, shape or {}


class Layer:
    """One case: weights, buffers and the op list (forward, then backward in train)."""

    def __init__(self, ops, fp8cfg, name, m, phase, prec, T, B, L, gen):
        self.o, self.f8, self.m, self.phase, self.prec = ops, fp8cfg, m, phase, prec
        self.T, self.B, self.L, self.gen = T, B, L, gen
        self.S = torch.cuda.current_stream().cuda_stream
        self.H = m["hidden"]
        self.E, self.K8, self.LE = m["routed_experts"], m["top_k"], m["local_experts"]
        self.I = m["expert_intermediate"]
        self.mla = m["attention"] == "mla"
        # MLA decode runs absorbed (DeepSeek's inference, SGLang, vLLM): no per-head k and v, the
        # latent cache instead (_absorbed_attention)
        self.absorb = self.mla and phase == "decode"
        self.Hq, self.Hkv = m["heads"], m["kv_heads"]
        self.D = m["head_dim"]
        self.dqk = m["qk_nope_head_dim"] + m["qk_rope_head_dim"] if self.mla else self.D
        self.dv = m["v_head_dim"]
        self.pos0, self.pos_step = (L - 1, 0) if phase == "decode" else (0, 1)
        self.W, self.W8, self.norms = {}, {}, {}
        self.fwd, self.bwd = [], []
        self._weights()
        self._buffers()
        self._build_forward()
        if phase == "train":
            self._build_backward()

    # ------------------------------------------------------------------ weights
    def _lin(self, name, n, k, experts=0, bf16=False):
        shape = (experts, n, k) if experts else (n, k)
        if self.prec == "fp8" and name != "router" and not bf16:
            # e4m3 values and one FP32 scale per 128x128 block in the probed layout
            w8 = rnd(shape, 0.5, 8.0, self.gen, torch.float32).to(F8)
            nsc = self._w_scales(n, k)
            sc = (torch.rand((experts or 1, nsc), generator=self.gen, device="cuda") * 0.5 + 0.5) / (8 * math.sqrt(k))
            self.W8[name] = (w8, sc if experts else sc[0])
        else:
            self.W[name] = rnd(shape, 0.25 / math.sqrt(k), 1.0 / math.sqrt(k), self.gen)

    def _w_scales(self, n, k):
        kb, nb = k // 128, (n + 127) // 128
        return n * kb if self.f8["mode"] == 1 else nb * ((kb + 3) // 4 * 4)

    def _weights(self):
        H, I = self.H, self.I
        for nm, width in [("attn_norm", H), ("ffn_norm", H)] + (
                [("q_a_norm", self.m["q_lora_rank"]), ("kv_a_norm", self.m["kv_lora_rank"])] if self.mla else []):
            self.norms[nm] = rnd((width,), 0.5, 1.5, self.gen).abs()
        if self.mla:
            self._lin("q_proj", self.m["q_lora_rank"], H)
            self._lin("q_b_proj", self.Hq * self.dqk, self.m["q_lora_rank"])
            self._lin("kv_proj", self.m["kv_lora_rank"] + self.m["qk_rope_head_dim"], H)
            # absorbed (decode): bf16 in both precisions, as deployments keep W_UK and W_UV
            # (DeepSeek's inference dequantises the fp8 kv_b weight in absorb mode; SGLang's w_kc, w_vc)
            self._lin("kv_b_proj", self.Hq * (self.m["qk_nope_head_dim"] + self.dv), self.m["kv_lora_rank"],
                      bf16=self.absorb)
        else:
            self._lin("q_proj", self.Hq * self.D, H)
            self._lin("kv_proj", 2 * self.Hkv * self.D, H)
        self._lin("o_proj", H, self.Hq * self.dv)
        self._lin("router", self.E, H)
        self._lin("expert_up", 2 * I, H, experts=self.LE)
        self._lin("expert_down", H, I, experts=self.LE)
        self._lin("shared_up", 2 * I, H)
        self._lin("shared_down", H, I)

    def dense_weight(self, name, e=None):
        """float64 copy of a weight (dequantised for fp8) for the reference."""
        if name in self.W:
            w = self.W[name]
            return (w[e] if e is not None else w).double()
        w8, sc = self.W8[name]
        if e is not None:
            w8, sc = w8[e], sc[e]
        n, k = w8.shape
        kb = k // 128
        nn = torch.arange(n, device="cuda").view(-1, 1)
        kk = torch.arange(k, device="cuda").view(1, -1) // 128
        mode, wl = self.f8["mode"], self.f8["w_layout"]
        if mode == 1:
            idx = kk * n + nn if wl == 0 else nn * kb + kk
        elif wl == 0:
            idx = (nn // 128) * ((kb + 3) // 4 * 4) + kk
        else:
            idx = kk * ((n + 127) // 128) + nn // 128
        return w8.float().double() * sc.double()[idx]

    # ------------------------------------------------------------------ buffers
    def _buffers(self):
        T, H, I, R = self.T, self.H, self.I, self.T * self.K8
        z = lambda *s, dt=BF: torch.empty(s, dtype=dt, device="cuda")  # noqa: E731
        self.x = rnd((T, H), 0.25, 1.0, self.gen)
        self.xn, self.r_attn = z(T, H), z(T, dt=torch.float32)
        if self.mla:
            ql, kl, rp = self.m["q_lora_rank"], self.m["kv_lora_rank"], self.m["qk_rope_head_dim"]
            self.qa, self.qan, self.r_qa = z(T, ql), z(T, ql), z(T, dt=torch.float32)
            self.q = z(T, self.Hq * self.dqk)
            self.kva = z(T, kl + rp)
            self.c, self.r_kv = z(T, kl), z(T, dt=torch.float32)
            if self.absorb:  # the compressed cache [B, L, kv_lora + rope], the absorbed q, scores, latent out
                self.cache = rnd((self.B, self.L, kl + rp), 0.25, 1.0, self.gen)
                self.qcat = z(T, self.Hq, kl + rp)
                self.scores = z(T, self.Hq, self.L)
                self.olat = z(T, self.Hq, kl)
            else:
                self.kvb = z(T, self.Hq * 256)
                self.k = z(T, self.Hq * self.dqk)
        else:
            self.q = z(T, self.Hq * self.D)
            self.kv = z(T, 2 * self.Hkv * self.D)
        if self.phase == "decode" and not self.mla:
            Bn, L, D = self.B, self.L, self.D
            self.kc = rnd((Bn, self.Hkv, L, D), 0.25, 1.0, self.gen)
            self.vc = rnd((Bn, self.Hkv, L, D), 0.25, 1.0, self.gen)
        self.ao, self.h, self.hn, self.r_ffn = z(T, H), z(T, H), z(T, H), z(T, dt=torch.float32)
        self.logits = z(T, self.E, dt=torch.float32)
        self.ids, self.wts = z(T, self.K8, dt=torch.int32), z(T, self.K8, dt=torch.float32)
        self.ids_local, self.dest = z(R, dt=torch.int32), z(R, dt=torch.int32)
        self.offsets, self.cursor = z(self.LE + 1, dt=torch.int32), z(self.LE, dt=torch.int32)
        self.cnt = R // self.LE  # balanced: every local expert gets T*top_k/local rows
        self.offs_host = [e * self.cnt for e in range(self.LE + 1)]
        self.offs_dev = torch.tensor(self.offs_host, dtype=torch.int32, device="cuda")
        self.xr, self.hup, self.act, self.yr = z(R, H), z(R, 2 * I), z(R, I), z(R, H)
        self.moe, self.shup, self.shact, self.sh, self.out = z(T, H), z(T, 2 * I), z(T, I), z(T, H), z(T, H)
        self.qbuf = {}  # fp8 activations per GEMM: (q, scales)

    def _q(self, name, rows, k):
        if name not in self.qbuf:
            self.qbuf[name] = (torch.empty((rows, k), dtype=F8, device="cuda"),
                               torch.empty((rows * (k // 128),), dtype=torch.float32, device="cuda"))
        return self.qbuf[name]

    # ------------------------------------------------------------------ op builders
    def gemm(self, name, x, out, rows, ld_x=None, op_name=None):
        """Forward linear out[rows, N] = x W^T (+ its quant_act op in fp8)."""
        op_name = op_name or name
        ops, S = self.o, self.S
        xt = x if callable(x) else (lambda: x)  # o_proj's input is the tensor attn_core made this run
        if name in self.W:
            w = self.W[name]
            n, k = w.shape
            self.fwd.append(Op(op_name, lambda: ops.gemm_bf16(0, rows, n, k, p(xt()), p(w), p(out), 0, 0.0, S),
                               2.0 * rows * n * k, 2.0 * (rows * k + n * k + rows * n), 1, "bf16",
                               {"m": rows, "n": n, "k": k}))
            return
        w8, sc = self.W8[name]
        n, k = w8.shape
        xq, xs = self._q(name, rows, k)
        ldx = ld_x or k
        self.fwd.append(Op("quant_act." + op_name,
                           lambda: ops.quant_act(p(xt()), ldx, rows, k, p(xq), p(xs), None, 1, S),
                           3.0 * rows * k, 3.0 * rows * k + rows * k / 128 * 4, 1, "fp8", {"rows": rows, "k": k}))
        self.fwd.append(Op(op_name, lambda: ops.gemm_fp8(rows, n, k, p(xq), p(xs), p(w8), p(sc), p(out), S),
                           2.0 * rows * n * k, rows * k + n * k + 2.0 * rows * n, 1, "fp8", {"m": rows, "n": n, "k": k}))

    def expert_gemm(self, name, x, out):
        """Per local expert (a cuBLAS call each, counts balanced and known)."""
        ops, S, LE, c = self.o, self.S, self.LE, self.cnt
        if name in self.W:
            w = self.W[name]
            _, n, k = w.shape

            def run():
                for e in range(LE):
                    ops.gemm_bf16(0, c, n, k, p(x[e * c:]), p(w[e]), p(out[e * c:]), 0, 0.0, S)
            self.fwd.append(Op(name, run, 2.0 * LE * c * n * k, 2.0 * LE * (c * k + n * k + c * n), LE, "bf16",
                               {"m": c, "n": n, "k": k, "experts": LE}))
            return
        w8, sc = self.W8[name]
        _, n, k = w8.shape
        R = LE * c
        xq, xs = self._q(name, R, k)
        kb = k // 128
        offs = self.offs_dev
        self.fwd.append(Op("quant_act." + name, lambda: ops.quant_act(p(x), k, R, k, p(xq), p(xs), p(offs), LE, S),
                           3.0 * R * k, 3.0 * R * k + R * kb * 4, 1, "fp8", {"rows": R, "k": k}))

        def run8():
            for e in range(LE):
                ops.gemm_fp8(c, n, k, p(xq[e * c:]), p(xs[e * c * kb:]), p(w8[e]), p(sc[e]), p(out[e * c:]), S)
        self.fwd.append(Op(name, run8, 2.0 * R * n * k, LE * (c * k + n * k + 2.0 * c * n), LE, "fp8",
                           {"m": c, "n": n, "k": k, "experts": LE}))

    def norm_op(self, name, x, y, r, width, ldx=None):
        ops, S, T, w = self.o, self.S, self.T, self.norms[name]
        ld = ldx or width
        self.fwd.append(Op(name, lambda: ops.rmsnorm(p(x), ld, p(w), p(y), p(r), T, width, 1e-6, S),
                           4.0 * T * width, 4.0 * T * width + 2 * width + 4 * T, 1, "bf16",
                           {"tokens": T, "hidden": width}))

    # ------------------------------------------------------------------ forward
    def _build_forward(self):
        o, S, T, H, I = self.o, self.S, self.T, self.H, self.I
        R = T * self.K8
        self.norm_op("attn_norm", self.x, self.xn, self.r_attn, H)
        if self.mla:
            ql, kl = self.m["q_lora_rank"], self.m["kv_lora_rank"]
            self.gemm("q_proj", self.xn, self.qa, T)
            self.norm_op("q_a_norm", self.qa, self.qan, self.r_qa, ql)
            self.gemm("q_b_proj", self.qan, self.q, T)
            self.gemm("kv_proj", self.xn, self.kva, T)
            self.norm_op("kv_a_norm", self.kva, self.c, self.r_kv, kl, ldx=self.kva.shape[1])
        if self.absorb:
            self._absorbed_attention()
        elif self.mla:
            self.gemm("kv_b_proj", self.c, self.kvb, T)
            self.fwd.append(Op("rope", lambda: o.mla_rope(p(self.q), p(self.kvb), p(self.kva), p(self.k), T, self.Hq,
                                                          self.pos0, self.pos_step, S),
                               6.0 * T * self.Hq * 32, T * self.Hq * (64 * 2 + 128 * 2 + 192 * 2) + T * 128.0,
                               1, "bf16", {"tokens": T, "heads": self.Hq}))
        else:
            self.gemm("q_proj", self.xn, self.q, T)
            self.gemm("kv_proj", self.xn, self.kv, T)
            Hq, Hkv, D = self.Hq, self.Hkv, self.D

            def rope_qk():
                o.rope(p(self.q), T, Hq, Hq * D, D, 0, D, self.pos0, self.pos_step, 1.0, S)
                o.rope(p(self.kv), T, Hkv, 2 * Hkv * D, D, 0, D, self.pos0, self.pos_step, 1.0, S)
                if self.phase == "decode":  # append this token's k, v to the cache (slot L-1)
                    kvv = self.kv.view(self.B, 2, Hkv, D)
                    self.kc[:, :, self.L - 1].copy_(kvv[:, 0])
                    self.vc[:, :, self.L - 1].copy_(kvv[:, 1])
            n_rot = T * (Hq + Hkv) * D
            self.fwd.append(Op("rope", rope_qk, 3.0 * n_rot, 4.0 * n_rot + (8.0 * T * Hkv * D if self.phase == "decode" else 0),
                               4 if self.phase == "decode" else 2, "bf16",
                               dict({"tokens": T, "heads": Hq, "kv_heads": Hkv, "head_dim": D},
                                    **({"kv_len": self.L} if self.phase == "decode" else {}))))
        if not self.absorb:
            self.fwd.append(self._attn_op())
        self.o_rows_ref()
        self.gemm("o_proj", lambda: self.o_rows, self.ao, T)
        self.fwd.append(Op("attn_residual", lambda: o.residual_add(p(self.x), p(self.ao), p(self.h), T * H, S),
                           T * H, 6.0 * T * H, 1, "bf16", {"tokens": T, "hidden": H}))
        self.norm_op("ffn_norm", self.h, self.hn, self.r_ffn, H)
        wg = self.W["router"]
        self.fwd.append(Op("router", lambda: o.gemm_bf16(0, T, self.E, H, p(self.hn), p(wg), p(self.logits), 1, 0.0, S),
                           2.0 * T * self.E * H, 2.0 * (T * H + self.E * H) + 4.0 * T * self.E, 1, "bf16",
                           {"m": T, "n": self.E, "k": H}))

        def topk():
            o.gate_topk(p(self.logits), T, self.E, 8, 4, self.K8, p(self.ids), p(self.wts), S)
            o.map_local(p(self.ids_local), R, self.LE, S)
        self.fwd.append(Op("router_topk", topk, 20.0 * T * self.E, 4.0 * T * self.E + 8.0 * R + 4.0 * R, 2, "bf16",
                           {"tokens": T, "experts": self.E, "topk": self.K8}))
        self.fwd.append(Op("permute", lambda: o.permute(p(self.hn), p(self.ids_local), T, self.K8, self.LE, H,
                                                        p(self.offsets), p(self.cursor), p(self.dest), p(self.xr), S),
                           0, 2.0 * T * H + 2.0 * R * H + 4.0 * R * 2, 2, "bf16",
                           {"tokens": T, "topk": self.K8, "hidden": H}))
        self.expert_gemm("expert_up", self.xr, self.hup)
        self.fwd.append(Op("swiglu", lambda: o.swiglu(p(self.hup), p(self.act), R, I, S), 4.0 * R * I, 6.0 * R * I, 1,
                           "bf16", {"rows": R, "inter": I}))
        self.expert_gemm("expert_down", self.act, self.yr)
        self.fwd.append(Op("unpermute", lambda: o.unpermute(p(self.yr), p(self.dest), p(self.wts), T, self.K8, H,
                                                            p(self.moe), S),
                           2.0 * R * H, 2.0 * R * H + 2.0 * T * H + 8.0 * R, 1, "bf16",
                           {"tokens": T, "topk": self.K8, "hidden": H}))
        self.gemm("shared_up", self.hn, self.shup, T)
        self.fwd.append(Op("shared_swiglu", lambda: o.swiglu(p(self.shup), p(self.shact), T, I, S), 4.0 * T * I,
                           6.0 * T * I, 1, "bf16", {"rows": T, "inter": I}))
        self.gemm("shared_down", self.shact, self.sh, T)

        def ffn_res():
            o.residual_add(p(self.moe), p(self.sh), p(self.moe), T * H, S)
            o.residual_add(p(self.h), p(self.moe), p(self.out), T * H, S)
        self.fwd.append(Op("ffn_residual", ffn_res, 2.0 * T * H, 12.0 * T * H, 2, "bf16", {"tokens": T, "hidden": H}))

    def _absorbed_attention(self):
        """MLA decode as DeepSeek's inference runs it (attn_torch.py, "MLA decode, absorbed"):
        kv_b_proj (q_nope x W_UK per head, into the latent), rope (q_pe and k_pe rotated, q_pe placed
        beside the absorbed q, the token's normed latent and k_pe appended to the cache: the KV
        append), attn_core (scores over the 576-wide cache, softmax, values from its latent part),
        kv_b_proj (the latent output x W_UV per head, into o_proj's input rows)."""
        o, S, T, Hq = self.o, self.S, self.T, self.Hq
        kl, rp, nope, dv, L = self.m["kv_lora_rank"], self.m["qk_rope_head_dim"], self.m["qk_nope_head_dim"], self.dv, self.L
        wkv = self.W["kv_b_proj"].view(Hq, nope + dv, kl)  # per head: W_UK rows, then W_UV rows
        w_uk = wkv[:, :nope, :]  # [H, nope, kl] as stored: q_nope [1, nope] x W_UK -> [1, kl]
        w_uv = wkv[:, nope:, :].transpose(1, 2)  # [H, kl, dv]
        q3 = self.q.view(T, Hq, self.dqk)
        q_nope = q3[:, :, :nope].transpose(0, 1)  # [H, B, nope] views, no copies
        q_lat = self.qcat[:, :, :kl].transpose(0, 1)
        o_rows = self.o_rows_ref()
        o_out = o_rows.view(T, Hq, dv).transpose(0, 1)
        o_lat = self.olat.transpose(0, 1)
        absorb = {"heads": Hq, "kv_lora": kl}
        self.fwd.append(Op("kv_b_proj", lambda: A.mla_absorb(q_nope, w_uk, q_lat), 2.0 * T * Hq * nope * kl,
                           2.0 * (T * Hq * nope + Hq * nope * kl + T * Hq * kl), 1, "bf16",
                           dict({"m": T, "n": kl, "k": nope}, **absorb)))

        def rope_append():
            o.rope(p(self.q), T, Hq, Hq * self.dqk, self.dqk, nope, rp, self.pos0, self.pos_step, 1.0, S)
            o.rope(p(self.kva), T, 1, kl + rp, kl + rp, kl, rp, self.pos0, self.pos_step, 1.0, S)
            self.qcat[:, :, kl:].copy_(q3[:, :, nope:])
            self.cache[:, L - 1, :kl].copy_(self.c)
            self.cache[:, L - 1, kl:].copy_(self.kva[:, kl:])
        n_rot = T * (Hq + 1) * rp
        self.fwd.append(Op("rope", rope_append, 3.0 * n_rot, 4.0 * n_rot + 4.0 * T * (Hq * rp + kl + rp), 5, "bf16",
                           dict({"tokens": T, "head_dim_qk": self.dqk, "rope_dim": rp, "kv_len": L}, **absorb)))
        scale = 1.0 / math.sqrt(self.dqk)
        self.fwd.append(Op("attn_core", lambda: A.mla_decode(self.qcat, self.cache, kl, scale, self.scores, self.olat),
                           A.mla_decode_flops(T, Hq, L, kl, rp), 2.0 * T * L * (kl + rp), 3, "bf16",
                           dict({"batch": T, "kv_len": L, "kv_heads": 1, "head_dim_qk": kl + rp, "head_dim_v": kl,
                                 "rope_dim": rp}, **absorb)))
        self.fwd.append(Op("kv_b_proj", lambda: A.mla_absorb(o_lat, w_uv, o_out), 2.0 * T * Hq * kl * dv,
                           2.0 * (T * Hq * kl + Hq * kl * dv + T * Hq * dv), 1, "bf16",
                           dict({"m": T, "n": dv, "k": kl}, **absorb)))

    def o_rows_ref(self):
        """o_proj's input: the attention output rows, replaced by attn_core on each run."""
        if not hasattr(self, "o_rows"):
            self.o_rows = torch.empty((self.T, self.Hq * self.dv), dtype=BF, device="cuda")
        return self.o_rows

    def _attn_op(self):
        T, Hq, Hkv = self.T, self.Hq, self.Hkv
        grad = self.phase == "train"
        if self.phase == "decode":
            Bn, L, D = self.B, self.L, self.D
            q4 = self.q.view(Bn, Hq, 1, D)

            def run():
                with torch.no_grad():
                    out, _ = A.sdpa(q4, self.kc, self.vc, False)
                self.o_rows_ref().copy_(out.reshape(Bn, Hq * D))
            kvb = 2.0 * Bn * Hkv * L * 2 * D
            return Op("attn_core", run, 2.0 * Bn * Hq * L * 2 * D, kvb + 4.0 * Bn * Hq * D, 2, "bf16",
                      {"batch": Bn, "kv_len": L, "heads": Hq, "kv_heads": Hkv, "head_dim_qk": D, "head_dim_v": D})
        bufs = {"q": self.q, "k": self.k, "kvb": self.kvb} if self.mla else {"q": self.q, "kv": self.kv}
        kind = "mla" if self.mla else "mha"
        q, k, v = A.layer_views(kind, T, Hq, Hkv, self.dqk, self.dv, bufs)

        def run():
            rows, ctx = A.attn_fwd(q, k, v, T, True, grad)
            self.attn_ctx = ctx
            self.o_rows = rows
        nbytes = 2.0 * T * (Hq * self.dqk + Hkv * (self.dqk + self.dv) + Hq * self.dv)
        return Op("attn_core", run, A.fwd_flops(T, Hq, self.dqk, self.dv), nbytes, 1, "bf16",
                  {"batch": 1, "seq": T, "heads": Hq, "kv_heads": Hkv, "head_dim_qk": self.dqk,
                   "head_dim_v": self.dv, "causal": 1})

    # ------------------------------------------------------------------ backward (bf16 GEMMs)
    def _build_backward(self):
        o, S, T, H, I, LE, c = self.o, self.S, self.T, self.H, self.I, self.LE, self.cnt
        R = T * self.K8
        z = lambda *s, dt=BF: torch.empty(s, dtype=dt, device="cuda")  # noqa: E731
        self.dout = rnd((T, H), 0.25, 1.0, self.gen)
        self.dW = {n: torch.empty_like(w) for n, w in self.W.items()}
        self.dnorm = {n: z(w.shape[0], dt=torch.float32) for n, w in self.norms.items()}
        d_shact, d_shup, self.d_hn = z(T, I), z(T, 2 * I), z(T, H)
        d_yr, self.d_wts, d_act, d_hup, d_xr = z(R, H), z(T, self.K8, dt=torch.float32), z(R, I), z(R, 2 * I), z(R, H)
        d_logits, d_h, self.d_x = z(T, self.E), z(T, H), z(T, H)
        ones = torch.ones((T, self.K8), dtype=torch.float32, device="cuda")
        B = self.bwd

        def dgrad(name, dy, dx, rows, beta=0.0, w=None, sub=None):
            """dx[rows, K] (+)= dy[rows, N] W[N, K]; W may be a row block (sub = (n0, n1)) of a weight."""
            w = self.W[name] if w is None else w
            if sub:
                w = w[sub[0]:sub[1]]
            n, k = w.shape
            return lambda: o.gemm_bf16(1, rows, k, n, p(dy), p(w), p(dx), 0, beta, S), (rows, n, k)

        def wgrad(name, dy, x, rows, dw=None, sub=None):
            """dW[N, K] = dy[rows, N]^T x[rows, K] (x may be a callable giving this run's tensor)."""
            dw = self.dW[name] if dw is None else dw
            if sub:
                dw = dw[sub[0]:sub[1]]
            n, k = dw.shape
            xt = x if callable(x) else (lambda: x)
            return lambda: o.gemm_bf16(2, n, k, rows, p(dy), p(xt()), p(dw), 0, 0.0, S), (rows, n, k)

        def gemm_op(opname, fns):
            """One op of one or more GEMM calls; its shape is the first call's forward (m, n, k)."""
            calls = [f for f, _ in fns]
            m, n, k = fns[0][1]
            fl = sum(2.0 * a * b * cc for _, (a, b, cc) in fns)
            by = sum(2.0 * (a * cc + b * cc + a * b) for _, (a, b, cc) in fns)
            B.append(Op(opname, lambda: [f() for f in calls], fl, by, len(calls), "bf16", {"m": m, "n": n, "k": k}))

        def norm_bwd(name, dy, x, dx, r, width, ldx=None):
            w, dw = self.norms[name], self.dnorm[name]
            ld = ldx or width

            def run():
                o.rmsnorm_bwd(p(dy), p(x), ld, p(w), p(r), p(dx), p(dw), T, width, S)
            B.append(Op(name + ".dgrad", run, 8.0 * T * width, 6.0 * T * width + 6.0 * width + 4 * T, 2, "bf16",
                        {"tokens": T, "hidden": width}))

        # FFN branch: out = h + moe + shared
        gemm_op("shared_down.dgrad", [dgrad("shared_down", self.dout, d_shact, T)])
        gemm_op("shared_down.wgrad", [wgrad("shared_down", self.dout, self.shact, T)])
        B.append(Op("shared_swiglu.dgrad", lambda: o.swiglu_bwd(p(d_shact), p(self.shup), p(d_shup), T, I, S),
                    10.0 * T * I, 10.0 * T * I, 1, "bf16", {"rows": T, "inter": I}))
        B.append(Op("unpermute.dgrad", lambda: o.unpermute_bwd(p(self.dout), p(self.yr), p(self.dest), p(self.wts), T,
                                                               self.K8, H, p(d_yr), p(self.d_wts), S),
                    4.0 * R * H, 2.0 * T * H + 4.0 * R * H + 12.0 * R, 1, "bf16", {"tokens": T, "topk": self.K8, "hidden": H}))
        w2, w1 = self.W["expert_down"], self.W["expert_up"]
        self.dW["expert_down"] = torch.empty_like(w2)
        self.dW["expert_up"] = torch.empty_like(w1)
        dw2, dw1 = self.dW["expert_down"], self.dW["expert_up"]

        def experts(op, mode, dy, wts, x_or_w, out, n, k):
            def run():
                for e in range(LE):
                    if mode == "dgrad":  # out_e[c, k] = dy_e[c, n] W_e[n, k]
                        o.gemm_bf16(1, c, k, n, p(dy[e * c:]), p(wts[e]), p(out[e * c:]), 0, 0.0, S)
                    else:  # dW_e[n, k] = dy_e[c, n]^T x_e[c, k]
                        o.gemm_bf16(2, n, k, c, p(dy[e * c:]), p(x_or_w[e * c:]), p(out[e]), 0, 0.0, S)
            B.append(Op(op, run, 2.0 * LE * c * n * k, 2.0 * LE * (c * n + c * k + n * k), LE, "bf16",
                        {"m": c, "n": n, "k": k, "experts": LE}))
        experts("expert_down.dgrad", "dgrad", d_yr, w2, None, d_act, H, I)
        experts("expert_down.wgrad", "wgrad", d_yr, None, self.act, dw2, H, I)
        B.append(Op("swiglu.dgrad", lambda: o.swiglu_bwd(p(d_act), p(self.hup), p(d_hup), R, I, S), 10.0 * R * I,
                    10.0 * R * I, 1, "bf16", {"rows": R, "inter": I}))
        experts("expert_up.dgrad", "dgrad", d_hup, w1, None, d_xr, 2 * I, H)
        experts("expert_up.wgrad", "wgrad", d_hup, None, self.xr, dw1, 2 * I, H)
        B.append(Op("permute.dgrad", lambda: o.unpermute(p(d_xr), p(self.dest), p(ones), T, self.K8, H, p(self.d_hn), S),
                    2.0 * R * H, 2.0 * R * H + 2.0 * T * H, 1, "bf16", {"tokens": T, "topk": self.K8, "hidden": H}))
        B.append(Op("router_topk.dgrad", lambda: o.router_topk_bwd(p(self.d_wts), p(self.ids), p(self.logits), T,
                                                                   self.K8, self.E, p(d_logits), S),
                    20.0 * T * self.K8, 2.0 * T * self.E + 12.0 * T * self.K8, 1, "bf16",
                    {"tokens": T, "experts": self.E, "topk": self.K8}))
        gemm_op("router.dgrad", [dgrad("router", d_logits, self.d_hn, T, beta=1.0)])
        gemm_op("router.wgrad", [wgrad("router", d_logits, self.hn, T)])
        gemm_op("shared_up.dgrad", [dgrad("shared_up", d_shup, self.d_hn, T, beta=1.0)])
        gemm_op("shared_up.wgrad", [wgrad("shared_up", d_shup, self.hn, T)])
        norm_bwd("ffn_norm", self.d_hn, self.h, d_h, self.r_ffn, H)
        B.append(Op("ffn_residual.dgrad", lambda: o.residual_add(p(self.dout), p(d_h), p(d_h), T * H, S), T * H,
                    6.0 * T * H, 1, "bf16", {"tokens": T, "hidden": H}))
        # attention branch: h = x + o_proj(attn)
        d_o = z(T, self.Hq * self.dv)
        gemm_op("o_proj.dgrad", [dgrad("o_proj", d_h, d_o, T)])
        gemm_op("o_proj.wgrad", [wgrad("o_proj", d_h, lambda: self.o_rows, T)])
        self.d_xn = z(T, H)
        Hq, Hkv, D = self.Hq, self.Hkv, self.D
        if self.mla:
            ql, kl = self.m["q_lora_rank"], self.m["kv_lora_rank"]
            dq, dk, dvv = z(T, Hq * self.dqk), z(T, Hq * self.dqk), z(T, Hq * self.dv)
            d_kvb, d_kva, d_c, d_qan, d_qa = z(T, Hq * 256), z(T, kl + 64), z(T, kl), z(T, ql), z(T, ql)

            def attn_b():
                A.attn_bwd(self.attn_ctx, d_o, T, (dq, dk, dvv))
            B.append(self._attn_bwd_op(attn_b))
            B.append(Op("rope.dgrad", lambda: o.mla_rope_bwd(p(dq), p(dk), p(dvv), p(d_kvb), p(d_kva), T, Hq, self.pos0,
                                                             self.pos_step, S),
                        6.0 * T * Hq * 32, T * Hq * (64 * 2 + 192 * 2 + 128 * 2 + 256 * 2.0), 1, "bf16",
                        {"tokens": T, "heads": Hq}))
            gemm_op("kv_b_proj.dgrad", [dgrad("kv_b_proj", d_kvb, d_c, T)])
            gemm_op("kv_b_proj.wgrad", [wgrad("kv_b_proj", d_kvb, self.c, T)])
            self.dnorm_ld = self.kva.shape[1]
            norm_bwd("kv_a_norm", d_c, self.kva, d_kva, self.r_kv, kl, ldx=self.kva.shape[1])
            gemm_op("q_b_proj.dgrad", [dgrad("q_b_proj", dq, d_qan, T)])
            gemm_op("q_b_proj.wgrad", [wgrad("q_b_proj", dq, self.qan, T)])
            norm_bwd("q_a_norm", d_qan, self.qa, d_qa, self.r_qa, ql)
            gemm_op("q_proj.dgrad", [dgrad("q_proj", d_qa, self.d_xn, T)])
            gemm_op("q_proj.wgrad", [wgrad("q_proj", d_qa, self.xn, T)])
            gemm_op("kv_proj.dgrad", [dgrad("kv_proj", d_kva, self.d_xn, T, beta=1.0)])
            gemm_op("kv_proj.wgrad", [wgrad("kv_proj", d_kva, self.xn, T)])
        else:
            dq, dk, dvv = z(T, Hq * D), z(T, Hkv * D), z(T, Hkv * D)

            def attn_b():
                A.attn_bwd(self.attn_ctx, d_o, T, (dq, dk, dvv))
            B.append(self._attn_bwd_op(attn_b))

            def rope_b():
                o.rope(p(dq), T, Hq, Hq * D, D, 0, D, self.pos0, self.pos_step, -1.0, S)
                o.rope(p(dk), T, Hkv, Hkv * D, D, 0, D, self.pos0, self.pos_step, -1.0, S)
            n_rot = T * (Hq + Hkv) * D
            B.append(Op("rope.dgrad", rope_b, 3.0 * n_rot, 4.0 * n_rot, 2, "bf16",
                        {"tokens": T, "heads": Hq, "kv_heads": Hkv, "head_dim": D}))
            kvw = Hkv * D
            gemm_op("q_proj.dgrad", [dgrad("q_proj", dq, self.d_xn, T)])
            gemm_op("q_proj.wgrad", [wgrad("q_proj", dq, self.xn, T)])
            gemm_op("kv_proj.dgrad", [dgrad("kv_proj", dk, self.d_xn, T, beta=1.0, sub=(0, kvw)),
                                      dgrad("kv_proj", dvv, self.d_xn, T, beta=1.0, sub=(kvw, 2 * kvw))])
            gemm_op("kv_proj.wgrad", [wgrad("kv_proj", dk, self.xn, T, sub=(0, kvw)),
                                      wgrad("kv_proj", dvv, self.xn, T, sub=(kvw, 2 * kvw))])
        norm_bwd("attn_norm", self.d_xn, self.x, self.d_x, self.r_attn, H)
        B.append(Op("attn_residual.dgrad", lambda: o.residual_add(p(d_h), p(self.d_x), p(self.d_x), T * H, S), T * H,
                    6.0 * T * H, 1, "bf16", {"tokens": T, "hidden": H}))

    def _attn_bwd_op(self, fn):
        T, Hq, Hkv = self.T, self.Hq, self.Hkv
        return Op("attn_core.bwd", fn, A.bwd_flops(T, Hq, self.dqk, self.dv),
                  4.0 * T * (Hq * self.dqk + Hkv * (self.dqk + self.dv) + Hq * self.dv) + 4.0 * T * Hq * self.dv,
                  1, "bf16", {"batch": 1, "seq": T, "heads": Hq, "kv_heads": Hkv, "head_dim_qk": self.dqk,
                              "head_dim_v": self.dv, "causal": 1})

    def all_ops(self):
        return self.fwd + self.bwd

    def run(self):
        for op in self.all_ops():
            op.fn()


# ------------------------------------------------------------------ float64 reference
def rms(x, w):
    return x * torch.rsqrt((x * x).mean(-1, keepdim=True) + 1e-6) * w


def rope_ref(x, pos, rd):
    """rotate-half on the last rd dims of x [..., T, heads, width] with positions pos [T]."""
    half = rd // 2
    inv = torch.pow(torch.tensor(10000.0, dtype=torch.float64, device=x.device),
                    -2.0 * torch.arange(half, dtype=torch.float64, device=x.device) / rd)
    ang = pos.double().view(-1, 1, 1) * inv.view(1, 1, -1)
    c, s = torch.cos(ang), torch.sin(ang)
    a, b = x[..., :half], x[..., half:rd]
    return torch.cat([a * c - b * s, a * s + b * c, x[..., rd:]], -1)


def reference(L, x, qrows=None, kernel_wts=None):
    """The layer in float64 for the query rows qrows (all when None): returns (attention branch
    [rows, H], out [rows, H]). kernel_wts: the kernel's router choice (ids) to follow."""
    m, T, H = L.m, L.T, L.H
    Wd = L.dense_weight
    nd = {n: w.double() for n, w in L.norms.items()}
    xn = rms(x, nd["attn_norm"])
    rows = torch.arange(T, device="cuda") if qrows is None else qrows
    pos = torch.full((T,), L.pos0, device="cuda") if L.phase == "decode" else torch.arange(T, device="cuda")
    Hq, Hkv = L.Hq, L.Hkv
    if L.mla:
        q = rms(xn @ Wd("q_proj").T, nd["q_a_norm"]) @ Wd("q_b_proj").T
        q = q.view(T, Hq, L.dqk)
        q = torch.cat([q[..., :128], rope_ref(q[..., 128:], pos, 64)], -1)
        kva = xn @ Wd("kv_proj").T
        cc = rms(kva[:, :512], nd["kv_a_norm"])
    if L.absorb:
        # DeepSeek's absorbed decode in float64: scores = q_nope W_UK . c + q_pe . k_pe, values
        # sum p c, then W_UV; the cache slot L-1 holds this token's c and rotated k_pe
        wkv = Wd("kv_b_proj").view(Hq, 256, 512)
        w_uk, w_uv = wkv[:, :128], wkv[:, 128:]
        kpe = rope_ref(kva[:, 512:].reshape(T, 1, 64), pos, 64).reshape(T, 64)
        Lk = L.L
        cache = L.cache[rows].double()  # [r, L, 576]: only the checked sequences
        cache[:, Lk - 1, :512] = cc[rows]
        cache[:, Lk - 1, 512:] = kpe[rows]
        qq = q[rows]
        q_lat = torch.einsum("rhd,hdc->rhc", qq[..., :128], w_uk)
        s = (torch.einsum("rhc,rlc->rhl", q_lat, cache[..., :512]) +
             torch.einsum("rhp,rlp->rhl", qq[..., 128:], cache[..., 512:])) / math.sqrt(L.dqk)
        o_lat = torch.einsum("rhl,rlc->rhc", torch.softmax(s, -1), cache[..., :512])
        o = torch.einsum("rhc,hvc->rhv", o_lat, w_uv)
        ao = o.reshape(len(rows), -1) @ Wd("o_proj").T
        h = x[rows] + ao
        return ao, h, ffn_reference(L, h, rows, kernel_wts)
    if L.mla:
        kvb = (cc @ Wd("kv_b_proj").T).view(T, Hq, 256)
        kpe = rope_ref(kva[:, 512:].reshape(T, 1, 64), pos, 64).expand(T, Hq, 64)
        k = torch.cat([kvb[..., :128], kpe], -1)
        v = kvb[..., 128:]
    else:
        D = L.D
        q = rope_ref((xn @ Wd("q_proj").T).view(T, Hq, D), pos, D)
        kv = (xn @ Wd("kv_proj").T).view(T, 2, Hkv, D)
        k, v = rope_ref(kv[:, 0], pos, D), kv[:, 1]
    g = Hq // Hkv
    scale = 1.0 / math.sqrt(L.dqk)
    if L.phase == "decode":
        Bn, Lk = L.B, L.L
        kc = L.kc[rows].double()  # [r, Hkv, L, D]: only the checked sequences
        vc = L.vc[rows].double()
        kc[:, :, Lk - 1] = k[rows]
        vc[:, :, Lk - 1] = v[rows]
        qq = q[rows]  # [r, Hq, D]
        kk = kc.repeat_interleave(g, 1)  # [r, Hq, L, D]
        vv = vc.repeat_interleave(g, 1)
        s = torch.einsum("rhd,rhld->rhl", qq, kk) * scale
        o = torch.einsum("rhl,rhld->rhd", torch.softmax(s, -1), vv)
    else:
        kk = k.repeat_interleave(g, 1)
        vv = v.repeat_interleave(g, 1)
        s = torch.einsum("rhd,thd->hrt", q[rows], kk) * scale
        mask = torch.arange(T, device="cuda").view(1, 1, -1) > rows.view(1, -1, 1)
        s = s.masked_fill(mask, float("-inf"))
        o = torch.einsum("hrt,thd->rhd", torch.softmax(s, -1), vv)
    ao = o.reshape(len(rows), -1) @ Wd("o_proj").T
    h = x[rows] + ao
    return ao, h, ffn_reference(L, h, rows, kernel_wts)


def ffn_reference(L, h, rows, kernel_ids):
    """FFN branch (moe + shared) of rows of h (float64), experts as the layer maps them."""
    nd = L.norms["ffn_norm"].double()
    hn = rms(h, nd)
    logits = hn @ L.dense_weight("router").T
    ids = kernel_ids[rows].long()
    sc = torch.sigmoid(torch.gather(logits, 1, ids))
    w = sc / sc.sum(1, keepdim=True)
    out = torch.zeros_like(hn)
    K8, LE, I = L.K8, L.LE, L.I
    for j in range(K8):
        slot = rows * K8 + j
        le = slot % LE
        for e in range(LE):
            sel = (le == e).nonzero().flatten()
            if len(sel) == 0:
                continue
            up = hn[sel] @ L.dense_weight("expert_up", e).T
            a = torch.nn.functional.silu(up[:, :I]) * up[:, I:]
            out[sel] += w[sel, j:j + 1] * (a @ L.dense_weight("expert_down", e).T)
    up = hn @ L.dense_weight("shared_up").T
    out += (torch.nn.functional.silu(up[:, :I]) * up[:, I:]) @ L.dense_weight("shared_down").T
    return out


def rel(a, b):
    a, b = a.double(), b.double()
    if not torch.isfinite(a).all():
        return float("inf")
    return ((a - b).norm() / b.norm()).item()


def check(L):
    """Poison, run once, compare. Returns the check dict."""
    L.out.fill_(float("nan"))
    L.ao.fill_(float("nan"))
    if L.absorb:  # every absorbed stage and the KV append must write its output
        for t in (L.qcat, L.olat, L.o_rows, L.cache[:, L.L - 1]):
            t.fill_(float("nan"))
    if L.phase == "train":
        L.d_x.fill_(float("nan"))
    L.run()
    torch.cuda.synchronize()
    thr = 3e-2 if L.prec == "bf16" else 0.15
    T = L.T
    rows = torch.tensor(sorted(set([0, T // 4, T // 2, (3 * T) // 4, T - 1])), device="cuda")
    x64 = L.x.double()
    ao_ref, _, _ = reference(L, x64, rows, L.ids)
    e_attn = rel(L.ao[rows], ao_ref)
    # FFN branch from the layer's own h (bf16), so that its error is the FFN's alone
    h_rows = L.h[rows].double()
    ffn_ref = ffn_reference(L, h_rows, rows, L.ids)
    e_ffn = rel(L.out[rows].double() - h_rows, ffn_ref)
    errs = {"attention branch": e_attn, "ffn branch": e_ffn}
    note = ""
    if L.phase == "train":
        if T <= 1024:
            xg = x64.clone().requires_grad_()
            all_rows = torch.arange(T, device="cuda")
            ao_f, h_f, ffn_f = reference(L, xg, all_rows, L.ids)
            out_f = h_f + ffn_f
            (dx_ref,) = torch.autograd.grad((out_f * L.dout.double()).sum(), (xg,))
            errs["dx"] = rel(L.d_x, dx_ref)
            note = "train: dx against float64 autograd of the whole layer"
        else:
            bad = int((~torch.isfinite(L.d_x.float())).sum().item())
            errs["dx"] = 0.0 if bad == 0 else float("inf")
            note = "train: forward checked; dx scanned for non-finite values (float64 autograd at T <= 1024)"
    worst = max(errs.values())
    txt = ", ".join(f"{k} {v:.2e}" for k, v in errs.items())
    return {"rel_err": worst, "threshold": thr, "pass": bool(math.isfinite(worst) and worst <= thr),
            "note": (txt + "; " + note).strip("; ")}


# ------------------------------------------------------------------ timing
def time_layer(L, ops_lib, budget_ms, max_iters):
    ops = L.all_ops()
    S = L.S
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    L.run()
    host_s = time.perf_counter() - t0
    torch.cuda.synchronize()
    a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    ops_lib.spin(S, 1000.0 * 1e3 * host_s * 1.5 + 200)
    a.record()
    L.run()
    b.record()
    b.synchronize()
    est = max(a.elapsed_time(b), 1e-3)
    iters = int(min(max(budget_ms / est, 5), max_iters))
    spin_us = min(1e6 * host_s * 1.3 * iters + 500, 4e6)

    # (a) the layer as one: events only around each repetition
    ev = [torch.cuda.Event(enable_timing=True) for _ in range(iters + 1)]
    ops_lib.spin(S, spin_us)
    for i in range(iters):
        ev[i].record()
        L.run()
    ev[iters].record()
    ev[iters].synchronize()
    whole = sorted(ev[i].elapsed_time(ev[i + 1]) * 1000.0 for i in range(iters))

    # (b) an event between every two ops
    n = len(ops)
    evs = [[torch.cuda.Event(enable_timing=True) for _ in range(n + 1)] for _ in range(iters)]
    ops_lib.spin(S, spin_us * 1.2)
    for i in range(iters):
        for j, op in enumerate(ops):
            evs[i][j].record()
            op.fn()
        evs[i][n].record()
    evs[-1][n].synchronize()
    per = [[evs[i][j].elapsed_time(evs[i][j + 1]) * 1000.0 for i in range(iters)] for j in range(n)]
    sums = sorted(sum(per[j][i] for j in range(n)) for i in range(iters))

    def med(v):
        v = sorted(v)
        k = len(v)
        return v[k // 2] if k % 2 else 0.5 * (v[k // 2 - 1] + v[k // 2])
    op_rows = []
    for j, op in enumerate(ops):
        op_rows.append({"name": op.name, "us": med(per[j]), "us_min": min(per[j]), "us_max": max(per[j]),
                        "kernels": op.kernels, "flops": op.flops, "bytes": op.bytes, "precision": op.precision,
                        "shape": op.shape})
    return ({"median": med(whole), "min": whole[0], "max": whole[-1], "iters": iters}, med(sums), op_rows,
            host_s * 1e6)


def kernel_gap(ops_lib, n=2000):
    S = torch.cuda.current_stream().cuda_stream
    for _ in range(n):
        ops_lib.empty_kernel(S)
    torch.cuda.synchronize()
    res = []
    for _ in range(5):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        ops_lib.spin(S, 8000)
        a.record()
        for _ in range(n):
            ops_lib.empty_kernel(S)
        b.record()
        b.synchronize()
        res.append(a.elapsed_time(b) * 1000.0 / n)
    return sorted(res)[len(res) // 2]


# ------------------------------------------------------------------ cases
def cases(args):
    out = []
    pre = [1024, 4096] if args.quick else [1024, 4096, 16384]
    dec = [(16, 1024)] if args.quick else [(16, 1024), (16, 8192), (64, 4096), (256, 1024), (256, 8192)]
    trn = [1024] if args.quick else [1024, 4096]
    for model in args.models:
        for prec in args.precisions:
            if "prefill" in args.phases:
                out += [(model, "prefill", prec, T, 1, 0) for T in pre]
            if "decode" in args.phases:
                m = MODELS[model]
                per_token = (m["kv_lora_rank"] + m["qk_rope_head_dim"] if m["attention"] == "mla"
                             else 2 * m["kv_heads"] * m["head_dim"])
                kv_bytes = lambda B, L: 2.0 * B * L * per_token  # noqa: E731
                out += [(model, "decode", prec, B, B, L) for B, L in dec if kv_bytes(B, L) <= 24e9]
            if "train" in args.phases and prec == "bf16":
                out += [(model, "train", prec, T, 1, 0) for T in trn]
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lib", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--models", default="dsv3-mla,seed-mha,gqa4096")
    ap.add_argument("--phases", default="prefill,decode,train")
    ap.add_argument("--precisions", default="bf16,fp8")
    ap.add_argument("--card", default="")
    ap.add_argument("--git", default="")
    ap.add_argument("--budget-ms", type=float, default=120.0)
    ap.add_argument("--max-iters", type=int, default=20)
    args = ap.parse_args()
    args.models = args.models.split(",")
    args.phases = args.phases.split(",")
    args.precisions = args.precisions.split(",")
    torch.cuda.set_device(0)
    ops_lib = Ops(args.lib)
    mode, xl, wl = I(), I(), I()
    ops_lib.fp8_probe(torch.cuda.current_stream().cuda_stream, ctypes.byref(mode), ctypes.byref(xl), ctypes.byref(wl))
    f8 = {"mode": mode.value, "x_layout": xl.value, "w_layout": wl.value,
          "note": ops_lib.lib.epsim_fp8_note().decode()}
    print("fp8:", f8, flush=True)
    gap = kernel_gap(ops_lib, 200 if args.quick else 2000)
    print(f"kernel gap {gap:.2f} us", flush=True)
    prop = torch.cuda.get_device_properties(0)
    doc = {"schema": "epsim-layer/1",
           "device": {"name": prop.name, "cc": f"{prop.major}.{prop.minor}", "sm_count": prop.multi_processor_count,
                      "memory_bytes": prop.total_memory, "smi": os.environ.get("SMI", "")},
           "card": args.card,
           "libraries": {"torch": torch.__version__, "cuda": torch.version.cuda,
                         "cudnn": str(torch.backends.cudnn.version()), "fp8": f8},
           "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
           "git_commit": args.git, "command": " ".join(sys.argv),
           "timing": ("(a) layer_us: CUDA events around each repetition of the whole layer, a spin kernel queued "
                      "first so host enqueue time stays off the GPU; (b) ops[].us: an event between every two ops, "
                      "median per op over the repetitions; same inputs every repetition"),
           "kernel_gap_us": gap, "errors": [], "cases": []}
    gen = torch.Generator(device="cuda")
    for (model, phase, prec, T, B, Lk) in cases(args):
        m = MODELS[model]
        label = f"{model}-{phase}-{prec}-" + (f"b{B}-kv{Lk}" if phase == "decode" else f"t{T}")
        gen.manual_seed(zlib.crc32(label.encode()))
        try:
            L = Layer(ops_lib, f8, model, m, phase, prec, T, B, Lk, gen)
            chk = check(L)
            lay, ops_sum, op_rows, host_us = time_layer(L, ops_lib, args.budget_ms, args.max_iters)
            case = {"label": label, "model": dict(name=model, **m), "phase": phase, "precision": prec,
                    "tokens": T, "seq_len": T if phase != "decode" else 0, "batch": B,
                    "kv_len": Lk, "routed_rows": T * m["top_k"], "check": chk, "layer_us": lay,
                    "ops_layer_us": ops_sum, "host_enqueue_us": host_us, "ops": op_rows}
            doc["cases"].append(case)
            print(f"{label:36s} layer {lay['median']:10.1f} us  ops sum {ops_sum:10.1f} us  "
                  f"check {chk['rel_err']:.2e} {'ok' if chk['pass'] else 'FAIL'}  ({chk['note']})", flush=True)
            del L
        except Exception as e:
            L = None
            doc["errors"].append(f"{label}: {type(e).__name__}: {e}")
            print(f"{label}: FAILED {type(e).__name__}: {e}", flush=True)
            traceback.print_exc()
        L = None
        gc.collect()  # the op closures hold the layer in reference cycles: free its memory now
        torch.cuda.empty_cache()
        with open(args.out, "w") as f:
            json.dump(doc, f, indent=1)
    fails = sum(1 for c in doc["cases"] if not c["check"]["pass"])
    print(f"epsim-layer: {len(doc['cases'])} cases, {fails} failed checks, {len(doc['errors'])} errors -> {args.out}")
    return 1 if fails or doc["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
