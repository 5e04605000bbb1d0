"""Numba CPU kernels for the conv family: conv2d forward and backward (launchers).

Same names and signatures as kernels.reference.conv:
  x (N, C, H, W), w (K, C // groups, kh, kw), b (K,) or None, y / dout (N, K, Ho, Wo);
  stride (sh, sw), dilation (dh, dw), padding (top, bottom, left, right) as validated by engine.ops.conv.
Forward keeps nothing; backward takes x and w again (as Chainer's conv does).

Three paths, all Numba (no BLAS call, so no second thread pool competes with Numba's for the cores):
  * outer product (kernels.cpu.conv_outer; stride 1, forward and dx): the micro-kernel `_dot.outer_tile`
    (written in LLVM IR, accumulators in vector registers) on zero-padded flat planes; used unless the
    reduction is long and the planes small (`_use_outer`); also dx of an undilated strided conv, as one
    stride-1 conv per output phase (`_dx_by_phase`);
  * implicit GEMM (kernels.cpu.conv_gemm; any stride, dilation, groups): a register-blocked micro-kernel
    multiplies the weights by im2row tiles built in cache; dx for stride 1 is the same forward kernel run on
    dout with the weights flipped and transposed, for dilated strided convs a col2im of w^T @ dout; dW and db come from
    one kernel that dots dout with shifted windows of the padded input (stride 1) or im2col rows.
  * direct (kernels.cpu.conv_direct; stride 1 with few input channels per group, e.g. LeNet's first layer,
    RGB stems, depthwise convs): vectorized shifted axpys over zero-padded planes, for forward and dx.
"""
import numpy as np

from ..common import conv2d_out_size
from .conv_direct import direct_fwd
from .conv_gemm import gemm_dw, gemm_dx, gemm_fwd, to_nhwc
from .conv_outer import BAND_BYTES, outer_fwd
from ._dot import MR, outer_shape

__all__ = ["conv2d_fwd", "conv2d_bwd"]


def _use_direct(stride, Cg, Kg, kh, kw):
    """Direct kernel where the implicit GEMM would be thin: stride 1 and a short reduction (Cg*kh*kw) or too few
    output channels per group (Kg) to fill its 4-row register block. Crossovers measured on this machine."""
    return tuple(stride) == (1, 1) and (Cg * kh * kw < 96 or Kg < 4)


def _use_outer(stride, Cg, kh, kw, Ho, Wo):
    """The outer-product path (conv_outer) for stride 1, except a long reduction on planes of 8x8 or less,
    where the dot-form implicit GEMM was measured faster (ResNet's 32-channel 3x3 conv on 8x8 planes, batch
    64: 0.42-0.55 ms against 0.56-0.64, forward and dx; on 16x16 and larger planes, or with 5x5 taps, the
    outer path was 1.2-2.5x faster)."""
    return tuple(stride) == (1, 1) and (Cg * kh * kw < 256 or Ho * Wo > 64)


