"""float64 NumPy reference (forward and backward) for the softmax family.

Every op works on a 2-D (rows, n) array and normalizes along the last axis; the engine moves the
softmax dim there. Stable: the row max is subtracted before exp. A row whose entries are all -inf
(or, for masked_softmax, a row with valid length 0) gives zeros from softmax and -inf from log_softmax.
"""
import numpy as np

__all__ = ["softmax_fwd", "softmax_bwd", "log_softmax_fwd", "log_softmax_bwd",
           "masked_softmax_fwd", "masked_softmax_bwd"]


def _exp_shifted(x):
    """exp(x - rowmax) and its row sum; a row of all -inf is shifted by 0 (its exp is all 0)."""
    x = np.asarray(x, dtype=np.float64)
    m = np.max(x, axis=-1, keepdims=True) if x.shape[-1] else np.zeros(x.shape[:-1] + (1,))
    m = np.where(np.isneginf(m), 0.0, m)
    e = np.exp(x - m)
    return x, m, e, e.sum(axis=-1, keepdims=True)


def softmax_fwd(x):
    """x (R, n) -> y (R, n) = exp(x - max) / sum(exp(x - max)). Saves y for backward."""
    _, _, e, s = _exp_shifted(x)
    with np.errstate(invalid="ignore"):
        return np.divide(e, s, out=np.zeros_like(e), where=s != 0)   # NaN rows stay NaN


def softmax_bwd(dout, y):
    """dx = y * (dout - sum(dout * y)) along each row."""
    dout, y = np.asarray(dout, np.float64), np.asarray(y, np.float64)
    return y * (dout - np.sum(dout * y, axis=-1, keepdims=True))


def log_softmax_fwd(x):
    """x (R, n) -> y = x - max - log(sum(exp(x - max))); an all -inf row gives -inf. Saves y."""
    x, m, _, s = _exp_shifted(x)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(s == 0, -np.inf, x - m - np.log(s))


def log_softmax_bwd(dout, y):
    """dx = dout - exp(y) * sum(dout) along each row (an all -inf row passes dout through)."""
    dout, y = np.asarray(dout, np.float64), np.asarray(y, np.float64)
    return dout - np.exp(y) * np.sum(dout, axis=-1, keepdims=True)


def masked_softmax_fwd(x, valid_lens):
    """x (R, K), valid_lens (R,) ints in [0, K] -> y (R, K): softmax over x[r, :valid_lens[r]], zeros after.

    A row with valid length 0 is all zeros. Saves y for backward.
    """
    x = np.asarray(x, dtype=np.float64)
    keep = np.arange(x.shape[-1])[None, :] < np.asarray(valid_lens)[:, None]
    return softmax_fwd(np.where(keep, x, -np.inf))


def masked_softmax_bwd(dout, y, valid_lens):
    """dx = y * (dout - sum(dout * y)) on the valid keys of each row, exactly 0 on the masked ones."""
    dout = np.asarray(dout, np.float64)
    keep = np.arange(dout.shape[-1])[None, :] < np.asarray(valid_lens)[:, None]
    return softmax_bwd(np.where(keep, dout, 0.0), y)
