"""Engine ops of the pool family: max_pool2d, avg_pool2d, adaptive_avg_pool2d (PyTorch semantics).

Inputs are NCHW or unbatched CHW (treated as N = 1 and reshaped back). Every argument is checked
before any kernel runs; the kernels get 4-D arrays and normalized (h, w) pairs.
"""
import numbers

import numpy as np

from .._checks import as_pair, check_float_input
from ..autograd import Function
from ..backend import kernels_for
from kernels.common import pool_output_size

__all__ = ["max_pool2d", "avg_pool2d", "adaptive_avg_pool2d"]


def _as_4d(x):
    return x if x.ndim == 4 else x.reshape((1,) + tuple(x.shape))


class MaxPool2d(Function):
    """Saves argmax (int32 flat index h*W+w within each plane) and the input's shape."""

    @staticmethod
    def forward(ctx, x, kernel_size, stride, padding, ceil_mode):
        out, argmax = kernels_for(x).max_pool2d_fwd(_as_4d(x), kernel_size, stride, padding, ceil_mode)
        ctx.args = (kernel_size, stride, padding, ceil_mode)
        ctx.x_shape = x.shape
        ctx.save_for_backward(argmax)
        return out if x.ndim == 4 else out[0]

    @staticmethod
    def backward(ctx, dout):
        if not ctx.needs_input_grad[0]:
            return (None,) * 5
        (argmax,) = ctx.saved
        x4 = (1,) + tuple(ctx.x_shape) if len(ctx.x_shape) == 3 else tuple(ctx.x_shape)
        dx = kernels_for(argmax).max_pool2d_bwd(_as_4d(dout), argmax, x4, *ctx.args)
        return (dx.reshape(ctx.x_shape), None, None, None, None)


class AvgPool2d(Function):
    """Saves nothing but the input's shape and the window arguments."""

    @staticmethod
    def forward(ctx, x, kernel_size, stride, padding, ceil_mode, count_include_pad):
        ctx.args = (kernel_size, stride, padding, ceil_mode, count_include_pad)
        ctx.x_shape, ctx.k = x.shape, kernels_for(x)
        out = ctx.k.avg_pool2d_fwd(_as_4d(x), *ctx.args)
        return out if x.ndim == 4 else out[0]

    @staticmethod
    def backward(ctx, dout):
        if not ctx.needs_input_grad[0]:
            return (None,) * 6
        x4 = (1,) + tuple(ctx.x_shape) if len(ctx.x_shape) == 3 else tuple(ctx.x_shape)
        dx = ctx.k.avg_pool2d_bwd(_as_4d(dout), x4, *ctx.args)
        return (dx.reshape(ctx.x_shape), None, None, None, None, None)


class AdaptiveAvgPool2d(Function):
    """Saves nothing but the input's shape."""

    @staticmethod
    def forward(ctx, x, output_size):
        ctx.x_shape, ctx.k = x.shape, kernels_for(x)
        out = ctx.k.adaptive_avg_pool2d_fwd(_as_4d(x), output_size)
        return out if x.ndim == 4 else out[0]

    @staticmethod
    def backward(ctx, dout):
        if not ctx.needs_input_grad[0]:
            return (None, None)
        x4 = (1,) + tuple(ctx.x_shape) if len(ctx.x_shape) == 3 else tuple(ctx.x_shape)
        dx = ctx.k.adaptive_avg_pool2d_bwd(_as_4d(dout), x4)
        return (dx.reshape(ctx.x_shape), None)


# ------------------------------------------------------------------------------------- arguments
def _check_input(input):
    check_float_input("input", input)
    if input.ndim not in (3, 4):
        raise ValueError(f"input: expected a 3-D (C,H,W) or 4-D (N,C,H,W) tensor, got {input.ndim} dims "
                         f"(shape {tuple(input.shape)})")
    if any(d == 0 for d in input.shape[-3:]):
        raise ValueError(f"input: expected non-zero channel and spatial sizes, got shape {tuple(input.shape)}")


def _check_bool(name, v):
    if not isinstance(v, (bool, np.bool_)):
        raise TypeError(f"{name}: expected a bool, got {v!r}")
    return bool(v)


def _window_args(input, kernel_size, stride, padding, ceil_mode):
    """Normalize and check kernel_size, stride, padding, ceil_mode; compute the output size."""
    kernel_size = as_pair("kernel_size", kernel_size, minimum=1)
    if stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0):
        stride = kernel_size                       # PyTorch: stride defaults to kernel_size
    else:
        stride = as_pair("stride", stride, minimum=1)
    padding = as_pair("padding", padding, minimum=0)
    ceil_mode = _check_bool("ceil_mode", ceil_mode)
    for k, p in zip(kernel_size, padding):
        if p > k // 2:
            raise ValueError(f"padding: must be at most half of kernel_size, got padding={padding} "
                             f"for kernel_size={kernel_size}")
    H, W = input.shape[-2:]
    OH = pool_output_size(H, kernel_size[0], stride[0], padding[0], ceil_mode)
    OW = pool_output_size(W, kernel_size[1], stride[1], padding[1], ceil_mode)
    if OH < 1 or OW < 1:
        raise ValueError(f"kernel_size: the output size {(OH, OW)} is too small (input {(H, W)}, "
                         f"kernel_size={kernel_size}, stride={stride}, padding={padding})")
    return kernel_size, stride, padding, ceil_mode


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """2-D max pooling over an (N,C,H,W) or (C,H,W) input; padding acts as -inf. PyTorch's signature;
    dilation must be 1 and return_indices False (neither is implemented)."""
    _check_input(input)
    if as_pair("dilation", dilation) != (1, 1):
        raise ValueError(f"dilation: only dilation 1 is supported, got {dilation!r}")
    if not isinstance(return_indices, (bool, np.bool_)) or return_indices:
        raise ValueError(f"return_indices: only False is supported, got {return_indices!r}")
    args = _window_args(input, kernel_size, stride, padding, ceil_mode)
    return MaxPool2d.apply(input, *args)


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    """2-D average pooling; PyTorch's divisor rules (count_include_pad counts the zero padding,
    never the ceil_mode overhang)."""
    _check_input(input)
    args = _window_args(input, kernel_size, stride, padding, ceil_mode)
    count_include_pad = _check_bool("count_include_pad", count_include_pad)
    return AvgPool2d.apply(input, *args, count_include_pad)


def adaptive_avg_pool2d(input, output_size):
    """Adaptive average pooling to output_size (int or pair; a None entry keeps the input's size).
    Bin i along an axis of size n is [floor(i*n/out), ceil((i+1)*n/out))."""
    _check_input(input)
    H, W = input.shape[-2:]
    if isinstance(output_size, (tuple, list)) and len(output_size) == 2:
        pair = []
        for v, n in zip(output_size, (H, W)):
            if v is None:
                pair.append(n)
            elif isinstance(v, numbers.Integral) and not isinstance(v, bool):
                pair.append(int(v))
            else:
                raise TypeError(f"output_size: expected an int, None or a pair of them, got {output_size!r}")
        output_size = tuple(pair)
    else:
        output_size = as_pair("output_size", output_size)
    if min(output_size) < 1:
        raise ValueError(f"output_size: must be at least 1, got {output_size}")
    return AdaptiveAvgPool2d.apply(input, output_size)
