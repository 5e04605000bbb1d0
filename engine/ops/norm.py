"""Engine ops of the norm family: batch_norm and layer_norm (PyTorch semantics).

batch_norm keeps x, weight and the statistics it normalized with (mean, rstd) for backward; in training
it also updates the running statistics in place (no gradient flows into them). layer_norm keeps x, weight,
mean and rstd of each row.
"""
import math
import numbers

import numpy as np

from .. import _checks
from .._checks import check_float_inputs, check_ndim, check_probability
from ..autograd import Function, bump_version
from ..backend import FLOAT_DTYPES, kernels_for

__all__ = ["batch_norm", "layer_norm"]


def _check_eps(eps):
    if type(eps) is float and 0.0 <= eps < math.inf:      # the common case, without the ABC check
        return eps
    if not isinstance(eps, numbers.Real) or isinstance(eps, bool):
        raise TypeError(f"eps: expected a real number, got {eps!r}")
    if not (eps >= 0 and np.isfinite(eps)):
        raise ValueError(f"eps: must be a finite number >= 0, got {eps!r}")
    return float(eps)


def _check_shape(name, t, shape):
    if t is not None and tuple(t.shape) != tuple(shape):
        raise ValueError(f"{name}: expected shape {tuple(shape)}, got {tuple(t.shape)}")


class BatchNorm(Function):
    """x (N, C, *) -> y like x. Saves x, weight, mean, rstd (batch statistics in training, running ones in eval)."""

    @staticmethod
    def forward(ctx, x, weight, bias, *, running_mean, running_var, training, momentum, eps):
        k = kernels_for(x)
        if training:
            y, mean, rstd, var = k.batch_norm_fwd_train(x, weight, bias, eps)
            if running_mean is not None and x.size:      # an empty batch leaves the statistics (PyTorch)
                n = x.size // x.shape[1]
                unbiased = var * (n / (n - 1))
                running_mean[...] = (1.0 - momentum) * running_mean + momentum * mean
                running_var[...] = (1.0 - momentum) * running_var + momentum * unbiased
                bump_version(running_mean)
                bump_version(running_var)
        else:
            y, mean, rstd = k.batch_norm_fwd_eval(x, running_mean, running_var, weight, bias, eps)
        ctx.save_for_backward(x, weight, mean, rstd)
        ctx.training = training
        return y

    @staticmethod
    def backward(ctx, dout):
        x, weight, mean, rstd = ctx.saved
        k = kernels_for(x)
        fn = k.batch_norm_bwd_train if ctx.training else k.batch_norm_bwd_eval
        dx, dw, db = fn(dout, x, weight, mean, rstd)
        need = ctx.needs_input_grad
        return dx if need[0] else None, dw if need[1] else None, db if need[2] else None


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5):
    """Batch normalization over (N, *) per channel C = input.shape[1], for input (N, C), (N, C, L), (N, C, H, W)
    or (N, C, D, H, W). training: normalize with the batch statistics and, when running stats are given,
    update them in place: running = (1 - momentum) * running + momentum * batch_stat (unbiased variance);
    eps must then be > 0 and each channel needs more than one value, or none (an empty batch gives an
    empty result and leaves the running statistics alone), as in PyTorch.
    Eval: normalize with running_mean / running_var (required); eps >= 0."""
    check_float_inputs(input=input, running_mean=running_mean, running_var=running_var, weight=weight, bias=bias)
    check_ndim("input", input, 2, 3, 4, 5)
    if not isinstance(training, (bool, np.bool_)):
        raise TypeError(f"training: expected a bool, got {training!r}")
    training = bool(training)
    momentum = check_probability("momentum", momentum)
    eps = _check_eps(eps)
    C = input.shape[1]
    for name, t in (("running_mean", running_mean), ("running_var", running_var), ("weight", weight),
                    ("bias", bias)):
        _check_shape(name, t, (C,))
    if (running_mean is None) != (running_var is None):
        missing = "running_var" if running_var is None else "running_mean"
        raise ValueError(f"{missing}: running_mean and running_var must be given together")
    if not training and running_mean is None:
        raise ValueError("running_mean: running_mean and running_var are required when training=False")
    if training and input._data.size // max(C, 1) == 1:
        raise ValueError(f"input: Expected more than 1 value per channel when training, got input size "
                         f"{tuple(input.shape)}")
    if training and eps <= 0:
        raise ValueError(f"eps: must be positive during training, got {eps!r}")
    rm = None if running_mean is None else running_mean._data
    rv = None if running_var is None else running_var._data
    return BatchNorm.apply(input, weight, bias, running_mean=rm, running_var=rv, training=training,
                           momentum=momentum, eps=eps)


