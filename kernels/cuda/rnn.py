"""The recurrences of a tanh RNN, a GRU and an LSTM on the GPU (kernels/reference/rnn.py states the equations and
shapes). One block per batch row runs all T steps: its threads split the hidden units, read the previous
state from hs (global memory, made visible by the block barrier between steps) and the recurrent weight from
global memory. Backward through time runs the same way and leaves each step's pre-activation gradients in
dxw (and dhw for the GRU); dW_hh and db_hh are then one GEMM and one sum over (T, B) with CuPy. The LSTM keeps
h_t and c_t side by side in hc (T, B, 2H), and its backward carries dh and dc in two (B, H) arrays."""
import math

from numba import cuda

from ._dev import TPB, contiguous, empty, xp_of
from ._launch import kernel

__all__ = ["rnn_tanh_fwd", "rnn_tanh_bwd", "gru_fwd", "gru_bwd", "lstm_fwd", "lstm_bwd"]


@cuda.jit(device=True)
def _sigmoid(x):
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


@kernel
def _rnn_fwd(xw, h0, w, b, hs):
    bi = cuda.blockIdx.x
    T, _, H = hs.shape
    for t in range(T):
        for j in range(cuda.threadIdx.x, H, TPB):
            a = xw[t, bi, j] + b[j]
            for k in range(H):
                a += w[j, k] * (hs[t - 1, bi, k] if t > 0 else h0[bi, k])
            hs[t, bi, j] = math.tanh(a)
        cuda.syncthreads()


@kernel
def _rnn_bwd(dhs, hs, w, dxw, dh):
    """dh (B, H) starts at 0 and ends as dh0."""
    bi = cuda.blockIdx.x
    T, _, H = hs.shape
    for j in range(cuda.threadIdx.x, H, TPB):
        dh[bi, j] = 0
    cuda.syncthreads()
    for t in range(T - 1, -1, -1):
        for j in range(cuda.threadIdx.x, H, TPB):
            h = hs[t, bi, j]
            dxw[t, bi, j] = (dh[bi, j] + dhs[t, bi, j]) * (1 - h * h)
        cuda.syncthreads()
        for k in range(cuda.threadIdx.x, H, TPB):
            s = 0.0
            for j in range(H):
                s += dxw[t, bi, j] * w[j, k]
            dh[bi, k] = s
        cuda.syncthreads()


@kernel
def _gru_fwd(xw, h0, w, b, hs, gates):
    bi = cuda.blockIdx.x
    T, _, H = hs.shape
    for t in range(T):
        for j in range(cuda.threadIdx.x, H, TPB):
            ar = b[j]
            az = b[H + j]
            an = b[2 * H + j]
            for k in range(H):
                hk = hs[t - 1, bi, k] if t > 0 else h0[bi, k]
                ar += w[j, k] * hk
                az += w[H + j, k] * hk
                an += w[2 * H + j, k] * hk
            r = _sigmoid(xw[t, bi, j] + ar)
            z = _sigmoid(xw[t, bi, H + j] + az)
            n = math.tanh(xw[t, bi, 2 * H + j] + r * an)
            hp = hs[t - 1, bi, j] if t > 0 else h0[bi, j]
            hs[t, bi, j] = (1 - z) * n + z * hp
            gates[t, j, bi] = r
            gates[t, H + j, bi] = z
            gates[t, 2 * H + j, bi] = n
            gates[t, 3 * H + j, bi] = an
        cuda.syncthreads()


