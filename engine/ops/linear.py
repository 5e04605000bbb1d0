"""Linear layer y = x W^T + b (BLAS through the array library)."""
from .._checks import check_float_inputs, check_ndim
from ..autograd import Function
from ..backend import kernels_for

__all__ = ["linear"]


class Linear(Function):
    @staticmethod
    def forward(ctx, x, w, b):
        ctx.save_for_backward(x, w)
        return kernels_for(x).linear_fwd(x, w, b)

    @staticmethod
    def backward(ctx, dout):
        x, w = ctx.saved
        need = ctx.needs_input_grad
        return kernels_for(x).linear_bwd(dout, x, w, need[0], need[1], need[2])


def linear(input, weight, bias=None):
    """input (..., in_features), weight (out_features, in_features), bias (out_features,)."""
    check_linear(input, weight, bias)
    return Linear.apply(input, weight, bias)


def check_linear(input, weight, bias):
    """linear's argument checks."""
    check_float_inputs(input=input, weight=weight, bias=bias)
    check_ndim("weight", weight, 2)
    xs, ws = input._data.shape, weight._data.shape
    if not xs or xs[-1] != ws[1]:
        raise ValueError(f"input: last dim {xs[-1:]} does not match weight's in_features {ws[1]}")
    if bias is not None and bias._data.shape != (ws[0],):
        raise ValueError(f"bias: expected shape ({weight.shape[0]},), got {bias.shape}")
