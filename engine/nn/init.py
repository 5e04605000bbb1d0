"""In-place parameter initializers, PyTorch's names and formulas (`engine.nn.init.kaiming_uniform_`, ...).

Each fills `tensor._data` from the engine's generator (`engine.manual_seed`) or the one passed in. The random
ones need a floating-point tensor (TypeError otherwise); the fan-based ones leave a zero-element tensor as
it is.
"""
import math
import numbers

import numpy as np

from ..autograd import bump_version, no_grad
from ..backend import device_of, to_device
from ..tensor import Tensor, default_generator

__all__ = ["calculate_gain", "uniform_", "normal_", "constant_", "zeros_", "ones_", "xavier_uniform_",
           "xavier_normal_", "kaiming_uniform_", "kaiming_normal_"]


def calculate_gain(nonlinearity, param=None):
    gains = {"linear": 1.0, "conv2d": 1.0, "sigmoid": 1.0, "tanh": 5.0 / 3, "relu": math.sqrt(2.0), "selu": 0.75}
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        if isinstance(slope, bool) or not isinstance(slope, numbers.Real):
            raise ValueError(f"param: negative_slope {slope!r} is not a valid number")
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity not in gains:
        raise ValueError(f"nonlinearity: unsupported {nonlinearity!r}")
    return gains[nonlinearity]


def _fans(tensor):
    if tensor.ndim < 2:
        raise ValueError(f"tensor: fan in and fan out need at least 2 dims, got shape {tensor.shape}")
    receptive = int(np.prod(tensor.shape[2:])) if tensor.ndim > 2 else 1
    return tensor.shape[1] * receptive, tensor.shape[0] * receptive


def _check_float(tensor):
    if not isinstance(tensor, Tensor):
        raise TypeError(f"tensor: expected a Tensor, got {type(tensor).__name__}")
    if tensor.dtype.kind != "f":
        raise TypeError(f"tensor: random initialization needs a floating-point tensor, got {tensor.dtype}")


def _fill(tensor, values):
    with no_grad():
        tensor._data[...] = to_device(values.astype(tensor.dtype, copy=False), device_of(tensor._data))
    bump_version(tensor._data)
    return tensor


def uniform_(tensor, a=0.0, b=1.0, generator=None):
    """U(a, b); a <= b (PyTorch's rule)."""
    _check_float(tensor)
    if not a <= b:
        raise ValueError(f"a, b: uniform_ expects a <= b, got a={a} > b={b}")
    return _fill(tensor, (generator or default_generator()).uniform(a, b, tensor.shape))


def normal_(tensor, mean=0.0, std=1.0, generator=None):
    """N(mean, std^2); std >= 0 (PyTorch's rule)."""
    _check_float(tensor)
    if not std >= 0:
        raise ValueError(f"std: normal_ expects std >= 0, got {std}")
    return _fill(tensor, (generator or default_generator()).normal(mean, std, tensor.shape))


def constant_(tensor, val):
    return _fill(tensor, np.full(tensor.shape, val))


def zeros_(tensor):
    return constant_(tensor, 0.0)


def ones_(tensor):
    return constant_(tensor, 1.0)


def _empty(tensor):
    """A zero-element tensor: the fan-based initializers leave it as it is (PyTorch warns, and its
    xavier_normal_ of a (0, 0) tensor raises ZeroDivisionError)."""
    _check_float(tensor)
    return tensor._data.size == 0


def xavier_uniform_(tensor, gain=1.0, generator=None):
    fan_in, fan_out = _fans(tensor)
    if _empty(tensor):
        return tensor
    a = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -a, a, generator)


def xavier_normal_(tensor, gain=1.0, generator=None):
    fan_in, fan_out = _fans(tensor)
    if _empty(tensor):
        return tensor
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), generator)


def _kaiming_std(tensor, a, mode, nonlinearity, check_only=False):
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode: expected 'fan_in' or 'fan_out', got {mode!r}")
    fan = _fans(tensor)[0 if mode == "fan_in" else 1]
    gain = calculate_gain(nonlinearity, a)
    return None if check_only else gain / math.sqrt(fan)


def kaiming_uniform_(tensor, a=0.0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    if _empty(tensor):
        _kaiming_std(tensor, a, mode, nonlinearity, check_only=True)
        return tensor
    bound = math.sqrt(3.0) * _kaiming_std(tensor, a, mode, nonlinearity)
    return uniform_(tensor, -bound, bound, generator)


def kaiming_normal_(tensor, a=0.0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    if _empty(tensor):
        _kaiming_std(tensor, a, mode, nonlinearity, check_only=True)
        return tensor
    return normal_(tensor, 0.0, _kaiming_std(tensor, a, mode, nonlinearity), generator)
