"""In-place tensor ops (`add_`, `-=`, `t[idx] = v`, `zero_`, `copy_`, ...) with PyTorch's rules.

- Outside the tape (under `no_grad`, or when nothing involved requires grad) the op writes into the tensor's
  memory directly and bumps its version counter.
- On the tape, the op is recorded like any other: the tensor gets a new history (the op applied to a snapshot
  of its old self), so ops recorded earlier keep theirs. A leaf that requires grad (or a view of one) is
  refused, as PyTorch refuses it, because its old value could not get a gradient. An in-place op on a view
  (a slice, reshape or transpose of another tensor) rewrites the base's history as well: the base becomes
  "old base with that region replaced", so gradients flow correctly through both.
- Ops recorded earlier that kept the modified memory for backward raise at backward (version counters).
"""
import numbers

import numpy as np

from ._capture import refuse, replayable
from .autograd import bump_version, is_grad_enabled
from .backend import array_module
from .tensor_ops import SetView, view_of


def raw_index(idx):
    """An index with Tensors replaced by their arrays."""
    from .tensor import Tensor
    if isinstance(idx, Tensor):
        return idx._data
    if isinstance(idx, tuple):
        return tuple(i._data if isinstance(i, Tensor) else i for i in idx)
    return idx


def clamp_args(lo, hi):
    if lo is None and hi is None:
        raise ValueError("clamp: at least one of min and max must be given")
    for name, v in (("min", lo), ("max", hi)):
        if v is not None and not isinstance(v, numbers.Real):
            raise TypeError(f"{name}: expected a number, got {type(v).__name__}")


def _raw(t, other, op):
    """The operand as a raw array or scalar on t's device."""
    from .tensor import Tensor
    if isinstance(other, Tensor):
        if other.device != t.device and other.ndim != 0:
            raise RuntimeError(f"{op}: expected both tensors on one device, got {t.device} and {other.device}")
        return other._data if other.device == t.device else other.item()
    return other


def _requires(values):
    from .tensor import Tensor
    return any(isinstance(v, Tensor) and v.requires_grad for v in values)


def _writable(t, op):
    flags = getattr(t._data, "flags", None)
    if flags is not None and not getattr(flags, "writeable", True):      # CuPy's flags have no `writeable`
        raise RuntimeError(f"{op}: the tensor's memory is read-only (e.g. shared with a read-only array through "
                           f"from_dlpack or from_numpy); clone() it first")


def _snapshot(t):
    """A tensor standing for t's value and history before an in-place op (its own copy of the values, so that
    what the next op keeps for backward is never overwritten)."""
    from .tensor import Tensor
    s = Tensor._wrap(t._data.copy(), requires_grad=t.requires_grad)
    s._ctx = t._ctx
    return s


def _refuse_leaf(t, op):
    base = t._base if t._base is not None else t
    if base.requires_grad and base._ctx is None:
        what = "a view of a leaf tensor" if t._base is not None else "a leaf tensor"
        raise RuntimeError(f"{op}: {what} that requires grad cannot be modified in place while gradients are "
                           f"recorded; do it under `with engine.no_grad():` (as an optimizer update does)")


def _rebase(t, base, new_base):
    """Write new_base's values into base's memory and give base (and t, a view of it) the new history."""
    base._data[...] = new_base._data
    bump_version(base._data)
    base._ctx, base._requires_grad = new_base._ctx, new_base.requires_grad
    if t is not base:
        v = base
        for cls, kw in t._view_fns:
            v = cls.apply(v, **kw)
        t._ctx, t._requires_grad = v._ctx, v.requires_grad


def apply(t, op, tensor_fn, raw_fn, operands=()):
    """t <- tensor_fn(t, *operands) in place. `raw_fn(array, *raw_operands)` does it on raw memory (off the
    tape); `tensor_fn` is the differentiable out-of-place form used on the tape. Returns t."""
    _writable(t, op)
    if not (is_grad_enabled() and (t.requires_grad or _requires(operands))):
        return _apply_raw(t, op, raw_fn, operands)
    _refuse_leaf(t, op)
    refuse(f"did {op} on the tape (a tensor that requires grad)", "use the out-of-place form")
    if t._base is None:
        old = _snapshot(t)
        new = tensor_fn(old, *operands)
        _check_result(t, new, op)
        t._data[...] = new._data
        bump_version(t._data)
        t._ctx, t._requires_grad = new._ctx, new.requires_grad
        return t
    base = t._base
    old_base = _snapshot(base)
    old_view = old_base
    for cls, kw in t._view_fns:
        old_view = cls.apply(old_view, **kw)
    new = tensor_fn(old_view, *operands)
    _check_result(t, new, op)
    _rebase(t, base, SetView.apply(old_base, new, fns=t._view_fns, idx=Ellipsis))
    return t


@replayable
def _apply_raw(t, op, raw_fn, operands):
    raws = [_raw(t, o, op) for o in operands]
    try:
        raw_fn(t._data, *raws)
    except (TypeError, ValueError) as e:
        raise _explain(t, op, operands, e) from None
    bump_version(t._data)
    return t


