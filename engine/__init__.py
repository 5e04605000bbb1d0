"""A small deep-learning engine whose hot paths are hand-written Numba kernels.

    import engine, engine.functional as F
    from engine import nn, optim
"""
from .autograd import enable_grad, is_grad_enabled, no_grad
from .tensor import (Tensor, arange, bool_, cat, concatenate, float32, float64, int32, int64, manual_seed, ones,
                     ones_like, rand, randn, stack, tensor, zeros, zeros_like, empty)

__version__ = "0.1.0"


def __getattr__(name):              # lazy submodules keep `import engine` light
    import importlib
    if name in ("nn", "optim", "functional"):
        return importlib.import_module(f".{name}", __name__)
    if name in ("save", "load"):
        from . import serialization
        return getattr(serialization, name)
    raise AttributeError(f"module 'engine' has no attribute {name!r}")
