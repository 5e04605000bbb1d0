"""float64 NumPy reference (forward and backward) for the losses: cross_entropy, mse_loss.

cross_entropy works on 2-D logits (N, C) with int targets (N,) (the engine moves the class dim last and
flattens); it returns per-row losses and the per-row log-sum-exp `lse` (saved for backward); the
reduction over rows is the engine's. PyTorch's label smoothing:
    loss_r = (1 - eps) * (lse_r - x[r, t_r]) + eps / C * sum_c (lse_r - x[r, c]),
and rows whose target is ignore_index have loss 0 and gradient 0.
`lse` is kept in two parts, lse[r] = (m_r, log sum_c exp(x[r, c] - m_r)) with m_r the row max, and every
difference is formed as (x - m) - log_s: a float64 sum m + log_s loses log_s once |m| passes ~1e16 (four
equal logits of 3e38 would give loss 0, not log 4, and two tied maxima twice their gradient).
"""
import numpy as np

__all__ = ["cross_entropy_fwd", "cross_entropy_bwd", "mse_loss_fwd", "mse_loss_bwd"]


def cross_entropy_fwd(x, target, label_smoothing, ignore_index):
    """x (N, C), target (N,) ints in [0, C) or == ignore_index -> (loss (N,), lse (N, 2)) in float64.

    lse[r] = (row max m, log sum exp(x - m)); saved for backward (never the probabilities).
    Ignored rows: loss 0, lse (0, 0).
    """
    x = np.asarray(x, dtype=np.float64)
    target = np.asarray(target)
    N, C = x.shape
    keep = target != ignore_index
    t = np.where(keep, target, 0)
    xk = x[keep]
    lse = np.zeros((N, 2))
    with np.errstate(invalid="ignore", over="ignore"):
        if xk.size:
            m = xk.max(axis=1, keepdims=True)
            lse[keep] = np.concatenate([m, np.log(np.exp(xk - m).sum(axis=1, keepdims=True))], axis=1)
        m, log_s = lse[:, :1], lse[:, 1]
        loss = (1.0 - label_smoothing) * ((m[:, 0] - x[np.arange(N), t]) + log_s)
        if label_smoothing > 0:
            loss = loss + label_smoothing / C * (C * log_s + np.sum(m - x, axis=1))
    return np.where(keep, loss, 0.0), lse


def cross_entropy_bwd(dloss, x, target, lse, label_smoothing, ignore_index):
    """dloss (N,) (the gradient of each row's loss), x (N, C), target (N,), lse (N, 2) -> dx (N, C):
    dx = dloss * (softmax(x) - (1 - eps) * onehot(target) - eps / C), softmax = exp((x - m) - log_s);
    ignored rows get 0."""
    x = np.asarray(x, dtype=np.float64)
    target = np.asarray(target)
    N, C = x.shape
    keep = target != ignore_index
    p = np.zeros_like(x)
    lse = np.asarray(lse, np.float64).reshape(N, 2)
    with np.errstate(invalid="ignore", over="ignore"):
        p[keep] = np.exp((x[keep] - lse[keep, :1]) - lse[keep, 1:])
    p -= label_smoothing / C
    p[np.arange(N), np.where(keep, target, 0)] -= 1.0 - label_smoothing
    dx = p * np.asarray(dloss, np.float64)[:, None]
    dx[~keep] = 0.0
    return dx


def mse_loss_fwd(x, target, reduction):
    """x, target of one shape -> (x - target)**2 ('none'), its sum ('sum') or mean ('mean', 0-d)."""
    d = np.asarray(x, np.float64) - np.asarray(target, np.float64)
    sq = d * d
    if reduction == "none":
        return sq
    return np.asarray(sq.sum() if reduction == "sum" else sq.mean())


def mse_loss_bwd(dout, x, target, reduction):
    """dout (x's shape for 'none', else 0-d) -> d loss / d x = 2 (x - target) dout [/ numel for 'mean'].
    The gradient for target is its negation."""
    d = np.asarray(x, np.float64) - np.asarray(target, np.float64)
    g = 2.0 * np.asarray(dout, np.float64)
    if reduction == "mean":
        g = g / max(d.size, 1)
    return g * d
