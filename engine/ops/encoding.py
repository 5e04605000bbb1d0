"""F.one_hot: integer class indices as one-hot int64 vectors (not differentiable, as in PyTorch)."""
import numbers

import numpy as np

from .._capture import replayable
from .._checks import check_tensor
from ..backend import array_module, check_values
from ..tensor import _wrap_like

__all__ = ["one_hot"]


@replayable
def one_hot(tensor, num_classes=-1):
    """(...) int64 indices -> (..., num_classes) int64 with a 1 at each index. num_classes=-1 takes
    max(index) + 1 (a host read). Indices must be in [0, num_classes)."""
    x = check_tensor("tensor", tensor)
    if x.dtype.kind not in "iu":
        raise TypeError(f"tensor: one_hot takes an integer index tensor, got dtype {x.dtype}")
    if not isinstance(num_classes, numbers.Integral) or isinstance(num_classes, bool) or num_classes < -1:
        raise ValueError(f"num_classes: expected -1 or a non-negative int, got {num_classes!r}")
    xp = array_module(x._data)
    a = x._data
    if num_classes == -1:
        if a.size == 0:
            raise RuntimeError("num_classes: cannot infer the number of classes from an empty tensor; pass it")
        num_classes = int(a.max()) + 1
    if a.size:
        check_values((a < 0).any(), lambda: f"tensor: class values must be non-negative, got {int(a.min())}")
        check_values((a >= num_classes).any(), lambda: f"tensor: class values must be smaller than num_classes "
                                                       f"({num_classes}), got {int(a.max())}")
    out = (a[..., None] == xp.arange(num_classes, dtype=a.dtype)).astype(np.int64)
    return _wrap_like(out, x)
