"""Attention core through PyTorch's scaled_dot_product_attention, shared by the bench rows
(sdpa_torch.py: kernels attention_fwd, attention_bwd, attention_decode_torch) and the whole-layer
program (epsim_layer.py), so that the layer runs exactly the code the calibration measured.

Backend: the first of cuDNN, flash, memory-efficient that accepts the shape (remembered per shape
signature). Inputs are views in the layer's token-major layout ([T, H, D] rows), as a deployment
hands them over; the output is returned as contiguous [T, H * Dv] rows (the o_proj input), the
copy (if the backend's layout needs one) inside the timed call.
"""
import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

ORDER = [("cudnn", SDPBackend.CUDNN_ATTENTION), ("flash", SDPBackend.FLASH_ATTENTION),
         ("efficient", SDPBackend.EFFICIENT_ATTENTION)]
_chosen = {}


def _sig(q, k, v, causal, grad):
    return (tuple(q.shape), tuple(k.shape), tuple(v.shape), tuple(q.stride()), tuple(k.stride()),
            tuple(v.stride()), causal, grad)


def sdpa(q, k, v, causal, grad=False):
    """q [B, H, S, Dqk], k [B, Hkv, L, Dqk], v [B, Hkv, L, Dv] (views allowed). Returns (out
    [B, H, S, Dv], backend name)."""
    gqa = k.shape[1] != q.shape[1]
    key = _sig(q, k, v, causal, grad)
    names = [_chosen[key]] if key in _chosen else [n for n, _ in ORDER]
    last = None
    for name in names:
        be = dict(ORDER)[name]
        try:
            with sdpa_kernel([be]):
                out = F.scaled_dot_product_attention(q, k, v, is_causal=causal, enable_gqa=gqa)
            if grad and key not in _chosen:
                # the backward must run on this backend too
                g = torch.autograd.grad(out, (q, k, v), torch.ones_like(out), retain_graph=False)
                del g
                with sdpa_kernel([be]):
                    out = F.scaled_dot_product_attention(q, k, v, is_causal=causal, enable_gqa=gqa)
            _chosen[key] = name
            return out, name
        except RuntimeError as e:  # this backend does not take the shape
            last = e
    raise RuntimeError(f"no SDPA backend ran q{tuple(q.shape)} k{tuple(k.shape)} v{tuple(v.shape)}: {last}")


def backend_of(q, k, v, causal, grad=False):
    return _chosen.get(_sig(q, k, v, causal, grad))


def rows(x, T):
    """[1, H, T, D] (any strides) -> [T, H*D] contiguous (a copy only if the layout needs one)."""
    return x.transpose(1, 2).reshape(T, -1)


def view(buf, T, heads, width, tok_stride, head_stride, off=0):
    """A token-major buffer -> the SDPA view [1, heads, T, width]: head h of token t starts at
    off + t*tok_stride + h*head_stride (elements from buf's start)."""
    return buf.as_strided((1, heads, T, width), (T * tok_stride, head_stride, tok_stride, 1), buf.storage_offset() + off)


def fwd_flops(T, H, dqk, dv, causal=True):
    """Causal prefill: T*T/2 query-key pairs per head, 2 FLOPs per multiply-add in QK^T and PV."""
    pairs = T * T / 2 if causal else T * T
    return 2.0 * H * pairs * (dqk + dv)


def bwd_flops(T, H, dqk, dv, causal=True):
    """Backward: S = QK^T recomputed, dV = P^T dO, dP = dO V^T, dQ = dS K, dK = dS^T Q."""
    pairs = T * T / 2 if causal else T * T
    return 2.0 * H * pairs * (3 * dqk + 2 * dv)


