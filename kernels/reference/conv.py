"""float64 NumPy reference (forward and backward) for the conv family: the oracle for tests.

Conventions shared with kernels.cpu.conv (same names, same signatures):
  x (N, C, H, W), w (K, C // groups, kh, kw), b (K,) or None, y (N, K, Ho, Wo);
  stride (sh, sw), dilation (dh, dw), padding (top, bottom, left, right), all already validated;
  Ho = (H + top + bottom - dh * (kh - 1) - 1) // sh + 1, likewise Wo (kernels.common.conv2d_out_size).
Cross-correlation, as torch.nn.functional.conv2d. Forward keeps nothing: backward takes x and w again.
"""
import numpy as np

from ..common import conv2d_out_size

__all__ = ["conv2d_fwd", "conv2d_bwd"]


def _tap(xp, i, j, Ho, Wo, stride, dilation):
    """The (N, C, Ho, Wo) view of padded input xp that kernel tap (i, j) multiplies."""
    (sh, sw), (dh, dw) = stride, dilation
    return xp[:, :, i * dh: i * dh + sh * (Ho - 1) + 1: sh, j * dw: j * dw + sw * (Wo - 1) + 1: sw]


def conv2d_fwd(x, w, b, stride, padding, dilation, groups):
    """y[n, k, oh, ow] = b[k] + sum_{c, i, j} w[k, c, i, j] * xpad[n, g*Cg + c, oh*sh + i*dh, ow*sw + j*dw]."""
    x, w = np.asarray(x, np.float64), np.asarray(w, np.float64)
    N, C, H, W = x.shape
    K, Cg, kh, kw = w.shape
    pt, pb, pl, pr = padding
    Ho, Wo = conv2d_out_size(H, W, kh, kw, stride, padding, dilation)
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    Kg = K // groups
    y = np.zeros((N, K, Ho, Wo))
    for g in range(groups):
        xs, ks = slice(g * Cg, (g + 1) * Cg), slice(g * Kg, (g + 1) * Kg)
        for i in range(kh):
            for j in range(kw):
                y[:, ks] += np.einsum("nchw,kc->nkhw", _tap(xp[:, xs], i, j, Ho, Wo, stride, dilation), w[ks, :, i, j])
    if b is not None:
        y += np.asarray(b, np.float64)[None, :, None, None]
    return y


def conv2d_bwd(dout, x, w, stride, padding, dilation, groups, need_dx=True, need_dw=True, need_db=True):
    """Returns (dx, dw, db); each is None when not needed. dout (N, K, Ho, Wo)."""
    dout = np.asarray(dout, np.float64)
    x, w = np.asarray(x, np.float64), np.asarray(w, np.float64)
    N, C, H, W = x.shape
    K, Cg, kh, kw = w.shape
    pt, pb, pl, pr = padding
    Ho, Wo = dout.shape[2:]
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    dxp = np.zeros_like(xp) if need_dx else None
    dw = np.zeros_like(w) if need_dw else None
    Kg = K // groups
    for g in range(groups):
        xs, ks = slice(g * Cg, (g + 1) * Cg), slice(g * Kg, (g + 1) * Kg)
        for i in range(kh):
            for j in range(kw):
                if need_dw:
                    dw[ks, :, i, j] = np.einsum("nkhw,nchw->kc", dout[:, ks], _tap(xp[:, xs], i, j, Ho, Wo, stride, dilation))
                if need_dx:
                    _tap(dxp[:, xs], i, j, Ho, Wo, stride, dilation)[...] += np.einsum("nkhw,kc->nchw", dout[:, ks], w[ks, :, i, j])
    dx = dxp[:, :, pt: pt + H, pl: pl + W].copy() if need_dx else None
    db = dout.sum(axis=(0, 2, 3)) if need_db else None
    return dx, dw, db
