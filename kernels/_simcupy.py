"""CuPy as the engine sees it, for Numba's CUDA simulator (`NUMBA_ENABLE_CUDASIM=1`: no GPU, no CuPy).

Under the simulator the CUDA kernels run on host memory, but the engine above them must not know: it takes
this module for `cupy` (see kernels/_device.py) and runs the very code it runs on a GPU. So the stand-in
answers as CuPy does wherever the engine could tell the difference, and in particular refuses what CuPy
refuses (the facts below are read from CuPy's source, cupy/_core/core.pyx, _kernel.pyx, _scalar.pyx and
cupy/__init__.py, at commit 6b6d956 of github.com/cupy/cupy, and from its documentation):

- `ndarray` is not a NumPy array. `__array__` raises CuPy's TypeError ("Implicit conversion to a NumPy
  array is not allowed. Please use `.get()` to construct a NumPy array explicitly."), so `np.asarray(d)`,
  `np.testing.*` on device data and `np.array(d)` fail. A host copy is `.get()` or `cupy.asnumpy`.
- NumPy's ufuncs and functions called on device arrays dispatch to the stand-in's own (CuPy's
  `__array_ufunc__` / `__array_function__`); a function CuPy lacks raises TypeError there, and
  `cupy.<name>` for a name CuPy's namespace lacks raises AttributeError (`cupy.errstate` does not exist).
- A NumPy array (even 0-d) where a device array is expected raises `TypeError: Unsupported type <class
  'numpy.ndarray'>`: in arithmetic with a device array, as a ufunc operand, as an argument of a
  `cupy.*` function, or as the value in `d[...] = host`. Only `cupy.array`/`asarray`/`asanyarray` copy host
  data to the device. Python and NumPy scalars are accepted; NumPy arrays and lists are accepted as indices.
- Results stay on the device: a full reduction gives a 0-d device array, never a NumPy scalar.
- `float()`, `int()`, `complex()` copy a one-element array to the host (as CuPy does, a device sync);
  `bool()` of a one-element array likewise, of a larger one raises ValueError; there is no `__index__`, so
  a device array cannot be a Python index or a `range()` bound. `len()` and iteration work (iteration
  gives 0-d device arrays) except on 0-d arrays (TypeError).
- `__cuda_array_interface__`, `__dlpack__`/`__dlpack_device__` (a CUDA device), `.data.ptr`, `.device`
  and `.flags` exist. The `cuda` submodule has the streams, devices and runtime calls the engine uses.

The memory is a NumPy array (`_a`), which only the kernel launcher (kernels/cuda/_launch.py) and this module
touch. Everything runs synchronously, as the simulator does.
"""
import copy as _copy
import numbers
import warnings

import numpy as np

