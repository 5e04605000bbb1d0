"""Shape and indexing functions, PyTorch's semantics: reshape/flatten/squeeze/unsqueeze/transpose/permute/t,
cat/concat/stack, split/chunk/unbind, repeat_interleave, Tensor.repeat (tile), expand/broadcast_to, gather,
index_select, flip, narrow, nonzero, tril/triu, meshgrid. Views where PyTorch gives views; each differentiable
one gets its gradient from the tape (Index, Reshape, Permute) or from engine.ops.indexing.
"""
import numbers

import numpy as np

from ..backend import array_module
from ..ops import indexing as I
from ..tensor import Tensor, _dim, _wrap_like, cat, stack
from .math import tensor_arg

__all__ = ["reshape", "flatten", "squeeze", "unsqueeze", "transpose", "swapaxes", "swapdims", "permute", "t",
           "numel", "cat", "concat", "concatenate", "stack", "hstack", "vstack", "split", "chunk", "unbind",
           "repeat_interleave", "tile", "expand", "broadcast_to", "gather", "take_along_dim", "index_select", "flip",
           "narrow", "nonzero", "argwhere", "tril", "triu", "meshgrid", "movedim", "clone", "detach",
           "masked_select", "diag"]


def reshape(input, shape):
    return tensor_arg("input", input).reshape(shape)


def flatten(input, start_dim=0, end_dim=-1):
    return tensor_arg("input", input).flatten(start_dim, end_dim)


def squeeze(input, dim=None):
    return tensor_arg("input", input).squeeze(dim)


def unsqueeze(input, dim):
    return tensor_arg("input", input).unsqueeze(dim)


def transpose(input, dim0, dim1):
    return tensor_arg("input", input).transpose(dim0, dim1)


swapaxes = swapdims = transpose


def permute(input, dims):
    return tensor_arg("input", input).permute(dims)


def t(input):
    return tensor_arg("input", input).t()


def numel(input):
    return tensor_arg("input", input).numel()


