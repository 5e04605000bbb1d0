"""Tensor: an array plus what the tape needs (requires_grad, grad, the op that made it).

The differentiable ops behind the operators live in engine.tensor_ops, in-place ops in engine._inplace,
creation (tensor, zeros, from_dlpack, the random generator) in engine.creation; this module re-exports the
names the rest of the engine imports from it.
"""
import numbers
import weakref

import numpy as np

from . import autograd
from ._conversions import Conversions
from ._inplace import InPlace, clamp_args as _clamp_args, raw_index as _raw_index
from .backend import device_of

float32, float64 = np.dtype(np.float32), np.dtype(np.float64)
float16 = np.dtype(np.float16)
int8, int16, int32, int64 = (np.dtype(t) for t in (np.int8, np.int16, np.int32, np.int64))
uint8, bool_ = np.dtype(np.uint8), np.dtype(np.bool_)


class Tensor(Conversions, InPlace):
    __array_priority__ = 1000          # so that ndarray + Tensor defers to Tensor.__radd__

    # rarely set: class-level defaults keep Tensor._wrap (run for every op's output) to four attributes
    _base = None                       # the tensor this one is a view of (its memory), if any
    _view_fns = ()                     # the view ops from _base to this tensor
    _hooks = None                      # register_hook on a leaf
    _post_acc_hooks = None             # register_post_accumulate_grad_hook

    def __init__(self, data, requires_grad=False):
        if not (isinstance(data, np.ndarray) or hasattr(data, "__cuda_array_interface__")):
            from .creation import _host_array
            data = _host_array(data, float32 if _is_float_data(data) else None)
        self._data = data
        self._grad = None
        self._ctx = None
        self.requires_grad = requires_grad

    @classmethod
    def _wrap(cls, data, requires_grad=False):
        t = cls.__new__(cls)
        t._data, t._grad, t._ctx, t._requires_grad = data, None, None, requires_grad
        return t

    # ---- properties -------------------------------------------------------------------------
    # The raw array (NumPy on "cpu", CuPy on "cuda") is `_data`; `.data` is PyTorch's: a tensor sharing this
    # one's memory, outside the graph (`net[0].weight.data.normal_(0, 0.01)`, `p.data -= lr * p.grad`).
    @property
    def data(self):
        return Tensor._wrap(self._data)

    @data.setter
    def data(self, value):
        """Replace the values and storage (PyTorch's `t.data = other`): a tensor, or a raw array."""
        value = value._data if isinstance(value, Tensor) else value
        if not (isinstance(value, np.ndarray) or hasattr(value, "__cuda_array_interface__")):
            raise TypeError(f"data: expected a Tensor, got {type(value).__name__}")
        self._data = value

    @property
    def requires_grad(self):
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value):
        if value and self._data.dtype.kind not in "fc":
            raise TypeError(f"requires_grad: only floating-point tensors can require gradients, got dtype {self._data.dtype}")
        if not value and self._ctx is not None:
            raise RuntimeError("requires_grad: only a leaf tensor's flag can be changed; use detach() to get a "
                               "tensor outside the graph")
        self._requires_grad = bool(value)

    @property
    def grad(self):
        return self._grad

    @grad.setter
    def grad(self, value):
        if value is not None:
            if not isinstance(value, Tensor):
                raise TypeError(f"grad: expected a Tensor or None, got {type(value).__name__}")
            if value.shape != self.shape or value.dtype != self.dtype or value.device != self.device:
                raise RuntimeError(f"grad: a gradient of shape {value.shape}, {value.dtype} on {value.device} does not "
                                   f"fit a tensor of shape {self.shape}, {self.dtype} on {self.device}")
        self._grad = value

    shape = property(lambda self: tuple(self._data.shape))
    dtype = property(lambda self: self._data.dtype)
    ndim = property(lambda self: self._data.ndim)
    device = property(lambda self: device_of(self._data))
    is_leaf = property(lambda self: self._ctx is None)
    grad_fn = property(lambda self: self._ctx)
    T = property(lambda self: self.transpose())
    is_cuda = property(lambda self: self.device == "cuda")

    def size(self, dim=None):
        return self.shape if dim is None else self.shape[_dim(dim, self.ndim)]

    def numel(self):
        return int(self._data.size)

    def dim(self):
        return self.ndim

    def element_size(self):
        return self._data.itemsize

    def __len__(self):
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __iter__(self):
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self.shape[0]))

    def __repr__(self):
        from ._format import tensor_repr
        return tensor_repr(self, self.numpy())

    def __format__(self, spec):
        if self.ndim == 0:
            return format(self.item(), spec)
        if not spec:
            return repr(self)
        raise TypeError(f"format: a format spec ({spec!r}) applies to a 0-d tensor, this one has shape {self.shape}")

    # ---- graph -----------------------------------------------------------------------------
    def detach(self):
        """The same memory, outside the graph (in-place changes show in both, as in PyTorch)."""
        return Tensor._wrap(self._data)

    def detach_(self):
        self._ctx, self._base, self._view_fns = None, None, ()
        self._requires_grad = False
        return self

    def clone(self):
        from .tensor_ops import Clone
        return Clone.apply(self)

    def requires_grad_(self, requires_grad=True):
        self.requires_grad = requires_grad
        return self

    def retain_grad(self):
        """Keep this non-leaf tensor's gradient in .grad during backward (leaves always keep theirs)."""
        if self._ctx is not None:
            self._ctx._retain = weakref.ref(self)
        elif not self.requires_grad:
            raise RuntimeError("retain_grad: the tensor does not require grad")

    def register_hook(self, hook):
        """hook(grad) -> Tensor or None, called with this tensor's gradient during backward; a returned tensor
        replaces the gradient. Returns a handle whose remove() unregisters it."""
        if not self.requires_grad:
            raise RuntimeError("register_hook: cannot register a hook on a tensor that does not require grad")
        if self._ctx is not None:
            hooks = self._ctx.__dict__.setdefault("_hooks", [])
        else:
            if self._hooks is None:
                self._hooks = []
            hooks = self._hooks
        hooks.append(hook)
        return autograd.RemovableHandle(hooks, hook)

    def register_post_accumulate_grad_hook(self, hook):
        """hook(tensor), called during backward right after this leaf's .grad has been accumulated."""
        if self._ctx is not None:
            raise RuntimeError("register_post_accumulate_grad_hook: only a leaf tensor accumulates a gradient")
        if not self.requires_grad:
            raise RuntimeError("register_post_accumulate_grad_hook: the tensor does not require grad")
        if self._post_acc_hooks is None:
            self._post_acc_hooks = []
        self._post_acc_hooks.append(hook)
        return autograd.RemovableHandle(self._post_acc_hooks, hook)

    def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
        """Accumulate d(self)/d(leaf) into every leaf's .grad. `gradient` is required unless self has one
        element. The graph's saved values are freed afterwards unless retain_graph=True."""
        if create_graph:
            raise NotImplementedError("backward: create_graph=True (higher-order gradients) is not supported")
        if inputs is not None:
            raise NotImplementedError("backward: inputs= is not supported; every leaf gets its gradient")
        if not self.requires_grad:
            raise RuntimeError("backward(): this tensor does not require grad and has no recorded graph")
        xp = _xp(self._data)
        if gradient is None:
            if self._data.size != 1:
                raise RuntimeError(f"backward(): grad can be omitted only for a one-element tensor, this one has "
                                   f"shape {self.shape}")
            g = xp.ones_like(self._data)
        else:
            if isinstance(gradient, Tensor):
                if gradient.device != self.device:
                    raise RuntimeError(f"gradient: on {gradient.device}, the tensor is on {self.device}")
                g = gradient._data.astype(self.dtype, copy=False)
            else:
                g = xp.asarray(gradient, dtype=self.dtype)
            if g.shape != self._data.shape:
                raise ValueError(f"gradient: shape {g.shape} does not match the tensor's shape {self.shape}")
        autograd.backward(self, g, retain_graph=bool(retain_graph))

    # ---- arithmetic (PyTorch's type promotion: engine.functions.dtypes) -------------------------
    def __add__(self, o): return _arith("add", self, o)
    def __radd__(self, o): return _arith("add", o, self)
    def __sub__(self, o): return _arith("sub", self, o)
    def __rsub__(self, o): return _arith("sub", o, self)
    def __mul__(self, o): return _arith("mul", self, o)
    def __rmul__(self, o): return _arith("mul", o, self)
    def __truediv__(self, o): return _arith("div", self, o)
    def __rtruediv__(self, o): return _arith("div", o, self)
    def __floordiv__(self, o): return _arith("floordiv", self, o)
    def __rfloordiv__(self, o): return _arith("floordiv", o, self)
    def __mod__(self, o): return _arith("mod", self, o)
    def __rmod__(self, o): return _arith("mod", o, self)
    def __pow__(self, o): return _arith("pow", self, o)
    def __rpow__(self, o): return _arith("pow", o, self)
    def __and__(self, o): return _arith("and", self, o)
    def __rand__(self, o): return _arith("and", o, self)
    def __or__(self, o): return _arith("or", self, o)
    def __ror__(self, o): return _arith("or", o, self)
    def __xor__(self, o): return _arith("xor", self, o)
    def __rxor__(self, o): return _arith("xor", o, self)
    def __matmul__(self, o): return _matmul(self, _lift(self, o))
    def __rmatmul__(self, o): return _matmul(_lift(self, o), self)
    def __neg__(self): return _ops.Neg.apply(self)
    def __pos__(self): return self
    def __abs__(self): return self.abs()

    def __invert__(self):
        """Logical not of a bool tensor, bitwise not of an integer one (TypeError for floats, as in PyTorch)."""
        if self.dtype.kind == "f":
            raise TypeError(f"~: bitwise not is only defined for bool and integer tensors, got dtype {self.dtype}")
        return _wrap_like(~self._data, self)

    def __eq__(self, o): return _compare(self, o, "eq")
    def __ne__(self, o): return _compare(self, o, "ne")
    def __lt__(self, o): return _compare(self, o, "lt")
    def __le__(self, o): return _compare(self, o, "le")
    def __gt__(self, o): return _compare(self, o, "gt")
    def __ge__(self, o): return _compare(self, o, "ge")
    __hash__ = object.__hash__

    def exp(self): return _fns().exp(self)
    def log(self): return _fns().log(self)
    def sqrt(self): return _fns().sqrt(self)
    def abs(self): return _fns().abs(self)

    def clamp(self, min=None, max=None):
        _clamp_args(min, max)
        return _ops.Clamp.apply(self, lo=min, hi=max)

    clip = clamp

    def relu(self):
        from . import functional
        return functional.relu(self)

    def sigmoid(self):
        from . import functional
        return functional.sigmoid(self)

    def tanh(self):
        from . import functional
        return functional.tanh(self)

    def softmax(self, dim=-1):
        from . import functional
        return functional.softmax(self, dim)

    def log_softmax(self, dim=-1):
        from . import functional
        return functional.log_softmax(self, dim)

    # ---- reductions -------------------------------------------------------------------------
    # dim: an int, a tuple of ints or None (all dims); `axis`/`keepdims` are accepted as NumPy's names (so that
    # np.sum(tensor) works). Integer and bool sums are int64, as in PyTorch.
    def sum(self, dim=None, keepdim=False, *, dtype=None, axis=None, keepdims=None, out=None):
        axes = _axes(_dim_arg(dim, axis), self.ndim)
        keep = _keep_arg(keepdim, keepdims, out)
        if dtype is None and self.dtype.kind in "biu":
            dtype = int64
        return _ops.Sum.apply(self, axis=axes, keepdims=keep, dtype=None if dtype is None else np.dtype(dtype))

    def mean(self, dim=None, keepdim=False, *, dtype=None, axis=None, keepdims=None, out=None):
        """Floating-point tensors only (RuntimeError otherwise, as in PyTorch; pass dtype= to cast first)."""
        x = self if dtype is None else self.to(dtype)
        if x.dtype.kind != "f":
            raise RuntimeError(f"mean(): could not infer the output dtype: the input dtype must be floating point, "
                               f"got {x.dtype} (use .float() or dtype=engine.float32)")
        axes = _axes(_dim_arg(dim, axis), x.ndim)
        keep = _keep_arg(keepdim, keepdims, out)
        n = int(np.prod([x.shape[a] for a in axes])) if axes else 1
        s = _ops.Sum.apply(x, axis=axes, keepdims=keep, dtype=None)
        return s / n if n != 1 else s

    def max(self, dim=None, keepdim=False, *, axis=None, keepdims=None, out=None):
        """max(): the largest element (ties share the gradient); max(dim): (values, indices), the gradient going to
        the index; max(other): the elementwise maximum."""
        from .functions import reduce
        return reduce.max(self, dim, keepdim, axis=axis, keepdims=keepdims, out=out)

    def min(self, dim=None, keepdim=False, *, axis=None, keepdims=None, out=None):
        """As max, for the smallest."""
        from .functions import reduce
        return reduce.min(self, dim, keepdim, axis=axis, keepdims=keepdims, out=out)

    def argmax(self, dim=None, keepdim=False, *, axis=None):
        from .functions import reduce
        return reduce.argmax(self, dim, keepdim, axis=axis)

    def argmin(self, dim=None, keepdim=False, *, axis=None):
        from .functions import reduce
        return reduce.argmin(self, dim, keepdim, axis=axis)

    # ---- shape ------------------------------------------------------------------------------
    def reshape(self, *shape):
        shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        return _ops.Reshape.apply(self, shape=tuple(shape))

    view = reshape

    def flatten(self, start_dim=0, end_dim=-1):
        start, end = _dim(start_dim, self.ndim), _dim(end_dim, self.ndim)     # a 0-d tensor takes 0 and -1
        if self.ndim == 0:
            return self.reshape(1)
        if start > end:
            raise RuntimeError(f"flatten: start_dim ({start_dim}) cannot come after end_dim ({end_dim})")
        return self.reshape(self.shape[:start] + (-1,) + self.shape[end + 1:])

    def permute(self, *axes):
        axes = axes[0] if len(axes) == 1 and isinstance(axes[0], (tuple, list)) else axes
        if len(axes) != self.ndim or sorted(_dim(a, self.ndim) for a in axes) != list(range(self.ndim)):
            raise ValueError(f"axes: {tuple(axes)} is not a permutation of the {self.ndim} dims")
        return _ops.Permute.apply(self, axes=tuple(_dim(a, self.ndim) for a in axes))

    def transpose(self, *axes):
        """With no axes, reverse them (NumPy); with two, swap those two (PyTorch's transpose(d0, d1))."""
        if not axes:
            return self.permute(tuple(reversed(range(self.ndim))))
        if len(axes) == 2 and all(isinstance(a, numbers.Integral) for a in axes):
            return self.swapaxes(*axes)
        return self.permute(*axes)

    def t(self):
        """The transpose of a matrix (a 0-d or 1-d tensor as it is), as torch.Tensor.t."""
        if self.ndim > 2:
            raise RuntimeError(f"t(): expects a tensor with at most 2 dims, got {self.ndim} (use transpose(d0, d1) "
                               "or permute)")
        return self.transpose() if self.ndim == 2 else self.reshape(self.shape)

    def swapaxes(self, a, b):
        a, b = _dim(a, self.ndim), _dim(b, self.ndim)
        perm = list(range(self.ndim))
        perm[a], perm[b] = perm[b], perm[a]
        return self.permute(perm)

    def unsqueeze(self, dim):
        dim = _dim(dim, self.ndim + 1)
        return self.reshape(self.shape[:dim] + (1,) + self.shape[dim:])

    def squeeze(self, dim=None):
        """Drop size-1 dims: all of them, or those of `dim` (an int or a tuple) that have size 1."""
        if dim is None:
            return self.reshape(tuple(n for n in self.shape if n != 1))
        if self.ndim == 0:
            _dim(dim, 0) if not isinstance(dim, (tuple, list)) else [_dim(d, 0) for d in dim]
            return self
        dims = {_dim(d, self.ndim) for d in (dim if isinstance(dim, (tuple, list)) else (dim,))}
        return self.reshape(tuple(n for i, n in enumerate(self.shape) if not (i in dims and n == 1)))

    def contiguous(self):
        return self

    def __getitem__(self, idx):
        raw = _raw_index(idx)
        if autograd._CAPTURE is not None and _has_mask(raw):
            autograd._CAPTURE.refuse("indexed with a boolean mask (the result's shape depends on the mask's "
                                     "values, and shapes computed from it would be frozen)",
                                     "use engine.where(mask, x, 0) or multiply by the mask")
        return _ops.Index.apply(self, idx=raw)


