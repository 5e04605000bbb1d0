"""Scaled dot-product attention: one fused kernel; forward keeps (o, lse), backward recomputes the
probabilities tile by tile (never the L x S matrix)."""
import math
import numbers

import numpy as np

from .._checks import check_float_inputs, check_int, check_same_device, check_tensor
from ..autograd import Function
from ..backend import check_values, kernels_for, to_device
from ..tensor import Tensor, default_generator

__all__ = ["scaled_dot_product_attention"]


class ScaledDotProductAttention(Function):
    """forward(q, k, v, *, mask, is_causal, scale, valid_lens, dropout_p) -> o; saves q, k, v, o, lse.
    The mask, valid_lens and the dropout seed are constants (no gradient). The seed is drawn here, in the op,
    so that every call of a step replayed by engine.compile draws a new one."""

    @staticmethod
    def forward(ctx, q, k, v, *, mask, is_causal, scale, valid_lens, dropout_p):
        if valid_lens is not None and valid_lens.size:        # here, in the op: a replay checks each call's
            check_values((valid_lens < 0).any(),
                         lambda: f"valid_lens: lengths must be >= 0, got {int(valid_lens.min())}")
        seed = int(default_generator().integers(0, 2 ** 63)) if dropout_p > 0 else 0
        ctx.args = (mask, is_causal, scale, valid_lens, dropout_p, seed)
        o, lse = kernels_for(q).sdpa_fwd(q, k, v, *ctx.args)
        ctx.save_for_backward(q, k, v, o, lse)
        return o

    @staticmethod
    def backward(ctx, dout):
        q, k, v, o, lse = ctx.saved
        grads = kernels_for(q).sdpa_bwd(dout, q, k, v, o, lse, *ctx.args)
        return tuple(g if need else None for g, need in zip(grads, ctx.needs_input_grad))


def _real(name, x):
    if not isinstance(x, numbers.Real) or isinstance(x, bool):
        raise TypeError(f"{name}: expected a real number, got {x!r}")
    return float(x)


def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None,
                                 valid_lens=None):
    """softmax(query key^T * scale + mask) value, as torch.nn.functional.scaled_dot_product_attention.

    query (..., L, d), key (..., S, d), value (..., S, dv); the leading dims must be equal (no broadcasting).
    attn_mask: bool (True = attend) or float (added to the scores) of query's dtype, broadcastable to
    (..., L, S); not differentiated. is_causal: key j > query i masked (top-left aligned); given together
    with attn_mask, both apply (PyTorch 2.13 does the same on its fused CPU path, taken for 4-D inputs with
    equal head dims, and raises on its math path). scale: any finite number, default 1 / sqrt(d).
    valid_lens: an int Tensor or array, (B,) or (B, L) with B = query.shape[0]: keys at positions >=
    valid_len masked (D2L's masked_softmax). A fully masked row, or every row when S = 0, gives zeros (and
    zero gradients), as PyTorch does; L = 0 gives an empty output. A NaN input gives NaN (no row is
    silently zeroed). dropout_p in [0, 1): dropout on the attention probabilities, from a seed drawn from
    engine's default generator (a counter-based hash per (row, key): no L x S mask stored).
    """
    check_float_inputs(query=query, key=key, value=value)
    for name, t in (("query", query), ("key", key), ("value", value)):
        if t.ndim < 2:
            raise ValueError(f"{name}: expected at least 2 dims (..., length, features), got shape {t.shape}")
    for name, t in (("key", key), ("value", value)):
        if t.ndim != query.ndim:
            raise ValueError(f"{name}: expected {query.ndim} dims like query, got shape {t.shape}")
    lead, (L, d) = query.shape[:-2], query.shape[-2:]
    for name, t in (("key", key), ("value", value)):
        if t.shape[:-2] != lead:
            raise ValueError(f"{name}: leading dims {t.shape[:-2]} must equal query's {lead} (no broadcasting)")
    if d < 1:
        raise ValueError(f"query: the feature dim must be at least 1, got shape {query.shape}")
    if key.shape[-1] != d:
        raise ValueError(f"key: feature dim {key.shape[-1]} does not match query's {d}")
    S = key.shape[-2]
    if value.shape[-2] != S:
        raise ValueError(f"value: length {value.shape[-2]} does not match key's length {S}")
    if not isinstance(is_causal, (bool, np.bool_)):
        raise TypeError(f"is_causal: expected a bool, got {is_causal!r}")
    mask = None
    if attn_mask is not None:
        check_tensor("attn_mask", attn_mask)
        check_same_device(query=query, attn_mask=attn_mask)
        if attn_mask.dtype != np.bool_ and attn_mask.dtype != query.dtype:
            raise TypeError(f"attn_mask: expected a bool mask or a float mask of query's dtype {query.dtype}, "
                            f"got {attn_mask.dtype}")
        if attn_mask.requires_grad:
            raise ValueError("attn_mask: gradients with respect to the mask are not supported; pass "
                             "attn_mask.detach()")
        target = tuple(lead) + (L, S)
        try:
            ok = attn_mask.ndim <= len(target) and np.broadcast_shapes(attn_mask.shape, target) == target
        except ValueError:
            ok = False
        if not ok:
            raise ValueError(f"attn_mask: shape {attn_mask.shape} does not broadcast to (..., L, S) = {target}")
        mask = attn_mask._data
    p = _real("dropout_p", dropout_p)
    if not 0.0 <= p < 1.0:
        raise ValueError(f"dropout_p: expected a probability in [0, 1), got {dropout_p!r}")
    if scale is None:
        scale = 1.0 / math.sqrt(d)
    scale = _real("scale", scale)
    if not math.isfinite(scale):
        raise ValueError(f"scale: expected a finite number, got {scale!r}")
    vl = None
    if valid_lens is not None:
        if isinstance(valid_lens, Tensor):
            check_same_device(query=query, valid_lens=valid_lens)
            valid_lens = valid_lens._data
        elif isinstance(valid_lens, (np.ndarray, list, tuple)):
            valid_lens = to_device(np.asarray(valid_lens), query.device)     # host lengths go to the query
        else:
            raise TypeError(f"valid_lens: expected a Tensor or an integer array, got {type(valid_lens).__name__}")
        check_int("valid_lens", valid_lens)
        if query.ndim < 3:
            raise ValueError(f"valid_lens: needs a query with a batch dim (at least 3 dims), got {query.shape}")
        want = ((lead[0],), (lead[0], L))
        if valid_lens.shape not in want:
            raise ValueError(f"valid_lens: expected shape {want[0]} or {want[1]}, got {valid_lens.shape}")
        vl = valid_lens
    return ScaledDotProductAttention.apply(query, key, value, mask=mask, is_causal=bool(is_causal), scale=scale,
                                           valid_lens=vl, dropout_p=p)
