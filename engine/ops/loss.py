"""Engine ops of the losses: cross_entropy (fused log-softmax + NLL), mse_loss. PyTorch semantics."""
import numbers

import numpy as np

from .._checks import (check_float_input, check_float_inputs, check_int, check_probability, check_reduction,
                       check_same_device, check_tensor)
from ..autograd import Function
from ..backend import array_module, check_values, kernels_for

__all__ = ["cross_entropy", "mse_loss"]


def _safe_div(xp, a, count):
    """a / count as a 0-d float64 array on a's device, 0 where count is 0 (every target ignored)."""
    return xp.where(count > 0, a / xp.maximum(count, 1), 0.0)


class _CrossEntropy(Function):
    """Fused cross entropy over 2-D logits (N, C) (the class dim moved last); saves the logits, the targets
    and the per-row log-sum-exp (never the probabilities)."""

    @staticmethod
    def forward(ctx, x, target, reduction, label_smoothing, ignore_index):
        xp = array_module(x)
        C = x.shape[0] if x.ndim == 1 else x.shape[1]
        # checked here, in the op, so that a step replayed by engine.compile checks each call's targets
        bad = ((target < 0) | (target >= C)) & (target != ignore_index)
        check_values(bad.any(), lambda: f"target: class index {int(target[bad].reshape(-1)[0])} is out of range "
                                        f"[0, {C}) and is not ignore_index ({ignore_index})")
        if x.ndim == 1:
            C = x.shape[0]
            x2, t = x.reshape(1, C), target.reshape(1)
        else:
            C = x.shape[1]
            x2 = x if x.ndim == 2 else xp.moveaxis(x, 1, -1).reshape(-1, C)
            t = target.reshape(-1)
        x2 = xp.ascontiguousarray(x2)
        ctx.kernels = kernels_for(x)
        loss, lse = ctx.kernels.cross_entropy_fwd(x2, t, label_smoothing, ignore_index)
        # the count and the sums stay 0-d device arrays: a training step never waits for the GPU here
        count = xp.count_nonzero(t != ignore_index)
        ctx.x2, ctx.t, ctx.lse, ctx.count, ctx.xshape = x2, t, lse, count, x.shape
        ctx.reduction, ctx.eps, ctx.ignore_index = reduction, label_smoothing, ignore_index
        if reduction == "none":
            return loss.reshape(target.shape).astype(x.dtype)
        total = loss.sum(dtype=np.float64)
        if reduction == "mean":
            total = _safe_div(xp, total, count)
        return total.astype(x.dtype)

    @staticmethod
    def backward(ctx, dout):
        xp = array_module(ctx.x2)
        N = ctx.x2.shape[0]
        if ctx.reduction == "none":
            dloss = dout.reshape(N).astype(np.float64)
        else:
            g = dout.reshape(()).astype(np.float64)
            if ctx.reduction == "mean":
                g = _safe_div(xp, g, ctx.count)
            dloss = xp.broadcast_to(g, (N,))
        dx2 = ctx.kernels.cross_entropy_bwd(dloss, ctx.x2, ctx.t, ctx.lse, ctx.eps, ctx.ignore_index)
        shape = ctx.xshape
        if len(shape) <= 2:
            return dx2.reshape(shape), None
        moved = (shape[0],) + tuple(shape[2:]) + (shape[1],)
        return xp.moveaxis(dx2.reshape(moved), -1, 1), None


def cross_entropy(input, target, reduction="mean", label_smoothing=0.0, ignore_index=-100):
    """Cross entropy between logits and integer class targets, with PyTorch's semantics.

    input: float logits (N, C), (N, C, d1, ...) or unbatched (C,). target: int class indices (N,),
    (N, d1, ...) or 0-d, each in [0, C) or equal to ignore_index (class probabilities are not supported:
    float targets raise TypeError). label_smoothing eps mixes in the uniform distribution:
    loss = (1 - eps) * nll + eps / C * sum_c(-log p_c). Targets equal to ignore_index contribute 0 loss and
    0 gradient; 'mean' divides by the number of non-ignored targets (also with label smoothing). When every
    target is ignored (or there are none), 'mean' returns 0.0 (PyTorch returns NaN) with zero gradient.
    Fused: one kernel computes per-row log-sum-exp and loss, one writes dx = (softmax - smoothed one-hot) * g.
    """
    check_float_input("input", input)
    check_tensor("target", target)
    if np.dtype(target.dtype).kind == "f":
        raise TypeError(f"target: expected integer class indices, got dtype {np.dtype(target.dtype)} "
                        f"(class-probability targets are not supported)")
    check_int("target", target)
    check_same_device(input=input, target=target)
    check_reduction(reduction)
    label_smoothing = check_probability("label_smoothing", label_smoothing)
    if not isinstance(ignore_index, numbers.Integral) or isinstance(ignore_index, bool):
        raise TypeError(f"ignore_index: expected an int, got {ignore_index!r}")
    ignore_index = int(ignore_index)
    shape = tuple(input.shape)
    if input.ndim == 0:
        raise ValueError("input: expected logits of shape (C,), (N, C) or (N, C, d1, ...), got a 0-d tensor")
    want = () if input.ndim == 1 else (shape[0],) + shape[2:]
    if tuple(target.shape) != want:
        raise ValueError(f"target: shape {tuple(target.shape)} does not match input of shape {shape}: "
                         f"expected {want}")
    C = shape[0] if input.ndim == 1 else shape[1]
    if C == 0:
        raise ValueError(f"input: needs at least one class, got shape {shape}")
    return _CrossEntropy.apply(input, target, reduction, label_smoothing, ignore_index)


class _MSELoss(Function):
    """mean/sum/none of (input - target)**2; saves input and target. Gradients: +-2 (input - target) dout."""

    @staticmethod
    def forward(ctx, x, t, reduction):
        ctx.x, ctx.t, ctx.reduction = x, t, reduction
        return kernels_for(x).mse_loss_fwd(x, t, reduction)

    @staticmethod
    def backward(ctx, dout):
        dx = kernels_for(ctx.x).mse_loss_bwd(dout, ctx.x, ctx.t, ctx.reduction)
        return (dx if ctx.needs_input_grad[0] else None), (-dx if ctx.needs_input_grad[1] else None), None


def mse_loss(input, target, reduction="mean"):
    """Mean squared error, PyTorch semantics: (input - target)**2 reduced by 'mean' (over all elements;
    NaN for empty tensors, like PyTorch), 'sum' or 'none'. input and target must have the same shape (no
    broadcasting: ValueError naming target) and one float dtype. Differentiable in both."""
    check_float_inputs(input=input, target=target)
    check_reduction(reduction)
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"target: shape {tuple(target.shape)} does not match input's shape "
                         f"{tuple(input.shape)} (mse_loss does not broadcast)")
    return _MSELoss.apply(input, target, reduction)
