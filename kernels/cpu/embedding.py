"""Numba CPU kernels: embedding lookup and its scatter-add backward.

Backward races when two positions name the same row, so each prange iteration owns a slice of the
embedding's columns and walks every index: no two iterations write the same element.
"""
import numpy as np
from numba import njit, prange

__all__ = ["embedding_fwd", "embedding_bwd"]


@njit(parallel=True, cache=True, error_model="numpy")
def _gather(idx, w, out):
    """out[i, :] = w[idx[i], :]; prange over positions."""
    for i in prange(idx.size):
        dst, src = out[i], w[idx[i]]
        for j in range(dst.shape[0]):          # a loop: a slice copy compiles Numba's shape-error path
            dst[j] = src[j]


@njit(parallel=True, cache=True, error_model="numpy")
def _scatter_add(dout, idx, dw, col_block, padding_idx):
    """dw[idx[i], :] += dout[i, :]; prange over column blocks (each owns its columns)."""
    dim = dw.shape[1]
    nblocks = (dim + col_block - 1) // col_block
    for b in prange(nblocks):
        c0, c1 = b * col_block, min(dim, (b + 1) * col_block)
        dw[:, c0:c1] = 0
        for i in range(idx.size):
            r = idx[i]
            if r == padding_idx:
                continue
            for c in range(c0, c1):
                dw[r, c] += dout[i, c]


def embedding_fwd(idx, w):
    w = np.ascontiguousarray(w)
    flat = np.ascontiguousarray(idx).reshape(-1).astype(np.int64, copy=False)
    out = np.empty((flat.size, w.shape[1]), dtype=w.dtype)
    _gather(flat, w, out)
    return out.reshape(tuple(idx.shape) + (w.shape[1],))


def embedding_bwd(dout, idx, num_embeddings, padding_idx=-1):
    dim = dout.shape[-1]
    d2 = np.ascontiguousarray(dout).reshape(int(np.prod(dout.shape[:-1])), dim)      # dim or rows may be 0
    flat = np.ascontiguousarray(idx).reshape(-1).astype(np.int64, copy=False)
    dw = np.empty((num_embeddings, dim), dtype=dout.dtype)
    col_block = max(8, -(-dim // 8))             # up to 8 blocks keeps both cores busy, rows stay vectorizable
    _scatter_add(d2, flat, dw, col_block, padding_idx)
    return dw
