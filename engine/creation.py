"""Making tensors: `tensor` (copies), `as_tensor` / `from_numpy` / `from_dlpack` (share memory), the factories
(`zeros`, `ones`, `empty`, `arange`, `randn`, `rand`) and the engine's random generator.

dtype rules, PyTorch's: NumPy arrays and NumPy scalars keep their dtype (a float64 array stays float64);
Python floats become float32 (the default float dtype), Python ints int64, bools bool.
"""
import numbers

import numpy as np

from . import autograd
from ._capture import refuse
from .backend import check_device, cupy, device_of, to_device
from .tensor import Tensor, float32

_KINDS = "biuf"          # bool, signed and unsigned integers, floats


def _dtype_arg(dtype):
    try:
        return np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype: {dtype!r} is not a dtype (use engine.float32, engine.float64, engine.int64, ...)") \
            from None


def _has_numpy_values(data):
    """True when a (nested) sequence holds NumPy arrays or scalars, whose dtypes then decide, as in PyTorch."""
    stack = [data]
    while stack:
        d = stack.pop()
        if isinstance(d, (np.ndarray, np.generic)):
            return True
        if isinstance(d, (list, tuple)):
            stack.extend(d)
    return False


def _host_array(data, dtype):
    """`data` (Python numbers or sequences, NumPy arrays or scalars) as a new NumPy array with tensor()'s dtype."""
    if dtype is not None:
        arr = np.array(data, dtype=_dtype_arg(dtype))
    else:
        arr = np.array(data)
        if arr.dtype.kind == "f" and arr.dtype != float32 and not isinstance(data, (np.ndarray, np.generic)) \
                and not _has_numpy_values(data):
            arr = arr.astype(float32)             # Python floats: the default float dtype
    if arr.dtype.kind not in _KINDS:
        raise TypeError(f"data: unsupported element type {arr.dtype} (expected numbers or booleans)")
    return arr


def _on_gpu(data):
    return hasattr(data, "__cuda_array_interface__") or (hasattr(data, "__dlpack_device__")
                                                         and not isinstance(data, np.ndarray)
                                                         and data.__dlpack_device__()[0] == 2)   # kDLCUDA


def tensor(data, dtype=None, device=None, requires_grad=False):
    """A new tensor holding a copy of `data` (numbers, nested sequences, a NumPy or CuPy array, a Tensor).
    `dtype`: see the module's rules. `device` defaults to where the data is: the CPU for NumPy and Python data,
    "cuda" for a CuPy array (or anything with __cuda_array_interface__ or a CUDA DLPack)."""
    if isinstance(data, Tensor):
        data = data._data
    src = "cuda" if _on_gpu(data) else "cpu"
    device = check_device(device if device is not None else src)
    if src == "cuda":
        xp = cupy()
        arr = xp.asarray(data) if not hasattr(data, "__dlpack__") or hasattr(data, "__cuda_array_interface__") \
            else xp.from_dlpack(data)
        arr = arr.astype(_dtype_arg(dtype)) if dtype is not None else arr.copy()
        return Tensor(arr if device == "cuda" else to_device(arr, "cpu"), requires_grad=requires_grad)
    return Tensor(to_device(_host_array(data, dtype), device), requires_grad=requires_grad)


def as_tensor(data, dtype=None, device=None):
    """Like `tensor`, but shares memory with `data` when its dtype and device already fit (torch.as_tensor)."""
    if isinstance(data, Tensor):
        t = data
    elif isinstance(data, np.ndarray) and device_of(data) == "cpu" and data.dtype.kind in _KINDS:
        t = Tensor(data)
    elif hasattr(data, "__cuda_array_interface__"):
        t = Tensor(cupy().asarray(data))
    else:
        return tensor(data, dtype=dtype, device=device)
    return t.to(device=device, dtype=dtype) if device is not None or dtype is not None else t


def from_numpy(ndarray):
    """A CPU tensor sharing memory with the NumPy array (its dtype kept): writes to either show in both."""
    if not isinstance(ndarray, np.ndarray) or device_of(ndarray) != "cpu":
        raise TypeError(f"ndarray: expected a NumPy array, got {type(ndarray).__name__}")
    if ndarray.dtype.kind not in _KINDS:
        raise TypeError(f"ndarray: unsupported dtype {ndarray.dtype} (expected numbers or booleans)")
    return Tensor(ndarray)


_DLPACK_CPU, _DLPACK_CUDA, _DLPACK_CUDA_HOST, _DLPACK_CUDA_MANAGED = 1, 2, 3, 13