def _xp(a):
    from .backend import array_module
    return array_module(a)


def _is_float_data(data):
    return isinstance(data, float) or (isinstance(data, (list, tuple)) and not isinstance(data, str))




def _keep_arg(keepdim, keepdims, out):
    """keepdim (PyTorch) or keepdims (NumPy); `out` is accepted so that np.sum(tensor) works, but not used."""
    if out is not None:
        raise TypeError("out: writing a reduction into an existing tensor is not supported")
    return bool(keepdim if keepdims is None else keepdims)


def _dim_arg(dim, axis):
    """dim (PyTorch) or its alias axis (NumPy's name, which PyTorch accepts too)."""
    if axis is not None:
        if dim is not None:
            raise TypeError("dim: give dim or axis, not both")
        return axis
    return dim




def _dim(d, ndim):
    """A dim index checked against ndim (0-d tensors take 0 and -1, as in PyTorch)."""
    if not isinstance(d, numbers.Integral) or isinstance(d, bool):
        raise TypeError(f"dim: expected an int, got {d!r}")
    n = max(ndim, 1)
    if not -n <= d < n:
        raise IndexError(f"dim: {d} is out of range for a tensor of {ndim} dims (expected in [{-n}, {n - 1}])")
    return int(d) % n


def _axes(axis, ndim):
    """dim=None (every dim), an int or a sequence of ints, as a sorted tuple of non-negative dims."""
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, numbers.Integral) and not isinstance(axis, bool):
        axis = (axis,)
    if not isinstance(axis, (tuple, list)):
        raise TypeError(f"dim: expected an int, a tuple of ints or None, got {axis!r}")
    out = {_dim(a, ndim) for a in axis}
    if len(out) != len(axis):
        raise RuntimeError(f"dim: {tuple(axis)} names a dim more than once")
    return tuple(sorted(out)) if ndim else ()