def movedim(input, source, destination):
    x = tensor_arg("input", input)
    src = [_dim(d, x.ndim) for d in (source if isinstance(source, (tuple, list)) else (source,))]
    dst = [_dim(d, x.ndim) for d in (destination if isinstance(destination, (tuple, list)) else (destination,))]
    if len(src) != len(dst):
        raise RuntimeError(f"movedim: source {source} and destination {destination} differ in length")
    order = [d for d in range(x.ndim) if d not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return x.permute(order)


def clone(input):
    return tensor_arg("input", input).clone()


def detach(input):
    return tensor_arg("input", input).detach()


concat = concatenate = cat


def hstack(tensors):
    tensors = list(tensors)
    return cat(tensors, dim=0 if all(t.ndim == 1 for t in tensors) else 1)


def vstack(tensors):
    return cat([t.reshape(1, -1) if t.ndim < 2 else t for t in tensors], dim=0)


def split(tensor, split_size_or_sections, dim=0):
    """Pieces of size split_size_or_sections (the last may be smaller), or of the listed sizes; views."""
    x = tensor_arg("tensor", tensor)
    d = _dim(dim, x.ndim)
    n = x.shape[d]
    s = split_size_or_sections
    if isinstance(s, numbers.Integral) and not isinstance(s, bool):
        if s <= 0 and n:
            raise RuntimeError(f"split_size: must be positive, got {s}")
        sizes = [s] * (n // s) + ([n % s] if n % s else []) if n else [0]
    else:
        sizes = [int(v) for v in s]
        if sum(sizes) != n:
            raise RuntimeError(f"split_size_or_sections: sizes {sizes} do not add up to the dim's size {n}")
    out, start = [], 0
    for k in sizes:
        out.append(x[(slice(None),) * d + (slice(start, start + k),)])
        start += k
    return tuple(out)


def chunk(input, chunks, dim=0):
    """At most `chunks` pieces of ceil(n / chunks) along dim (the last may be smaller), as torch.chunk."""
    x = tensor_arg("input", input)
    if not isinstance(chunks, numbers.Integral) or chunks < 1:
        raise RuntimeError(f"chunks: expected a positive int, got {chunks!r}")
    n = x.shape[_dim(dim, x.ndim)]
    return split(x, max(-(-n // chunks), 1), dim)


def unbind(input, dim=0):
    x = tensor_arg("input", input)
    d = _dim(dim, x.ndim)
    return tuple(x[(slice(None),) * d + (i,)] for i in range(x.shape[d]))


def repeat_interleave(input, repeats=None, dim=None, *, output_size=None):
    """Each element repeated `repeats` times (an int, or a 1-d int tensor with one count per element) along
    dim (of the flattened input when dim is None). repeat_interleave(counts) alone repeats arange(len)."""
    x = tensor_arg("input", input)
    if repeats is None:                           # repeat_interleave(repeats): indices repeated
        if x.ndim != 1 or x.dtype.kind not in "iu":
            raise RuntimeError("repeat_interleave: with one argument it must be a 1-d integer tensor of counts")
        xp = array_module(x._data)
        return _wrap_like(xp.repeat(xp.arange(x.shape[0], dtype=np.int64), x._data), x)
    if dim is None:
        x, d = x.reshape(-1), 0
    else:
        d = _dim(dim, x.ndim)
    xp = array_module(x._data)
    n = x.shape[d] if x.ndim else 1
    if isinstance(repeats, Tensor):
        if repeats.dtype.kind not in "iu":
            raise TypeError(f"repeats: expected an integer tensor, got dtype {repeats.dtype}")
        r = repeats._data.reshape(-1)
        if r.size not in (1, n):
            raise RuntimeError(f"repeats: must have 1 or {n} elements (one per element along dim), got {r.size}")
    elif isinstance(repeats, numbers.Integral) and not isinstance(repeats, bool):
        r = int(repeats)
    else:
        raise TypeError(f"repeats: expected an int or an integer tensor, got {type(repeats).__name__}")
    if (r < 0) if isinstance(r, int) else bool((r < 0).any()):
        raise RuntimeError("repeats: counts must be non-negative")
    if x.ndim == 0:
        x = x.reshape(1)
    idx = xp.repeat(xp.arange(n, dtype=np.int64), r if isinstance(r, int) or r.size > 1 else int(r[0]))
    return x[(slice(None),) * d + (idx,)]


def tile(input, dims):
    """input repeated along each dim (`dims` padded with leading 1s, or the input with leading size-1 dims)."""
    x = tensor_arg("input", input)
    dims = tuple(dims)
    if len(dims) < x.ndim:
        dims = (1,) * (x.ndim - len(dims)) + dims
    return repeat(x, *dims)


def repeat(input, *sizes):
    """Tensor.repeat: the whole tensor tiled sizes[i] times along dim i (len(sizes) >= ndim; extra leading
    sizes add dims). Not torch.repeat_interleave."""
    x = tensor_arg("input", input)
    sizes = tuple(sizes[0]) if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)) else sizes
    if len(sizes) < x.ndim:
        raise RuntimeError(f"repeat: the number of repeat dims ({len(sizes)}) cannot be smaller than the tensor's "
                           f"dims ({x.ndim})")
    for s in sizes:
        if not isinstance(s, numbers.Integral) or isinstance(s, bool) or s < 0:
            raise RuntimeError(f"repeat: sizes must be non-negative ints, got {sizes}")
    return I.Tile.apply(x, reps=tuple(int(s) for s in sizes))


def expand(input, *sizes):
    """A broadcast view at `sizes` (-1 keeps a dim; new dims are added in front); read-only, as in PyTorch
    where writing into an expanded tensor is refused too."""
    x = tensor_arg("input", input)
    sizes = tuple(sizes[0]) if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)) else tuple(sizes)
    if len(sizes) < x.ndim:
        raise RuntimeError(f"expand: the number of sizes ({len(sizes)}) must be at least the tensor's dims ({x.ndim})")
    lead = len(sizes) - x.ndim
    shape = []
    for i, s in enumerate(sizes):
        if s == -1:
            if i < lead:
                raise RuntimeError(f"expand: -1 is not allowed for a new leading dim, got {sizes}")
            s = x.shape[i - lead]
        elif i >= lead and x.shape[i - lead] not in (1, s):
            raise RuntimeError(f"expand: the size of dim {i - lead} ({x.shape[i - lead]}) must be 1 or match "
                               f"{s} (sizes {sizes})")
        shape.append(int(s))
    return I.Expand.apply(x, shape=tuple(shape))


def broadcast_to(input, size):
    return expand(input, tuple(size))


def gather(input, dim, index):
    """out[i][j] = input[index[i][j]][j] for dim 0 (and so on): index has input's number of dims, and is no
    larger than input outside dim. Differentiable in input (repeated indices accumulate)."""
    x, idx = tensor_arg("input", input), tensor_arg("index", index)
    if idx.dtype.kind not in "iu":
        raise RuntimeError(f"index: gather expects an integer index tensor, got dtype {idx.dtype}")
    if idx.ndim != x.ndim:
        raise RuntimeError(f"index: must have as many dims as input ({x.ndim}), got shape {idx.shape}")
    d = _dim(dim, x.ndim)
    for i, (n, m) in enumerate(zip(x.shape, idx.shape)):
        if i != d and m > n:
            raise RuntimeError(f"index: size {m} of dim {i} is larger than input's {n}")
    n = x.shape[d] if x.ndim else 1
    if idx.numel() and bool(((idx._data < 0) | (idx._data >= n)).any()):
        raise RuntimeError(f"index: values must be in [0, {n}) for dim {d} of size {n}")
    if x.ndim == 0:
        return x.clone()
    sub = x[tuple(slice(0, m) if i != d else slice(None) for i, m in enumerate(idx.shape))]
    return I.TakeAlong.apply(sub, idx._data, axis=d)


def take_along_dim(input, indices, dim):
    x, idx = tensor_arg("input", input), tensor_arg("indices", indices)
    d = _dim(dim, x.ndim)
    shape = np.broadcast_shapes(tuple(n if i != d else 1 for i, n in enumerate(x.shape)),
                                tuple(n if i != d else 1 for i, n in enumerate(idx.shape)))
    xb = x.expand(tuple(s if i != d else x.shape[d] for i, s in enumerate(shape)))
    ib = array_module(idx._data).broadcast_to(idx._data, tuple(s if i != d else idx.shape[d] for i, s in enumerate(shape)))
    return I.TakeAlong.apply(xb, ib, axis=d)


def index_select(input, dim, index):
    """The entries of `index` (a 1-d integer tensor) along dim."""
    x, idx = tensor_arg("input", input), tensor_arg("index", index)
    if idx.ndim > 1 or idx.dtype.kind not in "iu":
        raise RuntimeError(f"index: expected a 1-d integer tensor, got shape {idx.shape}, dtype {idx.dtype}")
    d = _dim(dim, x.ndim)
    return x[(slice(None),) * d + (idx.reshape(-1),)]


def flip(input, dims):
    x = tensor_arg("input", input)
    dims = dims if isinstance(dims, (tuple, list)) else (dims,)
    return I.Flip.apply(x, axes=tuple(_dim(d, x.ndim) for d in dims))


def narrow(input, dim, start, length):
    x = tensor_arg("input", input)
    d = _dim(dim, x.ndim)
    n = x.shape[d]
    start = int(start) + (n if start < 0 else 0)
    if not 0 <= start <= n or length < 0 or start + length > n:
        raise RuntimeError(f"narrow: start {start} and length {length} do not fit a dim of size {n}")
    return x[(slice(None),) * d + (slice(start, start + length),)]


def nonzero(input, *, as_tuple=False):
    """Indices of the non-zero elements: an (n, ndim) int64 tensor, or a tuple of ndim 1-d tensors."""
    x = tensor_arg("input", input)
    xp = array_module(x._data)
    idx = xp.nonzero(x._data.reshape(1) if x.ndim == 0 else x._data)
    if as_tuple:
        return tuple(_wrap_like(i.astype(np.int64), x) for i in idx)
    return _wrap_like(xp.stack(idx, axis=1).astype(np.int64) if x.ndim else
                      xp.zeros((int(idx[0].size), 0), dtype=np.int64), x)


def argwhere(input):
    return nonzero(input)


def masked_select(input, mask):
    x, m = tensor_arg("input", input), tensor_arg("mask", mask)
    if m.dtype.kind != "b":
        raise RuntimeError(f"mask: expected a bool tensor, got dtype {m.dtype}")
    shape = np.broadcast_shapes(x.shape, m.shape)
    return x.expand(shape)[array_module(m._data).broadcast_to(m._data, shape)]


def _tri(name):
    def fn(input, diagonal=0):
        x = tensor_arg("input", input)
        if x.ndim < 2:
            raise RuntimeError(f"{name}: expected a tensor with at least 2 dims, got shape {x.shape}")
        xp = array_module(x._data)
        keep = getattr(xp, name)(xp.ones(x.shape[-2:], dtype=bool), diagonal)
        return x * _wrap_like(keep, x)
    fn.__name__ = name
    fn.__doc__ = f"The {'lower' if name == 'tril' else 'upper'} triangle of the last two dims (others zeroed)."
    return fn


tril, triu = _tri("tril"), _tri("triu")


def diag(input, diagonal=0):
    """A 1-d input as a diagonal matrix; a 2-d input's diagonal."""
    x = tensor_arg("input", input)
    xp = array_module(x._data)
    if x.ndim == 1:
        n = x.shape[0] + abs(diagonal)
        eye = xp.eye(n, k=diagonal, dtype=bool)
        idx = xp.nonzero(eye)
        out = _wrap_like(xp.zeros((n, n), dtype=x.dtype), x)
        pos = xp.zeros((n, n), dtype=np.int64)
        pos[idx] = xp.arange(x.shape[0])
        return _wrap_like(eye, x) * x[pos] + out if x.shape[0] else out
    if x.ndim == 2:
        i = xp.arange(max(min(x.shape[0], x.shape[1] - diagonal) if diagonal >= 0 else
                          min(x.shape[0] + diagonal, x.shape[1]), 0))
        r, c = (i, i + diagonal) if diagonal >= 0 else (i - diagonal, i)
        return x[r, c]
    raise RuntimeError(f"diag: expected a 1-d or 2-d tensor, got shape {x.shape}")


def meshgrid(*tensors, indexing="ij"):
    """Coordinate grids of 1-d tensors; 'ij' (matrix, the default) or 'xy' (Cartesian) indexing."""
    tensors = tensors[0] if len(tensors) == 1 and isinstance(tensors[0], (tuple, list)) else tensors
    if indexing not in ("ij", "xy"):
        raise ValueError(f"indexing: expected 'ij' or 'xy', got {indexing!r}")
    ts = [tensor_arg(f"tensors[{i}]", t).reshape(-1) for i, t in enumerate(tensors)]
    shape = [t.shape[0] for t in ts]
    if indexing == "xy" and len(ts) >= 2:
        shape[0], shape[1] = shape[1], shape[0]
    out = []
    for i, t in enumerate(ts):
        j = i if indexing == "ij" or len(ts) < 2 else (1 - i if i < 2 else i)
        view = [1] * len(ts)
        view[j] = -1
        out.append(t.reshape(view).expand(shape))
    return tuple(out)

