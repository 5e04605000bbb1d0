"""Engine ops of the recurrent family: one layer of a tanh RNN, a GRU or an LSTM over a whole sequence.

`rnn_tanh` / `gru` / `lstm` project the input of every step at once (one GEMM through the linear op, whose
backward gives dx, dW_ih, db_ih), then run the recurrence as one Function whose backward is the kernels'
hand-written backpropagation through time. The recurrence keeps hs (every step's state) and h0; the GRU
also keeps its gates (r, z, n and W_hn h + b_hn per step); the LSTM keeps hc (h_t and c_t of every step, its
one output, from which output, h_n and c_n are slices), its gates (i, f, g, o per step), h0 and c0.
"""
from .._checks import check_float_inputs, check_ndim
from ..autograd import Function
from ..backend import array_module, kernels_for
from .linear import linear

__all__ = ["rnn_tanh", "gru", "lstm"]


class RNNTanh(Function):
    """xw (T, B, H), h0 (B, H), w_hh (H, H), b_hh (H,) or None -> hs (T, B, H)."""

    @staticmethod
    def forward(ctx, xw, h0, w_hh, b_hh):
        hs = kernels_for(xw).rnn_tanh_fwd(xw, h0, w_hh, b_hh)
        ctx.save_for_backward(hs, h0, w_hh)
        return hs

    @staticmethod
    def backward(ctx, dhs):
        hs, h0, w_hh = ctx.saved
        dxw, dh0, dw, db = kernels_for(hs).rnn_tanh_bwd(dhs, hs, h0, w_hh)
        need = ctx.needs_input_grad
        return dxw if need[0] else None, dh0 if need[1] else None, dw if need[2] else None, db if need[3] else None


class GRU(Function):
    """xw (T, B, 3H), h0 (B, H), w_hh (3H, H), b_hh (3H,) or None -> hs (T, B, H)."""

    @staticmethod
    def forward(ctx, xw, h0, w_hh, b_hh):
        hs, gates = kernels_for(xw).gru_fwd(xw, h0, w_hh, b_hh)
        ctx.save_for_backward(hs, gates, h0, w_hh)
        return hs

    @staticmethod
    def backward(ctx, dhs):
        hs, gates, h0, w_hh = ctx.saved
        dxw, dh0, dw, db = kernels_for(hs).gru_bwd(dhs, hs, gates, h0, w_hh)
        need = ctx.needs_input_grad
        return dxw if need[0] else None, dh0 if need[1] else None, dw if need[2] else None, db if need[3] else None


class LSTM(Function):
    """xw (T, B, 4H), h0, c0 (B, H), w_hh (4H, H), b_hh (4H,) or None -> hc (T, B, 2H) = [h_t, c_t]."""

    @staticmethod
    def forward(ctx, xw, h0, c0, w_hh, b_hh):
        hc, gates = kernels_for(xw).lstm_fwd(xw, h0, c0, w_hh, b_hh)
        ctx.save_for_backward(hc, gates, h0, c0, w_hh)
        return hc

    @staticmethod
    def backward(ctx, dhc):
        hc, gates, h0, c0, w_hh = ctx.saved
        grads = kernels_for(hc).lstm_bwd(dhc, hc, gates, h0, c0, w_hh)
        return tuple(g if need else None for g, need in zip(grads, ctx.needs_input_grad))


def _check(gates, input, h0, w_ih, w_hh, b_ih, b_hh):
    """Validate one layer's arguments; returns (T, B, H)."""
    check_float_inputs(input=input, h0=h0, w_ih=w_ih, w_hh=w_hh, b_ih=b_ih, b_hh=b_hh)
    check_ndim("input", input, 3)
    T, B, I = input.shape
    if T == 0 or B == 0:
        raise ValueError(f"input: expected a non-empty (seq_len, batch, input_size) tensor, got shape {input.shape}")
    check_ndim("w_hh", w_hh, 2)
    H = w_hh.shape[1]
    if H == 0 or w_hh.shape[0] != gates * H:
        raise ValueError(f"w_hh: expected shape ({gates} * hidden_size, hidden_size), got {w_hh.shape}")
    check_ndim("w_ih", w_ih, 2)
    if w_ih.shape != (gates * H, I):
        raise ValueError(f"w_ih: expected shape ({gates * H}, {I}) for input_size {I}, got {w_ih.shape}")
    for name, b in (("b_ih", b_ih), ("b_hh", b_hh)):
        if b is not None and b.shape != (gates * H,):
            raise ValueError(f"{name}: expected shape ({gates * H},), got {b.shape}")
    if h0 is not None and h0.shape not in ((B, H), (1, B, H)):
        raise ValueError(f"h0: expected shape ({B}, {H}) or (1, {B}, {H}), got {h0.shape}")
    return T, B, H


