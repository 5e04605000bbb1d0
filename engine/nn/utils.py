"""Gradient utilities (`engine.nn.utils.clip_grad_norm_`)."""
import math

from ..backend import array_module
from ..tensor import Tensor

__all__ = ["clip_grad_norm_"]


def clip_grad_norm_(parameters, max_norm, norm_type=2.0):
    """Scale the gradients in place so that their joint norm is at most `max_norm`; return the norm
    before clipping (a float). Parameters without a gradient are skipped."""
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    grads = [p.grad.data for p in parameters if p.grad is not None]
    if max_norm < 0 or not math.isfinite(max_norm):
        raise ValueError(f"max_norm: must be a finite non-negative number, got {max_norm}")
    if not grads:
        return 0.0
    xp = array_module(grads[0])
    if norm_type == math.inf:
        total = max(float(xp.abs(g).max()) for g in grads)
    else:
        total = float(sum(float((xp.abs(g.astype(xp.float64)) ** norm_type).sum()) for g in grads) ** (1.0 / norm_type))
    coef = max_norm / (total + 1e-6)
    if coef < 1:
        for g in grads:
            g *= g.dtype.type(coef)
    return total
