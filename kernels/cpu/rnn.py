"""Numba CPU kernels: the recurrences of a tanh RNN, a GRU and an LSTM, forward and hand-written backward
through time.

Same names and signatures as kernels.reference.rnn (see it for the equations and shapes). The input
projection of all steps is one GEMM done outside; here runs only the sequential part.

Parallelism: batch rows are independent for the whole sequence, so ONE `prange` over chunks of ROWS batch
rows runs each chunk's full time loop (forward t = 0..T-1, backward t = T-1..0) in one thread: no per-step
thread wake-ups, no shared writes. Inside a chunk the state is kept batch-minor, hT (H, rows), so the
recurrent product W_hh hT is an outer-product loop whose innermost loop runs over the rows (long, contiguous,
vectorized; `_gemm_acc`), and tanh/sigmoid (built on `vexp`) vectorize over the rows too. Inputs and
outputs keep the (T, B, ·) layout; a chunk transposes its slice in and out at each step.
Backward writes dxw (the gradient of the gate pre-activations) of every (t, row) and accumulates dW_hh and
db_hh while each step's data is hot in cache, into per-CHUNK partial buffers (chunks, G*H, H) that the
launcher sums in float64 in chunk order: race-free, and since the chunking is fixed (ROWS), the results are
bitwise the same for any thread count. A batch of at most ROWS rows runs in the calling thread.
error_model="numpy": a division must not raise (the check would keep the loops from vectorizing).
"""
import numpy as np
from numba import njit, prange

from ._config import FASTMATH_ELEMENTWISE
from ._math import vexp

__all__ = ["rnn_tanh_fwd", "rnn_tanh_bwd", "gru_fwd", "gru_bwd", "lstm_fwd", "lstm_bwd"]

ROWS = 64                     # batch rows per chunk (one prange iteration)
_OPT = dict(cache=True, fastmath=FASTMATH_ELEMENTWISE, error_model="numpy")


@njit(**_OPT)
def _tanh(x, one):
    e = vexp(-(one + one) * abs(x))           # in (0, 1]: never overflows
    return np.copysign((one - e) / (one + e), x)


@njit(**_OPT)
def _sigmoid(x, one):
    e = vexp(-abs(x))
    s = one / (one + e)
    return s if x >= 0 else e * s


@njit(**_OPT)
def _load_t(dst, src, t, lo, n):
    """dst[g, r] = src[t, lo + r, g] for r < n: a (rows, G) slice of step t, transposed."""
    for r in range(n):
        for g in range(dst.shape[0]):
            dst[g, r] = src[t, lo + r, g]


@njit(**_OPT)
def _store_t(dst, src, t, lo, n):
    """dst[t, lo + r, g] = src[g, r] for r < n."""
    for r in range(n):
        for g in range(src.shape[0]):
            dst[t, lo + r, g] = src[g, r]


@njit(**_OPT)
def _gemm_acc(out, a, bT, n):
    """out[i, r] += sum_k a[i, k] bT[k, r] for r < n; k unrolled by 8, the r loop vectorizes."""
    I, K = a.shape
    K8 = K - K % 8
    for i in range(I):
        o = out[i]
        for k in range(0, K8, 8):
            w0, w1, w2, w3 = a[i, k], a[i, k + 1], a[i, k + 2], a[i, k + 3]
            w4, w5, w6, w7 = a[i, k + 4], a[i, k + 5], a[i, k + 6], a[i, k + 7]
            b0, b1, b2, b3 = bT[k], bT[k + 1], bT[k + 2], bT[k + 3]
            b4, b5, b6, b7 = bT[k + 4], bT[k + 5], bT[k + 6], bT[k + 7]
            for r in range(n):
                o[r] += ((w0 * b0[r] + w1 * b1[r]) + (w2 * b2[r] + w3 * b3[r])
                         + ((w4 * b4[r] + w5 * b5[r]) + (w6 * b6[r] + w7 * b7[r])))
        for k in range(K8, K):
            w, b = a[i, k], bT[k]
            for r in range(n):
                o[r] += w * b[r]


