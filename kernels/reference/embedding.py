"""float64 NumPy references: embedding lookup (forward) and its scatter-add (backward)."""
import numpy as np

__all__ = ["embedding_fwd", "embedding_bwd"]


def embedding_fwd(idx, w):
    """idx: integer array of any shape; w: (num_embeddings, dim) -> idx.shape + (dim,)."""
    return w[idx]


def embedding_bwd(dout, idx, num_embeddings, padding_idx=-1):
    """dw (num_embeddings, dim): rows of dout added into the rows that idx names; padding_idx gets none."""
    dim = dout.shape[-1]
    dw = np.zeros((num_embeddings, dim), dtype=dout.dtype)
    np.add.at(dw, idx.reshape(-1), dout.reshape(-1, dim))
    if padding_idx >= 0:
        dw[padding_idx] = 0
    return dw
