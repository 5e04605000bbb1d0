"""Pooling on the GPU, NCHW viewed as P = N*C planes. Forward: one thread per output, looping over its
window. Backward is a gather, not a scatter: one thread per input element sums the outputs whose window
holds it (for max pooling, those whose argmax is it), so there are no atomics and the sums come out in the
same order every run. The same semantics as kernels/reference/pool.py: padding acts as -inf for max
(NaN wins, as in PyTorch), PyTorch's divisors for average pooling, floor/ceil bins for adaptive pooling."""
import math

from numba import cuda, float64

from ..common import pool_output_size
from ._dev import TPB_FLAT, blocks, contiguous, empty
from ._launch import kernel

__all__ = ["max_pool2d_fwd", "max_pool2d_bwd", "avg_pool2d_fwd", "avg_pool2d_bwd",
           "adaptive_avg_pool2d_fwd", "adaptive_avg_pool2d_bwd"]


@cuda.jit(device=True)
def _unflat(i, A, B):
    """Flat index i over (P, A, B) -> (p, a, b)."""
    return i // (A * B), (i // B) % A, i % B


@cuda.jit(device=True)
def _covering(i, k, s, p, o):
    """The outputs [lo, hi] whose window (start j*s - p, length k) holds input index i."""
    n = i + p - k + 1
    lo = 0 if n <= 0 else (n + s - 1) // s
    hi = min(o - 1, (i + p) // s)
    return lo, hi


@cuda.jit(device=True)
def _divisor(oh, ow, H, W, kh, kw, sh, sw, ph, pw, include_pad):
    h0 = oh * sh - ph
    w0 = ow * sw - pw
    if include_pad:
        return (min(h0 + kh, H + ph) - h0) * (min(w0 + kw, W + pw) - w0)
    return (min(h0 + kh, H) - max(h0, 0)) * (min(w0 + kw, W) - max(w0, 0))


@kernel
def _max_fwd(x, kh, kw, sh, sw, ph, pw, out, am):
    i = cuda.grid(1)
    P, OH, OW = out.shape
    H, W = x.shape[1], x.shape[2]
    if i < P * OH * OW:
        p, oh, ow = _unflat(i, OH, OW)
        h0 = oh * sh - ph
        w0 = ow * sw - pw
        m = -math.inf
        idx = max(h0, 0) * W + max(w0, 0)
        for h in range(max(h0, 0), min(h0 + kh, H)):
            for w in range(max(w0, 0), min(w0 + kw, W)):
                v = float64(x[p, h, w])
                if v > m or math.isnan(v):
                    m = v
                    idx = h * W + w
        out[p, oh, ow] = m
        am[p, oh, ow] = idx


@kernel
def _max_bwd(dout, am, kh, kw, sh, sw, ph, pw, dx):
    i = cuda.grid(1)
    P, H, W = dx.shape
    OH, OW = dout.shape[1], dout.shape[2]
    if i < P * H * W:
        p, h, w = _unflat(i, H, W)
        me = h * W + w
        hlo, hhi = _covering(h, kh, sh, ph, OH)
        wlo, whi = _covering(w, kw, sw, pw, OW)
        s = 0.0
        for oh in range(hlo, hhi + 1):
            for ow in range(wlo, whi + 1):
                if am[p, oh, ow] == me:
                    s += float64(dout[p, oh, ow])
        dx[p, h, w] = s


@kernel
def _avg_fwd(x, kh, kw, sh, sw, ph, pw, include_pad, out):
    i = cuda.grid(1)
    P, OH, OW = out.shape
    H, W = x.shape[1], x.shape[2]
    if i < P * OH * OW:
        p, oh, ow = _unflat(i, OH, OW)
        h0 = oh * sh - ph
        w0 = ow * sw - pw
        s = 0.0
        for h in range(max(h0, 0), min(h0 + kh, H)):
            for w in range(max(w0, 0), min(w0 + kw, W)):
                s += float64(x[p, h, w])
        out[p, oh, ow] = s / _divisor(oh, ow, H, W, kh, kw, sh, sw, ph, pw, include_pad)


@kernel
def _avg_bwd(dout, kh, kw, sh, sw, ph, pw, include_pad, dx):
    i = cuda.grid(1)
    P, H, W = dx.shape
    OH, OW = dout.shape[1], dout.shape[2]
    if i < P * H * W:
        p, h, w = _unflat(i, H, W)
        hlo, hhi = _covering(h, kh, sh, ph, OH)
        wlo, whi = _covering(w, kw, sw, pw, OW)
        s = 0.0
        for oh in range(hlo, hhi + 1):
            for ow in range(wlo, whi + 1):
                s += float64(dout[p, oh, ow]) / _divisor(oh, ow, H, W, kh, kw, sh, sw, ph, pw, include_pad)
        dx[p, h, w] = s


@kernel
def _adaptive_fwd(x, out):
    i = cuda.grid(1)
    P, OH, OW = out.shape
    H, W = x.shape[1], x.shape[2]
    if i < P * OH * OW:
        p, oh, ow = _unflat(i, OH, OW)
        h0, h1 = oh * H // OH, ((oh + 1) * H + OH - 1) // OH
        w0, w1 = ow * W // OW, ((ow + 1) * W + OW - 1) // OW
        s = 0.0
        for h in range(h0, h1):
            for w in range(w0, w1):
                s += float64(x[p, h, w])
        out[p, oh, ow] = s / ((h1 - h0) * (w1 - w0))


@kernel
def _adaptive_bwd(dout, dx):
    i = cuda.grid(1)
    P, H, W = dx.shape
    OH, OW = dout.shape[1], dout.shape[2]
    if i < P * H * W:
        p, h, w = _unflat(i, H, W)
        s = 0.0
        for oh in range(h * OH // H, min(OH, (h + 1) * OH // H + 1)):
            h0, h1 = oh * H // OH, ((oh + 1) * H + OH - 1) // OH
            if h0 <= h < h1:
                for ow in range(w * OW // W, min(OW, (w + 1) * OW // W + 1)):
                    w0, w1 = ow * W // OW, ((ow + 1) * W + OW - 1) // OW
                    if w0 <= w < w1:
                        s += float64(dout[p, oh, ow]) / ((h1 - h0) * (w1 - w0))
        dx[p, h, w] = s


def _planes(a, dtype=None):
    a = contiguous(a, dtype)
    return a.reshape(a.shape[0] * a.shape[1], a.shape[2], a.shape[3])


def max_pool2d_fwd(x, kernel_size, stride, padding, ceil_mode):
    """x (N,C,H,W) on the device -> out (N,C,OH,OW) in x's dtype, argmax int32 (flat h*W+w in the plane)."""
    N, C, H, W = x.shape
    (kh, kw), (sh, sw), (ph, pw) = kernel_size, stride, padding
    OH, OW = pool_output_size(H, kh, sh, ph, ceil_mode), pool_output_size(W, kw, sw, pw, ceil_mode)
    x3 = _planes(x)
    out = empty((N * C, OH, OW), x.dtype, x3)
    am = empty((N * C, OH, OW), "int32", x3)
    if out.size:
        _max_fwd[blocks(out.size), TPB_FLAT](x3, kh, kw, sh, sw, ph, pw, out, am)
    return out.reshape(N, C, OH, OW), am.reshape(N, C, OH, OW)


def max_pool2d_bwd(dout, argmax, x_shape, kernel_size, stride, padding, ceil_mode):
    """dout, argmax (N,C,OH,OW) -> dx (N,C,H,W) in dout's dtype (summed where windows overlap)."""
    N, C, H, W = x_shape
    d3 = _planes(dout)
    a3 = _planes(argmax, "int32")
    dx = empty((N * C, H, W), d3.dtype, d3)
    if dx.size:
        _max_bwd[blocks(dx.size), TPB_FLAT](d3, a3, *kernel_size, *stride, *padding, dx)
    return dx.reshape(N, C, H, W)


def avg_pool2d_fwd(x, kernel_size, stride, padding, ceil_mode, count_include_pad):
    N, C, H, W = x.shape
    (kh, kw), (sh, sw), (ph, pw) = kernel_size, stride, padding
    OH, OW = pool_output_size(H, kh, sh, ph, ceil_mode), pool_output_size(W, kw, sw, pw, ceil_mode)
    x3 = _planes(x)
    out = empty((N * C, OH, OW), x.dtype, x3)
    if out.size:
        _avg_fwd[blocks(out.size), TPB_FLAT](x3, kh, kw, sh, sw, ph, pw, bool(count_include_pad),
                                                         out)
    return out.reshape(N, C, OH, OW)


def avg_pool2d_bwd(dout, x_shape, kernel_size, stride, padding, ceil_mode, count_include_pad):
    N, C, H, W = x_shape
    d3 = _planes(dout)
    dx = empty((N * C, H, W), d3.dtype, d3)
    if dx.size:
        _avg_bwd[blocks(dx.size), TPB_FLAT](d3, *kernel_size, *stride, *padding,
                                                        bool(count_include_pad), dx)
    return dx.reshape(N, C, H, W)


def adaptive_avg_pool2d_fwd(x, output_size):
    N, C, H, W = x.shape
    OH, OW = output_size
    x3 = _planes(x)
    out = empty((N * C, OH, OW), x.dtype, x3)
    if out.size:
        _adaptive_fwd[blocks(out.size), TPB_FLAT](x3, out)
    return out.reshape(N, C, OH, OW)


def adaptive_avg_pool2d_bwd(dout, x_shape):
    N, C, H, W = x_shape
    d3 = _planes(dout)
    dx = empty((N * C, H, W), d3.dtype, d3)
    if dx.size:
        _adaptive_bwd[blocks(dx.size), TPB_FLAT](d3, dx)
    return dx.reshape(N, C, H, W)
