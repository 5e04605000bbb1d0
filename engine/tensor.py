"""Tensor: an array plus what the tape needs (requires_grad, grad, the op that made it).

The arithmetic here (+ - * / @, exp, log, sum, mean, max, reshape, transpose, indexing, cat, stack)
is written with NumPy-compatible array calls, so it serves NumPy and CuPy arrays alike.
"""
import numbers

import numpy as np

from . import autograd
from .autograd import Function
from .backend import array_module, check_device, device_of, flush_checks, to_device

float32, float64 = np.dtype(np.float32), np.dtype(np.float64)
int32, int64, bool_ = np.dtype(np.int32), np.dtype(np.int64), np.dtype(np.bool_)


def _unbroadcast(g, shape):
    """Sum a broadcast gradient back to `shape`."""
    if g.shape == shape:
        return g
    lead = g.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(i + lead for i, n in enumerate(shape) if n == 1 and g.shape[i + lead] != 1)
    g = g.sum(axis=axes, keepdims=True)
    return g.reshape(shape)


class Tensor:
    __array_priority__ = 1000          # so that ndarray + Tensor defers to Tensor.__radd__

    def __init__(self, data, requires_grad=False):
        self.data = data
        self.grad = None
        self._ctx = None
        self._retain_grad = False
        self.requires_grad = bool(requires_grad)

    @classmethod
    def _wrap(cls, data, requires_grad=False):
        t = cls.__new__(cls)
        t.data, t.grad, t._ctx, t._retain_grad, t.requires_grad = data, None, None, False, requires_grad
        return t

    # ---- properties -------------------------------------------------------------------------
    @property
    def requires_grad(self):
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value):
        if value and self.data.dtype.kind not in "fc":
            raise TypeError(f"requires_grad: only floating-point tensors can require gradients, got dtype {self.data.dtype}")
        self._requires_grad = bool(value)

    shape = property(lambda self: tuple(self.data.shape))
    dtype = property(lambda self: self.data.dtype)
    ndim = property(lambda self: self.data.ndim)
    device = property(lambda self: device_of(self.data))
    is_leaf = property(lambda self: self._ctx is None)
    T = property(lambda self: self.transpose())

    def size(self, dim=None):
        return self.shape if dim is None else self.shape[dim]

    def numel(self):
        return int(self.data.size)

    def __len__(self):
        return self.shape[0]

    def __repr__(self):
        grad = ", requires_grad=True" if self.requires_grad else ""
        return f"tensor({np.asarray(self.numpy())!r}{grad})".replace("\n", "\n       ")

    # ---- conversion -------------------------------------------------------------------------
    def numpy(self):
        """The values as a NumPy array: the array itself on the CPU, a host copy of a "cuda" tensor."""
        return self.data if device_of(self.data) == "cpu" else to_device(self.data, "cpu")

    def item(self):
        if self.data.size != 1:
            raise ValueError(f"item(): the tensor has {self.data.size} elements, not one")
        if device_of(self.data) != "cpu":
            flush_checks()
        return self.data.reshape(()).item()

    def tolist(self):
        return self.numpy().tolist()

    def __float__(self):
        return float(self.item())

    def detach(self):
        return Tensor._wrap(self.data)

    def clone(self):
        return _Clone.apply(self)

    def retain_grad(self):
        self._retain_grad = True

    def to(self, device=None, dtype=None):
        """This tensor on `device` and/or cast to `dtype`: itself when nothing changes, else a new tensor on
        the tape (gradients flow back across the move and the cast)."""
        t = self
        if device is not None and check_device(device) != self.device:
            t = _ToDevice.apply(t, device=check_device(device))
        if dtype is not None and np.dtype(dtype) != self.dtype:
            t = _Cast.apply(t, dtype=np.dtype(dtype))
        return t

    def cuda(self):
        return self.to("cuda")

    def float(self):
        return self.to(dtype=float32)

    def double(self):
        return self.to(dtype=float64)

    def cpu(self):
        return self.to("cpu")

    def backward(self, grad=None):
        if not self.requires_grad:
            raise RuntimeError("backward(): this tensor does not require grad and has no recorded graph")
        if grad is None:
            if self.data.size != 1:
                raise RuntimeError(f"backward(): grad can be omitted only for a one-element tensor, this one has shape {self.shape}")
            g = array_module(self.data).ones_like(self.data)
        else:
            g = grad.data if isinstance(grad, Tensor) else array_module(self.data).asarray(grad, dtype=self.dtype)
            if g.shape != self.data.shape:
                raise ValueError(f"grad: shape {g.shape} does not match the tensor's shape {self.shape}")
        autograd.backward(self, g)

    def zero_(self):
        self.data[...] = 0
        return self

    # ---- arithmetic -------------------------------------------------------------------------
    def _lift(self, other):
        if isinstance(other, Tensor):
            return other
        if isinstance(other, numbers.Number):
            return other
        return Tensor._wrap(array_module(self.data).asarray(other, dtype=self.dtype))

    def __add__(self, o): return _Add.apply(self, self._lift(o))
    def __radd__(self, o): return _Add.apply(self._lift(o), self)
    def __sub__(self, o): return _Sub.apply(self, self._lift(o))
    def __rsub__(self, o): return _Sub.apply(self._lift(o), self)
    def __mul__(self, o): return _Mul.apply(self, self._lift(o))
    def __rmul__(self, o): return _Mul.apply(self._lift(o), self)
    def __truediv__(self, o): return _Div.apply(self, self._lift(o))
    def __rtruediv__(self, o): return _Div.apply(self._lift(o), self)
    def __matmul__(self, o): return _MatMul.apply(self, self._lift(o))
    def __rmatmul__(self, o): return _MatMul.apply(self._lift(o), self)
    def __neg__(self): return _Neg.apply(self)

    def __pow__(self, p):
        if not isinstance(p, numbers.Real):
            raise TypeError(f"exponent: only a Python scalar exponent is supported, got {type(p).__name__}")
        return _Pow.apply(self, p=p)

    def _compare(self, o, fn):
        o = o.data if isinstance(o, Tensor) else o
        return Tensor._wrap(fn(self.data, o))

    def __eq__(self, o): return self._compare(o, lambda a, b: a == b)
    def __ne__(self, o): return self._compare(o, lambda a, b: a != b)
    def __lt__(self, o): return self._compare(o, lambda a, b: a < b)
    def __le__(self, o): return self._compare(o, lambda a, b: a <= b)
    def __gt__(self, o): return self._compare(o, lambda a, b: a > b)
    def __ge__(self, o): return self._compare(o, lambda a, b: a >= b)
    __hash__ = object.__hash__

    def exp(self): return _Exp.apply(self)
    def log(self): return _Log.apply(self)
    def sqrt(self): return self ** 0.5
    def abs(self): return _Abs.apply(self)

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
    def sum(self, axis=None, keepdims=False, dim=None):
        return _Sum.apply(self, axis=_axes(dim if dim is not None else axis, self.ndim), keepdims=keepdims)

    def mean(self, axis=None, keepdims=False, dim=None):
        axes = _axes(dim if dim is not None else axis, self.ndim)
        n = int(np.prod([self.shape[a] for a in axes])) if axes else 1
        return self.sum(axis=axes, keepdims=keepdims) / n if axes != () else self.sum(axis=(), keepdims=keepdims)

    def max(self, axis=None, keepdims=False, dim=None):
        return _Max.apply(self, axis=_axes(dim if dim is not None else axis, self.ndim), keepdims=keepdims)

    def argmax(self, axis=None, dim=None):
        axis = dim if dim is not None else axis
        return Tensor._wrap(self.data.argmax(axis=axis))

    # ---- shape ------------------------------------------------------------------------------
    def reshape(self, *shape):
        shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        return _Reshape.apply(self, shape=tuple(shape))

    view = reshape

    def flatten(self, start_dim=0, end_dim=-1):
        end = end_dim % self.ndim if self.ndim else 0
        shape = self.shape[:start_dim] + (-1,) + self.shape[end + 1:]
        return self.reshape(shape)

    def permute(self, *axes):
        axes = axes[0] if len(axes) == 1 and isinstance(axes[0], (tuple, list)) else axes
        if sorted(a % self.ndim for a in axes) != list(range(self.ndim)):
            raise ValueError(f"axes: {axes} is not a permutation of {self.ndim} dims")
        return _Permute.apply(self, axes=tuple(a % self.ndim for a in axes))

    def transpose(self, *axes):
        """With no axes, reverse them (NumPy); with two, swap those two (PyTorch's transpose(d0, d1))."""
        if not axes:
            return self.permute(tuple(reversed(range(self.ndim))))
        if len(axes) == 2 and all(isinstance(a, numbers.Integral) for a in axes):
            return self.swapaxes(*axes)
        return self.permute(*axes)

    def swapaxes(self, a, b):
        perm = list(range(self.ndim))
        perm[a], perm[b] = perm[b], perm[a]
        return self.permute(perm)

    def unsqueeze(self, dim):
        dim = dim % (self.ndim + 1)
        return self.reshape(self.shape[:dim] + (1,) + self.shape[dim:])

    def squeeze(self, dim=None):
        if dim is None:
            return self.reshape(tuple(n for n in self.shape if n != 1))
        dim %= self.ndim
        return self.reshape(self.shape[:dim] + self.shape[dim + 1:]) if self.shape[dim] == 1 else self

    def contiguous(self):
        return self

    def __getitem__(self, idx):
        if isinstance(idx, Tensor):
            idx = idx.data
        elif isinstance(idx, tuple):
            idx = tuple(i.data if isinstance(i, Tensor) else i for i in idx)
        return _Index.apply(self, idx=idx)