@kernel
def _gru_bwd(dhs, hs, gates, h0, w, dxw, dhw, dh):
    bi = cuda.blockIdx.x
    T, _, H = hs.shape
    for j in range(cuda.threadIdx.x, H, TPB):
        dh[bi, j] = 0
    cuda.syncthreads()
    for t in range(T - 1, -1, -1):
        for j in range(cuda.threadIdx.x, H, TPB):
            r = gates[t, j, bi]
            z = gates[t, H + j, bi]
            n = gates[t, 2 * H + j, bi]
            hwn = gates[t, 3 * H + j, bi]
            hp = hs[t - 1, bi, j] if t > 0 else h0[bi, j]
            g = dh[bi, j] + dhs[t, bi, j]
            dn = g * (1 - z) * (1 - n * n)
            dz = g * (hp - n) * z * (1 - z)
            dr = dn * hwn * r * (1 - r)
            dxw[t, bi, j] = dr
            dxw[t, bi, H + j] = dz
            dxw[t, bi, 2 * H + j] = dn
            dhw[t, bi, j] = dr
            dhw[t, bi, H + j] = dz
            dhw[t, bi, 2 * H + j] = dn * r
        cuda.syncthreads()
        for k in range(cuda.threadIdx.x, H, TPB):
            s = (dh[bi, k] + dhs[t, bi, k]) * gates[t, H + k, bi]
            for i in range(3 * H):
                s += dhw[t, bi, i] * w[i, k]
            dh[bi, k] = s
        cuda.syncthreads()


@kernel
def _lstm_fwd(xw, h0, c0, w, b, hc, gates):
    bi = cuda.blockIdx.x
    T, _, H2 = hc.shape
    H = H2 // 2
    for t in range(T):
        for j in range(cuda.threadIdx.x, H, TPB):
            ai = xw[t, bi, j] + b[j]
            af = xw[t, bi, H + j] + b[H + j]
            ag = xw[t, bi, 2 * H + j] + b[2 * H + j]
            ao = xw[t, bi, 3 * H + j] + b[3 * H + j]
            for k in range(H):
                hk = hc[t - 1, bi, k] if t > 0 else h0[bi, k]
                ai += w[j, k] * hk
                af += w[H + j, k] * hk
                ag += w[2 * H + j, k] * hk
                ao += w[3 * H + j, k] * hk
            i = _sigmoid(ai)
            f = _sigmoid(af)
            g = math.tanh(ag)
            o = _sigmoid(ao)
            c = f * (hc[t - 1, bi, H + j] if t > 0 else c0[bi, j]) + i * g
            hc[t, bi, H + j] = c
            hc[t, bi, j] = o * math.tanh(c)
            gates[t, j, bi] = i
            gates[t, H + j, bi] = f
            gates[t, 2 * H + j, bi] = g
            gates[t, 3 * H + j, bi] = o
        cuda.syncthreads()


@kernel
def _lstm_bwd(dhc, hc, gates, c0, w, dxw, dh, dc):
    """dh, dc (B, H) start at 0 and end as dh0, dc0."""
    bi = cuda.blockIdx.x
    T, _, H2 = hc.shape
    H = H2 // 2
    for j in range(cuda.threadIdx.x, H, TPB):
        dh[bi, j] = 0
        dc[bi, j] = 0
    cuda.syncthreads()
    for t in range(T - 1, -1, -1):
        for j in range(cuda.threadIdx.x, H, TPB):
            i = gates[t, j, bi]
            f = gates[t, H + j, bi]
            g = gates[t, 2 * H + j, bi]
            o = gates[t, 3 * H + j, bi]
            tc = math.tanh(hc[t, bi, H + j])
            cp = hc[t - 1, bi, H + j] if t > 0 else c0[bi, j]
            gh = dh[bi, j] + dhc[t, bi, j]
            dct = dc[bi, j] + dhc[t, bi, H + j] + gh * o * (1 - tc * tc)
            dxw[t, bi, j] = dct * g * i * (1 - i)
            dxw[t, bi, H + j] = dct * cp * f * (1 - f)
            dxw[t, bi, 2 * H + j] = dct * i * (1 - g * g)
            dxw[t, bi, 3 * H + j] = gh * tc * o * (1 - o)
            dc[bi, j] = dct * f
        cuda.syncthreads()
        for k in range(cuda.threadIdx.x, H, TPB):
            s = 0.0
            for q in range(4 * H):
                s += dxw[t, bi, q] * w[q, k]
            dh[bi, k] = s
        cuda.syncthreads()


def _bias(b, n, like):
    return xp_of(like).zeros(n, like.dtype) if b is None else contiguous(b, like.dtype)


def _param_grads(dpre, hs, h0):
    """dW_hh = sum over (t, b) of dpre[t, b] (outer) h_{t-1}[b]; db_hh = sum of dpre over (t, b)."""
    xp = xp_of(hs)
    hprev = xp.concatenate([h0[None], hs[:-1]])
    T, B, G = dpre.shape
    dw = dpre.reshape(T * B, G).T @ hprev.reshape(T * B, -1)
    return dw, dpre.sum(axis=(0, 1))


