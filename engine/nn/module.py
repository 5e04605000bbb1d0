"""Module and Parameter: the bookkeeping behind layers (parameters, buffers, submodules, state dicts)."""
from collections import OrderedDict
from collections.abc import Mapping

import numpy as np

from ..autograd import bump_version
from ..backend import check_device, to_device
from ..tensor import Tensor


class Parameter(Tensor):
    """A Tensor that a Module registers as trainable (requires_grad=True unless told otherwise)."""

    def __init__(self, data, requires_grad=True):
        data = data._data if isinstance(data, Tensor) else (data if isinstance(data, np.ndarray) or hasattr(
            data, "__cuda_array_interface__") else np.asarray(data))
        super().__init__(data, requires_grad=requires_grad)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()


class Module:
    """Base class of layers. Assigning a Parameter, a Module or (with register_buffer) a Tensor to an
    attribute registers it; `parameters()`, `state_dict()`, `train()`/`eval()` and `to()` walk the tree."""

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__}.__init__ must call super().__init__() before assigning {name!r}")
        for store in (self._parameters, self._buffers, self._modules):
            store.pop(name, None)
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        elif name in self.__dict__.get("_buffer_names", ()):
            self._buffers[name] = value
        else:
            object.__setattr__(self, name, value)
            return
        self.__dict__.pop(name, None)

    def __getattr__(self, name):
        for store in ("_parameters", "_buffers", "_modules"):
            d = self.__dict__.get(store)
            if d is not None and name in d:
                return d[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute {name!r}")

    def __delattr__(self, name):
        for store in (self._parameters, self._buffers, self._modules):
            if name in store:
                del store[name]
                return
        object.__delattr__(self, name)

    def register_buffer(self, name, tensor):
        """A non-trainable Tensor saved in the state dict (running statistics); None is allowed. PyTorch's
        checks: the name is a non-empty str without '.' that is not already another attribute (KeyError)."""
        if not isinstance(name, str):
            raise TypeError(f"name: a buffer name must be a str, got {type(name).__name__}")
        if not name or "." in name:
            raise KeyError(f"name: a buffer name must be non-empty and contain no '.', got {name!r}")
        if name in self.__dict__ or name in self._parameters or name in self._modules:
            raise KeyError(f"name: attribute {name!r} already exists")
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"tensor: cannot assign a {type(tensor).__name__} to buffer {name!r} (a Tensor or "
                            f"None is required)")
        self.__dict__.setdefault("_buffer_names", set()).add(name)
        self.__setattr__(name, tensor)

    def register_parameter(self, name, param):
        if param is None:
            self._parameters.pop(name, None)
            object.__setattr__(self, name, None)
        else:
            self.__setattr__(name, param)

    def add_module(self, name, module):
        self.__setattr__(name, module)

    # ---- traversal --------------------------------------------------------------------------
    def named_modules(self, prefix=""):
        yield prefix, self
        for name, m in self._modules.items():
            if m is not None:
                yield from m.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self):
        return (m for _, m in self.named_modules())

    def children(self):
        return (m for m in self._modules.values() if m is not None)

    def named_children(self):
        return ((n, m) for n, m in self._modules.items() if m is not None)

    def named_parameters(self, prefix="", recurse=True):
        seen = set()
        mods = self.named_modules(prefix) if recurse else [(prefix, self)]
        for mprefix, m in mods:
            for name, p in m._parameters.items():
                if p is not None and id(p) not in seen:
                    seen.add(id(p))
                    yield (f"{mprefix}.{name}" if mprefix else name), p

    def parameters(self, recurse=True):
        return (p for _, p in self.named_parameters(recurse=recurse))

    def named_buffers(self, prefix=""):
        for mprefix, m in self.named_modules(prefix):
            for name, b in m._buffers.items():
                if b is not None:
                    yield (f"{mprefix}.{name}" if mprefix else name), b

    def buffers(self):
        return (b for _, b in self.named_buffers())

    def apply(self, fn):
        for m in self.children():
            m.apply(fn)
        fn(self)
        return self

    # ---- modes, grads, devices --------------------------------------------------------------
    def train(self, mode=True):
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self):
        return self.train(False)

    def zero_grad(self, set_to_none=True):
        for p in self.parameters():
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad._data[...] = 0
                bump_version(p.grad._data)

    def requires_grad_(self, requires_grad=True):
        for p in self.parameters():
            p.requires_grad = requires_grad
        return self

    def to(self, device=None, dtype=None):
        """Move (or cast) every parameter and buffer in place; returns self. `dtype` must be a float dtype
        (integer buffers keep theirs); `.to(engine.float64)` takes a dtype in the device's place, as PyTorch."""
        if isinstance(device, np.dtype) or (isinstance(device, type) and issubclass(device, np.generic)):
            device, dtype = None, device
        if dtype is not None and np.dtype(dtype).kind != "f":
            raise TypeError(f"dtype: Module.to only accepts floating point dtypes, got {np.dtype(dtype)}")
        if device is not None:
            device = check_device(device)
            for t in list(self.parameters()) + list(self.buffers()):
                t._data = to_device(t._data, device)
                if t.grad is not None:
                    t.grad._data = to_device(t.grad._data, device)
        if dtype is not None:
            dtype = np.dtype(dtype)
            for t in list(self.parameters()) + list(self.buffers()):
                if t.dtype.kind == "f":
                    t._data = t._data.astype(dtype)
        return self

    def float(self):
        return self.to(dtype=np.float32)

    def double(self):
        return self.to(dtype=np.float64)

    # ---- state ------------------------------------------------------------------------------
    def state_dict(self):
        """Name -> Tensor (detached, sharing memory) for every parameter and buffer, in registration order."""
        out = OrderedDict()
        for mprefix, m in self.named_modules():
            for name, t in list(m._parameters.items()) + list(m._buffers.items()):
                if t is not None:
                    out[f"{mprefix}.{name}" if mprefix else name] = t.detach()
        return out

    def load_state_dict(self, state_dict, strict=True):
        """Copy values in place. With strict, missing or unexpected keys raise KeyError; a shape
        mismatch always raises ValueError, a value that is not a tensor or an array TypeError; anything but a
        mapping of names to values raises TypeError. Returns (missing_keys, unexpected_keys)."""
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"state_dict: expected a dict-like mapping of names to tensors, got "
                            f"{type(state_dict).__name__}")
        own = OrderedDict()
        for mprefix, m in self.named_modules():
            for name, t in list(m._parameters.items()) + list(m._buffers.items()):
                if t is not None:
                    own[f"{mprefix}.{name}" if mprefix else name] = t
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        if strict and (missing or unexpected):
            raise KeyError(f"state_dict: missing keys {missing}, unexpected keys {unexpected}")
        for k, t in own.items():
            if k not in state_dict:
                continue
            v = state_dict[k]
            arr = v._data if isinstance(v, Tensor) else np.asarray(v)
            if arr.dtype.kind not in "fiub":
                raise TypeError(f"state_dict[{k!r}]: expected a tensor or a numeric array, got {type(v).__name__}")
            materialize = getattr(t, "materialize", None)      # a lazy module's parameter that has not run yet
            if materialize is not None:
                materialize(tuple(arr.shape))
            if tuple(arr.shape) != t.shape:
                raise ValueError(f"state_dict[{k!r}]: shape {tuple(arr.shape)} does not match the module's {t.shape}")
            t._data[...] = to_device(arr, t.device)
            bump_version(t._data)
        return missing, unexpected

    # ---- calling ----------------------------------------------------------------------------
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def extra_repr(self):
        return ""

    def __repr__(self):
        lines = [f"({n}): " + repr(m).replace("\n", "\n  ") for n, m in self._modules.items()]
        head = f"{type(self).__name__}({self.extra_repr()}"
        return head + ("\n  " + "\n  ".join(lines) + "\n)" if lines else ")")