# cupy/__init__.py's public names (CuPy at commit 6b6d956): `cupy.<name>` for any other raises AttributeError
_NAMES = frozenset("""
AxisError ComplexWarning ElementwiseKernel Inf Infinity ModuleDeprecationWarning NAN NINF NZERO NaN PINF PZERO
RankWarning RawKernel RawModule ReductionKernel TooHardError VisibleDeprecationWarning abs absolute acos acosh add
all allclose alltrue amax amin angle any append apply_along_axis apply_over_axes arange arccos arccosh arcsin
arcsinh arctan arctan2 arctanh argmax argmin argpartition argsort argwhere around array array2string array_equal
array_equiv array_repr array_split array_str asanyarray asarray asarray_chkfinite ascontiguousarray asfarray
asfortranarray asin asinh asnumpy astype atan atan2 atanh atleast_1d atleast_2d atleast_3d average bartlett
base_repr binary_repr bincount bitwise_and bitwise_count bitwise_invert bitwise_left_shift bitwise_not bitwise_or
bitwise_right_shift bitwise_xor blackman bool_ broadcast broadcast_arrays broadcast_to byte byte_bounds c_ can_cast
cbrt cdouble ceil cfloat choose clear_memo clip column_stack common_type complex128 complex64 complex_
complexfloating compress concat concatenate conj conjugate convolve copy copysign copyto corrcoef correlate cos
cosh count_nonzero cov cross csingle cuda cumprod cumproduct cumsum cumulative_prod cumulative_sum deg2rad degrees
delete diag diag_indices diag_indices_from diagflat diagonal diff digitize disable_experimental_feature_warning
divide divmod dot double dsplit dstack dtype e ediff1d einsum empty empty_like equal euler_gamma exceptions exp
exp2 expand_dims expm1 extract eye fabs fft fill_diagonal finfo fix flatiter flatnonzero flip fliplr flipud
float16 float32 float64 float_ float_power floating floor floor_divide fmax fmin fmod format_float_positional
format_float_scientific frexp fromDlpack from_dlpack frombuffer fromfile fromfunction fromiter fromstring full
full_like fuse gcd generic genfromtxt get_array_module get_default_memory_pool get_default_pinned_memory_pool
get_printoptions gradient greater greater_equal half hamming hanning heaviside histogram histogram2d histogramdd
hsplit hstack hypot i0 identity iinfo imag in1d index_exp indices inexact inf infty inner int16 int32 int64 int8
int_ intc integer interp intersect1d intp invert is_available isclose iscomplex iscomplexobj isdtype isfinite
isfortran isin isinf isnan isneginf isposinf isreal isrealobj isscalar issctype issubclass_ issubdtype issubsctype
iterable ix_ kaiser kron lcm ldexp left_shift less less_equal lexsort linalg linspace load loadtxt log log10 log1p
log2 logaddexp logaddexp2 logical_and logical_not logical_or logical_xor logspace longlong make_aligned_dtype
mask_indices matmul matrix_transpose max maximum may_share_memory mean median memoize meshgrid mgrid min
min_scalar_type minimum mintypecode mod modf moveaxis msort multiply nan nan_to_num nanargmax nanargmin nancumprod
nancumsum nanmax nanmean nanmedian nanmin nanprod nanstd nansum nanvar ndarray ndim ndindex negative newaxis
nextafter nonzero not_equal number obj2sctype ogrid ones ones_like outer packbits pad partition percentile
permute_dims pi piecewise place poly poly1d polyadd polyfit polymul polynomial polysub polyval positive pow power
printoptions prod product promote_types ptp put put_along_axis putmask quantile r_ rad2deg radians random ravel
ravel_multi_index real real_if_close reciprocal remainder repeat require reshape resize result_type right_shift
rint roll rollaxis roots rot90 round round_ row_stack s_ save savetxt savez savez_compressed sctype2char
searchsorted select set_printoptions setdiff1d setxor1d shape shares_memory short show_config sign signbit
signedinteger sin sinc single singlecomplex sinh size sometrue sort sort_complex split sqrt square squeeze stack std
subtract sum swapaxes take take_along_axis tan tanh tensordot testing tile trace transpose trapezoid trapz tri tril
tril_indices tril_indices_from trim_zeros triu triu_indices triu_indices_from true_divide trunc typename ubyte ufunc
uint uint16 uint32 uint64 uint8 uintc uintp ulonglong union1d unique unique_all unique_counts unique_inverse
unique_values unpackbits unravel_index unsignedinteger unwrap ushort vander var vdot vectorize vsplit vstack where
who zeros zeros_like""".split())
_SUBMODULE_NAMES = {
    "linalg": frozenset("cholesky cond cross det eig eigh eigvals eigvalsh inv lstsq matmul matrix_power "
                        "matrix_rank matrix_transpose norm pinv qr slogdet solve svd tensorinv tensorsolve".split()),
    "fft": frozenset("fft fft2 fftfreq fftn fftshift hfft ifft ifft2 ifftn ifftshift ihfft irfft irfft2 irfftn "
                     "rfft rfft2 rfftfreq rfftn".split()),
}
# cupy.ndarray's public methods and attributes (core.pyx); numpy.ndarray's others (ctypes, resize, itemset,
# setflags, __array_interface__, ...) are absent, as on a GPU
_METHODS = frozenset("""all any argmax argmin argpartition argsort astype byteswap choose clip compress conj conjugate
copy cumprod cumsum diagonal dot dump dumps fill flatten item max mean min nonzero partition prod ptp put ravel
repeat reshape round searchsorted sort squeeze std sum swapaxes take tobytes tofile tolist trace transpose var
view""".split())
# functions whose every array argument is data (a NumPy array of ints is refused there too)
_DATA_ARGS = frozenset("concatenate concat stack hstack vstack dstack column_stack where dot matmul einsum "
                       "tensordot inner outer vdot kron copyto".split())
