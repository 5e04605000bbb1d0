"""float64 NumPy reference (forward and backward) for the losses: cross_entropy, mse_loss.

cross_entropy works on 2-D logits (N, C) with int targets (N,) (the engine moves the class dim last and
flattens); it returns per-row losses and the per-row log-sum-exp `lse` (saved for backward); the
reduction over rows is the engine's. PyTorch's label smoothing:
    loss_r = (1 - eps) * (lse_r - x[r, t_r]) + eps / C * sum_c (lse_r - x[r, c]),
and rows whose target is ignore_index have loss 0 and gradient 0.
"""
import numpy as np

__all__ = ["cross_entropy_fwd", "cross_entropy_bwd", "mse_loss_fwd", "mse_loss_bwd"]


def cross_entropy_fwd(x, target, label_smoothing, ignore_index):
    """x (N, C), target (N,) ints in [0, C) or == ignore_index -> (loss (N,), lse (N,)) in float64.

    Saves lse for backward (never the probabilities). Ignored rows: loss 0, lse 0.
    """
    x = np.asarray(x, dtype=np.float64)
    target = np.asarray(target)
    N, C = x.shape
    keep = target != ignore_index
    t = np.where(keep, target, 0)
    xk = x[keep]
    lse = np.zeros(N)
    if xk.size:
        m = xk.max(axis=1, keepdims=True)
        lse[keep] = (m + np.log(np.exp(xk - m).sum(axis=1, keepdims=True)))[:, 0]
    rows = np.arange(N)
    with np.errstate(invalid="ignore"):
        loss = (1.0 - label_smoothing) * (lse - x[rows, t])
        if label_smoothing > 0:
            loss = loss + label_smoothing / C * np.sum(lse[:, None] - x, axis=1)
    return np.where(keep, loss, 0.0), lse


def cross_entropy_bwd(dloss, x, target, lse, label_smoothing, ignore_index):
    """dloss (N,) (the gradient of each row's loss), x (N, C), target (N,), lse (N,) -> dx (N, C):
    dx = dloss * (softmax(x) - (1 - eps) * onehot(target) - eps / C); ignored rows get 0."""
    x = np.asarray(x, dtype=np.float64)
    target = np.asarray(target)
    N, C = x.shape
    keep = target != ignore_index
    p = np.zeros_like(x)
    p[keep] = np.exp(x[keep] - np.asarray(lse, np.float64)[keep, None])
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