def from_dlpack(ext_tensor):
    """A tensor sharing memory with any DLPack producer: a PyTorch tensor, a CuPy, JAX or NumPy array, or an
    engine Tensor. CPU memory becomes a "cpu" tensor (via NumPy), CUDA memory a "cuda" one (via CuPy). No copy;
    the dtype is kept. A read-only producer (a JAX array) gives a tensor that in-place ops refuse to write."""
    if isinstance(ext_tensor, Tensor):
        return Tensor(ext_tensor._data)
    if not hasattr(ext_tensor, "__dlpack__") or not hasattr(ext_tensor, "__dlpack_device__"):
        raise TypeError(f"ext_tensor: expected an object with __dlpack__ and __dlpack_device__ (a PyTorch, CuPy, "
                        f"JAX or NumPy array), got {type(ext_tensor).__name__}")
    kind = int(ext_tensor.__dlpack_device__()[0])
    if kind in (_DLPACK_CPU, _DLPACK_CUDA_HOST):
        arr = np.from_dlpack(ext_tensor)
    elif kind in (_DLPACK_CUDA, _DLPACK_CUDA_MANAGED):
        check_device("cuda")
        arr = cupy().from_dlpack(ext_tensor)
    else:
        raise ValueError(f"ext_tensor: its memory is on DLPack device type {kind}; the engine takes CPU (1) and "
                         f"CUDA (2) memory")
    if arr.dtype.kind not in _KINDS:
        raise TypeError(f"ext_tensor: unsupported dtype {arr.dtype}")
    return Tensor(arr)


# ---- factories ----------------------------------------------------------------------------------------------
def _shape(shape, size=None):
    """The shape of a factory call: sizes as arguments (zeros(2, 3)), one tuple or list (zeros((2, 3))), or
    the size= keyword (zeros(size=(2, 3)))."""
    if size is not None:
        if shape:
            raise TypeError("size: give the sizes as arguments or as size=, not both")
        shape = (size,)
    shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
    for n in shape:
        if not isinstance(n, numbers.Integral) or isinstance(n, bool):
            raise TypeError(f"size: expected ints, got {tuple(shape)!r}")
        if n < 0:
            raise ValueError(f"size: every dim must be non-negative, got {tuple(shape)}")
    return tuple(int(n) for n in shape)


def _factory(fn):
    def make(*size, dtype=None, device="cpu", requires_grad=False, **kw):
        shape = _shape(size, _size_kw(fn.__name__, kw))
        device = check_device(device)
        dt = float32 if dtype is None else _dtype_arg(dtype)
        return Tensor(to_device(fn(shape, dtype=dt), device), requires_grad=requires_grad)
    make.__name__ = fn.__name__
    make.__doc__ = f"A new tensor of the given size filled by {fn.__name__} (float32 unless dtype says otherwise)."
    return make


zeros, ones, empty = _factory(np.zeros), _factory(np.ones), _factory(np.empty)


def full(size, fill_value, *, dtype=None, device="cpu", requires_grad=False):
    """A tensor of `size` filled with fill_value; its dtype follows the value (bool, int64 or float32)."""
    if dtype is None:
        dtype = np.bool_ if isinstance(fill_value, bool) else np.int64 if isinstance(fill_value, numbers.Integral)             else float32
    a = np.full(_shape((size,)), fill_value, dtype=_dtype_arg(dtype))
    return Tensor(to_device(a, check_device(device)), requires_grad=requires_grad)


def eye(n, m=None, *, dtype=None, device="cpu", requires_grad=False):
    """The n x m identity (m defaults to n)."""
    for name, v in (("n", n), ("m", n if m is None else m)):
        if not isinstance(v, numbers.Integral) or isinstance(v, bool) or v < 0:
            raise ValueError(f"{name}: expected a non-negative int, got {v!r}")
    a = np.eye(n, n if m is None else m, dtype=float32 if dtype is None else _dtype_arg(dtype))
    return Tensor(to_device(a, check_device(device)), requires_grad=requires_grad)


def linspace(start, end, steps, *, dtype=None, device="cpu", requires_grad=False):
    """`steps` evenly spaced values from start to end inclusive (float32 unless dtype says otherwise)."""
    if not isinstance(steps, numbers.Integral) or isinstance(steps, bool) or steps < 0:
        raise ValueError(f"steps: expected a non-negative int, got {steps!r}")
    a = np.linspace(float(start), float(end), int(steps)).astype(float32 if dtype is None else _dtype_arg(dtype))
    return Tensor(to_device(a, check_device(device)), requires_grad=requires_grad)