def _run(fn, gates, input, h0, w_ih, w_hh, b_ih, b_hh):
    T, B, H = _check(gates, input, h0, w_ih, w_hh, b_ih, b_hh)
    xw = linear(input, w_ih, b_ih)                           # every step's input projection: one GEMM
    if h0 is None:
        h = array_module(input._data).zeros((B, H), dtype=input.dtype)
    else:
        h = h0.reshape(B, H) if h0.ndim == 3 else h0
    output = fn.apply(xw, h, w_hh, b_hh)
    h_n = output[T - 1]
    return output, (h_n if h0 is not None and h0.ndim == 2 else h_n.reshape(1, B, H))


def rnn_tanh(input, h0, w_ih, w_hh, b_ih=None, b_hh=None):
    """One layer of an Elman RNN, PyTorch's equation h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh).

    input (T, B, I); h0 (B, H), (1, B, H) or None (zeros); w_ih (H, I); w_hh (H, H); b_ih, b_hh (H,) or None.
    Returns (output (T, B, H): h_1 .. h_T, h_n: h_T shaped like h0, (1, B, H) when h0 is None)."""
    return _run(RNNTanh, 1, input, h0, w_ih, w_hh, b_ih, b_hh)


def gru(input, h0, w_ih, w_hh, b_ih=None, b_hh=None):
    """One layer of a GRU, PyTorch's equations and gate order (r, z, n):
    r = s(W_ir x + b_ir + W_hr h + b_hr), z = s(W_iz x + b_iz + W_hz h + b_hz),
    n = tanh(W_in x + b_in + r * (W_hn h + b_hn)), h' = (1 - z) * n + z * h.

    input (T, B, I); h0 (B, H), (1, B, H) or None (zeros); w_ih (3H, I); w_hh (3H, H); b_ih, b_hh (3H,) or None.
    Returns (output (T, B, H), h_n shaped like h0, (1, B, H) when h0 is None)."""
    return _run(GRU, 3, input, h0, w_ih, w_hh, b_ih, b_hh)


def lstm(input, hx, w_ih, w_hh, b_ih=None, b_hh=None):
    """One layer of an LSTM, PyTorch's equations and gate order (i, f, g, o):
    i = s(W_ii x + b_ii + W_hi h + b_hi), f = s(...), g = tanh(...), o = s(...),
    c' = f * c + i * g, h' = o * tanh(c').

    input (T, B, I); hx = (h0, c0), each (B, H) or (1, B, H), or None (zeros); w_ih (4H, I); w_hh (4H, H);
    b_ih, b_hh (4H,) or None. Returns (output (T, B, H), (h_n, c_n)) with h_n, c_n shaped like h0 ((1, B, H)
    when hx is None)."""
    if hx is not None and not (isinstance(hx, (tuple, list)) and len(hx) == 2):
        raise TypeError(f"hx: expected a pair (h0, c0) of tensors or None, got {type(hx).__name__}")
    h0, c0 = (None, None) if hx is None else hx
    T, B, H = _check(4, input, h0, w_ih, w_hh, b_ih, b_hh)
    if hx is not None:
        check_float_inputs(input=input, h0=h0, c0=c0)
        if c0.shape != h0.shape:
            raise ValueError(f"c0: expected the shape of h0 {h0.shape}, got {c0.shape}")
    xw = linear(input, w_ih, b_ih)                           # every step's input projection: one GEMM
    if hx is None:
        h = c = array_module(input._data).zeros((B, H), dtype=input.dtype)
    else:
        h, c = (h0.reshape(B, H), c0.reshape(B, H)) if h0.ndim == 3 else (h0, c0)
    hc = LSTM.apply(xw, h, c, w_hh, b_hh)
    last = hc[T - 1]
    h_n, c_n = last[:, :H], last[:, H:]
    if hx is None or h0.ndim == 3:
        h_n, c_n = h_n.reshape(1, B, H), c_n.reshape(1, B, H)
    return hc[:, :, :H], (h_n, c_n)