# host data becomes device data only through these
_FROM_HOST = frozenset(("array", "asarray", "asanyarray"))


def _unsupported(x):
    return TypeError(f"Unsupported type {type(x)}")


def _unwrap(x, data=False):
    """An argument as NumPy sees it: device arrays as their memory; host arrays refused, as CuPy does, except
    integer ones outside `data` arguments: CuPy reads shapes, axes and indices by iterating them, so a NumPy
    array of ints passes there (`d.transpose(np.argsort(axes))`)."""
    if type(x) is ndarray:
        return x._a
    if isinstance(x, np.ndarray):
        if data or x.dtype.kind not in "iu":
            raise _unsupported(x)
        return x
    if type(x) in (list, tuple):
        return type(x)(_unwrap(v, data) for v in x)
    return x


def _host_or_device(x):
    """array()/asarray()'s input: host data as it is, device arrays (also inside lists) as their memory."""
    if type(x) is ndarray:
        return x._a
    if type(x) in (list, tuple):
        return type(x)(_host_or_device(v) for v in x)
    return x


def _wrap(x):
    """A NumPy result as the device data CuPy would return (scalars as 0-d arrays)."""
    if isinstance(x, np.ndarray):
        return ndarray._of(x)
    if isinstance(x, np.generic):
        return ndarray._of(np.asarray(x))
    if type(x) in (list, tuple):
        return type(x)(_wrap(v) for v in x)
    return x


def _operand(x):
    """A binary operator's other operand: a device array or a scalar (Python or NumPy); None for anything else,
    so that its own reflected operator gets a turn."""
    if type(x) is ndarray:
        return x._a
    if isinstance(x, np.ndarray):
        raise _unsupported(x)
    if isinstance(x, (numbers.Number, np.generic)):
        return x
    return None


class _Flags:
    def __init__(self, a):
        self.c_contiguous = bool(a.flags.c_contiguous)
        self.f_contiguous = bool(a.flags.f_contiguous)
        self.owndata = bool(a.flags.owndata)

    def __getitem__(self, key):
        return {"C_CONTIGUOUS": self.c_contiguous, "F_CONTIGUOUS": self.f_contiguous,
                "OWNDATA": self.owndata}[key]


class _MemoryPointer:
    def __init__(self, a):
        self.ptr = int(a.__array_interface__["data"][0])
        self.device = cuda.Device(0)