@njit(**_OPT)
def _acc_wgrad(dw, db, d, hrows, n):
    """dw[g, k] += sum_r d[g, r] hrows[r, k] and db[g] += sum_r d[g, r], r < n: one chunk's share of dW_hh and
    db_hh at one step (hrows = h_{t-1} of the chunk's rows, in its (rows, H) layout); r unrolled by 8."""
    G, K = dw.shape
    n8 = n - n % 8
    for g in range(G):
        o = dw[g]
        s = db[g]
        for r in range(0, n8, 8):
            d0, d1, d2, d3 = d[g, r], d[g, r + 1], d[g, r + 2], d[g, r + 3]
            d4, d5, d6, d7 = d[g, r + 4], d[g, r + 5], d[g, r + 6], d[g, r + 7]
            h0, h1, h2, h3 = hrows[r], hrows[r + 1], hrows[r + 2], hrows[r + 3]
            h4, h5, h6, h7 = hrows[r + 4], hrows[r + 5], hrows[r + 6], hrows[r + 7]
            for k in range(K):
                o[k] += (((d0 * h0[k] + d1 * h1[k]) + (d2 * h2[k] + d3 * h3[k]))
                         + ((d4 * h4[k] + d5 * h5[k]) + (d6 * h6[k] + d7 * h7[k])))
            s += ((d0 + d1) + (d2 + d3)) + ((d4 + d5) + (d6 + d7))
        for r in range(n8, n):
            dr, h = d[g, r], hrows[r]
            for k in range(K):
                o[k] += dr * h[k]
            s += dr
        db[g] = s


# ---- tanh RNN ---------------------------------------------------------------------------------------------
@njit(**_OPT)
def _rnn_fwd_chunk(xw, h0, w, b, hs, lo, hi):
    """Rows lo..hi-1 of hs (T, B, H), all steps. w = W_hh (H, H). Serial."""
    T, _, H = xw.shape
    n = hi - lo
    one = xw.dtype.type(1.0)
    hT = np.empty((H, n), xw.dtype)
    acc = np.empty((H, n), xw.dtype)
    _load_t(hT, h0.reshape((1,) + h0.shape), 0, lo, n)
    for t in range(T):
        _load_t(acc, xw, t, lo, n)
        for j in range(H):
            for r in range(n):
                acc[j, r] += b[j]
        _gemm_acc(acc, w, hT, n)
        for j in range(H):
            for r in range(n):
                hT[j, r] = _tanh(acc[j, r], one)
        _store_t(hs, hT, t, lo, n)


@njit(**_OPT)
def _rnn_bwd_chunk(dhs, hs, h0, wT, dxw, dh0, dwp, dbp, lo, hi):
    """Rows lo..hi-1 of dxw (T, B, H) (gradient of the pre-activations) and dh0 (B, H), and this chunk's
    partial dW_hh (H, H) and db_hh (H,) in dwp, dbp (zeroed by the caller); wT = W_hh^T. Serial."""
    T, _, H = hs.shape
    n = hi - lo
    one = hs.dtype.type(1.0)
    dh = np.zeros((H, n), hs.dtype)
    da = np.empty((H, n), hs.dtype)
    y = np.empty((H, n), hs.dtype)
    for t in range(T - 1, -1, -1):
        _load_t(da, dhs, t, lo, n)
        _load_t(y, hs, t, lo, n)
        for j in range(H):
            for r in range(n):
                da[j, r] = (da[j, r] + dh[j, r]) * (one - y[j, r] * y[j, r])
                dh[j, r] = 0
        _store_t(dxw, da, t, lo, n)
        _acc_wgrad(dwp, dbp, da, hs[t - 1, lo:hi] if t > 0 else h0[lo:hi], n)
        _gemm_acc(dh, wT, da, n)              # dh_{t-1} = W_hh^T da
    _store_t(dh0.reshape((1,) + dh0.shape), dh, 0, lo, n)