def _axes(axis, ndim):
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, numbers.Integral):
        axis = (axis,)
    out = []
    for a in axis:
        if not -ndim <= a < max(ndim, 1):
            raise ValueError(f"axis: {a} is out of range for a tensor of {ndim} dims")
        out.append(int(a) % max(ndim, 1))
    return tuple(sorted(out))


# ---- the ops behind the operators ------------------------------------------------------------
class _Add(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.shapes = (np.shape(a), np.shape(b))
        return a + b

    @staticmethod
    def backward(ctx, g):
        return _unbroadcast(g, ctx.shapes[0]), _unbroadcast(g, ctx.shapes[1])


class _Sub(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.shapes = (np.shape(a), np.shape(b))
        return a - b

    @staticmethod
    def backward(ctx, g):
        return _unbroadcast(g, ctx.shapes[0]), _unbroadcast(-g, ctx.shapes[1])


class _Mul(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a * b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved
        da = _unbroadcast(g * b, np.shape(a)) if ctx.needs_input_grad[0] else None
        db = _unbroadcast(g * a, np.shape(b)) if ctx.needs_input_grad[1] else None
        return da, db


class _Div(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a / b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved
        da = _unbroadcast(g / b, np.shape(a)) if ctx.needs_input_grad[0] else None
        db = _unbroadcast(-g * a / (b * b), np.shape(b)) if ctx.needs_input_grad[1] else None
        return da, db


class _Neg(Function):
    @staticmethod
    def forward(ctx, a):
        return -a

    @staticmethod
    def backward(ctx, g):
        return -g


class _Pow(Function):
    @staticmethod
    def forward(ctx, a, p):
        ctx.a, ctx.p = a, p
        return a ** p

    @staticmethod
    def backward(ctx, g):
        a, p = ctx.a, ctx.p
        return g * (p * a ** (p - 1)) if p != 0 else g * 0


class _Exp(Function):
    @staticmethod
    def forward(ctx, a):
        ctx.y = array_module(a).exp(a)
        return ctx.y

    @staticmethod
    def backward(ctx, g):
        return g * ctx.y


class _Log(Function):
    @staticmethod
    def forward(ctx, a):
        ctx.a = a
        return array_module(a).log(a)

    @staticmethod
    def backward(ctx, g):
        return g / ctx.a


class _Abs(Function):
    @staticmethod
    def forward(ctx, a):
        ctx.a = a
        return abs(a)

    @staticmethod
    def backward(ctx, g):
        return g * array_module(ctx.a).sign(ctx.a)


class _MatMul(Function):
    @staticmethod
    def forward(ctx, a, b):
        if a.ndim == 0 or b.ndim == 0:
            raise ValueError("matmul: both operands need at least one dim")
        if a.shape[-1] != b.shape[-2 if b.ndim > 1 else 0]:
            raise ValueError(f"matmul: shapes {a.shape} and {b.shape} do not agree on the inner dim")
        ctx.save_for_backward(a, b)
        return a @ b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved
        a2 = a[None, :] if a.ndim == 1 else a          # promote vectors as matmul does
        b2 = b[:, None] if b.ndim == 1 else b
        g2 = g
        if a.ndim == 1:
            g2 = g2[..., None, :]
        if b.ndim == 1:
            g2 = g2[..., None]
        da = _unbroadcast(g2 @ b2.swapaxes(-1, -2), a2.shape).reshape(a.shape) if ctx.needs_input_grad[0] else None
        db = _unbroadcast(a2.swapaxes(-1, -2) @ g2, b2.shape).reshape(b.shape) if ctx.needs_input_grad[1] else None
        return da, db


class _Sum(Function):
    @staticmethod
    def forward(ctx, a, axis, keepdims):
        ctx.shape, ctx.axis, ctx.keepdims = a.shape, axis, keepdims
        return a.sum(axis=axis, keepdims=keepdims)

    @staticmethod
    def backward(ctx, g):
        if not ctx.keepdims:
            g = g.reshape([1 if i in ctx.axis else n for i, n in enumerate(ctx.shape)])
        return array_module(g).broadcast_to(g, ctx.shape).copy()


class _Max(Function):
    @staticmethod
    def forward(ctx, a, axis, keepdims):
        y = a.max(axis=axis, keepdims=True)
        ctx.a, ctx.y, ctx.axis, ctx.keepdims = a, y, axis, keepdims
        return y if keepdims else y.reshape([n for i, n in enumerate(a.shape) if i not in axis])

    @staticmethod
    def backward(ctx, g):
        if not ctx.keepdims:
            g = g.reshape(ctx.y.shape)
        hit = ctx.a == ctx.y                 # ties share the gradient equally
        return hit * (g / hit.sum(axis=ctx.axis, keepdims=True)).astype(ctx.a.dtype)


class _Reshape(Function):
    @staticmethod
    def forward(ctx, a, shape):
        ctx.shape = a.shape
        try:
            return a.reshape(shape)
        except ValueError:
            raise ValueError(f"shape: cannot reshape a tensor of shape {a.shape} into {shape}") from None

    @staticmethod
    def backward(ctx, g):
        return g.reshape(ctx.shape)


class _Permute(Function):
    @staticmethod
    def forward(ctx, a, axes):
        ctx.axes = axes
        return a.transpose(axes)

    @staticmethod
    def backward(ctx, g):
        return g.transpose(np.argsort(ctx.axes))


class _Index(Function):
    @staticmethod
    def forward(ctx, a, idx):
        ctx.shape, ctx.idx = a.shape, idx
        return a[idx]

    @staticmethod
    def backward(ctx, g):
        xp = array_module(g)
        dx = xp.zeros(ctx.shape, dtype=g.dtype)
        xp.add.at(dx, ctx.idx, g)          # repeated integer indices accumulate
        return dx


class _Clone(Function):
    @staticmethod
    def forward(ctx, a):
        return a.copy()

    @staticmethod
    def backward(ctx, g):
        return g


class _ToDevice(Function):
    """A copy on another device; its gradient goes back to the source's device."""
    moves_device = True

    @staticmethod
    def forward(ctx, a, device):
        ctx.src = device_of(a)
        return to_device(a, device)

    @staticmethod
    def backward(ctx, g):
        return to_device(g, ctx.src)


class _Cast(Function):
    @staticmethod
    def forward(ctx, a, dtype):
        ctx.dtype = a.dtype
        return a.astype(dtype)

    @staticmethod
    def backward(ctx, g):
        return g.astype(ctx.dtype)


class _Cat(Function):
    @staticmethod
    def forward(ctx, *arrays, axis):
        ctx.axis = axis
        ctx.bounds = np.cumsum([a.shape[axis] for a in arrays])[:-1]
        return array_module(arrays[0]).concatenate(arrays, axis=axis)

    @staticmethod
    def backward(ctx, g):
        return tuple(array_module(g).split(g, ctx.bounds, axis=ctx.axis))


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
    return _Cat.apply(*tensors, axis=dim)


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


def tensor(data, dtype=None, requires_grad=False, device=None):
    """Make a Tensor from array-like data. Float data becomes float32 unless `dtype` says otherwise;
    integer and boolean data keep their kind (int64 / bool). `device` defaults to where the data is: CPU for
    NumPy and Python data, "cuda" for a CuPy array (or anything with __cuda_array_interface__, or DLPack),
    which is taken without a copy when its dtype is kept."""
    if isinstance(data, Tensor):
        data = data.data
    src = device_of(data) if isinstance(data, np.ndarray) or _on_gpu(data) else "cpu"
    device = check_device(device if device is not None else src)
    if src == "cuda" and not isinstance(data, np.ndarray):
        import cupy
        arr = cupy.asarray(data) if not hasattr(data, "__dlpack__") or hasattr(data, "__cuda_array_interface__") \
            else cupy.from_dlpack(data)
        arr = _kind_default(arr, dtype)
        return Tensor(arr if device == "cuda" else to_device(arr, "cpu"), requires_grad=requires_grad)
    if src == "cuda":                                         # the simulator's device arrays
        arr = _kind_default(np.asarray(data), dtype)
        return Tensor(to_device(np.array(arr, subok=False), device), requires_grad=requires_grad)
    arr = np.array(data, dtype=None if dtype is None else np.dtype(dtype))
    return Tensor(to_device(_kind_default(arr, dtype), device), requires_grad=requires_grad)


def _on_gpu(data):
    return hasattr(data, "__cuda_array_interface__") or (hasattr(data, "__dlpack_device__")
                                                         and not isinstance(data, np.ndarray)
                                                         and data.__dlpack_device__()[0] == 2)   # kDLCUDA


def _kind_default(arr, dtype):
    """tensor()'s dtype rule on an array already on the device."""
    if dtype is not None:
        return arr.astype(np.dtype(dtype), copy=False)
    if arr.dtype.kind == "f":
        return arr.astype(np.float32, copy=False)
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64, copy=False)
    if arr.dtype.kind != "b":
        raise TypeError(f"data: unsupported element type {arr.dtype}")
    return arr


def _factory(fn):
    def make(*shape, dtype=float32, requires_grad=False, device="cpu"):
        device = check_device(device)
        shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        return Tensor(to_device(fn(tuple(shape), dtype=np.dtype(dtype)), device), requires_grad=requires_grad)
    return make


zeros, ones, empty = _factory(np.zeros), _factory(np.ones), _factory(np.empty)


def zeros_like(t, dtype=None):
    return Tensor._wrap(array_module(t.data).zeros_like(t.data, dtype=dtype))


def ones_like(t, dtype=None):
    return Tensor._wrap(array_module(t.data).ones_like(t.data, dtype=dtype))


def arange(*args, dtype=None):
    a = np.arange(*args)
    return tensor(a, dtype=dtype)


_rng = np.random.default_rng()


def manual_seed(seed):
    """Seed the engine's global generator (initialization, dropout, randn)."""
    global _rng
    _rng = np.random.default_rng(seed)


def default_generator():
    return _rng


def randn(*shape, dtype=float32, requires_grad=False, generator=None, device="cpu"):
    shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
    g = generator or _rng
    return Tensor(to_device(g.standard_normal(tuple(shape)).astype(dtype), check_device(device)),
                  requires_grad=requires_grad)


def rand(*shape, dtype=float32, requires_grad=False, generator=None, device="cpu"):
    shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
    g = generator or _rng
    return Tensor(to_device(g.random(tuple(shape)).astype(dtype), check_device(device)), requires_grad=requires_grad)
