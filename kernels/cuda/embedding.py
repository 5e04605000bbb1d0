"""Embedding on the GPU. Forward: one thread per output element gathers its row. Backward: one thread
per embedding column walks the indices in order and adds into dw[idx, column]; a thread owns its column, so
there are no atomics and repeated indices sum in the same order every run."""
import math

from numba import cuda

from ._dev import TPB_FLAT, blocks, contiguous, empty, zeros
from ._launch import kernel

__all__ = ["embedding_fwd", "embedding_bwd"]


@kernel
def _gather(idx, w, out):
    i = cuda.grid(1)
    n, D = out.shape
    if i < n * D:
        r = idx[i // D]
        # an index out of range reads nothing and gives NaN (the engine's queued value check raises)
        out[i // D, i % D] = w[r, i % D] if 0 <= r < w.shape[0] else math.nan


@kernel
def _scatter_columns(dout, idx, padding_idx, dw):
    j = cuda.grid(1)
    if j < dw.shape[1]:
        for n in range(idx.shape[0]):
            r = idx[n]
            if r != padding_idx and 0 <= r < dw.shape[0]:
                dw[r, j] += dout[n, j]


def embedding_fwd(idx, w):
    """idx: integer array of any shape (validated by the engine); w (num_embeddings, dim) -> idx.shape + (dim,)."""
    w = contiguous(w)
    flat = contiguous(idx, "int64").reshape(-1)
    out = empty((flat.size, w.shape[1]), w.dtype, w)
    if out.size:
        _gather[blocks(out.size), TPB_FLAT](flat, w, out)
    return out.reshape(tuple(idx.shape) + (w.shape[1],))


def embedding_bwd(dout, idx, num_embeddings, padding_idx=-1):
    """dw (num_embeddings, dim): dout's rows added into the rows idx names; padding_idx gets none."""
    dim = dout.shape[-1]
    d2 = contiguous(dout).reshape(math.prod(dout.shape[:-1]), dim)      # dim or rows may be 0
    flat = contiguous(idx, "int64").reshape(-1)
    dw = zeros((num_embeddings, dim), d2.dtype, d2)
    if flat.size and dim:
        _scatter_columns[blocks(dim), TPB_FLAT](d2, flat, int(padding_idx), dw)
    return dw
