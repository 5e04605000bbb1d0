"""A small deep-learning engine whose hot paths are hand-written Numba kernels.

    import engine, engine.functional as F
    from engine import nn, optim

The torch.* functions *Dive into Deep Learning* uses are here under PyTorch's names (engine.matmul,
engine.normal, engine.sort, ...), so that `import engine as torch` runs the book's code.
"""
import builtins as _builtins

from .autograd import enable_grad, inference_mode, is_grad_enabled, no_grad, set_grad_enabled
from ._capture import CaptureError, compile  # noqa: A004  (engine.compile, as torch.compile)
from .tensor import (Tensor, arange, as_tensor, bool_, cat, concatenate, empty, empty_like, float16, float32, float64,
                     from_dlpack, from_numpy, int8, int16, int32, int64, manual_seed, ones, ones_like, rand, randn,
                     stack, tensor, uint8, zeros, zeros_like)
from .creation import eye, full, full_like, linspace, logspace  # noqa: E402
from .functions.dtypes import promote_types, result_type  # noqa: E402
from .functions.math import *  # noqa: F401,F403,E402
from .functions.reduce import *  # noqa: F401,F403,E402
from .functions.linalg import *  # noqa: F401,F403,E402
from .functions.shape import *  # noqa: F401,F403,E402
from .functions.random import *  # noqa: F401,F403,E402
from .functions import reduce as _reduce  # noqa: E402

__version__ = "0.1.0"


class return_types:                 # noqa: N801  (torch.return_types: the named tuples of max(dim), sort, topk)
    max, min, sort, topk = _reduce.return_max, _reduce.return_min, _reduce.return_sort, _reduce.return_topk


class device(_builtins.str):        # noqa: N801
    """torch.device: a device name ('cpu', 'cuda', 'cuda:0') usable wherever the engine takes one."""

    def __new__(cls, type, index=None):
        name = _builtins.str(type) if index is None else f"{type}:{index}"
        kind = name.split(":")[0]
        if kind not in ("cpu", "cuda"):
            raise ValueError(f"device: unknown device {name!r}; expected 'cpu' or 'cuda'")
        self = super().__new__(cls, name)
        self.type = kind
        self.index = _builtins.int(name.split(":")[1]) if ":" in name else None
        return self

    def __repr__(self):
        return f"device(type='{self.type}'" + (f", index={self.index})" if self.index is not None else ")")


def is_tensor(obj):
    return isinstance(obj, Tensor)


def is_floating_point(input):
    return input.dtype.kind == "f"


def get_default_dtype():
    return float32


def __getattr__(name):              # lazy submodules keep `import engine` light
    import importlib
    if name in ("nn", "optim", "functional", "utils", "cuda", "datasets", "distributed", "distributions"):
        return importlib.import_module(f".{name}", __name__)
    if name in ("save", "load"):
        from . import serialization
        return getattr(serialization, name)
    raise AttributeError(f"module 'engine' has no attribute {name!r}")


# PyTorch's dtype aliases (engine.long, engine.float, ...); last, so that they never shadow the builtins above
from .functions.dtypes import ALIASES as _ALIASES  # noqa: E402
globals().update(_ALIASES)
del _ALIASES
