"""Engine ops of the softmax family: softmax, log_softmax, masked_softmax.

The kernels work on a 2-D (rows, n) view along the last axis; these ops move the softmax dim there and
back. Each op saves its output y for backward.
"""
import math

import numpy as np

from .._checks import check_float_input, check_int, check_same_device, check_tensor, normalize_dim
from ..autograd import Function
from ..backend import array_module, check_values, kernels_for

__all__ = ["softmax", "log_softmax", "masked_softmax"]


def _to_rows(a, dim):
    """a with `dim` moved last, as a 2-D (rows, n) array (a view when possible); plus the moved shape."""
    if a.ndim == 2 and dim == 1:
        return a, a.shape
    if a.ndim == 0:
        return a.reshape(1, 1), (1,)
    if dim % a.ndim != a.ndim - 1:           # the last dim already (the usual case): no moveaxis call
        a = array_module(a).moveaxis(a, dim, -1)
    shape = a.shape
    return a.reshape(math.prod(shape[:-1]), shape[-1]), shape


def _from_rows(a2, shape, dim, ndim):
    """Undo _to_rows: (rows, n) -> the original layout (a view)."""
    if ndim == 2 and dim == 1:
        return a2
    if ndim == 0:
        return a2.reshape(())
    if dim % ndim == ndim - 1:
        return a2.reshape(shape)
    return array_module(a2).moveaxis(a2.reshape(shape), -1, dim)


class _Softmax(Function):
    """y = softmax(x) along `dim`; saves y (2-D rows view) for dx = y * (dout - sum(dout * y))."""

    log = False

    @classmethod
    def forward(cls, ctx, x, dim):
        x2, shape = _to_rows(x, dim)
        k = kernels_for(x)
        y2 = k.log_softmax_fwd(x2) if cls.log else k.softmax_fwd(x2)
        ctx.y2, ctx.shape, ctx.dim, ctx.ndim = y2, shape, dim, x.ndim
        return _from_rows(y2, shape, dim, x.ndim)

    @classmethod
    def backward(cls, ctx, dout):
        d2, _ = _to_rows(dout, ctx.dim)
        k = kernels_for(ctx.y2)
        dx2 = k.log_softmax_bwd(d2, ctx.y2) if cls.log else k.softmax_bwd(d2, ctx.y2)
        return _from_rows(dx2, ctx.shape, ctx.dim, ctx.ndim)


class _LogSoftmax(_Softmax):
    """y = log_softmax(x) along `dim`; saves y for dx = dout - exp(y) * sum(dout)."""

    log = True


def softmax(input, dim=-1):
    """softmax(input) along `dim` (any dim; float32 or float64), stable for large logits (the max is
    subtracted first). -inf entries get probability 0. A slice whose entries are ALL -inf gives zeros
    (PyTorch gives NaN) and zero gradient. Saves the output for backward."""
    check_float_input("input", input)
    dim = normalize_dim("dim", dim, max(input.ndim, 1))       # a 0-d tensor takes dim 0 or -1, like PyTorch
    return _Softmax.apply(input, dim)


def log_softmax(input, dim=-1):
    """log(softmax(input)) along `dim`, computed as x - max - log(sum(exp(x - max))). A slice whose entries
    are ALL -inf gives -inf (PyTorch gives NaN); its gradient passes dout through (dx = dout - exp(y) *
    sum(dout) with exp(y) = 0). Saves the output for backward."""
    check_float_input("input", input)
    dim = normalize_dim("dim", dim, max(input.ndim, 1))       # a 0-d tensor takes dim 0 or -1, like PyTorch
    return _LogSoftmax.apply(input, dim)


class _MaskedSoftmax(Function):
    """Softmax over the first lens[r] keys of each row; saves y and the per-row lengths."""

    @staticmethod
    def forward(ctx, x, valid_lens):
        # the lengths' check and layout happen here, in the op, so that a step replayed by engine.compile
        # checks and uses each call's lengths
        K = x.shape[-1]
        vshape = valid_lens.shape
        if valid_lens.size:
            check_values(((valid_lens < 0) | (valid_lens > K)).any(),
                         lambda: f"valid_lens: every length must be in [0, {K}] (the number of keys), "
                                 f"got values in [{int(valid_lens.min())}, {int(valid_lens.max())}]")
        xp = array_module(valid_lens)
        lens = valid_lens.astype(np.int64).reshape(vshape + (1,) * (x.ndim - 1 - len(vshape)))
        lens = xp.ascontiguousarray(xp.broadcast_to(lens, tuple(x.shape[:-1]))).reshape(-1)
        x2 = x.reshape(-1, K) if K else x.reshape(lens.size, 0)
        ctx.y2 = kernels_for(x).masked_softmax_fwd(x2, lens)
        ctx.lens = lens
        return ctx.y2.reshape(x.shape)

    @staticmethod
    def backward(ctx, dout):
        d2 = dout.reshape(ctx.y2.shape)
        return kernels_for(ctx.y2).masked_softmax_bwd(d2, ctx.y2, ctx.lens).reshape(dout.shape), None


def masked_softmax(X, valid_lens):
    """Softmax over the last axis of X keeping only the first valid_lens keys (the D2L book's op).

    X: float tensor of shape (B, ..., K), e.g. attention scores (B, Q, K). valid_lens: None (plain softmax
    over the last axis), or an int tensor of shape (B,) (one length for every row of batch b) or of shape
    X.shape[:j] for any 1 <= j < X.ndim, e.g. (B, Q) (one length per query row). Keys at positions
    >= valid_len get probability 0. A row with valid_len 0 is ALL ZEROS (the book's -1e6 trick would give
    a uniform row, PyTorch-style -inf masking NaN) and gets zero gradient. Gradient flows to X only.
    Raises ValueError (naming valid_lens) for lengths < 0 or > K, or a shape that does not match X.
    """
    check_float_input("X", X)
    if valid_lens is None:
        return softmax(X, dim=-1)
    check_tensor("valid_lens", valid_lens)
    check_int("valid_lens", valid_lens)
    check_same_device(X=X, valid_lens=valid_lens)
    if X.ndim < 2:
        raise ValueError(f"X: expected at least 2 dims (B, ..., K) when valid_lens is given, got shape {X.shape}")
    vshape = tuple(valid_lens.shape)
    if not (1 <= len(vshape) < X.ndim and vshape == tuple(X.shape[:len(vshape)])):
        raise ValueError(f"valid_lens: shape {vshape} does not match X of shape {tuple(X.shape)}: expected "
                         f"(B,) = {tuple(X.shape[:1])} or (B, Q) = {tuple(X.shape[:2])}, a prefix of X.shape[:-1]")
    return _MaskedSoftmax.apply(X, valid_lens._data)