def _outer(x, w, b, y, pt, pl, dh, dw, G, act=0):
    """y = stride-1 conv(x, w) + b on conv_outer: w (K, Cg, kh, kw) laid out as (G, Cg*kh*kw, Kg rounded up to
    MR) with zero columns, bands of output rows sized to BAND_BYTES of padded input."""
    K, Cg, kh, kw = w.shape
    Kg = K // G
    R = Cg * kh * kw
    wt = np.zeros((G, R, -(-Kg // MR) * MR), x.dtype)
    wt[:, :, :Kg] = w.reshape(G, Kg, R).transpose(0, 2, 1)
    Ho, Wo = y.shape[2], y.shape[3]
    Wp = Wo + (kw - 1) * dw
    bh = max(1, min(Ho, BAND_BYTES // max(1, Cg * Wp * x.dtype.itemsize) - (kh - 1) * dh))
    N = x.shape[0]
    if N * G * -(-Ho // bh) < 8:                    # too few bands for the threads: cut them smaller
        bh = max(1, -(-Ho // -(-8 // (N * G))))
    outer_fwd(x, wt, b, y, pt, pl, dh, dw, kh, kw, bh, outer_shape(x.dtype.itemsize)[0], act)


def _use_phase_dx(dilation):
    """dx of a strided conv by phases on conv_outer (undilated convs; measured on ResNet's stride-2 convs,
    batch 64: 3x3 16->32 channels 2.3 -> 0.48 ms, 1x1 0.77 -> 0.21 ms against gemm_dx's col2im)."""
    return tuple(dilation) == (1, 1)


def _dx_by_phase(dout, w, dx, sh, sw, pt, pl, G):
    """dx of a strided, undilated conv as sh*sw stride-1 convs on conv_outer, one per output phase: the rows
    h = sh*u + ph of dx take only the taps i = i0, i0 + sh, ... (i0 = (ph + pt) mod sh), which meet the rows
    u + e of dout for consecutive e, so each phase is a correlation of dout with those taps flipped, written
    to dx[:, :, ph::sh, pw::sw]. No zeros are multiplied (the col2im path of gemm_dx computes w^T dout for every
    tap and adds them back)."""
    N, C, H, W = dx.shape
    K, Cg, kh, kw = w.shape
    Kg = K // G
    wf = w.reshape(G, Kg, Cg, kh, kw).transpose(0, 2, 3, 4, 1)          # [g, c, i, j, k]
    zero_b = np.zeros(C, dx.dtype)
    for ph in range(sh):
        Hu = -(-(H - ph) // sh)
        i0 = (ph + pt) % sh
        ti = list(range(i0, kh, sh))[::-1]
        for pw in range(sw):
            Wu = -(-(W - pw) // sw)
            if Hu <= 0 or Wu <= 0:
                continue
            j0 = (pw + pl) % sw
            tj = list(range(j0, kw, sw))[::-1]
            target = dx[:, :, ph::sh, pw::sw]
            if not ti or not tj:
                target[...] = 0
                continue
            pad_t = len(ti) - 1 - (ph + pt - i0) // sh
            pad_l = len(tj) - 1 - (pw + pl - j0) // sw
            wp = np.ascontiguousarray(wf[:, :, ti][:, :, :, tj].transpose(0, 1, 4, 2, 3)).reshape(C, Kg, len(ti),
                                                                                                 len(tj))
            y = np.empty((N, C, Hu, Wu), dx.dtype)
            _outer(dout, wp, zero_b, y, pad_t, pad_l, 1, 1, G)
            target[...] = y


def _dw_images(N, NB, Ho, Wo, kh, kw, sh, sw, dh, dw, rows, itemsize):
    """Images per micro-kernel call in gemm_dw: enough for a reduction of about 512 (padded) pixels, as long
    as the call's B operand (rows of that length) stays within about 256 KiB of cache. Measured on ResNet's
    8x8 planes (batch 64): dW of the 32-channel 3x3 conv 1.10 -> 0.62 ms."""
    per = (Ho + (kh - 1) * dh) * (Wo + (kw - 1) * dw) if (sh, sw) == (1, 1) else Ho * Wo
    fit = (256 << 10) // max(1, rows * per * itemsize)
    return max(1, min(-(-N // NB), -(-512 // max(per, 1)), fit))


def _tile(R, itemsize):
    """Pixels per micro-kernel tile (a multiple of 3): about 128 KiB of im2row rows, at most 192."""
    return 3 * max(1, min(64, (128 << 10) // (3 * max(R, 1) * itemsize)))


def _bands(NG, Ho, W, Cg, kh, sh, dh, itemsize):
    """Output-row bands per (image, group) in gemm_fwd: enough that each band's input rows (copied to NHWC)
    stay within about 512 KiB of L2, and at least 8 prange iterations in all where Ho allows."""
    rows = max(1, (512 << 10) // max(1, W * Cg * itemsize))
    bh = max(1, (rows - (kh - 1) * dh) // sh)
    return min(Ho, max(-(-Ho // bh), -(-8 // NG)))


def _k_block(N, G, Kg):
    """Output channels per direct_fwd iteration: all of a group's, unless that leaves under 8 iterations
    (then a multiple of 4, the kernel's register block)."""
    if N * G >= 8:
        return max(Kg, 1)
    per_block = -(-Kg // -(-8 // (N * G)))           # ceil(Kg / ceil(8 / (N*G)))
    return max(4, -(-per_block // 4) * 4)


def _nhwc(a, G):
    N, C, H, W = a.shape
    ah = np.empty((N, G, H * W, C // G), a.dtype)
    to_nhwc(a, ah)
    return ah


def conv2d_fwd(x, w, b, stride, padding, dilation, groups, act=0):
    """y (N, K, Ho, Wo) = conv2d(x, w) + b, in x's dtype; then act(y) (kernels.common.ACTIVATIONS; 0 none),
    applied by the kernels to each row they write (conv2d_act_fwd)."""
    x = np.ascontiguousarray(x)
    dt = x.dtype
    w = np.ascontiguousarray(w, dtype=dt)
    N, C, H, W = x.shape
    K, Cg, kh, kw = w.shape
    G = groups
    Kg = K // G
    (sh, sw), (pt, pb, pl, pr), (dh, dw) = stride, padding, dilation
    Ho, Wo = conv2d_out_size(H, W, kh, kw, stride, padding, dilation)
    y = np.empty((N, K, Ho, Wo), dt)
    if y.size == 0:
        return y
    b = np.zeros(K, dt) if b is None else np.ascontiguousarray(b, dtype=dt)
    if x.size == 0:                                 # no input channels or only padding: y is the bias
        y[...] = b[:, None, None]
        if act:
            act_inplace(y.reshape(-1), act)
        return y
    if _use_outer(stride, Cg, kh, kw, Ho, Wo):
        _outer(x, w, b, y, pt, pl, dh, dw, G, act)
        return y
    if _use_direct(stride, Cg, Kg, kh, kw):
        direct_fwd(x, w, b, y, pt, pl, dh, dw, _k_block(N, G, Kg), act)
        return y
    R = Cg * kh * kw
    wr = np.ascontiguousarray(w.transpose(0, 2, 3, 1)).reshape(K, R)        # r = (i*kw + j)*Cg + c
    gemm_fwd(x, wr, b, y.reshape(N, K, Ho * Wo), Wo, kh, kw, sh, sw, pt, pl, dh, dw, _tile(R, dt.itemsize),
             _bands(N * G, Ho, W, Cg, kh, sh, dh, dt.itemsize), dt.type(0), act)
    return y


def conv2d_bwd(dout, x, w, stride, padding, dilation, groups, need_dx=True, need_dw=True, need_db=True):
    """(dx, dw, db) of conv2d, each overwritten and None when not needed; dtype of x."""
    x = np.ascontiguousarray(x)
    dt = x.dtype
    w = np.ascontiguousarray(w, dtype=dt)
    dout = np.ascontiguousarray(dout, dtype=dt)
    N, C, H, W = x.shape
    K, Cg, kh, kw = w.shape
    G = groups
    Kg = K // G
    (sh, sw), (pt, pb, pl, pr), (dh, dw) = stride, padding, dilation
    Ho, Wo = dout.shape[2], dout.shape[3]
    if dout.size == 0 or x.size == 0:               # nothing to correlate: only db can be nonzero
        return (np.zeros_like(x) if need_dx else None, np.zeros_like(w) if need_dw else None,
                dout.sum(axis=(0, 2, 3), dtype=np.float64).astype(dt) if need_db else None)
    dx = np.empty_like(x) if need_dx else None
    dW = db = None
    zero = dt.type(0)
    if need_dx:
        # w[g*Kg + k, c, i, j] -> row g*Cg + c of the transposed conv, flipped in space: (G, Cg, kh, kw, Kg)
        wf = w.reshape(G, Kg, Cg, kh, kw).transpose(0, 2, 3, 4, 1)
        if _use_outer(stride, Kg, kh, kw, H, W):     # the transposed conv's channels: Kg in, Cg out
            wd = np.ascontiguousarray(wf.transpose(0, 1, 4, 2, 3)[..., ::-1, ::-1]).reshape(C, Kg, kh, kw)
            _outer(dout, wd, np.zeros(C, dt), dx, (kh - 1) * dh - pt, (kw - 1) * dw - pl, dh, dw, G)
        elif _use_direct(stride, Kg, Cg, kh, kw):
            # dx = stride-1 conv of dout with w flipped in space, in/out channels swapped per group
            wd = np.ascontiguousarray(wf.transpose(0, 1, 4, 2, 3)[..., ::-1, ::-1]).reshape(C, Kg, kh, kw)
            direct_fwd(dout, wd, np.zeros(C, dt), dx, (kh - 1) * dh - pt, (kw - 1) * dw - pl, dh, dw,
                       _k_block(N, G, Cg), 0)
        elif (sh, sw) == (1, 1):
            wr = np.ascontiguousarray(wf[:, :, ::-1, ::-1]).reshape(C, kh * kw * Kg)
            gemm_fwd(dout, wr, np.zeros(C, dt), dx.reshape(N, C, H * W), W, kh, kw, 1, 1, (kh - 1) * dh - pt,
                     (kw - 1) * dw - pl, dh, dw, _tile(kh * kw * Kg, dt.itemsize),
                     _bands(N * G, H, Wo, Kg, kh, 1, dh, dt.itemsize), zero, 0)
        elif _use_phase_dx(dilation):
            _dx_by_phase(dout, w, dx, sh, sw, pt, pl, G)
        else:
            wt = np.ascontiguousarray(wf).reshape(C * kh * kw, Kg)
            gemm_dx(_nhwc(dout, G), Wo, wt, dx, kh, kw, sh, sw, pt, pl, dh, dw, _tile(Kg, dt.itemsize), zero)
    if need_dw or need_db:
        NB = min(N, 8)
        R = Cg * kh * kw if need_dw else 0          # db alone: only the row of ones
        nrc = max(1, min(-(-8 // (NB * G)), (R + 1) // 12))
        part = np.empty((NB, K, R + 1))
        ni = _dw_images(N, NB, Ho, Wo, kh, kw, sh, sw, dh, dw, -(-(R + 1) // nrc), dt.itemsize)
        gemm_dw(x, dout, part, G, kh, kw, sh, sw, pt, pl, dh, dw, nrc, zero, True, ni)
        # An inf or NaN in x: the flat-plane trick multiplies inputs outside a window by 0, which gives NaN in
        # entries PyTorch keeps finite. Redo on exact im2col windows (only then: the check reads K x R numbers).
        if not np.isfinite(part).all():
            gemm_dw(x, dout, part, G, kh, kw, sh, sw, pt, pl, dh, dw, nrc, zero, False, ni)
        acc = part.sum(axis=0)
        if need_dw:
            dW = acc[:, :R].reshape(K, Cg, kh, kw).astype(dt)
        if need_db:
            db = acc[:, R].astype(dt)
    return dx, dW, db