# ---- GRU --------------------------------------------------------------------------------------------------
@njit(**_OPT)
def _gru_fwd_chunk(xw, h0, w, b, hs, gates, lo, hi):
    """Rows lo..hi-1 of hs (T, B, H) and gates (T, 4H, B) = r, z, n, hw_n; w = W_hh (3H, H). Serial."""
    T, _, G = xw.shape
    H = G // 3
    n = hi - lo
    one = xw.dtype.type(1.0)
    hT = np.empty((H, n), xw.dtype)
    hw = np.empty((G, n), xw.dtype)
    x = np.empty((G, n), xw.dtype)
    _load_t(hT, h0.reshape((1,) + h0.shape), 0, lo, n)
    for t in range(T):
        _load_t(x, xw, t, lo, n)
        for g in range(G):
            for r in range(n):
                hw[g, r] = b[g]
        _gemm_acc(hw, w, hT, n)
        gt = gates[t]                         # (4H, B), batch-minor: written straight from the loop
        for j in range(H):
            for r in range(n):
                rg = _sigmoid(x[j, r] + hw[j, r], one)
                z = _sigmoid(x[H + j, r] + hw[H + j, r], one)
                nn = _tanh(x[2 * H + j, r] + rg * hw[2 * H + j, r], one)
                hT[j, r] = (one - z) * nn + z * hT[j, r]
                gt[j, lo + r] = rg
                gt[H + j, lo + r] = z
                gt[2 * H + j, lo + r] = nn
                gt[3 * H + j, lo + r] = hw[2 * H + j, r]
        _store_t(hs, hT, t, lo, n)


@njit(**_OPT)
def _gru_bwd_chunk(dhs, hs, gates, h0, wT, dxw, dh0, dwp, dbp, lo, hi):
    """Rows lo..hi-1 of dxw (T, B, 3H) (gradient of xw) and dh0 (B, H), and this chunk's partial dW_hh (3H, H)
    and db_hh (3H,) (gradients through hw = h W_hh^T + b_hh) in dwp, dbp; wT = W_hh^T (H, 3H). Serial."""
    T, _, H = hs.shape
    n = hi - lo
    one = hs.dtype.type(1.0)
    dh = np.zeros((H, n), hs.dtype)
    g_ = np.empty((H, n), hs.dtype)
    hp = np.empty((H, n), hs.dtype)
    dx = np.empty((3 * H, n), hs.dtype)
    dw = np.empty((3 * H, n), hs.dtype)
    for t in range(T - 1, -1, -1):
        hrows = hs[t - 1, lo:hi] if t > 0 else h0[lo:hi]
        _load_t(g_, dhs, t, lo, n)
        _load_t(hp, hrows.reshape((1,) + hrows.shape), 0, 0, n)
        gt = gates[t]
        for j in range(H):
            for r in range(n):
                g = g_[j, r] + dh[j, r]
                rg, z, nn = gt[j, lo + r], gt[H + j, lo + r], gt[2 * H + j, lo + r]
                dn = g * (one - z) * (one - nn * nn)
                dz = g * (hp[j, r] - nn) * z * (one - z)
                dr = dn * gt[3 * H + j, lo + r] * rg * (one - rg)
                dx[j, r] = dr
                dx[H + j, r] = dz
                dx[2 * H + j, r] = dn
                dw[j, r] = dr
                dw[H + j, r] = dz
                dw[2 * H + j, r] = dn * rg
                dh[j, r] = g * z
        _store_t(dxw, dx, t, lo, n)
        _acc_wgrad(dwp, dbp, dw, hrows, n)
        _gemm_acc(dh, wT, dw, n)              # dh_{t-1} += W_hh^T dhw
    _store_t(dh0.reshape((1,) + dh0.shape), dh, 0, lo, n)


