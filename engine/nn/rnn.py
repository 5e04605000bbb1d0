"""Recurrent layers with PyTorch's names, parameters, initialization and shapes: `nn.RNN` (tanh) and `nn.GRU`.

Parameters per layer l: weight_ih_l{l} (G*H, I or H), weight_hh_l{l} (G*H, H), bias_ih_l{l}, bias_hh_l{l}
(G*H,), G = 1 (RNN) or 3 (GRU, gates r, z, n), all drawn from U(-1/sqrt(H), 1/sqrt(H)); so a PyTorch
module's state_dict loads as is. Each layer runs F.rnn_tanh / F.gru (one GEMM for the input projection,
then a recurrence kernel with hand-written backpropagation through time).
"""
import math
import numbers

import numpy as np

from .._checks import check_positive_int, check_tensor
from ..ops.activation import dropout
from ..ops.rnn import gru, rnn_tanh
from ..tensor import cat, float32
from . import init
from .module import Module, Parameter

__all__ = ["RNN", "GRU"]


class _RNNBase(Module):
    _gates = 1
    _fn = None

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, dtype=None):
        super().__init__()
        self.input_size = check_positive_int("input_size", input_size)
        self.hidden_size = check_positive_int("hidden_size", hidden_size)
        self.num_layers = check_positive_int("num_layers", num_layers)
        if isinstance(dropout, bool) or not isinstance(dropout, numbers.Real) or not 0 <= dropout <= 1:
            raise ValueError(f"dropout: expected a probability in [0, 1], got {dropout!r}")
        if bidirectional:
            raise ValueError("bidirectional: only unidirectional recurrent layers are supported")
        self.bias, self.batch_first, self.dropout = bool(bias), bool(batch_first), float(dropout)
        G, H = self._gates * hidden_size, hidden_size
        dt = np.dtype(dtype or float32)
        for layer in range(num_layers):
            inp = input_size if layer == 0 else H
            setattr(self, f"weight_ih_l{layer}", Parameter(np.empty((G, inp), dt)))
            setattr(self, f"weight_hh_l{layer}", Parameter(np.empty((G, H), dt)))
            if bias:
                setattr(self, f"bias_ih_l{layer}", Parameter(np.empty(G, dt)))
                setattr(self, f"bias_hh_l{layer}", Parameter(np.empty(G, dt)))
        self.reset_parameters()

    def reset_parameters(self):
        k = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            init.uniform_(p, -k, k)

    def _layer_params(self, layer):
        get = lambda name: self._parameters.get(f"{name}_l{layer}")  # noqa: E731
        return get("weight_ih"), get("weight_hh"), get("bias_ih"), get("bias_hh")

    def forward(self, input, hx=None):
        """input (T, B, I) ((B, T, I) with batch_first) or unbatched (T, I); hx (num_layers, B, H) (or
        (num_layers, H) unbatched) or None for zeros. Returns (output (T, B, H) (or (B, T, H), (T, H)),
        h_n (num_layers, B, H) (or (num_layers, H)))."""
        check_tensor("input", input)
        if input.ndim not in (2, 3):
            raise ValueError(f"input: expected (seq_len, batch, {self.input_size}) or unbatched (seq_len, "
                             f"{self.input_size}), got shape {input.shape}")
        if input.shape[-1] != self.input_size:
            raise ValueError(f"input: last dim {input.shape[-1]} does not match input_size {self.input_size}")
        batched = input.ndim == 3
        x = input if not batched or not self.batch_first else input.swapaxes(0, 1)
        if not batched:
            x = x.unsqueeze(1)
        B, H, L = x.shape[1], self.hidden_size, self.num_layers
        if hx is not None:
            check_tensor("hx", hx)
            want = (L, B, H) if batched else (L, H)
            if tuple(hx.shape) != want:
                raise ValueError(f"hx: expected shape {want}, got {hx.shape}")
            if not batched:
                hx = hx.unsqueeze(1)
        finals = []
        for layer in range(L):
            if layer > 0 and self.dropout > 0 and self.training:
                x = dropout(x, self.dropout, True)
            w_ih, w_hh, b_ih, b_hh = self._layer_params(layer)
            x, h = type(self)._fn(x, None if hx is None else hx[layer:layer + 1], w_ih, w_hh, b_ih, b_hh)
            finals.append(h)
        h_n = finals[0] if L == 1 else cat(finals, dim=0)
        if not batched:
            return x.squeeze(1), h_n.squeeze(1)
        return (x.swapaxes(0, 1) if self.batch_first else x), h_n

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if not self.bias:
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        return s


class RNN(_RNNBase):
    """Elman RNN with tanh: h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh), PyTorch's nn.RNN
    (num_layers, bias, batch_first, dropout between layers; nonlinearity 'tanh' only, unidirectional)."""
    _fn = staticmethod(rnn_tanh)

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, dtype=None):
        if nonlinearity != "tanh":
            raise ValueError(f"nonlinearity: only 'tanh' is supported, got {nonlinearity!r}")
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, dtype)
        self.nonlinearity = nonlinearity


class GRU(_RNNBase):
    """Gated recurrent unit, PyTorch's nn.GRU (gates r, z, n; see F.gru for the equations)."""
    _gates = 3
    _fn = staticmethod(gru)