def rnn_tanh_fwd(xw, h0, w_hh, b_hh):
    xw, h0 = contiguous(xw), contiguous(h0, xw.dtype)
    w = contiguous(w_hh, xw.dtype)
    hs = empty((xw.shape[0],) + h0.shape, xw.dtype, xw)
    if hs.size:
        _rnn_fwd[h0.shape[0], TPB](xw, h0, w, _bias(b_hh, w.shape[0], xw), hs)
    return hs


def rnn_tanh_bwd(dhs, hs, h0, w_hh):
    hs = contiguous(hs)
    dhs, h0, w = contiguous(dhs, hs.dtype), contiguous(h0, hs.dtype), contiguous(w_hh, hs.dtype)
    dxw = empty(hs.shape, hs.dtype, hs)
    dh = xp_of(hs).zeros(h0.shape, hs.dtype)
    if hs.size:
        _rnn_bwd[h0.shape[0], TPB](dhs, hs, w, dxw, dh)
    dw, db = _param_grads(dxw, hs, h0)
    return dxw, dh, dw, db


def gru_fwd(xw, h0, w_hh, b_hh):
    xw, h0 = contiguous(xw), contiguous(h0, xw.dtype)
    w = contiguous(w_hh, xw.dtype)
    T, B, H = xw.shape[0], h0.shape[0], h0.shape[1]
    hs = empty((T, B, H), xw.dtype, xw)
    gates = empty((T, 4 * H, B), xw.dtype, xw)
    if hs.size:
        _gru_fwd[B, TPB](xw, h0, w, _bias(b_hh, w.shape[0], xw), hs, gates)
    return hs, gates


def gru_bwd(dhs, hs, gates, h0, w_hh):
    hs = contiguous(hs)
    dhs, h0, w = contiguous(dhs, hs.dtype), contiguous(h0, hs.dtype), contiguous(w_hh, hs.dtype)
    gates = contiguous(gates, hs.dtype)
    T, B, H = hs.shape
    dxw = empty((T, B, 3 * H), hs.dtype, hs)
    dhw = empty((T, B, 3 * H), hs.dtype, hs)
    dh = xp_of(hs).zeros(h0.shape, hs.dtype)
    if hs.size:
        _gru_bwd[B, TPB](dhs, hs, gates, h0, w, dxw, dhw, dh)
    dw, db = _param_grads(dhw, hs, h0)
    return dxw, dh, dw, db


def lstm_fwd(xw, h0, c0, w_hh, b_hh):
    xw, h0, c0 = contiguous(xw), contiguous(h0, xw.dtype), contiguous(c0, xw.dtype)
    w = contiguous(w_hh, xw.dtype)
    T, B, H = xw.shape[0], h0.shape[0], h0.shape[1]
    hc = empty((T, B, 2 * H), xw.dtype, xw)
    gates = empty((T, 4 * H, B), xw.dtype, xw)
    if hc.size:
        _lstm_fwd[B, TPB](xw, h0, c0, w, _bias(b_hh, w.shape[0], xw), hc, gates)
    return hc, gates


def lstm_bwd(dhc, hc, gates, h0, c0, w_hh):
    hc = contiguous(hc)
    dhc, gates = contiguous(dhc, hc.dtype), contiguous(gates, hc.dtype)
    h0, c0, w = contiguous(h0, hc.dtype), contiguous(c0, hc.dtype), contiguous(w_hh, hc.dtype)
    T, B, H2 = hc.shape
    dxw = empty((T, B, 2 * H2), hc.dtype, hc)
    dh, dc = xp_of(hc).zeros(h0.shape, hc.dtype), xp_of(hc).zeros(c0.shape, hc.dtype)
    if hc.size:
        _lstm_bwd[B, TPB](dhc, hc, gates, c0, w, dxw, dh, dc)
    dw, db = _param_grads(dxw, xp_of(hc).ascontiguousarray(hc[:, :, :H2 // 2]), h0)
    return dxw, dh, dc, dw, db