class ndarray:
    """cupy.ndarray's stand-in: device memory (a NumPy array the engine never sees)."""

    __slots__ = ("_a", "__weakref__")
    __hash__ = None

    def __init__(self, shape, dtype=float, memptr=None, strides=None, order="C"):
        if memptr is not None or strides is not None:
            raise NotImplementedError("the simulator's cupy.ndarray takes no memptr/strides")
        self._a = np.empty(shape, dtype, order=order)

    @classmethod
    def _of(cls, a):
        obj = object.__new__(cls)
        obj._a = a
        return obj

    # --- attributes ------------------------------------------------------------------------------------
    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: self._a.size)
    itemsize = property(lambda self: self._a.itemsize)
    nbytes = property(lambda self: self._a.nbytes)
    strides = property(lambda self: self._a.strides)
    flags = property(lambda self: _Flags(self._a))
    data = property(lambda self: _MemoryPointer(self._a))
    device = property(lambda self: cuda.Device(0))
    T = property(lambda self: ndarray._of(self._a.T))
    mT = property(lambda self: ndarray._of(np.swapaxes(self._a, -1, -2)))
    real = property(lambda self: ndarray._of(self._a.real))
    imag = property(lambda self: ndarray._of(self._a.imag))
    flat = property(lambda self: ndarray._of(self._a.reshape(-1)) if self._a.flags.c_contiguous
                    else ndarray._of(self._a.flatten()))

    @property
    def base(self):
        return None if self._a.base is None else ndarray._of(self._a.base)

    @property
    def __cuda_array_interface__(self):
        a = self._a
        return {"shape": a.shape, "typestr": a.dtype.str, "version": 3,
                "data": (int(a.__array_interface__["data"][0]), False),
                "strides": None if a.flags.c_contiguous else a.strides}

    def __getattr__(self, name):
        if name in _METHODS:
            method = getattr(self._a, name)
            if name in ("item", "tolist", "tobytes", "dump", "dumps", "tofile"):
                return method                      # explicit host reads: Python values out

            data = name in ("dot", "put", "searchsorted", "choose", "clip")

            def call(*args, **kwargs):
                return _wrap(method(*_unwrap(args, data), **{k: _unwrap(v, data) for k, v in kwargs.items()}))
            call.__name__ = name
            return call
        raise AttributeError(f"'cupy.ndarray' object has no attribute '{name}'")

    # --- to and from the host ----------------------------------------------------------------------------
    def get(self, stream=None, order="C", out=None, blocking=True):
        """A host copy (NumPy), the only way device data reaches NumPy."""
        if out is not None:
            out[...] = self._a
            return out
        return np.array(self._a, order=order, copy=True)

    def set(self, arr, stream=None):
        if not isinstance(arr, np.ndarray):
            raise TypeError(f"Only numpy.ndarray can be set to cupy.ndarray, got {type(arr)}")
        if arr.shape != self._a.shape or arr.dtype != self._a.dtype:
            raise ValueError("shape or dtype mismatch")
        self._a[...] = arr

    def __array__(self, *args, **kwargs):
        raise TypeError("Implicit conversion to a NumPy array is not allowed. "
                        "Please use `.get()` to construct a NumPy array explicitly.")

    def __dlpack__(self, stream=None, max_version=None, dl_device=None, copy=None):
        """A DLPack capsule of this memory that says it is on CUDA device 0: host libraries refuse it (NumPy's
        from_dlpack raises), device-aware ones (mpi4py, CuPy's from_dlpack) take it, as with CuPy's."""
        return _cuda_capsule(self._a)

    def __dlpack_device__(self):
        return (2, 0)                              # kDLCUDA, device 0

    def toDlpack(self):
        return self.__dlpack__()

    def __reduce__(self):
        return _rebuild, (self.get(),)

    def __copy__(self):
        return ndarray._of(self._a.copy())

    def __deepcopy__(self, memo):
        return ndarray._of(self._a.copy())

    # --- Python conversions (each a device-to-host copy) --------------------------------------------------
    def __bool__(self):
        if self._a.size == 0:
            warnings.warn("The truth value of an empty array is ambiguous. Returning False, but in future this "
                          "will result in an error. Use `array.size > 0` to check that an array is not empty.",
                          DeprecationWarning, stacklevel=2)
            return False
        if self._a.size == 1:
            return bool(self._a.reshape(()))
        raise ValueError("The truth value of an array with more than one element is ambiguous. "
                         "Use a.any() or a.all()")

    def __float__(self):
        return float(self._a)

    def __int__(self):
        return int(self._a)

    def __complex__(self):
        return complex(self._a)

    def __len__(self):
        if self._a.ndim == 0:
            raise TypeError("len() of unsized object")
        return self._a.shape[0]

    def __iter__(self):
        if self._a.ndim == 0:
            raise TypeError("iteration over a 0-d array")
        return (self[i] for i in range(self._a.shape[0]))

    def __repr__(self):
        return repr(self._a)

    def __str__(self):
        return str(self._a)

    def __format__(self, spec):
        return format(self._a, spec)

    # --- indexing ----------------------------------------------------------------------------------------
    @staticmethod
    def _index(key):
        if type(key) is ndarray:
            return key._a
        if type(key) is tuple:
            return tuple(ndarray._index(k) for k in key)
        return key                                 # ints, slices, None, Ellipsis, lists and NumPy arrays

    def __getitem__(self, key):
        return _wrap(self._a[self._index(key)])

    def __setitem__(self, key, value):
        self._a[self._index(key)] = _unwrap(value, True)

    # --- NumPy's protocols: dispatch to the stand-in, as CuPy's ndarray does -------------------------------
    def __array_ufunc__(self, uf, method, *inputs, **kwargs):
        name = uf.__name__
        mine = _function(name) if name in _NAMES and isinstance(getattr(np, name, None), np.ufunc) else None
        if mine is None or method not in ("__call__", "outer", "at", "reduce", "accumulate", "reduceat"):
            return NotImplemented
        if "out" in kwargs:
            out = kwargs["out"]
            if len(out) != 1:
                raise ValueError("The 'out' parameter must have exactly one array value")
            kwargs["out"] = out[0]
        for x in inputs + ((kwargs["out"],) if "out" in kwargs else ()):
            if not isinstance(x, (ndarray, np.ndarray, numbers.Number, np.generic)):
                return NotImplemented
        fn = mine if method == "__call__" else getattr(mine, method)
        return fn(*inputs, **kwargs)

    def __array_function__(self, func, types, args, kwargs):
        parts = func.__module__.split(".")[1:]
        if parts and parts[0] in _SUBMODULE_NAMES:
            names, target = _SUBMODULE_NAMES[parts[0]], _submodule(parts[0])
        elif not parts or parts == ["_core"] or parts[0].startswith("_"):
            names, target = _NAMES, None
        else:
            return NotImplemented
        if func.__name__ not in names or not all(issubclass(t, (ndarray, np.ndarray)) for t in types):
            return NotImplemented
        fn = getattr(target, func.__name__) if target is not None else _function(func.__name__)
        return fn(*args, **kwargs)

    # --- operators (NumPy's semantics on device operands; host arrays refused) -----------------------------
    def _binary(self, other, op, reflected=False):
        o = _operand(other)
        if o is None:
            return NotImplemented
        with np.errstate(all="ignore"):                # a GPU raises no floating-point warnings
            return _wrap(op(o, self._a) if reflected else op(self._a, o))

    def _inplace(self, other, op):
        o = _operand(other)
        if o is None:
            return NotImplemented
        with np.errstate(all="ignore"):
            op(self._a, o, out=self._a)
        return self

    def __neg__(self):
        return ndarray._of(-self._a)

    def __pos__(self):
        return ndarray._of(+self._a)

    def __abs__(self):
        return ndarray._of(abs(self._a))

    def __invert__(self):
        return ndarray._of(~self._a)