@replayable
def _setitem_raw(t, idx, value, op):
    v = _raw(t, value, op)
    if getattr(v, "ndim", 0):
        v = _drop_leading_ones(v, np.shape(t._data[idx]))
    try:
        t._data[idx] = v
    except (TypeError, ValueError) as e:
        raise _explain(t, op, (value,), e) from None
    bump_version(t._data)


def setitem(t, idx, value, op="t[idx] = value"):
    """t[idx] = value, PyTorch's semantics (value broadcast to the region, cast to t's dtype); also fill_ and
    copy_ (idx = Ellipsis)."""
    from .tensor import Tensor
    _writable(t, op)
    if not (is_grad_enabled() and _requires((t, value))):
        _setitem_raw(t, idx, value, op)
        return
    _refuse_leaf(t, op)
    refuse(f"did {op} on the tape (a tensor that requires grad)", "use the out-of-place form")
    base = t._base if t._base is not None else t
    fns = t._view_fns if t._base is not None else ()
    if not isinstance(value, Tensor):
        value = Tensor._wrap(array_module(t._data).asarray(value, dtype=t.dtype))
    elif value.device != t.device:
        raise RuntimeError(f"{op}: value is on {value.device}, the tensor on {t.device}")
    target = view_of(base._data, fns)
    if value.ndim > target[idx].ndim:
        value = value.reshape(_drop_leading_ones(value._data, target[idx].shape).shape)
    try:
        array_module(t._data).broadcast_to(value._data, target[idx].shape)
    except ValueError:
        raise ValueError(f"value: shape {value.shape} cannot be broadcast to the indexed region's shape "
                         f"{target[idx].shape}") from None
    _rebase(t, base, SetView.apply(_snapshot(base), value, fns=fns, idx=idx))


def _drop_leading_ones(v, region_shape):
    """`v` without the leading size-1 dims it has beyond the region's rank (PyTorch accepts `x[2] = ones(1, 1)`;
    NumPy does only for non-scalar regions)."""
    extra = v.ndim - len(region_shape)
    if extra > 0 and all(n == 1 for n in v.shape[:extra]):
        return v.reshape(v.shape[extra:])
    return v


def _check_result(t, new, op):
    if new.shape != t.shape:
        raise RuntimeError(f"{op}: the result's shape {new.shape} does not match the tensor's shape {t.shape} "
                           f"(an in-place op cannot broadcast its target)")
    if new.dtype != t.dtype and not _castable(new.dtype, t.dtype):
        raise RuntimeError(f"{op}: result dtype {new.dtype} cannot be cast to the tensor's dtype {t.dtype}")


def _castable(src, dst):
    return np.can_cast(src, dst, casting="same_kind")


def _explain(t, op, operands, e):
    from .tensor import Tensor
    shapes = [o.shape if isinstance(o, Tensor) else getattr(o, "shape", type(o).__name__) for o in operands]
    msg = str(e)
    if "broadcast" in msg or "shape" in msg:
        return RuntimeError(f"{op}: operand shape {', '.join(map(str, shapes))} does not fit the tensor's shape "
                            f"{t.shape} (an in-place op cannot broadcast its target)")
    if "cast" in msg.lower():
        return RuntimeError(f"{op}: the result cannot be stored in the tensor's dtype {t.dtype} ({msg})")
    return type(e)(f"{op}: {msg}")


class InPlace:
    """Tensor's in-place methods (a mixin of engine.tensor.Tensor): each calls `apply` or `setitem` above."""

    def add_(self, other, alpha=1):
        if alpha != 1:
            other = other * alpha
        return apply(self, "add_", lambda a, b: a + b, lambda a, b: array_module(a).add(a, b, out=a), (other,))

    def sub_(self, other, alpha=1):
        if alpha != 1:
            other = other * alpha
        return apply(self, "sub_", lambda a, b: a - b, lambda a, b: array_module(a).subtract(a, b, out=a), (other,))

    def mul_(self, other):
        return apply(self, "mul_", lambda a, b: a * b, lambda a, b: array_module(a).multiply(a, b, out=a), (other,))

    def div_(self, other):
        return apply(self, "div_", lambda a, b: a / b, lambda a, b: array_module(a).divide(a, b, out=a), (other,))

    def clamp_(self, min=None, max=None):
        clamp_args(min, max)
        return apply(self, "clamp_", lambda a: a.clamp(min, max), lambda a: array_module(a).clip(a, min, max, out=a))

    def fill_(self, value):
        if isinstance(value, InPlace) and value.ndim:
            raise ValueError(f"value: fill_ takes a number or a 0-d tensor, got shape {value.shape}")
        setitem(self, Ellipsis, value, op="fill_")
        return self

    def zero_(self):
        return self.fill_(0)

    def copy_(self, src, non_blocking=False):
        """Copy src's values (broadcast, cast, moved across devices) into this tensor."""
        if isinstance(src, InPlace) and src.device != self.device:
            src = src.to(self.device)
        setitem(self, Ellipsis, src, op="copy_")
        return self

    def __iadd__(self, o): return self.add_(o)
    def __isub__(self, o): return self.sub_(o)
    def __imul__(self, o): return self.mul_(o)
    def __itruediv__(self, o): return self.div_(o)

    def __setitem__(self, idx, value):
        setitem(self, raw_index(idx), value, op="t[idx] = value")
