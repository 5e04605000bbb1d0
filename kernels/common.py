"""What the references, both backends and the engine share: output sizes, attention key limits, dropout's
threshold and scale, the gelu constants, a contiguity check. One definition each, so the backends cannot
drift apart; kernels.reference holds the references only, and imports these like everyone else.

Plain Python and NumPy: no Numba, nothing compiles. `key_limits` takes the array module (NumPy or CuPy) and
builds its result there; everything else works on Python numbers or only reads shapes and flags.
"""
import math

import numpy as np

__all__ = ["window_count", "conv2d_out_size", "pool_output_size", "key_limits", "mask_block_map",
           "dropout_threshold", "dropout_scale", "flat_contiguous", "GELU_K", "GELU_C", "GELU_X2_MAX"]

GELU_K = math.sqrt(2.0 / math.pi)     # gelu's tanh approximation: u = K (x + C x^3)
GELU_C = 0.044715
# Activation codes of the fused kernels (conv2d + bias + act, linear + bias + act): act applied in place to
# the output while it is still in cache. 0 is none (the plain conv's code path).
ACTIVATIONS = {"relu": 1, "sigmoid": 2, "tanh": 3}
GELU_X2_MAX = 1e4                     # x^2 is clamped here in u' (see kernels.reference.activation.gelu_bwd)


# ---- output sizes --------------------------------------------------------------------------------------------
def window_count(n, k, stride=1, pad=0, dilation=1, ceil_mode=False):
    """How many windows of k taps, `dilation` apart, fit along n + pad elements (pad: both sides together) at
    `stride`: floor((n + pad - dilation (k - 1) - 1) / stride) + 1, or the ceiling with ceil_mode. The one
    formula behind every conv and pool output size; may be <= 0 (callers reject that)."""
    span = n + pad - dilation * (k - 1) - 1
    return (span + (stride - 1 if ceil_mode else 0)) // stride + 1


def conv2d_out_size(H, W, kh, kw, stride, padding, dilation):
    """(Ho, Wo) of conv2d: stride (sh, sw), padding (top, bottom, left, right), dilation (dh, dw)."""
    (sh, sw), (pt, pb, pl, pr), (dh, dw) = stride, padding, dilation
    return window_count(H, kh, sh, pt + pb, dh), window_count(W, kw, sw, pl + pr, dw)


def pool_output_size(n, k, s, p, ceil_mode):
    """PyTorch's pooling_output_shape (dilation 1) along one axis padded by p on each side: with ceil_mode the
    last window must start inside the input or the left padding. May return <= 0; callers reject that."""
    o = window_count(n, k, s, 2 * p, ceil_mode=ceil_mode)
    if ceil_mode and (o - 1) * s >= n + p:
        o -= 1
    return o


# ---- attention ---------------------------------------------------------------------------------------------
def key_limits(lead, L, S, is_causal, valid_lens, xp=np):
    """klim (N, L) int64, N = prod(lead): query row i attends keys j < klim[n, i] (is_causal, valid_lens (B,) or
    (B, L), B = lead[0], and the key count folded into one limit per row). The fused kernels of both backends
    take it; xp is the module of the arrays (NumPy or CuPy), and valid_lens must live there or on the host."""
    klim = xp.full(tuple(lead) + (L,), S, dtype=np.int64)
    if is_causal:
        klim = xp.minimum(klim, xp.arange(1, L + 1))
    if valid_lens is not None:
        vl = xp.clip(xp.asarray(valid_lens).astype(np.int64), 0, S)
        vl = vl[:, None] if vl.ndim == 1 else vl                          # (B, 1) or (B, L)
        vl = vl.reshape((vl.shape[0],) + (1,) * (len(lead) - 1) + (vl.shape[1],))
        klim = xp.minimum(klim, vl)
    return xp.ascontiguousarray(klim.reshape(math.prod(lead), L))


def mask_block_map(mask_lead, lead):
    """bmap (N,) int64 on the host, N = prod(lead): for each head n (lead flattened in C order), the index of
    the mask block it reads among the mask's own leading dims `mask_lead` (broadcast to lead), so a mask
    broadcast over heads is never copied out per head."""
    nb = math.prod(mask_lead)
    return np.array(np.broadcast_to(np.arange(nb, dtype=np.int64).reshape(tuple(mask_lead)), tuple(lead)).ravel())


# ---- dropout -----------------------------------------------------------------------------------------------
def dropout_threshold(p):
    """The value the counter hash's top 24 bits must reach for a draw to be kept: ceil(p * 2^24) (0: keep all,
    2^24: keep none). Every dropout (elementwise and in attention, every backend) takes it from here."""
    return int(np.ceil(p * (1 << 24)))


def dropout_scale(p):
    """What a kept value is multiplied by: 1 / (1 - p); 0 for p >= 1 (everything is dropped)."""
    return 0.0 if p >= 1.0 else 1.0 / (1.0 - p)


# ---- layout ------------------------------------------------------------------------------------------------
def flat_contiguous(a, name):
    """The flat view of `a` that the fused in-place updates walk; `a` (any backend's array) must be
    C-contiguous, since a copy would not be updated in place."""
    if not a.flags.c_contiguous:
        raise ValueError(f"{name}: the fused update needs a contiguous array")
    return a.reshape(-1)