def _def_operators():
    binary = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "truediv": np.true_divide,
              "floordiv": np.floor_divide, "mod": np.remainder, "pow": np.power, "matmul": np.matmul,
              "and": np.bitwise_and, "or": np.bitwise_or, "xor": np.bitwise_xor, "lshift": np.left_shift,
              "rshift": np.right_shift, "divmod": np.divmod}
    for name, op in binary.items():
        setattr(ndarray, f"__{name}__", lambda self, o, op=op: self._binary(o, op))
        setattr(ndarray, f"__r{name}__", lambda self, o, op=op: self._binary(o, op, reflected=True))
        if name != "divmod":
            setattr(ndarray, f"__i{name}__", lambda self, o, op=op: self._inplace(o, op))
    for name, op in {"lt": np.less, "le": np.less_equal, "gt": np.greater, "ge": np.greater_equal,
                     "eq": np.equal, "ne": np.not_equal}.items():
        setattr(ndarray, f"__{name}__", lambda self, o, op=op: self._binary(o, op))


_def_operators()


def _rebuild(host):
    return ndarray._of(np.array(host, copy=True))


# --- functions and ufuncs ------------------------------------------------------------------------------------
class ufunc:
    """A CuPy ufunc: NumPy's, on device operands only."""

    def __init__(self, np_ufunc):
        self._u = np_ufunc
        self.__name__ = np_ufunc.__name__
        self.nin, self.nout, self.nargs = np_ufunc.nin, np_ufunc.nout, np_ufunc.nargs

    def _run(self, fn, args, kwargs):
        with np.errstate(all="ignore"):
            return _wrap(fn(*_unwrap(args, True), **{k: _unwrap(v, True) for k, v in kwargs.items()}))

    def __call__(self, *args, **kwargs):
        return self._run(self._u, args, kwargs)

    def reduce(self, *args, **kwargs):
        return self._run(self._u.reduce, args, kwargs)

    def accumulate(self, *args, **kwargs):
        return self._run(self._u.accumulate, args, kwargs)

    def reduceat(self, *args, **kwargs):
        return self._run(self._u.reduceat, args, kwargs)

    def outer(self, *args, **kwargs):
        return self._run(self._u.outer, args, kwargs)

    def at(self, a, indices, b=None):
        if type(a) is not ndarray:
            raise _unsupported(a)
        self._u.at(a._a, ndarray._index(indices), *(() if b is None else (_unwrap(b, True),)))

    def __repr__(self):
        return f"<ufunc '{self.__name__}'>"


