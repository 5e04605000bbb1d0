"""Recurrent layers with PyTorch's names, parameters, initialization and shapes: `nn.RNN` (tanh), `nn.GRU` and
`nn.LSTM`.

Parameters per layer l: weight_ih_l{l} (G*H, I or H), weight_hh_l{l} (G*H, H), bias_ih_l{l}, bias_hh_l{l}
(G*H,), G = 1 (RNN), 3 (GRU, gates r, z, n) or 4 (LSTM, gates i, f, g, o), all drawn from
U(-1/sqrt(H), 1/sqrt(H)); so a PyTorch module's state_dict loads as is. `_flat_weights_names` lists them in
PyTorch's order (code written for PyTorch reads it). Each layer runs F.rnn_tanh / F.gru / F.lstm (one GEMM
for the input projection, then a recurrence kernel with hand-written backpropagation through time).
"""
import math
import numbers

import numpy as np

from .._checks import check_positive_int, check_tensor
from ..ops.activation import dropout
from ..ops.rnn import gru, lstm, rnn_tanh
from ..tensor import Tensor, cat, float32
from . import init
from .module import Module, Parameter

__all__ = ["RNN", "GRU", "LSTM"]


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

    @property
    def _flat_weights_names(self):
        """PyTorch's list of this layer's parameter names in order: weight_ih_l0, weight_hh_l0, bias_ih_l0,
        bias_hh_l0, weight_ih_l1, ... (the biases only with bias=True)."""
        kinds = ("weight_ih", "weight_hh") + (("bias_ih", "bias_hh") if self.bias else ())
        return [f"{k}_l{layer}" for layer in range(self.num_layers) for k in kinds]

    @property
    def _flat_weights(self):
        return [self._parameters[name] for name in self._flat_weights_names]

    def reset_parameters(self):
        k = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            init.uniform_(p, -k, k)

    def _layer_params(self, layer):
        get = lambda name: self._parameters.get(f"{name}_l{layer}")  # noqa: E731
        return get("weight_ih"), get("weight_hh"), get("bias_ih"), get("bias_hh")

    def _check_state(self, name, h, batched, B):
        """One state tensor (num_layers, B, H) ((num_layers, H) unbatched), as (num_layers, B, H)."""
        check_tensor(name, h)
        want = (self.num_layers, B, self.hidden_size) if batched else (self.num_layers, self.hidden_size)
        if tuple(h.shape) != want:
            raise ValueError(f"{name}: expected shape {want}, got {h.shape}")
        return h if batched else h.unsqueeze(1)

    def _states(self, hx, batched, B):
        """hx -> a tuple of state tensors (num_layers, B, H) (one; the LSTM's two), or None."""
        if hx is None:
            return None
        if isinstance(hx, Tensor):
            return (self._check_state("hx", hx, batched, B),)
        raise TypeError(f"hx: expected a Tensor or None, got {type(hx).__name__}")

    def _run_layer(self, x, layer, states):
        """One layer over the sequence: (output (T, B, H), its final state as a tuple of (1, B, H) tensors)."""
        h0 = None if states is None else states[0][layer:layer + 1]
        out, h = type(self)._fn(x, h0, *self._layer_params(layer))
        return out, (h,)

    def forward(self, input, hx=None):
        """input (T, B, I) ((B, T, I) with batch_first) or unbatched (T, I); hx (num_layers, B, H) (or
        (num_layers, H) unbatched) or None for zeros (the LSTM: a pair (h0, c0) of such tensors). Returns
        (output (T, B, H) (or (B, T, H), (T, H)), h_n (num_layers, B, H) (or (num_layers, H)); the LSTM's
        second element is the pair (h_n, c_n))."""
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
        states = self._states(hx, batched, x.shape[1])
        finals = []
        for layer in range(self.num_layers):
            if layer > 0 and self.dropout > 0 and self.training:
                x = dropout(x, self.dropout, True)
            x, fin = self._run_layer(x, layer, states)
            finals.append(fin)
        final = tuple(f[0] if len(finals) == 1 else cat(f, dim=0) for f in zip(*finals))
        if not batched:
            x, final = x.squeeze(1), tuple(f.squeeze(1) for f in final)
        elif self.batch_first:
            x = x.swapaxes(0, 1)
        return x, (final if len(final) > 1 else final[0])

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


class LSTM(_RNNBase):
    """Long short-term memory, PyTorch's nn.LSTM (gates i, f, g, o; see F.lstm for the equations): the state
    is a pair (h, c); forward(input, (h0, c0)) returns (output, (h_n, c_n)). num_layers, bias, batch_first,
    dropout between layers; proj_size 0 only, unidirectional. The recurrence runs the LSTM kernels (forward
    and hand-written backward through time)."""
    _gates = 4

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, proj_size=0, dtype=None):
        if proj_size != 0:
            raise ValueError(f"proj_size: only 0 (no projection) is supported, got {proj_size!r}")
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, dtype)
        self.proj_size = 0

    def _states(self, hx, batched, B):
        if hx is None:
            return None
        if not (isinstance(hx, (tuple, list)) and len(hx) == 2):
            raise TypeError(f"hx: expected a pair (h0, c0) of tensors or None, got {type(hx).__name__}")
        return self._check_state("hx[0]", hx[0], batched, B), self._check_state("hx[1]", hx[1], batched, B)

    def _run_layer(self, x, layer, states):
        hx = None if states is None else (states[0][layer:layer + 1], states[1][layer:layer + 1])
        out, (h, c) = lstm(x, hx, *self._layer_params(layer))
        return out, (h, c)
