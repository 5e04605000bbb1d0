"""float64 NumPy references: relu, sigmoid, tanh, gelu, dropout (forward and backward)."""
import math

import numpy as np

from ..common import GELU_C, GELU_K, GELU_X2_MAX, dropout_scale
from .attention import dropout_keep

__all__ = ["relu_fwd", "relu_bwd", "sigmoid_fwd", "sigmoid_bwd", "tanh_fwd", "tanh_bwd", "gelu_fwd", "gelu_bwd",
           "dropout_fwd", "dropout_bwd"]


def relu_fwd(x):
    """max(x, 0), NaN propagating (PyTorch's relu(NaN) is NaN)."""
    x = np.asarray(x)
    return np.where(x < 0, np.zeros_like(x), x)


def relu_bwd(dout, y):
    """y is relu's output: the gradient passes where the output is not <= 0 (positive or NaN, as PyTorch)."""
    y = np.asarray(y)
    return np.where(y <= 0, 0.0, np.asarray(dout, dtype=np.float64))


def sigmoid_fwd(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))      # stable for any x


def sigmoid_bwd(dout, y):
    return dout * y * (1.0 - y)


def tanh_fwd(x):
    return np.tanh(x)


def tanh_bwd(dout, y):
    return dout * (1.0 - y * y)


_erfc = np.vectorize(math.erfc, otypes=[np.float64])


def _gelu_tanh_parts(x):
    """u = K (x + C x^3), e = exp(-2|u|), s = 1 / (1 + e), sigma(2u) = s (u >= 0) or e s: no overflow."""
    u = GELU_K * (x + GELU_C * x * x * x)
    e = np.exp(-2.0 * np.abs(u))
    s = 1.0 / (1.0 + e)
    return u, e, s, np.where(u >= 0, s, e * s)


def gelu_fwd(x, approximate="none"):
    """PyTorch's gelu. 'none': x Phi(x) = 0.5 x (1 + erf(x / sqrt 2)), written 0.5 x erfc(-x / sqrt 2), which
    does not cancel for negative x. 'tanh': 0.5 x (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3), written
    x sigma(2u) (the same function, without the cancellation of 1 + tanh(u) near -1).
    At the infinities it is PyTorch's: gelu(+inf) = inf, gelu(-inf) = NaN (-inf * 0); NaN gives NaN."""
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        if approximate == "tanh":
            return x * _gelu_tanh_parts(x)[3]
        return 0.5 * x * _erfc(-x / math.sqrt(2.0))


def gelu_bwd(dout, x, approximate="none"):
    """dx from the forward's input x. 'none': dout (Phi(x) + x phi(x)), phi the standard normal density.
    'tanh': dout (sigma(2u) + 2 x sigma(2u) (1 - sigma(2u)) u'), u' = K (1 + 3C x^2), with sigma (1 - sigma)
    = e s^2; x^2 in u' is clamped at 1e4 (there e = 0 already, so nothing changes), so that a huge finite x
    gives the limit (1 or 0) instead of 0 * inf = NaN. At x = +-inf the gradient is NaN (x * 0), as PyTorch's."""
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        if approximate == "tanh":
            _, e, s, sig = _gelu_tanh_parts(x)
            du2 = 2.0 * GELU_K * (1.0 + 3.0 * GELU_C * np.minimum(x * x, GELU_X2_MAX))
            return dout * (sig + x * e * s * s * du2)
        pdf = np.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)
        return dout * (0.5 * _erfc(-x / math.sqrt(2.0)) + x * pdf)


def dropout_fwd(x, seed, p):
    """Inverted dropout: element i (flat, C order) is kept where a counter hash of (seed, i) clears p, kept
    values are scaled by 1/(1-p). The hash is attention's `dropout_keep` with one key per row (24-bit draws:
    keep where the top 24 bits of splitmix64(seed + i * C1) >= ceil(p * 2^24)), so every backend draws the
    same mask from the same seed, on the device, with nothing to copy there.
    A dropped element is exactly 0, also where x is inf or NaN (PyTorch multiplies by the mask, which gives
    NaN there). Returns (y, mask); mask (bool) is saved for backward."""
    x = np.asarray(x)
    mask = dropout_keep(seed, x.size, 1, p).reshape(x.shape)
    return np.where(mask, x * dropout_scale(p), 0.0), mask


def dropout_bwd(dout, mask, p):
    return np.where(mask, np.asarray(dout) * dropout_scale(p), 0.0)
