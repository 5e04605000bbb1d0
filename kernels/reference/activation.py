"""float64 NumPy references: relu, sigmoid, tanh, dropout (forward and backward)."""
import numpy as np

from .attention import dropout_keep

__all__ = ["relu_fwd", "relu_bwd", "sigmoid_fwd", "sigmoid_bwd", "tanh_fwd", "tanh_bwd", "dropout_fwd", "dropout_bwd"]


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


def dropout_fwd(x, seed, p):
    """Inverted dropout: element i (flat, C order) is kept where a counter hash of (seed, i) clears p, kept
    values are scaled by 1/(1-p). The hash is attention's `dropout_keep` with one key per row (24-bit draws:
    keep where the top 24 bits of splitmix64(seed + i * C1) >= ceil(p * 2^24)), so every backend draws the
    same mask from the same seed, on the device, with nothing to copy there.
    A dropped element is exactly 0, also where x is inf or NaN (PyTorch multiplies by the mask, which gives
    NaN there). Returns (y, mask); mask (bool) is saved for backward."""
    x = np.asarray(x)
    mask = dropout_keep(seed, x.size, 1, p).reshape(x.shape)
    scale = 0.0 if p >= 1.0 else 1.0 / (1.0 - p)
    return np.where(mask, x * scale, 0.0), mask


def dropout_bwd(dout, mask, p):
    scale = 0.0 if p >= 1.0 else 1.0 / (1.0 - p)
    return np.where(mask, np.asarray(dout) * scale, 0.0)