# ---- LSTM -------------------------------------------------------------------------------------------------
@njit(**_OPT)
def _lstm_fwd_chunk(xw, h0, c0, w, b, hc, gates, lo, hi):
    """Rows lo..hi-1 of hc (T, B, 2H) and gates (T, 4H, B) = i, f, g, o; w = W_hh (4H, H). The state st
    (2H, rows) holds h in rows :H and c in rows H:, the layout of a step of hc. Serial."""
    T, _, G = xw.shape
    H = G // 4
    n = hi - lo
    one = xw.dtype.type(1.0)
    st = np.empty((2 * H, n), xw.dtype)
    a = np.empty((G, n), xw.dtype)
    _load_t(st[:H], h0.reshape((1,) + h0.shape), 0, lo, n)
    _load_t(st[H:], c0.reshape((1,) + c0.shape), 0, lo, n)
    for t in range(T):
        _load_t(a, xw, t, lo, n)
        for g in range(G):
            for r in range(n):
                a[g, r] += b[g]
        _gemm_acc(a, w, st, n)                # reads st's rows :H (w has H columns): h_{t-1}
        gt = gates[t]
        for j in range(H):
            for r in range(n):
                ig = _sigmoid(a[j, r], one)
                fg = _sigmoid(a[H + j, r], one)
                gg = _tanh(a[2 * H + j, r], one)
                og = _sigmoid(a[3 * H + j, r], one)
                c = fg * st[H + j, r] + ig * gg
                st[H + j, r] = c
                st[j, r] = og * _tanh(c, one)
                gt[j, lo + r] = ig
                gt[H + j, lo + r] = fg
                gt[2 * H + j, lo + r] = gg
                gt[3 * H + j, lo + r] = og
        _store_t(hc, st, t, lo, n)


@njit(**_OPT)
def _lstm_bwd_chunk(dhc, hc, gates, h0, c0, wT, dxw, dh0, dc0, dwp, dbp, lo, hi):
    """Rows lo..hi-1 of dxw (T, B, 4H), dh0 and dc0 (B, H), and this chunk's partial dW_hh (4H, H) and db_hh
    (4H,) in dwp, dbp; wT = W_hh^T (H, 4H). ds (2H, rows) carries dh (rows :H) and dc (rows H:) back in
    time; tanh(c_t) is recomputed from hc. Serial."""
    T, _, H2 = hc.shape
    H = H2 // 2
    n = hi - lo
    one = hc.dtype.type(1.0)
    ds = np.zeros((H2, n), hc.dtype)
    dy = np.empty((H2, n), hc.dtype)
    y = np.empty((H2, n), hc.dtype)
    yp = np.empty((H2, n), hc.dtype)
    hrows = np.empty((n, H), hc.dtype)
    da = np.empty((4 * H, n), hc.dtype)
    for t in range(T - 1, -1, -1):
        _load_t(dy, dhc, t, lo, n)
        _load_t(y, hc, t, lo, n)
        if t > 0:
            _load_t(yp, hc, t - 1, lo, n)
        else:
            _load_t(yp[:H], h0.reshape((1,) + h0.shape), 0, lo, n)
            _load_t(yp[H:], c0.reshape((1,) + c0.shape), 0, lo, n)
        for r in range(n):
            for k in range(H):
                hrows[r, k] = yp[k, r]
        gt = gates[t]
        for j in range(H):
            for r in range(n):
                ig, fg, gg, og = gt[j, lo + r], gt[H + j, lo + r], gt[2 * H + j, lo + r], gt[3 * H + j, lo + r]
                tc = _tanh(y[H + j, r], one)
                gh = dy[j, r] + ds[j, r]
                dc = dy[H + j, r] + ds[H + j, r] + gh * og * (one - tc * tc)
                da[j, r] = dc * gg * ig * (one - ig)
                da[H + j, r] = dc * yp[H + j, r] * fg * (one - fg)
                da[2 * H + j, r] = dc * ig * (one - gg * gg)
                da[3 * H + j, r] = gh * tc * og * (one - og)
                ds[H + j, r] = dc * fg
                ds[j, r] = 0
        _store_t(dxw, da, t, lo, n)
        _acc_wgrad(dwp, dbp, da, hrows, n)
        _gemm_acc(ds, wT, da, n)              # dh_{t-1} = W_hh^T da, into ds's rows :H
    _store_t(dh0.reshape((1,) + dh0.shape), ds[:H], 0, lo, n)
    _store_t(dc0.reshape((1,) + dc0.shape), ds[H:], 0, lo, n)