def logspace(start, end, steps, base=10.0, *, dtype=None, device="cpu", requires_grad=False):
    a = np.logspace(float(start), float(end), int(steps), base=base).astype(
        float32 if dtype is None else _dtype_arg(dtype))
    return Tensor(to_device(a, check_device(device)), requires_grad=requires_grad)


def _like(fn):
    def make(input, dtype=None, device=None, requires_grad=False):
        arr = fn(input._data, dtype=None if dtype is None else _dtype_arg(dtype))
        t = Tensor(arr, requires_grad=requires_grad)
        return t if device is None else t.to(device)
    make.__name__ = fn.__name__
    return make


def _array_module_fn(name):
    def fn(a, dtype=None):
        from .backend import array_module
        return getattr(array_module(a), name)(a, dtype=dtype)
    fn.__name__ = name
    return fn


zeros_like, ones_like, empty_like = (_like(_array_module_fn(n)) for n in ("zeros_like", "ones_like", "empty_like"))


def full_like(input, fill_value, *, dtype=None, device=None, requires_grad=False):
    from .backend import array_module
    a = array_module(input._data).full(input.shape, fill_value, dtype=input.dtype if dtype is None else
                                      _dtype_arg(dtype))
    t = Tensor(a, requires_grad=requires_grad)
    return t if device is None else t.to(device)


def arange(*args, dtype=None, device="cpu", requires_grad=False, **kw):
    """arange(end), arange(start, end[, step]) (or start=, end=, step=): int64 for int arguments, float32 when
    any is a float."""
    if kw:
        names = ("start", "end", "step")
        if set(kw) - set(names):
            raise TypeError(f"arange(): unexpected keyword argument {next(iter(set(kw) - set(names)))!r}")
        vals = dict(zip(("end",) if len(args) == 1 else names, args))
        vals.update(kw)
        args = (vals.get("start", 0), vals["end"], vals.get("step", 1))
    args = tuple(a.item() if isinstance(a, Tensor) else a for a in args)
    if len(args) == 3 and args[2] == 0:
        raise ValueError("step: must be non-zero")
    a = np.arange(*args)
    if dtype is None and a.dtype.kind == "f":
        a = a.astype(float32)
    return tensor(a, dtype=dtype, device=device, requires_grad=requires_grad)


# ---- randomness ---------------------------------------------------------------------------------------------
# One process-wide generator, as PyTorch's default: concurrent threads drawing from it interleave (NumPy's
# generators lock, so draws never collide); give each thread its own `generator=` for repeatable runs.
_rng = np.random.default_rng()


def manual_seed(seed):
    """Seed the engine's global generator (initialization, dropout, shuffling, randn)."""
    global _rng
    _rng = np.random.default_rng(seed)
    return _rng


def refuse_draw():
    """A random draw outside an op: engine.compile's capture refuses it (a replay would reuse the numbers)."""
    if autograd._CAPTURE is not None:
        refuse("drew random numbers outside an op (they would be frozen into the capture)",
               "draw them outside the compiled step and pass them in")


def default_generator():
    refuse_draw()
    return _rng


def _draw(draw, size, dtype, device, requires_grad, generator, size_kw):
    refuse_draw()
    g = generator or _rng
    dt = float32 if dtype is None else _dtype_arg(dtype)
    if dt.kind != "f":
        raise TypeError(f"dtype: random floats need a floating dtype, got {dt}")
    a = draw(g, _shape(size, size_kw)).astype(dt)
    return Tensor(to_device(a, check_device(device)), requires_grad=requires_grad)


def randn(*size, dtype=None, device="cpu", requires_grad=False, generator=None, **kw):
    """Standard normal samples of the given size (randn(2, 3), randn((2, 3)) or randn(size=(2, 3)))."""
    return _draw(lambda g, s: g.standard_normal(s), size, dtype, device, requires_grad, generator,
                 _size_kw("randn", kw))


def rand(*size, dtype=None, device="cpu", requires_grad=False, generator=None, **kw):
    """Uniform samples in [0, 1) of the given size."""
    return _draw(lambda g, s: g.random(s), size, dtype, device, requires_grad, generator, _size_kw("rand", kw))


def _size_kw(fn, kw):
    size = kw.pop("size", None)
    if kw:
        raise TypeError(f"{fn}(): unexpected keyword argument {next(iter(kw))!r}")
    return size
