"""float64 NumPy references: the recurrences of a tanh RNN, a GRU and an LSTM, with hand-written backward
through time.

The input projection of every step, xw = x W_ih^T + b_ih (T, B, G*H), is one GEMM done outside (the engine
uses its linear op); these functions run only the sequential part. Gates follow PyTorch's order and
equations (G = 1 for the RNN, G = 3 for the GRU: r, z, n; G = 4 for the LSTM: i, f, g, o):

    RNN:  h_t = tanh(xw_t + h_{t-1} W_hh^T + b_hh)
    GRU:  hw = h_{t-1} W_hh^T + b_hh
          r = s(xw_r + hw_r),  z = s(xw_z + hw_z),  n = tanh(xw_n + r * hw_n),  h_t = (1 - z) n + z h_{t-1}
    LSTM: a = xw_t + h_{t-1} W_hh^T + b_hh
          i = s(a_i),  f = s(a_f),  g = tanh(a_g),  o = s(a_o),  c_t = f c_{t-1} + i g,  h_t = o tanh(c_t)

Shapes: xw (T, B, G*H), h0 (B, H), w_hh (G*H, H), b_hh (G*H,) or None; hs (T, B, H) holds h_1 .. h_T.
Backward takes dhs (T, B, H), the gradient of every step's output (the last row includes h_n's), and
returns (dxw, dh0, dw_hh, db_hh); dxw is also the gradient of b_ih summed over (T, B).
The LSTM's state is two tensors: its forward returns hc (T, B, 2H), h_t and c_t side by side (so that the
engine's op has one output, from which it slices output, h_n and c_n), its backward takes dhc and also
returns dc0.
"""
import numpy as np

__all__ = ["rnn_tanh_fwd", "rnn_tanh_bwd", "gru_fwd", "gru_bwd", "lstm_fwd", "lstm_bwd"]


def _sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _bias(b, n, dtype):
    return np.zeros(n, dtype) if b is None else b


def rnn_tanh_fwd(xw, h0, w_hh, b_hh):
    """-> hs (T, B, H). Backward needs hs and h0 (nothing else is saved)."""
    T = xw.shape[0]
    b = _bias(b_hh, w_hh.shape[0], xw.dtype)
    hs = np.empty((T,) + h0.shape, dtype=xw.dtype)
    h = h0
    for t in range(T):
        h = np.tanh(xw[t] + h @ w_hh.T + b)
        hs[t] = h
    return hs


def rnn_tanh_bwd(dhs, hs, h0, w_hh):
    """-> (dxw (T, B, H), dh0 (B, H), dw_hh (H, H), db_hh (H,))."""
    T = hs.shape[0]
    dxw = np.empty_like(hs)
    dh = np.zeros_like(h0)
    for t in range(T - 1, -1, -1):
        da = (dh + dhs[t]) * (1.0 - hs[t] ** 2)
        dxw[t] = da
        dh = da @ w_hh
    hprev = np.concatenate([h0[None], hs[:-1]])
    dw = np.einsum("tbg,tbk->gk", dxw, hprev)
    return dxw, dh, dw, dxw.sum(axis=(0, 1))


def gru_fwd(xw, h0, w_hh, b_hh):
    """-> (hs (T, B, H), gates (T, 4H, B)): gates holds r, z, n and hw_n = (h W_hn^T + b_hn) per step,
    batch-minor (the layout the CPU kernel works in), all that backward needs besides hs and h0."""
    T, H = xw.shape[0], h0.shape[1]
    b = _bias(b_hh, w_hh.shape[0], xw.dtype)
    hs = np.empty((T,) + h0.shape, dtype=xw.dtype)
    gates = np.empty((T, 4 * H, h0.shape[0]), dtype=xw.dtype)
    h = h0
    for t in range(T):
        hw = h @ w_hh.T + b
        r = _sigmoid(xw[t, :, :H] + hw[:, :H])
        z = _sigmoid(xw[t, :, H:2 * H] + hw[:, H:2 * H])
        n = np.tanh(xw[t, :, 2 * H:] + r * hw[:, 2 * H:])
        h = (1.0 - z) * n + z * h
        hs[t] = h
        gates[t] = np.concatenate([r, z, n, hw[:, 2 * H:]], axis=1).T
    return hs, gates


