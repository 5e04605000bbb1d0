"""Engine ops of the conv family: conv2d, with torch.nn.functional.conv2d's semantics."""
from kernels.common import conv2d_out_size

from .._checks import as_pair, check_float_inputs, check_ndim, check_positive_int
from ..autograd import Function
from ..backend import kernels_for

__all__ = ["conv2d"]


class Conv2d(Function):
    """2-D cross-correlation. Keeps x and w for backward (as Chainer's conv does); the kernels recompute
    their im2col tiles rather than store them. Unbatched (C, H, W) input runs as a batch of one."""

    @staticmethod
    def forward(ctx, x, w, b, stride, padding, dilation, groups):
        ctx.unbatched = x.ndim == 3
        if ctx.unbatched:
            x = x[None]
        ctx.save_for_backward(x, w)
        ctx.conf = (stride, padding, dilation, groups)
        y = kernels_for(x).conv2d_fwd(x, w, b, stride, padding, dilation, groups)
        return y[0] if ctx.unbatched else y

    @staticmethod
    def backward(ctx, dout):
        x, w = ctx.saved
        need_dx, need_dw, need_db = ctx.needs_input_grad[:3]
        if ctx.unbatched:
            dout = dout[None]
        dx, dw, db = kernels_for(x).conv2d_bwd(dout, x, w, *ctx.conf, need_dx=need_dx, need_dw=need_dw,
                                               need_db=need_db)
        if dx is not None and ctx.unbatched:
            dx = dx[0]
        return dx, dw, db


def _padding(padding, kernel, dilation, stride):
    """(top, bottom, left, right) from an int, a pair, 'valid' or 'same' (extra odd pad goes bottom/right)."""
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0, 0, 0)
        if padding == "same":
            if stride != (1, 1):
                raise ValueError(f"padding: 'same' is not supported for strided convolutions (stride={stride})")
            (th, tw) = (d * (k - 1) for d, k in zip(dilation, kernel))
            return (th // 2, th - th // 2, tw // 2, tw - tw // 2)
        raise ValueError(f"padding: expected 'same', 'valid', an int or a pair of ints, got {padding!r}")
    ph, pw = as_pair("padding", padding, minimum=0)
    return (ph, ph, pw, pw)


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """torch.nn.functional.conv2d: input (N, C_in, H, W) or (C_in, H, W), weight (C_out, C_in/groups, kH, kW),
    bias (C_out,) or None; stride, dilation: int or pair; padding: int, pair, 'valid' or 'same'."""
    conf = conv2d_conf(input, weight, bias, stride, padding, dilation, groups)
    return Conv2d.apply(input, weight, bias, **conf)


def conv2d_conf(input, weight, bias, stride, padding, dilation, groups):
    """conv2d's argument checks; its configuration as the kernels take it (stride, padding as (top, bottom,
    left, right), dilation, groups)."""
    check_float_inputs(input=input, weight=weight, bias=bias)
    check_ndim("input", input, 3, 4)
    check_ndim("weight", weight, 4)
    groups = check_positive_int("groups", groups)
    stride = as_pair("stride", stride, minimum=1)
    dilation = as_pair("dilation", dilation, minimum=1)
    C_out, Cg, kh, kw = weight.shape
    C_in, H, W = input.shape[-3:]
    if min(kh, kw) < 1:
        raise ValueError(f"weight: kernel size must be at least 1, got weight of shape {weight.shape}")
    if C_out < 1:
        raise ValueError(f"weight: expected at least one output channel, got weight of shape {weight.shape}")
    if C_in % groups:
        raise ValueError(f"groups: {groups} groups do not divide the input's {C_in} channels")
    if C_out % groups:
        raise ValueError(f"groups: {groups} groups do not divide the weight's {C_out} output channels")
    if Cg * groups != C_in:
        raise ValueError(f"input: expected {Cg * groups} channels (weight of shape {weight.shape} with "
                         f"groups={groups}), got {C_in} channels (input of shape {input.shape})")
    if bias is not None:
        check_ndim("bias", bias, 1)
        if bias.shape != (C_out,):
            raise ValueError(f"bias: expected shape ({C_out},) to match weight's output channels, got {bias.shape}")
    pad = _padding(padding, (kh, kw), dilation, stride)
    if min(conv2d_out_size(H, W, kh, kw, stride, pad, dilation)) < 1:
        eff = (dilation[0] * (kh - 1) + 1, dilation[1] * (kw - 1) + 1)
        padded = (H + pad[0] + pad[1], W + pad[2] + pad[3])
        raise ValueError(f"weight: the (dilated) kernel size {eff} is larger than the padded input size {padded}")
    return dict(stride=stride, padding=pad, dilation=dilation, groups=groups)

