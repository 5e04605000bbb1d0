"""float64 NumPy reference for scaled dot-product attention (forward and backward): the oracle.

It materializes the full (..., L, S) score matrix. Semantics (shared with kernels.cpu.attention):
  q (..., L, d), k (..., S, d), v (..., S, dv), equal leading dims.
  scores = scale * q k^T + bias, where bias comes from
    mask: None, bool (True = attend) or float (added), broadcastable to (..., L, S);
    is_causal: key j > query i masked (top-left aligned);
    valid_lens: int (B,) or (B, L), B = q.shape[0]: keys j >= valid_len masked (D2L's masked_softmax).
  P = softmax(scores) per row; a fully masked row (or S = 0) has P = 0, output 0, lse = -inf; a NaN score
  makes its row's output, lse and gradients NaN, as in PyTorch. Any finite scale (0 and negative too).
  dropout: P' = P * keep / (1 - p), keep from `dropout_keep` (a counter hash of seed, row, key).
  o = P' v.  lse = log(sum_j exp(scores)) per row, saved for backward.
naive_fwd / naive_bwd are the same math in the inputs' own dtype (the baseline of FlashAttention's
float32 criterion in the tests and the benchmark's check).
"""
import numpy as np

from ..common import dropout_threshold

__all__ = ["sdpa_fwd", "sdpa_bwd"]


def _mix64(x):
    """splitmix64's finalizer on a uint64 array (wrapping arithmetic)."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def dropout_keep(seed, n_rows, S, p):
    """Boolean keep-mask (n_rows, S): row r (flat index over (..., L)), key j is kept where the top 24 bits of
    mix64(seed + r * C1 + j * C2) are >= ceil(p * 2^24) (kernels.common.dropout_threshold). The CPU kernel
    computes the same bits tile by tile, the CUDA kernels one (row, key) per call."""
    r = np.arange(n_rows, dtype=np.uint64)[:, None]
    j = np.arange(S, dtype=np.uint64)[None, :]
    with np.errstate(over="ignore"):
        x = np.uint64(seed) + r * np.uint64(0x9E3779B97F4A7C15) + j * np.uint64(0xC2B2AE3D27D4EB4F)
        h = _mix64(x) >> np.uint64(40)
    return h >= np.uint64(dropout_threshold(p))


def attn_bias(mask, is_causal, valid_lens, lead, L, S, dtype=np.float64):
    """Additive bias (..., L, S): 0 where attended, -inf where masked, plus a float mask's values."""
    bias = np.zeros(tuple(lead) + (L, S), dtype=dtype)
    if mask is not None:
        mask = np.asarray(mask)
        bias = bias + (np.where(mask, 0.0, -np.inf) if mask.dtype == np.bool_ else mask.astype(dtype))
    if is_causal:
        bias = np.where(np.arange(S)[None, :] > np.arange(L)[:, None], -np.inf, bias)
    if valid_lens is not None:
        vl = np.asarray(valid_lens)
        vl = vl[:, None] if vl.ndim == 1 else vl                 # (B, 1) or (B, L)
        vl = vl.reshape((vl.shape[0],) + (1,) * (len(lead) - 1) + (vl.shape[1], 1))
        bias = np.where(np.arange(S) >= vl, -np.inf, bias)
    return bias.astype(dtype, copy=False)


def _probs(q, k, mask, is_causal, scale, valid_lens):
    """P (..., L, S) and lse (..., L) in q's dtype (float64 here; the tests also run it in float32 as the
    'naive same-dtype computation' of the FlashAttention criterion)."""
    L, S = q.shape[-2], k.shape[-2]
    scores = q.dtype.type(scale) * (q @ np.swapaxes(k, -1, -2))
    scores = scores + attn_bias(mask, is_causal, valid_lens, q.shape[:-2], L, S, q.dtype)
    m = scores.max(axis=-1, keepdims=True, initial=-np.inf)      # S = 0: every row is fully masked
    dead = m == -np.inf                                           # fully masked rows (a NaN score gives NaN)
    e = np.exp(scores - np.where(dead, 0.0, m).astype(q.dtype))
    s = e.sum(axis=-1, keepdims=True)
    p = np.where(dead, 0.0, e / np.where(dead, 1.0, s)).astype(q.dtype)
    with np.errstate(divide="ignore"):
        lse = np.where(dead, -np.inf, m + np.log(np.where(dead, 1.0, s)))[..., 0].astype(q.dtype)
    return p, lse


def _keep_scale(q, S, dropout_p, seed):
    n_rows = int(np.prod(q.shape[:-1]))
    keep = dropout_keep(seed, n_rows, S, dropout_p).reshape(q.shape[:-1] + (S,))
    return keep * (1.0 / (1.0 - dropout_p))


def naive_fwd(q, k, v, mask, is_causal, scale, valid_lens=None, dropout_p=0.0, seed=0):
    """The forward in the inputs' own dtype (no upcast): the FlashAttention criterion's baseline."""
    p, lse = _probs(q, k, mask, is_causal, scale, valid_lens)
    if dropout_p > 0:
        p = p * _keep_scale(q, k.shape[-2], dropout_p, seed).astype(q.dtype)
    return p @ v, lse


def sdpa_fwd(q, k, v, mask, is_causal, scale, valid_lens=None, dropout_p=0.0, seed=0):
    """Returns (o (..., L, dv), lse (..., L)), float64."""
    f = lambda a: np.asarray(a, dtype=np.float64)
    return naive_fwd(f(q), f(k), f(v), mask, is_causal, float(scale), valid_lens, dropout_p, seed)


def naive_bwd(dout, q, k, v, mask, is_causal, scale, valid_lens=None, dropout_p=0.0, seed=0):
    """The backward in the inputs' own dtype. Recomputes P in full; the softmax backward uses
    rowsum(P * dP) (not the kernels' rowsum(dout * o)), so the tests check that identity too."""
    p, _ = _probs(q, k, mask, is_causal, scale, valid_lens)
    ks = _keep_scale(q, k.shape[-2], dropout_p, seed).astype(q.dtype) if dropout_p > 0 else q.dtype.type(1)
    dv = np.swapaxes(p * ks, -1, -2) @ dout
    dp = (dout @ np.swapaxes(v, -1, -2)) * ks
    ds = p * (dp - np.sum(p * dp, axis=-1, keepdims=True))
    return q.dtype.type(scale) * (ds @ k), q.dtype.type(scale) * (np.swapaxes(ds, -1, -2) @ q), dv


def sdpa_bwd(dout, q, k, v, o, lse, mask, is_causal, scale, valid_lens=None, dropout_p=0.0, seed=0):
    """Returns (dq, dk, dv), float64 (o and lse are not used: P is recomputed)."""
    f = lambda a: np.asarray(a, dtype=np.float64)
    return naive_bwd(f(dout), f(q), f(k), f(v), mask, is_causal, float(scale), valid_lens, dropout_p, seed)
