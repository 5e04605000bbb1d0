"""Embedding lookup; backward scatters dout into the rows that were looked up."""
import numbers

from .._checks import check_float_input, check_int, check_ndim, check_same_device, check_tensor
from ..autograd import Function
from ..backend import check_values, kernels_for

__all__ = ["embedding"]


class Embedding(Function):
    @staticmethod
    def forward(ctx, idx, w, padding_idx):
        num = w.shape[0]
        if idx.size:          # checked here, in the op, so that a step replayed by engine.compile checks too
            def message():
                lo, hi = int(idx.min()), int(idx.max())
                return f"input: index {lo if lo < 0 else hi} is out of range for an embedding of {num} rows"
            check_values(((idx < 0) | (idx >= num)).any(), message)
        ctx.idx, ctx.num, ctx.padding_idx, ctx.k = idx, w.shape[0], padding_idx, kernels_for(w)
        return ctx.k.embedding_fwd(idx, w)

    @staticmethod
    def backward(ctx, dout):
        return None, ctx.k.embedding_bwd(dout, ctx.idx, ctx.num, ctx.padding_idx), None


def embedding(input, weight, padding_idx=None):
    """Rows of `weight` (num_embeddings, dim) named by the integer tensor `input` -> input.shape + (dim,).
    `padding_idx`'s row receives no gradient."""
    check_tensor("input", input)
    check_int("input", input)
    check_float_input("weight", weight)
    check_ndim("weight", weight, 2)
    check_same_device(input=input, weight=weight)
    num = weight.shape[0]
    if padding_idx is not None:
        if not isinstance(padding_idx, numbers.Integral) or not -num <= padding_idx < num:
            raise ValueError(f"padding_idx: must be an int in [-{num}, {num}), got {padding_idx!r}")
        padding_idx = int(padding_idx) % num
    return Embedding.apply(input, weight, -1 if padding_idx is None else padding_idx)