def layer_views(kind, T, H, Hkv, dqk, dv, bufs):
    """The layer's geometry (epsim_layer.py): MHA/GQA: q rows [T, H*d], kv_proj rows [T, 2*Hkv*d]
    (k then v); MLA: q rows [T, H*192], k assembled [T, H*192], v inside kv_b's rows [T, H*256]
    at offset 128. bufs: dict with 'q', 'kv' (MHA/GQA) or 'q', 'k', 'kvb' (MLA)."""
    if kind == "mla":
        q = view(bufs["q"], T, H, dqk, H * dqk, dqk)
        k = view(bufs["k"], T, H, dqk, H * dqk, dqk)
        v = view(bufs["kvb"], T, H, dv, H * 256, 256, 128)
    else:
        q = view(bufs["q"], T, H, dqk, H * dqk, dqk)
        k = view(bufs["kv"], T, Hkv, dqk, 2 * Hkv * dqk, dqk)
        v = view(bufs["kv"], T, Hkv, dv, 2 * Hkv * dqk, dv, Hkv * dqk)
    return q, k, v


def layer_buffers(kind, T, H, Hkv, dqk, dv, make):
    if kind == "mla":
        return {"q": make((T, H * dqk)), "k": make((T, H * dqk)), "kvb": make((T, H * 256))}
    return {"q": make((T, H * dqk)), "kv": make((T, 2 * Hkv * dqk))}


def attn_fwd(q, k, v, T, causal=True, grad=False):
    """The layer's attn_core: SDPA on the views, output as [T, H*Dv] rows. With grad, q, k, v are
    leaves made from the views (detach: no copy) and the graph is returned for attn_core.bwd."""
    if grad:
        q, k, v = (t.detach().requires_grad_() for t in (q, k, v))
        with torch.enable_grad():
            out, _ = sdpa(q, k, v, causal, grad=True)
        return rows(out.detach(), T), (out, q, k, v)
    with torch.no_grad():
        out, _ = sdpa(q, k, v, causal)
    return rows(out, T), None


def attn_bwd(ctx, d_rows, T, outs=None):
    """attn_core.bwd: dO given as [T, H*Dv] rows; dq, dk, dv written as token-major rows into outs
    (three [T, heads*D] buffers; the copy, where the backend's layout needs one, is part of the op,
    in the bench rows as in the layer), or returned as the backend made them when outs is None."""
    out, q, k, v = ctx
    B, H, S, Dv = out.shape
    do = d_rows.view(T, H, Dv).unsqueeze(0).transpose(1, 2)
    g = torch.autograd.grad(out, (q, k, v), do, retain_graph=True)
    if outs is None:
        return g
    for src, dst in zip(g, outs):
        dst.view(T, src.shape[1], src.shape[3]).copy_(src[0].transpose(0, 1))
    return outs


# ------------------------------------------------------------------ MLA decode, absorbed
# DeepSeek's inference (inference/model.py, attn_impl "absorb"; SGLang's and vLLM's MLA decode the
# same way): W_UK is absorbed into the query and W_UV applied after the core, so the core reads the
# compressed cache, kv_lora_rank latent + qk_rope_head_dim shared rotated k_pe per token (576
# elements), once for the scores and once (its latent part) for the values. Shared by the bench rows
# (sdpa_torch.py: mla_decode_torch, mla_absorb_torch, kv_append_torch) and the layer program.

def mla_absorb(x_hb, w_h, out_hb):
    """kv_b_proj absorbed, one per-head product as one batched GEMM over the heads: out[h] = x[h] w[h]
    with x [H, B, k] and out [H, B, n] strided views of token-major rows (no copies), w [H, k, n]."""
    torch.bmm(x_hb, w_h, out=out_hb)


def mla_decode(qcat, cache, kl, scale, scores, olat):
    """attn_core of MLA decode, absorbed: qcat [B, H, kl + rope] (the absorbed q_nope, then the rotated
    q_pe), cache [B, L, kl + rope] (the normed latent, then the rotated k_pe); scores [B, H, L] bf16
    scratch, olat [B, H, kl] out. Three kernels: scale x qcat x cache^T (cuBLAS, fp32 accumulate),
    softmax over L (fp32 inside, bf16 out), P x cache[..., :kl]."""
    scores.baddbmm_(qcat, cache.transpose(1, 2), beta=0.0, alpha=scale)
    p = torch.softmax(scores, dim=-1)
    torch.bmm(p, cache[:, :, :kl], out=olat)
    return olat


def mla_decode_flops(B, H, L, kl, rope):
    """2 FLOPs per multiply-add: scores over kl + rope dims, values over kl, per head and cached token."""
    return 2.0 * B * H * L * (2 * kl + rope)
