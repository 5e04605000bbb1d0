"""A small deep-learning engine whose hot paths are hand-written Numba kernels.

    import engine, engine.functional as F
    from engine import nn, optim
"""
from .autograd import enable_grad, inference_mode, is_grad_enabled, no_grad, set_grad_enabled
from .tensor import (Tensor, arange, as_tensor, bool_, cat, concatenate, empty, empty_like, float16, float32, float64,
                     from_dlpack, from_numpy, int8, int16, int32, int64, manual_seed, ones, ones_like, rand, randn,
                     stack, tensor, uint8, zeros, zeros_like)

__version__ = "0.1.0"


def __getattr__(name):              # lazy submodules keep `import engine` light
    import importlib
    if name in ("nn", "optim", "functional"):
        return importlib.import_module(f".{name}", __name__)
    if name in ("save", "load"):
        from . import serialization
        return getattr(serialization, name)
    raise AttributeError(f"module 'engine' has no attribute {name!r}")
