"""F.nll_loss: the negative log-likelihood of class targets given log-probabilities, PyTorch's semantics
(class weights, ignore_index, 'mean' divides by the weights of the targets counted). Differentiable in the
input through a gather (engine.ops.indexing.TakeAlong), which keeps the targets only.
"""
import numbers

import numpy as np

from .._checks import check_float_inputs, check_int, check_reduction, check_same_device, check_tensor
from .._capture import refuse
from ..backend import array_module, check_values
from ..tensor import _wrap_like
from .indexing import TakeAlong

__all__ = ["nll_loss"]


def nll_loss(input, target, weight=None, ignore_index=-100, reduction="mean"):
    """input: log-probabilities (N, C), (N, C, d1, ...) or (C,); target: int class indices (N,), (N, d1, ...)
    or 0-d, each in [0, C) or equal to ignore_index. loss_i = -weight[t_i] * input[i, t_i] (0 for ignored
    targets); 'mean' divides the sum by sum(weight[t_i]) over the targets not ignored (NaN when that is 0, as
    in PyTorch), 'sum' adds, 'none' keeps target's shape."""
    check_float_inputs(input=input, weight=weight)
    check_tensor("target", target)
    check_int("target", target)
    check_same_device(input=input, target=target, weight=weight)
    check_reduction(reduction)
    if not isinstance(ignore_index, numbers.Integral) or isinstance(ignore_index, bool):
        raise TypeError(f"ignore_index: expected an int, got {ignore_index!r}")
    if input.ndim == 0:
        raise ValueError("input: expected (C,), (N, C) or (N, C, d1, ...) log-probabilities, got a 0-d tensor")
    shape = input.shape
    want = () if input.ndim == 1 else (shape[0],) + shape[2:]
    if target.shape != want:
        raise ValueError(f"target: shape {target.shape} does not match input of shape {shape}: expected {want}")
    C = shape[0] if input.ndim == 1 else shape[1]
    if weight is not None and weight.shape != (C,):
        raise ValueError(f"weight: expected shape ({C},) (one weight per class), got {weight.shape}")
    refuse("used nll_loss (its indices are computed outside the recorded ops)",
           "use cross_entropy on the logits (log_softmax and nll_loss in one op)")
    xp = array_module(input._data)
    t = target._data
    bad = ((t < 0) | (t >= C)) & (t != ignore_index)
    check_values(bad.any(), lambda: f"target: class index {int(t[bad].reshape(-1)[0])} is out of range [0, {C}) "
                                    f"and is not ignore_index ({ignore_index})")
    keep = t != ignore_index
    safe = xp.where(keep, t, 0).astype(np.int64)
    axis = 0 if input.ndim == 1 else 1
    picked = TakeAlong.apply(input, xp.expand_dims(safe, axis), axis=axis).squeeze(axis)
    w = keep.astype(input.dtype)
    if weight is not None:
        w = w * weight._data[safe]
    losses = -picked * _wrap_like(w, input)
    if reduction == "none":
        return losses
    total = losses.sum()
    if reduction == "sum":
        return total
    return total / _wrap_like(xp.asarray(w.sum(), dtype=input.dtype), input)