# ---- drivers: prange over the chunks ------------------------------------------------------------
@njit(parallel=True, cache=True, error_model="numpy")
def _rnn_fwd_par(xw, h0, w, b, hs):
    B = xw.shape[1]
    for c in prange((B + ROWS - 1) // ROWS):
        _rnn_fwd_chunk(xw, h0, w, b, hs, c * ROWS, min(B, (c + 1) * ROWS))


@njit(parallel=True, cache=True, error_model="numpy")
def _rnn_bwd_par(dhs, hs, h0, wT, dxw, dh0, dwp, dbp):
    B = hs.shape[1]
    for c in prange((B + ROWS - 1) // ROWS):
        _rnn_bwd_chunk(dhs, hs, h0, wT, dxw, dh0, dwp[c], dbp[c], c * ROWS, min(B, (c + 1) * ROWS))


@njit(parallel=True, cache=True, error_model="numpy")
def _gru_fwd_par(xw, h0, w, b, hs, gates):
    B = xw.shape[1]
    for c in prange((B + ROWS - 1) // ROWS):
        _gru_fwd_chunk(xw, h0, w, b, hs, gates, c * ROWS, min(B, (c + 1) * ROWS))


@njit(parallel=True, cache=True, error_model="numpy")
def _gru_bwd_par(dhs, hs, gates, h0, wT, dxw, dh0, dwp, dbp):
    B = hs.shape[1]
    for c in prange((B + ROWS - 1) // ROWS):
        _gru_bwd_chunk(dhs, hs, gates, h0, wT, dxw, dh0, dwp[c], dbp[c], c * ROWS, min(B, (c + 1) * ROWS))


@njit(parallel=True, cache=True, error_model="numpy")
def _lstm_fwd_par(xw, h0, c0, w, b, hc, gates):
    B = xw.shape[1]
    for c in prange((B + ROWS - 1) // ROWS):
        _lstm_fwd_chunk(xw, h0, c0, w, b, hc, gates, c * ROWS, min(B, (c + 1) * ROWS))


@njit(parallel=True, cache=True, error_model="numpy")
def _lstm_bwd_par(dhc, hc, gates, h0, c0, wT, dxw, dh0, dc0, dwp, dbp):
    B = hc.shape[1]
    for c in prange((B + ROWS - 1) // ROWS):
        _lstm_bwd_chunk(dhc, hc, gates, h0, c0, wT, dxw, dh0, dc0, dwp[c], dbp[c], c * ROWS, min(B, (c + 1) * ROWS))


# ---- launchers --------------------------------------------------------------------------------------------
def _c(a, dtype):
    return np.ascontiguousarray(a, dtype=dtype)


def _launch(chunk, parallel, B, *args):
    """One chunk runs in the calling thread (waking the pool costs more than a small batch's work);
    more go to the prange driver. Either way each row's arithmetic is the same: same bits."""
    if B <= ROWS:
        chunk(*args, 0, B)
    else:
        parallel(*args)


def _partials(B, G, H, dt):
    """Per-chunk partial dW_hh (chunks, G, H) and db_hh (chunks, G), zeroed."""
    nc = (B + ROWS - 1) // ROWS
    return np.zeros((nc, G, H), dt), np.zeros((nc, G), dt)


def _reduce(p):
    """Sum the chunks' partials in float64, in chunk order (the same bits for any thread count)."""
    return p.sum(axis=0, dtype=np.float64).astype(p.dtype)


def rnn_tanh_fwd(xw, h0, w_hh, b_hh):
    """xw (T, B, H), h0 (B, H), w_hh (H, H), b_hh (H,) or None -> hs (T, B, H). Backward needs hs, h0."""
    dt = xw.dtype
    T, B, H = xw.shape
    b = np.zeros(H, dt) if b_hh is None else _c(b_hh, dt)
    hs = np.empty((T, B, H), dt)
    _launch(_rnn_fwd_chunk, _rnn_fwd_par, B, _c(xw, dt), _c(h0, dt), _c(w_hh, dt), b, hs)
    return hs


def rnn_tanh_bwd(dhs, hs, h0, w_hh):
    """-> (dxw (T, B, H), dh0 (B, H), dw_hh (H, H), db_hh (H,)); fresh arrays."""
    dt = hs.dtype
    T, B, H = hs.shape
    hs, h0 = _c(hs, dt), _c(h0, dt)
    dxw, dh0 = np.empty((T, B, H), dt), np.empty((B, H), dt)
    dwp, dbp = _partials(B, H, H, dt)
    args = (_c(dhs, dt), hs, h0, _c(w_hh.T, dt), dxw, dh0)
    if B <= ROWS:
        _rnn_bwd_chunk(*args, dwp[0], dbp[0], 0, B)
    else:
        _rnn_bwd_par(*args, dwp, dbp)
    return dxw, dh0, _reduce(dwp), _reduce(dbp)


def gru_fwd(xw, h0, w_hh, b_hh):
    """xw (T, B, 3H), h0 (B, H), w_hh (3H, H), b_hh (3H,) or None -> (hs (T, B, H), gates (T, 4H, B))."""
    dt = xw.dtype
    T, B, G = xw.shape
    H = G // 3
    b = np.zeros(G, dt) if b_hh is None else _c(b_hh, dt)
    hs, gates = np.empty((T, B, H), dt), np.empty((T, 4 * H, B), dt)
    _launch(_gru_fwd_chunk, _gru_fwd_par, B, _c(xw, dt), _c(h0, dt), _c(w_hh, dt), b, hs, gates)
    return hs, gates


def gru_bwd(dhs, hs, gates, h0, w_hh):
    """-> (dxw (T, B, 3H), dh0 (B, H), dw_hh (3H, H), db_hh (3H,)); fresh arrays."""
    dt = hs.dtype
    T, B, H = hs.shape
    hs, h0 = _c(hs, dt), _c(h0, dt)
    dxw, dh0 = np.empty((T, B, 3 * H), dt), np.empty((B, H), dt)
    dwp, dbp = _partials(B, 3 * H, H, dt)
    args = (_c(dhs, dt), hs, _c(gates, dt), h0, _c(w_hh.T, dt), dxw, dh0)
    if B <= ROWS:
        _gru_bwd_chunk(*args, dwp[0], dbp[0], 0, B)
    else:
        _gru_bwd_par(*args, dwp, dbp)
    return dxw, dh0, _reduce(dwp), _reduce(dbp)


def lstm_fwd(xw, h0, c0, w_hh, b_hh):
    """xw (T, B, 4H), h0, c0 (B, H), w_hh (4H, H), b_hh (4H,) or None -> (hc (T, B, 2H), gates (T, 4H, B))."""
    dt = xw.dtype
    T, B, G = xw.shape
    H = G // 4
    b = np.zeros(G, dt) if b_hh is None else _c(b_hh, dt)
    hc, gates = np.empty((T, B, 2 * H), dt), np.empty((T, G, B), dt)
    _launch(_lstm_fwd_chunk, _lstm_fwd_par, B, _c(xw, dt), _c(h0, dt), _c(c0, dt), _c(w_hh, dt), b, hc, gates)
    return hc, gates


def lstm_bwd(dhc, hc, gates, h0, c0, w_hh):
    """-> (dxw (T, B, 4H), dh0 (B, H), dc0 (B, H), dw_hh (4H, H), db_hh (4H,)); fresh arrays."""
    dt = hc.dtype
    T, B, H2 = hc.shape
    H = H2 // 2
    dxw, dh0, dc0 = np.empty((T, B, 4 * H), dt), np.empty((B, H), dt), np.empty((B, H), dt)
    dwp, dbp = _partials(B, 4 * H, H, dt)
    args = (_c(dhc, dt), _c(hc, dt), _c(gates, dt), _c(h0, dt), _c(c0, dt), _c(w_hh.T, dt), dxw, dh0, dc0)
    if B <= ROWS:
        _lstm_bwd_chunk(*args, dwp[0], dbp[0], 0, B)
    else:
        _lstm_bwd_par(*args, dwp, dbp)
    return dxw, dh0, dc0, _reduce(dwp), _reduce(dbp)
