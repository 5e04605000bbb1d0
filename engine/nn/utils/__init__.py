"""Gradient utilities (`engine.nn.utils.clip_grad_norm_`) and layer fusion for inference (`engine.nn.utils.fusion`)."""
import math
import numbers

import numpy as np

from ..._capture import replayable
from ...autograd import bump_version
from ...backend import array_module
from ...tensor import Tensor

__all__ = ["clip_grad_norm_"]


@replayable
def clip_grad_norm_(parameters, max_norm, norm_type=2.0):
    """Scale the gradients in place so that their joint norm is at most `max_norm`; return the norm before
    clipping as a 0-d Tensor on the gradients' device (as PyTorch does: `float(norm)` or `.item()` reads it).
    Everything stays on the device: on "cuda" no value crosses to the host. Parameters without a gradient
    are skipped."""
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    grads = [p.grad._data for p in parameters if p.grad is not None]
    for name, v in (("max_norm", max_norm), ("norm_type", norm_type)):
        if isinstance(v, bool) or not isinstance(v, numbers.Real):
            raise TypeError(f"{name}: expected a real number, got {v!r}")
    if max_norm < 0 or not math.isfinite(max_norm):
        raise ValueError(f"max_norm: must be a finite non-negative number, got {max_norm}")
    if norm_type != math.inf and not norm_type > 0:
        raise ValueError(f"norm_type: must be positive or inf, got {norm_type}")
    if not grads:
        return Tensor(np.zeros((), np.float32))
    xp = array_module(grads[0])
    if norm_type == math.inf:
        total = xp.max(xp.stack([xp.abs(g).max().astype(xp.float64) for g in grads]))
    else:
        total = sum((xp.abs(g.astype(xp.float64)) ** norm_type).sum() for g in grads) ** (1.0 / norm_type)
    coef = xp.minimum(max_norm / (total + 1e-6), 1.0)        # 1 where no clipping is needed
    for g in grads:
        g *= coef.astype(g.dtype)
        bump_version(g)
    return Tensor(xp.asarray(total, dtype=grads[0].dtype))
