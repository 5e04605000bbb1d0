"""float64 NumPy reference (forward and backward) for the pool family.

Inputs are NCHW; pair arguments are already normalized to (h, w) tuples of ints. Semantics follow
PyTorch's CPU kernels: max pool treats padding as -inf, the first maximum in row-major window order
wins, a NaN wins over everything (the last NaN in the window, like PyTorch); avg pool divides by the
window clipped to the padded input (count_include_pad) or to the input itself; adaptive bins are
[floor(i*H/out), ceil((i+1)*H/out)).
"""
import numpy as np

from ..common import pool_output_size

__all__ = ["max_pool2d_fwd", "max_pool2d_bwd", "avg_pool2d_fwd", "avg_pool2d_bwd",
           "adaptive_avg_pool2d_fwd", "adaptive_avg_pool2d_bwd"]


def _windows(n, k, s, p, o):
    """Per output index: (start, end) clipped to the input, and the divisor span clipped to n + p."""
    for i in range(o):
        start = i * s - p
        end_pad = min(start + k, n + p)
        yield i, max(start, 0), min(start + k, n), end_pad - start


def max_pool2d_fwd(x, kernel_size, stride, padding, ceil_mode):
    """x (N,C,H,W) -> out (N,C,OH,OW) float64, argmax (N,C,OH,OW) int32: flat index h*W+w in the plane."""
    x = np.asarray(x, dtype=np.float64)
    N, C, H, W = x.shape
    (kh, kw), (sh, sw), (ph, pw) = kernel_size, stride, padding
    OH, OW = pool_output_size(H, kh, sh, ph, ceil_mode), pool_output_size(W, kw, sw, pw, ceil_mode)
    out = np.empty((N, C, OH, OW))
    argmax = np.empty((N, C, OH, OW), dtype=np.int32)
    for oh, h0, h1, _ in _windows(H, kh, sh, ph, OH):
        for ow, w0, w1, _ in _windows(W, kw, sw, pw, OW):
            m = np.full((N, C), -np.inf)
            idx = np.full((N, C), h0 * W + w0, dtype=np.int64)
            for h in range(h0, h1):          # PyTorch's loop: update on v > m or isnan(v)
                for w in range(w0, w1):
                    v = x[:, :, h, w]
                    take = (v > m) | np.isnan(v)
                    m = np.where(take, v, m)
                    idx = np.where(take, h * W + w, idx)
            out[:, :, oh, ow] = m
            argmax[:, :, oh, ow] = idx
    return out, argmax


def max_pool2d_bwd(dout, argmax, x_shape, kernel_size, stride, padding, ceil_mode):
    """dout, argmax (N,C,OH,OW) -> dx (N,C,H,W) float64: dout routed to (and summed at) each argmax.
    The window arguments are not needed here (the CPU kernel uses them to pick a path)."""
    N, C, H, W = x_shape
    dx = np.zeros((N * C, H * W))
    rows = np.arange(N * C)[:, None]
    P = int(np.prod(np.shape(argmax)[2:]))             # not -1: N * C may be 0
    np.add.at(dx, (rows, np.asarray(argmax).reshape(N * C, P)),
              np.asarray(dout, dtype=np.float64).reshape(N * C, P))
    return dx.reshape(N, C, H, W)


def _avg_divisors(H, W, OH, OW, kernel_size, stride, padding, count_include_pad):
    (kh, kw), (sh, sw), (ph, pw) = kernel_size, stride, padding
    rows = list(_windows(H, kh, sh, ph, OH))
    cols = list(_windows(W, kw, sw, pw, OW))
    div = np.empty((OH, OW))
    for oh, h0, h1, hpad in rows:
        for ow, w0, w1, wpad in cols:
            div[oh, ow] = hpad * wpad if count_include_pad else (h1 - h0) * (w1 - w0)
    return rows, cols, div


def avg_pool2d_fwd(x, kernel_size, stride, padding, ceil_mode, count_include_pad):
    """x (N,C,H,W) -> out (N,C,OH,OW) float64. Saves nothing (backward needs only the shapes)."""
    x = np.asarray(x, dtype=np.float64)
    N, C, H, W = x.shape
    OH = pool_output_size(H, kernel_size[0], stride[0], padding[0], ceil_mode)
    OW = pool_output_size(W, kernel_size[1], stride[1], padding[1], ceil_mode)
    rows, cols, div = _avg_divisors(H, W, OH, OW, kernel_size, stride, padding, count_include_pad)
    out = np.empty((N, C, OH, OW))
    for oh, h0, h1, _ in rows:
        for ow, w0, w1, _ in cols:
            out[:, :, oh, ow] = x[:, :, h0:h1, w0:w1].sum(axis=(2, 3)) / div[oh, ow]
    return out


def avg_pool2d_bwd(dout, x_shape, kernel_size, stride, padding, ceil_mode, count_include_pad):
    """dout (N,C,OH,OW) -> dx (N,C,H,W) float64: each output's dout/divisor spread over its window."""
    dout = np.asarray(dout, dtype=np.float64)
    N, C, H, W = x_shape
    OH, OW = dout.shape[2:]
    rows, cols, div = _avg_divisors(H, W, OH, OW, kernel_size, stride, padding, count_include_pad)
    dx = np.zeros((N, C, H, W))
    for oh, h0, h1, _ in rows:
        for ow, w0, w1, _ in cols:
            dx[:, :, h0:h1, w0:w1] += (dout[:, :, oh, ow] / div[oh, ow])[:, :, None, None]
    return dx


def _adaptive_bins(n, o):
    return [(i * n // o, -(-(i + 1) * n // o)) for i in range(o)]


def adaptive_avg_pool2d_fwd(x, output_size):
    """x (N,C,H,W) -> out (N,C,OH,OW) float64, bin i = [floor(i*H/OH), ceil((i+1)*H/OH))."""
    x = np.asarray(x, dtype=np.float64)
    N, C, H, W = x.shape
    OH, OW = output_size
    out = np.empty((N, C, OH, OW))
    for oh, (h0, h1) in enumerate(_adaptive_bins(H, OH)):
        for ow, (w0, w1) in enumerate(_adaptive_bins(W, OW)):
            out[:, :, oh, ow] = x[:, :, h0:h1, w0:w1].mean(axis=(2, 3))
    return out


def adaptive_avg_pool2d_bwd(dout, x_shape):
    """dout (N,C,OH,OW) -> dx (N,C,H,W) float64: each bin's dout/size spread over the bin."""
    dout = np.asarray(dout, dtype=np.float64)
    N, C, H, W = x_shape
    OH, OW = dout.shape[2:]
    dx = np.zeros((N, C, H, W))
    for oh, (h0, h1) in enumerate(_adaptive_bins(H, OH)):
        for ow, (w0, w1) in enumerate(_adaptive_bins(W, OW)):
            dx[:, :, h0:h1, w0:w1] += (dout[:, :, oh, ow] / ((h1 - h0) * (w1 - w0)))[:, :, None, None]
    return dx