def cat(tensors, dim=0):
    """Concatenate along an existing dim (torch.cat)."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("tensors: cat needs at least one tensor")
    for i, t in enumerate(tensors):
        if not isinstance(t, Tensor):
            raise TypeError(f"tensors[{i}]: expected a Tensor, got {type(t).__name__}")
    ndim = tensors[0].ndim
    if not -ndim <= dim < ndim:
        raise ValueError(f"dim: {dim} is out of range for tensors of {ndim} dims")
    dim %= ndim
    for i, t in enumerate(tensors[1:], 1):
        if t.ndim != ndim or t.shape[:dim] + t.shape[dim + 1:] != tensors[0].shape[:dim] + tensors[0].shape[dim + 1:]:
            raise ValueError(f"tensors[{i}]: shape {t.shape} does not match {tensors[0].shape} outside dim {dim}")
        if t.dtype != tensors[0].dtype:
            raise TypeError(f"tensors[{i}]: dtype {t.dtype} does not match {tensors[0].dtype}")
    return _ops.Cat.apply(*tensors, axis=dim)


concatenate = cat


def stack(tensors, dim=0):
    """Stack along a new dim (torch.stack)."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("tensors: stack needs at least one tensor")
    for i, t in enumerate(tensors[1:], 1):
        if t.shape != tensors[0].shape:
            raise ValueError(f"tensors[{i}]: shape {t.shape} does not match {tensors[0].shape}")
    return cat([t.unsqueeze(dim) for t in tensors], dim=dim)


autograd.Tensor = Tensor
def _has_mask(idx):
    return any(getattr(i, "dtype", None) == bool_ for i in (idx if isinstance(idx, tuple) else (idx,)))


from . import tensor_ops as _ops  # noqa: E402  (it imports autograd, which needs Tensor set)
from .creation import (arange, as_tensor, default_generator, empty, empty_like, from_dlpack,  # noqa: E402,F401
                       from_numpy, manual_seed, ones, ones_like, rand, randn, tensor, zeros, zeros_like)
from .functions.arith import _arith, _compare, _fns, _lift, _matmul, _wrap_like  # noqa: E402,F401
from .functions import methods as _methods  # noqa: E402  (x.sin(), x.cumsum(0), ...: the torch.* functions)
_methods.install(Tensor)