def gru_bwd(dhs, hs, gates, h0, w_hh):
    """-> (dxw (T, B, 3H), dh0 (B, H), dw_hh (3H, H), db_hh (3H,))."""
    T, H = hs.shape[0], h0.shape[1]
    dxw = np.empty(hs.shape[:2] + (3 * H,), dtype=hs.dtype)
    dhw = np.empty_like(dxw)                    # gradient of hw = h W_hh^T + b_hh
    dh = np.zeros_like(h0)
    for t in range(T - 1, -1, -1):
        hp = hs[t - 1] if t > 0 else h0
        r, z, n, hwn = (gates[t, i * H:(i + 1) * H].T for i in range(4))
        g = dh + dhs[t]
        dn = g * (1.0 - z) * (1.0 - n ** 2)
        dz = g * (hp - n) * z * (1.0 - z)
        dr = dn * hwn * r * (1.0 - r)
        dxw[t] = np.concatenate([dr, dz, dn], axis=1)
        dhw[t] = np.concatenate([dr, dz, dn * r], axis=1)
        dh = g * z + dhw[t] @ w_hh
    hprev = np.concatenate([h0[None], hs[:-1]])
    dw = np.einsum("tbg,tbk->gk", dhw, hprev)
    return dxw, dh, dw, dhw.sum(axis=(0, 1))


def lstm_fwd(xw, h0, c0, w_hh, b_hh):
    """xw (T, B, 4H), h0, c0 (B, H) -> (hc (T, B, 2H): [h_t, c_t] per step, gates (T, 4H, B): i, f, g, o
    batch-minor). Backward needs hc, gates, h0 and c0 (tanh(c_t) is recomputed)."""
    T, B, H = xw.shape[0], h0.shape[0], h0.shape[1]
    b = _bias(b_hh, w_hh.shape[0], xw.dtype)
    hc = np.empty((T, B, 2 * H), dtype=xw.dtype)
    gates = np.empty((T, 4 * H, B), dtype=xw.dtype)
    h, c = h0, c0
    for t in range(T):
        a = xw[t] + h @ w_hh.T + b
        i, f, o = _sigmoid(a[:, :H]), _sigmoid(a[:, H:2 * H]), _sigmoid(a[:, 3 * H:])
        g = np.tanh(a[:, 2 * H:3 * H])
        c = f * c + i * g
        h = o * np.tanh(c)
        hc[t, :, :H], hc[t, :, H:] = h, c
        gates[t] = np.concatenate([i, f, g, o], axis=1).T
    return hc, gates


def lstm_bwd(dhc, hc, gates, h0, c0, w_hh):
    """dhc (T, B, 2H): the gradients of every h_t and c_t -> (dxw (T, B, 4H), dh0 (B, H), dc0 (B, H),
    dw_hh (4H, H), db_hh (4H,))."""
    T, H = hc.shape[0], h0.shape[1]
    dxw = np.empty(hc.shape[:2] + (4 * H,), dtype=hc.dtype)
    dh, dc = np.zeros_like(h0), np.zeros_like(c0)
    for t in range(T - 1, -1, -1):
        i, f, g, o = (gates[t, k * H:(k + 1) * H].T for k in range(4))
        cp = hc[t - 1, :, H:] if t > 0 else c0
        tc = np.tanh(hc[t, :, H:])
        gh = dh + dhc[t, :, :H]
        dct = dc + dhc[t, :, H:] + gh * o * (1.0 - tc ** 2)
        dxw[t] = np.concatenate([dct * g * i * (1.0 - i), dct * cp * f * (1.0 - f), dct * i * (1.0 - g ** 2),
                                 gh * tc * o * (1.0 - o)], axis=1)
        dc = dct * f
        dh = dxw[t] @ w_hh
    hprev = np.concatenate([h0[None], hc[:-1, :, :H]])
    dw = np.einsum("tbg,tbk->gk", dxw, hprev)
    return dxw, dh, dc, dw, dxw.sum(axis=(0, 1))
