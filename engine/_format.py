"""repr() of a Tensor in PyTorch's style: `tensor([1.5000, 2.0000], requires_grad=True)`.

Floats print with 4 decimals; whole numbers as `1.`; scientific notation when the finite magnitudes span more
than 1000x or leave [1e-4, 1e8); every element padded to one width. Large tensors are summarized (the first
and last 3 items of each dim). The dtype is named when it is not the default of its kind (float32, int64,
bool), the device when it is not the CPU, and then requires_grad or the op that made the tensor.
"""
import numpy as np

_DEFAULT_DTYPES = (np.dtype(np.float32), np.dtype(np.int64), np.dtype(np.bool_))
_THRESHOLD, _EDGE, _WIDTH = 1000, 3, 80


def _float_formatter(a):
    finite = np.abs(a[np.isfinite(a)]).astype(np.float64)
    nonzero = finite[finite != 0]
    ints = finite.size == 0 or bool(np.all(finite == np.round(finite)))
    sci = nonzero.size > 0 and (nonzero.max() / nonzero.min() > 1000.0 or nonzero.max() >= 1e8
                                or nonzero.min() < 1e-4)
    if ints and not (nonzero.size and nonzero.max() >= 1e8):
        fmt = lambda v: f"{v:.0f}." if np.isfinite(v) else str(v)          # noqa: E731
    elif sci:
        fmt = lambda v: f"{v:.4e}" if np.isfinite(v) else str(v)           # noqa: E731
    else:
        fmt = lambda v: f"{v:.4f}" if np.isfinite(v) else str(v)           # noqa: E731
    sample = a if a.size <= _THRESHOLD else _edges(a)
    width = max((len(fmt(v)) for v in sample.ravel()), default=1)
    return lambda v: fmt(v).rjust(width)


def _edges(a):
    """The elements that a summarized print shows."""
    for d in range(a.ndim):
        if a.shape[d] > 2 * _EDGE:
            a = np.concatenate([a.take(range(_EDGE), axis=d), a.take(range(a.shape[d] - _EDGE, a.shape[d]), axis=d)],
                               axis=d)
    return a


def format_values(a):
    """The `[...]` part."""
    kind = a.dtype.kind
    if kind == "f":
        formatter = {"float_kind": _float_formatter(a)}
    elif kind == "b":
        formatter = {"bool": lambda v: " True" if v else "False"}
    else:
        formatter = None
    return np.array2string(a, separator=", ", prefix="tensor(", formatter=formatter, max_line_width=_WIDTH,
                           threshold=_THRESHOLD, edgeitems=_EDGE)


def tensor_repr(t, values):
    """`values`: the tensor's elements as a NumPy array (a host copy for a device tensor)."""
    if values.size == 0 and values.shape != (0,):
        body = f"[], size={tuple(values.shape)}"
    else:
        body = format_values(values)
    extra = []
    if values.dtype not in _DEFAULT_DTYPES:
        extra.append(f"dtype=engine.{values.dtype.name}")
    if t.device != "cpu":
        extra.append(f"device='{t.device}'")
    if t._ctx is not None:
        extra.append(f"grad_fn=<{type(t._ctx).__name__.lstrip('_')}Backward>")
    elif t.requires_grad:
        extra.append("requires_grad=True")
    return "tensor(" + body + "".join(", " + e for e in extra) + ")"