class LayerNorm(Function):
    """x (..., *normalized_shape) -> y like x, on the (rows, D) view. Saves x, weight, mean, rstd (rows,)."""

    @staticmethod
    def forward(ctx, x, weight, bias, normalized_shape, eps):
        if len(normalized_shape) == 1:            # the usual case: weight and bias are (D,) already
            D = normalized_shape[0]
            x2 = x if x.ndim == 2 else x.reshape(-1, D)
            w, b = weight, bias
        else:
            D = math.prod(normalized_shape)
            x2 = x.reshape(-1, D)
            w = None if weight is None else weight.reshape(D)
            b = None if bias is None else bias.reshape(D)
        y, mean, rstd = kernels_for(x).layer_norm_fwd(x2, w, b, eps)
        ctx.save_for_backward(x2, w, mean, rstd)
        ctx.shapes = x.shape, tuple(normalized_shape)
        return y.reshape(x.shape)

    @staticmethod
    def backward(ctx, dout):
        x2, w, mean, rstd = ctx.saved
        xshape, nshape = ctx.shapes
        dx, dw, db = kernels_for(x2).layer_norm_bwd(dout.reshape(x2.shape), x2, w, mean, rstd)
        need = ctx.needs_input_grad
        return (dx.reshape(xshape) if need[0] else None, dw.reshape(nshape) if need[1] else None,
                db.reshape(nshape) if need[2] else None, None, None)


def _normalized_shape(ns):
    """An int or a sequence of ints, as a tuple of ints (TypeError naming normalized_shape otherwise)."""
    if type(ns) is int:
        return (ns,)
    if type(ns) is tuple:
        for d in ns:
            if type(d) is not int:
                break
        else:
            return ns                                  # the common case: no ABC checks, no copy
    if isinstance(ns, numbers.Integral) and not isinstance(ns, bool):
        return (int(ns),)
    if (not isinstance(ns, (tuple, list))
            or not all(isinstance(d, numbers.Integral) and not isinstance(d, bool) for d in ns)):
        raise TypeError(f"normalized_shape: expected an int or a tuple of ints, got {ns!r}")
    return tuple(int(d) for d in ns)


def _plain_layer_norm(x, ns, w, b, eps):
    """True for the usual call, which then needs no other check: CPU float tensors of one dtype, normalized
    over the last dim (an int or a 1-tuple), weight and bias of that size, a float eps >= 0. Anything else
    (False) takes the full checks, with their messages."""
    T = _checks._Tensor or _checks._tensor_class()
    if not (isinstance(x, T) and isinstance(w, T) and isinstance(b, T)
            and type(eps) is float and 0.0 <= eps < math.inf):
        return False
    xd, wd, bd = x._data, w._data, b._data
    if type(xd) is not np.ndarray or type(wd) is not np.ndarray or type(bd) is not np.ndarray or not xd.ndim:
        return False
    D = xd.shape[-1]
    dt = xd.dtype
    return ((ns == D if type(ns) is int else (type(ns) is tuple and len(ns) == 1 and type(ns[0]) is int
                                               and ns[0] == D))
            and D >= 1 and wd.shape == (D,) and bd.shape == (D,) and dt in FLOAT_DTYPES and wd.dtype == dt
            and bd.dtype == dt)


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    """Layer normalization over the trailing dims given by normalized_shape (an int or a tuple of ints);
    weight and bias (optional) have shape normalized_shape."""
    if _plain_layer_norm(input, normalized_shape, weight, bias, eps):
        return LayerNorm.apply(input, weight, bias, (input._data.shape[-1],), eps)
    check_float_inputs(input=input, weight=weight, bias=bias)
    normalized_shape = _normalized_shape(normalized_shape)
    if not normalized_shape:
        raise ValueError("normalized_shape: must name at least one dim, got ()")
    if min(normalized_shape) < 1:
        raise ValueError(f"normalized_shape: sizes must be at least 1, got {normalized_shape}")
    k = len(normalized_shape)
    if input.ndim < k or input._data.shape[-k:] != normalized_shape:
        raise ValueError(f"normalized_shape: {normalized_shape} does not match the trailing dims of input "
                         f"of shape {tuple(input.shape)}")
    _check_shape("weight", weight, normalized_shape)
    _check_shape("bias", bias, normalized_shape)
    eps = _check_eps(eps)
    return LayerNorm.apply(input, weight, bias, normalized_shape, eps)