_FUNCTIONS = {}


def _function(name, source=np):
    """cupy.<name> on the stand-in: NumPy's function with device arguments unwrapped, host arrays refused
    (except by array/asarray/asanyarray, the host-to-device copies), results wrapped."""
    key = (source.__name__, name)
    fn = _FUNCTIONS.get(key)
    if fn is not None:
        return fn
    np_fn = getattr(source, name)
    if isinstance(np_fn, np.ufunc):
        fn = ufunc(np_fn)
    elif name in _FROM_HOST and source is np:
        def fn(obj, dtype=None, copy=None, order="K", **kwargs):
            if type(obj) is ndarray:
                out = np_fn(obj._a, dtype, copy=copy, order=order, **kwargs)
                return obj if out is obj._a else ndarray._of(out)
            return ndarray._of(np.array(_host_or_device(obj), dtype, copy=True, order=order, **kwargs))
    else:
        data = name in _DATA_ARGS

        def fn(*args, **kwargs):
            with np.errstate(all="ignore"):
                return _wrap(np_fn(*_unwrap(args, data), **{k: _unwrap(v, data) for k, v in kwargs.items()}))
    fn.__name__ = name
    _FUNCTIONS[key] = fn
    return fn


def asnumpy(a, stream=None, order="C", out=None, blocking=True):
    """Device arrays copied to the host; anything else through NumPy (as cupy.asnumpy)."""
    if type(a) is ndarray:
        return a.get(order=order, out=out)
    return np.asarray(a, order=order)


def get_array_module(*args):
    import sys
    return sys.modules[__name__] if any(type(a) is ndarray for a in args) else np


def _capsule_device(capsule, device_type):
    """Set the device type in a "dltensor_versioned" capsule: DLManagedTensorVersioned is {DLPackVersion (8
    bytes); void *manager_ctx; void (*deleter)(...); uint64 flags; DLTensor {void *data; DLDevice {int32
    device_type; int32 device_id}; ...}}, so the field is the int32 at byte 40."""
    import ctypes
    get = ctypes.pythonapi.PyCapsule_GetPointer
    get.restype, get.argtypes = ctypes.c_void_p, [ctypes.py_object, ctypes.c_char_p]
    ctypes.c_int32.from_address(get(capsule, b"dltensor_versioned") + 40).value = device_type
    return capsule


