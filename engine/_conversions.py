"""Tensor's conversions: Python numbers (item, float, int, bool, index), NumPy's view (__array__), DLPack,
and moves and casts (to, cuda, cpu, float, double, long, type). A mixin of engine.tensor.Tensor."""
import numpy as np

from . import autograd
from .backend import check_device, device_of, flush_checks, to_device


def _read(what):
    if autograd._CAPTURE is not None:
        autograd._CAPTURE.refuse(f"read a tensor's value into Python ({what})",
                                 "return the tensor from the step and read it after the call (a branch on a "
                                 "value, `if loss < x:`, would run only when captured)")

float16, float32, float64 = np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64)
int32, int64, bool_ = np.dtype(np.int32), np.dtype(np.int64), np.dtype(np.bool_)


class Conversions:
    def numpy(self):
        """The values as a NumPy array: the array itself on the CPU, a host copy of a "cuda" tensor."""
        _read("numpy()")
        return self._data if device_of(self._data) == "cpu" else to_device(self._data, "cpu")

    def item(self):
        _read("item()")
        if self._data.size != 1:
            raise RuntimeError(f"item(): a tensor with {self._data.size} elements cannot be converted to a Python "
                               "number")
        if device_of(self._data) != "cpu":
            flush_checks()
        return self._data.reshape(()).item()

    def tolist(self):
        _read("tolist()")
        return self.numpy().tolist()

    def _scalar(self, kind):
        if self._data.size != 1:
            raise ValueError(f"{kind}(): only one-element tensors can be converted to Python scalars, this one "
                             f"has shape {self.shape}")
        return self.item()

    def __float__(self):
        return float(self._scalar("float"))

    def __int__(self):
        return int(self._scalar("int"))

    def __complex__(self):
        return complex(self._scalar("complex"))

    def __index__(self):
        if self._data.size != 1 or self.dtype.kind not in "iu":
            raise TypeError("only integer tensors of a single element can be converted to an index")
        return int(self.item())

    def __bool__(self):
        n = self._data.size
        if n != 1:
            raise RuntimeError(f"bool(): the truth value of a tensor with {'no values' if n == 0 else f'{n} values'} "
                               "is ambiguous; use .any() or .all()")
        return bool(self.item())

    def __array__(self, dtype=None, copy=None):
        """NumPy's view of a CPU tensor (no copy). A "cuda" tensor refuses, as a CuPy array does: copy it to the
        host explicitly with .cpu() or .numpy()."""
        _read("__array__")
        if device_of(self._data) != "cpu":
            raise TypeError("a 'cuda' tensor cannot be converted to a NumPy array implicitly; copy it to the host "
                            "first with .cpu() or .numpy()")
        a = self._data
        if dtype is not None and np.dtype(dtype) != a.dtype:
            if copy is False:
                raise ValueError("__array__: a dtype change needs a copy, and copy=False was asked")
            return a.astype(dtype)
        return a.copy() if copy else a

    def __dlpack__(self, *, stream=None, max_version=None, dl_device=None, copy=None):
        """Share this tensor's memory with another library (torch.from_dlpack, np.from_dlpack, cupy.from_dlpack)."""
        if self.requires_grad:
            raise BufferError("__dlpack__: a tensor that requires grad cannot be exported; use tensor.detach()")
        kw = {k: v for k, v in (("stream", stream), ("max_version", max_version), ("dl_device", dl_device),
                                ("copy", copy)) if v is not None}
        return self._data.__dlpack__(**kw)

    def __dlpack_device__(self):
        return self._data.__dlpack_device__()

    def to(self, *args, **kwargs):
        """to(device), to(dtype), to(device, dtype), to(other) (its device and dtype), or keywords device=,
        dtype=, copy=, non_blocking= (accepted, ignored). This tensor itself when nothing changes (unless
        copy=True), else a new tensor on the tape (gradients flow back across the move and the cast)."""
        device, dtype = kwargs.pop("device", None), kwargs.pop("dtype", None)
        copy = kwargs.pop("copy", False)
        kwargs.pop("non_blocking", None)
        if kwargs:
            raise TypeError(f"to(): unexpected keyword argument {next(iter(kwargs))!r}")
        for a in args:
            if isinstance(a, Conversions):                  # a Tensor: its device and dtype
                device, dtype = a.device, a.dtype
            elif isinstance(a, str):
                device = a
            elif a is not None:
                try:
                    dtype = np.dtype(a)
                except TypeError:
                    raise TypeError(f"to(): expected a device, a dtype or a tensor, got {a!r}") from None
        from .tensor_ops import Cast, Clone, ToDevice
        t = self
        if device is not None and check_device(device) != self.device:
            t = ToDevice.apply(t, device=check_device(device))
        if dtype is not None and np.dtype(dtype) != self.dtype:
            t = Cast.apply(t, dtype=np.dtype(dtype))
        return Clone.apply(t) if copy and t is self else t

    def cuda(self, device=None, non_blocking=False):
        """A copy on "cuda" (device: an index or a name such as 'cuda:0'; the engine uses the current GPU)."""
        if device is not None and not isinstance(device, int) and str(device).split(":")[0] != "cuda":
            raise ValueError(f"device: expected a CUDA device, got {device!r}")
        return self.to("cuda")

    def cpu(self):
        return self.to("cpu")

    def float(self):
        return self.to(float32)

    def double(self):
        return self.to(float64)

    def half(self):
        return self.to(float16)

    def type(self, dtype=None):
        """With no argument, the type name ('engine.FloatTensor'); else the tensor cast to `dtype` (a dtype or a
        name such as 'torch.LongTensor'), as torch.Tensor.type."""
        from .functions import dtypes
        if dtype is None:
            return dtypes.legacy_name(self.dtype)
        return self.to(dtypes.from_legacy(dtype) if isinstance(dtype, str) else dtypes.as_dtype(dtype))

    def type_as(self, other):
        return self.to(other.dtype)

    def long(self):
        return self.to(int64)

    def int(self):
        return self.to(int32)

    def bool(self):
        return self.to(bool_)
