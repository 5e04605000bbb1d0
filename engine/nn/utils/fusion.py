"""Folding a batch norm into the conv or linear layer before it, for inference: PyTorch's
torch.nn.utils.fusion names and signatures.

In eval mode a batch norm is an affine map per channel with its running statistics,
y = (z - mean) * s + beta with s = gamma / sqrt(var + eps), so conv + BN is one conv with weights W * s and
bias (b - mean) * s + beta. The folded weights are computed in float64 and stored in the layer's dtype.
nn.Sequential folds Conv2d + BatchNorm2d this way by itself when the batch norm is in eval mode and no
gradient is recorded (engine/nn/layers.py).
"""
import copy

import numpy as np

from ...backend import array_module
from ...tensor import Tensor
from ..module import Parameter

__all__ = ["fuse_conv_bn_eval", "fuse_conv_bn_weights", "fuse_linear_bn_eval", "fuse_linear_bn_weights"]


def _data(name, t, required=True):
    if t is None and not required:
        return None
    if not isinstance(t, Tensor):
        raise TypeError(f"{name}: expected a Tensor, got {type(t).__name__}")
    return t._data


def fold_bn(w, b, rm, rv, eps, gamma, beta, names=("bias", "running_mean", "running_var", "weight", "bias")):
    """(w * s, (b - rm) * s + beta) along w's first axis, s = gamma / sqrt(rv + eps); arrays, float64 inside."""
    xp = array_module(w)
    K = w.shape[0]
    for name, a in zip(names, (b, rm, rv, gamma, beta)):
        if a is not None and a.shape != (K,):
            raise ValueError(f"{name}: expected shape ({K},) to match the weight's {K} output channels, got "
                             f"{tuple(a.shape)}")
    if not isinstance(eps, (int, float, np.floating)) or isinstance(eps, bool) or not eps >= 0:
        raise ValueError(f"bn_eps: expected a number >= 0, got {eps!r}")
    f64 = lambda a, fill: xp.full(K, fill, xp.float64) if a is None else a.astype(xp.float64)  # noqa: E731
    s = f64(gamma, 1.0) / xp.sqrt(rv.astype(xp.float64) + float(eps))
    wf = w.astype(xp.float64) * s.reshape((K,) + (1,) * (w.ndim - 1))
    bf = (f64(b, 0.0) - rm.astype(xp.float64)) * s + f64(beta, 0.0)
    return wf.astype(w.dtype), bf.astype(w.dtype)


def fuse_conv_bn_weights(conv_w, conv_b, bn_rm, bn_rv, bn_eps, bn_w, bn_b, transpose=False):
    """(weight, bias) Parameters of the conv that equals conv (conv_w, conv_b) then the eval-mode batch norm
    (running mean bn_rm, running var bn_rv, eps, affine bn_w, bn_b). conv_b, bn_w, bn_b may be None."""
    if transpose:
        raise ValueError("transpose: the engine has no transposed convolution")
    return _fused_params("conv", 4, conv_w, conv_b, bn_rm, bn_rv, bn_eps, bn_w, bn_b)


def fuse_linear_bn_weights(linear_w, linear_b, bn_rm, bn_rv, bn_eps, bn_w, bn_b):
    """(weight, bias) Parameters of the linear layer that equals linear then the eval-mode BatchNorm1d."""
    return _fused_params("linear", 2, linear_w, linear_b, bn_rm, bn_rv, bn_eps, bn_w, bn_b)


def _fused_params(kind, ndim, w, b, bn_rm, bn_rv, bn_eps, bn_w, bn_b):
    """The fuse_*_weights body: the layer's weight w (ndim dims) and bias b, arguments named <kind>_w, ..."""
    wd = _data(f"{kind}_w", w)
    if wd.ndim != ndim:
        raise ValueError(f"{kind}_w: expected a {ndim}-D weight, got shape {tuple(wd.shape)}")
    wf, bf = fold_bn(wd, _data(f"{kind}_b", b, False), _data("bn_rm", bn_rm), _data("bn_rv", bn_rv), bn_eps,
                     _data("bn_w", bn_w, False), _data("bn_b", bn_b, False),
                     (f"{kind}_b", "bn_rm", "bn_rv", "bn_w", "bn_b"))
    return Parameter(wf, requires_grad=w.requires_grad), Parameter(bf, requires_grad=w.requires_grad)


def _check_eval(layer, bn, kinds):
    from ..layers import BatchNorm1d, BatchNorm2d, Conv2d, Linear
    lcls, bcls = {"conv": (Conv2d, BatchNorm2d), "linear": (Linear, BatchNorm1d)}[kinds]
    if not isinstance(layer, lcls):
        raise TypeError(f"{kinds}: expected an nn.{lcls.__name__}, got {type(layer).__name__}")
    if not isinstance(bn, bcls):
        raise TypeError(f"bn: expected an nn.{bcls.__name__}, got {type(bn).__name__}")
    if layer.training or bn.training:
        raise ValueError("fusion only for eval: call .eval() on both layers first (a training batch norm uses "
                         "the batch's statistics, which no fixed weights can fold)")
    if bn.running_mean is None:
        raise ValueError("bn: has no running statistics (track_running_stats=False) to fold")


def fuse_conv_bn_eval(conv, bn, transpose=False):
    """A new Conv2d (eval mode) equal to conv followed by the eval-mode BatchNorm2d bn; both are left as
    they are."""
    _check_eval(conv, bn, "conv")
    fused = copy.deepcopy(conv)
    fused.weight, fused.bias = fuse_conv_bn_weights(conv.weight, conv.bias, bn.running_mean, bn.running_var,
                                                    bn.eps, bn.weight, bn.bias, transpose)
    return fused.eval()


def fuse_linear_bn_eval(linear, bn):
    """A new Linear (eval mode) equal to linear followed by the eval-mode BatchNorm1d bn."""
    _check_eval(linear, bn, "linear")
    fused = copy.deepcopy(linear)
    fused.weight, fused.bias = fuse_linear_bn_weights(linear.weight, linear.bias, bn.running_mean,
                                                      bn.running_var, bn.eps, bn.weight, bn.bias)
    return fused.eval()