def _cuda_capsule(a):
    return _capsule_device(a.__dlpack__(max_version=(1, 0)), 2)   # NumPy's capsule, relabelled kDLCUDA


class _HostView:
    """A capsule from the stand-in relabelled as host memory again, for NumPy to open."""

    def __init__(self, capsule):
        self.capsule = capsule

    def __dlpack__(self, **kwargs):
        return _capsule_device(self.capsule, 1)

    def __dlpack_device__(self):
        return (1, 0)


def from_dlpack(x, *, device=None, copy=None):
    """Memory shared with a DLPack producer on the (simulated) CUDA device; host producers are refused, as
    CuPy's from_dlpack refuses CPU memory."""
    if type(x) is ndarray:
        return x
    dev = getattr(x, "__dlpack_device__", None)
    if dev is None or dev()[0] != 2:
        raise RuntimeError("CuPy (the simulator's stand-in) takes DLPack data on a CUDA device only, "
                           f"got {type(x).__name__}")
    return ndarray._of(np.from_dlpack(_HostView(x.__dlpack__())))


fromDlpack = from_dlpack


class _Submodule:
    def __init__(self, name):
        self.__name__ = "cupy." + name
        self._name = name

    def __getattr__(self, attr):
        if attr not in _SUBMODULE_NAMES[self._name]:
            raise AttributeError(f"module 'cupy.{self._name}' has no attribute '{attr}'")
        return _function(attr, getattr(np, self._name))


_SUBMODULES = {}


def _submodule(name):
    if name not in _SUBMODULES:
        _SUBMODULES[name] = _Submodule(name)
    return _SUBMODULES[name]


def __getattr__(name):
    if name in _SUBMODULE_NAMES:
        return _submodule(name)
    if name not in _NAMES or not hasattr(np, name):
        raise AttributeError(f"module 'cupy' has no attribute '{name}' (the simulator's stand-in answers only "
                             "for names that CuPy has and NumPy implements)")
    obj = getattr(np, name)
    if isinstance(obj, type(np)) and name != "exceptions":
        raise AttributeError(f"cupy.{name}: this submodule is not in the simulator's stand-in")
    if isinstance(obj, type) or not callable(obj):
        return obj                                 # dtypes, scalar types, constants: CuPy's are NumPy's
    return _function(name)


def is_available():
    return True


# --- cupy.cuda ----------------------------------------------------------------------------------------------
class _Stream:
    null = None

    def __init__(self, null=False, non_blocking=False, ptr=0):
        self.ptr = ptr

    def synchronize(self):
        pass

    def use(self):
        cuda._current = self
        return self

    def __enter__(self):
        self._prev = cuda._current
        cuda._current = self
        return self

    def __exit__(self, *exc):
        cuda._current = self._prev


class _Device:
    def __init__(self, device=None):
        device = 0 if device is None else int(device)
        if device != 0:
            raise RuntimeError(f"cudaErrorInvalidDevice: invalid device ordinal {device} (the simulator has one)")
        self.id = device
        self.compute_capability = "90"

    def use(self):
        pass

    def synchronize(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass


class _Runtime:
    @staticmethod
    def getDeviceCount():
        return 1

    @staticmethod
    def deviceSynchronize():
        pass


class _Cuda:
    Stream = _Stream
    ExternalStream = _Stream
    Device = _Device
    runtime = _Runtime()

    def __init__(self):
        self._current = _Stream()
        _Stream.null = self._current

    def get_current_stream(self, device_id=None):
        return self._current

    @staticmethod
    def is_available():
        return True


cuda = _Cuda()
