"""Numba CPU kernels: the recurrences of a tanh RNN, a GRU and an LSTM, forward and hand-written backward
through time.

Same names and signatures as kernels.reference.rnn (see it for the equations and shapes). The input
projection of all steps is one GEMM done outside; here runs only the sequential part.

Parallelism: batch rows are independent for the whole sequence, so ONE `prange` over chunks of ROWS batch
rows runs each chunk's full time loop (forward t = 0..T-1, backward t = T-1..0) in one thread: no per-step
thread wake-ups, no shared writes. ROWS is 16 so that the book's batch of 32 already fills two cores.
Inside a chunk the elementwise state is kept batch-minor, (H, rows), so tanh/sigmoid (built on `vexp`)
vectorize over the rows; inputs and outputs keep the (T, B, .) layout and a chunk transposes its slice in
and out at each step. The recurrent products go through the register-blocked micro-kernel `_dot.dot_tile`
(dot form, both operands contiguous along the reduction): forward, W_hh's rows against the rows of h_{t-1}
read in place from the output; backward, W_hh^T's rows against the rows of the step's pre-activation
gradient (transposed once per step). The weight gradient is not accumulated step by step: each chunk keeps
every step's pre-activation gradient and h_{t-1} and after the loop forms dW_hh = sum over (t, row) with one
micro-kernel call whose reduction is T * ROWS long (~4x faster per step than the earlier outer-product
loops: the GRU language model's step went from 37 to 14 ms on the 2-core AVX-512 machine). Each chunk's
dW_hh and db_hh go to a per-chunk partial buffer (chunks, G*H, H) that the launcher sums in float64 in chunk
order: race-free, and since the chunking is fixed (ROWS), the results are bitwise the same for any thread
count. A batch of at most ROWS rows runs in the calling thread.
error_model="numpy": a division must not raise (the check would keep the loops from vectorizing).
"""
import numpy as np
from numba import njit, prange

from ._config import FASTMATH_ELEMENTWISE
from ._dot import MR, dot_tile, outer_gemm, outer_gemm_packed, outer_shape, pack_cols
from ._math import vexp

__all__ = ["rnn_tanh_fwd", "rnn_tanh_bwd", "gru_fwd", "gru_bwd", "lstm_fwd", "lstm_bwd"]

ROWS = 16                     # batch rows per chunk (one prange iteration)
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
def _bwd_step(da, hpT, dall, hall, dar, wTf, wToff, roff, back, t, n, zero):
    """One backward step's products, after the cell has written da (G, rows), the gradient of the hidden
    pre-activations hw = W_hh h_{t-1} + b_hh, and hpT = h_{t-1} (H, rows): keeps both at columns t*rows of
    dall (G, T*rows) and hall (H, T*rows) for `_wgrad`, and writes back (H, rows) = W_hh^T da, the
    gradient reaching h_{t-1} through W_hh (the micro-kernel on wT's rows against da's rows, dar)."""
    G, H = da.shape[0], hpT.shape[0]
    c0 = t * n
    for g in range(G):
        d = dall[g, c0:c0 + n]
        for r in range(n):
            d[r] = da[g, r]
    for k in range(H):
        h = hall[k, c0:c0 + n]
        for r in range(n):
            h[r] = hpT[k, r]
    for r in range(n):                        # da transposed: rows contiguous along G
        for g in range(G):
            dar[r, g] = da[g, r]
    dot_tile(wTf, wToff, H, dar.reshape(-1), roff, n, G, back, zero)


@njit(**_OPT)
def _wgrad(dall, hall, dwp, dbp, zero):
    """The chunk's dW_hh (G, H) = dall hall^T and db_hh (G,) = row sums of dall: one micro-kernel call whose
    reduction runs over all T*rows (step, row) pairs."""
    G, TN = dall.shape
    H = hall.shape[0]
    dot_tile(dall.reshape(-1), np.arange(G) * TN, G, hall.reshape(-1), np.arange(H) * TN, H, TN, dwp, zero)
    for g in range(G):
        s = zero
        d = dall[g]
        for c in range(TN):
            s += d[c]
        dbp[g] = s


# ---- tanh RNN ---------------------------------------------------------------------------------------------
@njit(**_OPT)
def _rnn_fwd_chunk(xw, h0, w, b, hs, lo, hi):
    """Rows lo..hi-1 of hs (T, B, H), all steps. w = W_hh (H, H). Serial. W_hh h_{t-1} is the micro-kernel on
    W's rows against h_{t-1}'s rows, read in place from hs (or h0)."""
    T, _, H = xw.shape
    n = hi - lo
    one, zero = xw.dtype.type(1.0), xw.dtype.type(0.0)
    hT = np.empty((H, n), xw.dtype)
    hw = np.empty((H, n), xw.dtype)
    wf, woff, hoff = w.reshape(-1), np.arange(H) * H, (lo + np.arange(n)) * H
    for t in range(T):
        _load_t(hT, xw, t, lo, n)
        prev = h0 if t == 0 else hs[t - 1]
        dot_tile(wf, woff, H, prev.reshape(-1), hoff, n, H, hw, zero)
        for j in range(H):
            bj = b[j]
            for r in range(n):
                hT[j, r] = _tanh(hT[j, r] + (hw[j, r] + bj), one)
        _store_t(hs, hT, t, lo, n)


@njit(**_OPT)
def _rnn_bwd_chunk(dhs, hs, h0, wT, dxw, dh0, dwp, dbp, lo, hi):
    """Rows lo..hi-1 of dxw (T, B, H) (gradient of the pre-activations) and dh0 (B, H), and this chunk's
    partial dW_hh (H, H) and db_hh (H,) in dwp, dbp; wT = W_hh^T. Serial."""
    T, _, H = hs.shape
    n = hi - lo
    one, zero = hs.dtype.type(1.0), hs.dtype.type(0.0)
    dh = np.zeros((H, n), hs.dtype)
    da = np.empty((H, n), hs.dtype)
    y = np.empty((H, n), hs.dtype)
    hp = np.empty((H, n), hs.dtype)
    dall, hall = np.empty((H, T * n), hs.dtype), np.empty((H, T * n), hs.dtype)
    dar = np.empty((n, H), hs.dtype)
    wTf, wToff, roff = wT.reshape(-1), np.arange(H) * H, np.arange(n) * H
    for t in range(T - 1, -1, -1):
        _load_t(da, dhs, t, lo, n)
        _load_t(y, hs, t, lo, n)
        prev = hs[t - 1, lo:hi] if t > 0 else h0[lo:hi]
        _load_t(hp, prev.reshape((1,) + prev.shape), 0, 0, n)
        for j in range(H):
            for r in range(n):
                da[j, r] = (da[j, r] + dh[j, r]) * (one - y[j, r] * y[j, r])
        _store_t(dxw, da, t, lo, n)
        _bwd_step(da, hp, dall, hall, dar, wTf, wToff, roff, dh, t, n, zero)      # dh_{t-1} = W_hh^T da
    _wgrad(dall, hall, dwp, dbp, zero)
    _store_t(dh0.reshape((1,) + dh0.shape), dh, 0, lo, n)


# ---- GRU --------------------------------------------------------------------------------------------------
# Row-major inside a chunk: the gate loops vectorize along the hidden units (xw, dxw, hs are (T, B, .)), and
# the three products run on the outer-product micro-kernel (`_dot.outer_gemm`), whose vectors also run along
# hidden units or gates: hw (rows, 3H) = h_{t-1} W_hh^T reads h_{t-1} transposed (hT, (H, rows)) and W_hh^T;
# W_hh^T dhw reads dhw transposed and W_hh; dW_hh reads every step's dhw and h_{t-1}, T*rows of each, both
# kept step by step in the packed layouts of _dot.outer_gemm_packed.
# Widths are padded to whole vectors (Gp, Hp) and rows to MR (n4) with zeros; W_hh^T and W_hh come in the
# micro-kernel's column blocks (_dot.pack_cols), each block's rows one contiguous stretch.
@njit(**_OPT)
def _gru_cell_row(x, hr, b, hh, g4, out, H, one):
    """One batch row of a GRU step: x = xw[t, row] (3H), hr = W_hh h_{t-1} (3H), hh = h_{t-1} (H), updated
    to h_t and copied to out; g4 (4H) gets r, z, n, hw_n. A function of its own: compiled alone, its loop
    vectorizes (inlined in the chunk's loop, the many arrays' alias checks kept LLVM from it: 8x slower)."""
    for j in range(H):
        rg = _sigmoid(x[j] + (hr[j] + b[j]), one)
        z = _sigmoid(x[H + j] + (hr[H + j] + b[H + j]), one)
        hn = hr[2 * H + j] + b[2 * H + j]
        nn = _tanh(x[2 * H + j] + rg * hn, one)
        hh[j] = (one - z) * nn + z * hh[j]
        g4[j] = rg
        g4[H + j] = z
        g4[2 * H + j] = nn
        g4[3 * H + j] = hn
    for j in range(H):
        out[j] = hh[j]


@njit(**_OPT)
def _gru_cell_row_bwd(g_, d, g4, prev, dx, da, hl, H, one):
    """One batch row of a GRU backward step: g_ = dhs[t, row], d = the carried dh (H), updated to z * g;
    g4 = the step's gates; prev = h_{t-1}; writes dx = dxw[t, row] (3H), da = dhw (3H) and hl = h_{t-1}."""
    for j in range(H):
        g = g_[j] + d[j]
        rg, z, nn = g4[j], g4[H + j], g4[2 * H + j]
        dn = g * (one - z) * (one - nn * nn)
        dz = g * (prev[j] - nn) * z * (one - z)
        dr = dn * g4[3 * H + j] * rg * (one - rg)
        dx[j] = dr
        dx[H + j] = dz
        dx[2 * H + j] = dn
        da[j] = dr
        da[H + j] = dz
        da[2 * H + j] = dn * rg
        d[j] = g * z
        hl[j] = prev[j]


@njit(**_OPT)
def _gru_fwd_chunk(xw, h0, wTk, b, hs, gates, lanes, nvmax, lo, hi):
    """Rows lo..hi-1 of hs (T, B, H) and gates (T, 4H, B) = r, z, n, hw_n (hw_n = (W_hh h_{t-1} + b_hh)'s
    n part); wTk = W_hh^T (H, 3H) in column blocks (_dot.pack_cols). Serial."""
    T, B, G = xw.shape
    H = G // 3
    Gp = (G + lanes - 1) // lanes * lanes
    n = hi - lo
    n4 = (n + MR - 1) // MR * MR
    one = xw.dtype.type(1.0)
    hT = np.zeros((H, n4), xw.dtype)
    h = np.empty((n, H), xw.dtype)
    hw = np.empty((n4, Gp), xw.dtype)
    gs = np.empty((n, 4 * H), xw.dtype)
    boff = np.arange(H) * wTk.shape[2]
    for r in range(n):
        for j in range(H):
            h[r, j] = h0[lo + r, j]
            hT[j, r] = h0[lo + r, j]
    for t in range(T):
        outer_gemm_packed(hT.reshape(-1), n4, MR, n4, wTk.reshape(-1), boff, H, hw.reshape(-1), Gp, Gp, lanes,
                          nvmax)
        for r in range(n):
            _gru_cell_row(xw[t, lo + r], hw[r], b, h[r], gs[r], hs[t, lo + r], H, one)
        for j in range(H):
            for r in range(n):
                hT[j, r] = h[r, j]
        gt = gates[t]
        for j in range(4 * H):
            for r in range(n):
                gt[j, lo + r] = gs[r, j]


@njit(**_OPT)
def _gru_bwd_chunk(dhs, hs, gates, h0, wk, dxw, dh0, dwp, dbp, lanes, nvmax, lo, hi):
    """Rows lo..hi-1 of dxw (T, B, 3H) (gradient of xw) and dh0 (B, H), and this chunk's partial dW_hh (3H, H)
    and db_hh (3H,) (gradients through hw = h W_hh^T + b_hh) in dwp, dbp; wk = W_hh (3H, H) in column blocks
    (_dot.pack_cols). Serial."""
    T, _, H = hs.shape
    G = 3 * H
    Hp = (H + lanes - 1) // lanes * lanes
    Gp = (G + lanes - 1) // lanes * lanes
    n = hi - lo
    n4 = (n + MR - 1) // MR * MR
    TN = T * n
    one = hs.dtype.type(1.0)
    dh = np.zeros((n, H), hs.dtype)
    gs = np.empty((n, 4 * H), hs.dtype)
    dwT = np.zeros((G, n4), hs.dtype)
    back = np.empty((n4, Hp), hs.dtype)
    dall = np.zeros((TN, Gp), hs.dtype)
    # dW_hh's operands, written step by step in outer_gemm_packed's layouts: every step's dhw (dall's rows) in
    # row blocks of MR gates, (Gp / MR, TN, MR), and h_{t-1} in column blocks of W units, (nbh, TN, W)
    W = nvmax * lanes
    nbh = (Hp + W - 1) // W
    dk = np.zeros(Gp * TN, hs.dtype)
    hk = np.zeros(nbh * TN * W, hs.dtype)
    hl = np.empty((n, H), hs.dtype)
    wboff = np.arange(G) * wk.shape[2]
    for t in range(T - 1, -1, -1):
        gt = gates[t]
        for j in range(4 * H):
            for r in range(n):
                gs[r, j] = gt[j, lo + r]
        for r in range(n):
            prev = hs[t - 1, lo + r] if t > 0 else h0[lo + r]
            _gru_cell_row_bwd(dhs[t, lo + r], dh[r], gs[r], prev, dxw[t, lo + r], dall[t * n + r], hl[r], H,
                              one)
        for g in range(G):
            gb = (g // MR) * TN * MR + g % MR
            for r in range(n):
                v = dall[t * n + r, g]
                dwT[g, r] = v
                dk[gb + (t * n + r) * MR] = v
        for kb in range(nbh):
            k0 = kb * W
            for r in range(n):
                base = (kb * TN + t * n + r) * W
                for kk in range(min(W, H - k0)):
                    hk[base + kk] = hl[r, k0 + kk]
        outer_gemm_packed(dwT.reshape(-1), n4, MR, n4, wk.reshape(-1), wboff, G, back.reshape(-1), Hp, Hp,
                          lanes, nvmax)
        for r in range(n):
            d, bk = dh[r], back[r]
            for j in range(H):
                d[j] += bk[j]                 # dh_{t-1} = z * g + W_hh^T dhw
    dwpad = np.empty((Gp, Hp), hs.dtype)
    outer_gemm_packed(dk, MR, MR * TN, Gp, hk, np.arange(TN) * W, TN, dwpad.reshape(-1), Hp, Hp, lanes, nvmax)
    for g in range(G):
        for k in range(H):
            dwp[g, k] = dwpad[g, k]
    for g in range(G):
        dbp[g] = 0
    for c in range(TN):
        da = dall[c]
        for g in range(G):
            dbp[g] += da[g]
    for r in range(n):
        for j in range(H):
            dh0[lo + r, j] = dh[r, j]


# ---- LSTM -------------------------------------------------------------------------------------------------
@njit(**_OPT)
def _lstm_fwd_chunk(xw, h0, c0, w, b, hc, gates, lo, hi):
    """Rows lo..hi-1 of hc (T, B, 2H) and gates (T, 4H, B) = i, f, g, o; w = W_hh (4H, H). The state st
    (2H, rows) holds h in rows :H and c in rows H:, the layout of a step of hc. Serial. W_hh h_{t-1} reads
    h_{t-1} in place: the first H of each row of hc[t - 1] (or h0's rows)."""
    T, _, G = xw.shape
    H = G // 4
    n = hi - lo
    one, zero = xw.dtype.type(1.0), xw.dtype.type(0.0)
    st = np.empty((2 * H, n), xw.dtype)
    a = np.empty((G, n), xw.dtype)
    hw = np.empty((G, n), xw.dtype)
    wf, woff = w.reshape(-1), np.arange(G) * H
    _load_t(st[:H], h0.reshape((1,) + h0.shape), 0, lo, n)
    _load_t(st[H:], c0.reshape((1,) + c0.shape), 0, lo, n)
    for t in range(T):
        _load_t(a, xw, t, lo, n)
        if t == 0:
            dot_tile(wf, woff, G, h0.reshape(-1), (lo + np.arange(n)) * H, n, H, hw, zero)
        else:
            dot_tile(wf, woff, G, hc[t - 1].reshape(-1), (lo + np.arange(n)) * (2 * H), n, H, hw, zero)
        for g in range(G):
            bg = b[g]
            for r in range(n):
                a[g, r] += hw[g, r] + bg
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
    G = 4 * H
    n = hi - lo
    one, zero = hc.dtype.type(1.0), hc.dtype.type(0.0)
    ds = np.zeros((H2, n), hc.dtype)
    dy = np.empty((H2, n), hc.dtype)
    y = np.empty((H2, n), hc.dtype)
    yp = np.empty((H2, n), hc.dtype)
    da = np.empty((G, n), hc.dtype)
    dall, hall = np.empty((G, T * n), hc.dtype), np.empty((H, T * n), hc.dtype)
    dar = np.empty((n, G), hc.dtype)
    wTf, wToff, roff = wT.reshape(-1), np.arange(H) * G, np.arange(n) * G
    for t in range(T - 1, -1, -1):
        _load_t(dy, dhc, t, lo, n)
        _load_t(y, hc, t, lo, n)
        if t > 0:
            _load_t(yp, hc, t - 1, lo, n)
        else:
            _load_t(yp[:H], h0.reshape((1,) + h0.shape), 0, lo, n)
            _load_t(yp[H:], c0.reshape((1,) + c0.shape), 0, lo, n)
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
        _store_t(dxw, da, t, lo, n)
        _bwd_step(da, yp[:H], dall, hall, dar, wTf, wToff, roff, ds[:H], t, n, zero)   # dh_{t-1} = W_hh^T da
    _wgrad(dall, hall, dwp, dbp, zero)
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
def _gru_fwd_par(xw, h0, wTk, b, hs, gates, lanes, nvmax):
    B = xw.shape[1]
    for c in prange((B + ROWS - 1) // ROWS):
        _gru_fwd_chunk(xw, h0, wTk, b, hs, gates, lanes, nvmax, c * ROWS, min(B, (c + 1) * ROWS))


@njit(parallel=True, cache=True, error_model="numpy")
def _gru_bwd_par(dhs, hs, gates, h0, wk, dxw, dh0, dwp, dbp, lanes, nvmax):
    B = hs.shape[1]
    for c in prange((B + ROWS - 1) // ROWS):
        _gru_bwd_chunk(dhs, hs, gates, h0, wk, dxw, dh0, dwp[c], dbp[c], lanes, nvmax, c * ROWS,
                       min(B, (c + 1) * ROWS))


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
    lanes, nvmax = outer_shape(dt.itemsize)
    wTk = pack_cols(np.asarray(w_hh, dt).T, lanes, nvmax)
    _launch(_gru_fwd_chunk, _gru_fwd_par, B, _c(xw, dt), _c(h0, dt), wTk, b, hs, gates, lanes, nvmax)
    return hs, gates


def gru_bwd(dhs, hs, gates, h0, w_hh):
    """-> (dxw (T, B, 3H), dh0 (B, H), dw_hh (3H, H), db_hh (3H,)); fresh arrays."""
    dt = hs.dtype
    T, B, H = hs.shape
    hs, h0 = _c(hs, dt), _c(h0, dt)
    dxw, dh0 = np.empty((T, B, 3 * H), dt), np.empty((B, H), dt)
    dwp, dbp = _partials(B, 3 * H, H, dt)
    lanes, nvmax = outer_shape(dt.itemsize)
    args = (_c(dhs, dt), hs, _c(gates, dt), h0, pack_cols(np.asarray(w_hh, dt), lanes, nvmax), dxw, dh0)
    if B <= ROWS:
        _gru_bwd_chunk(*args, dwp[0], dbp[0], lanes, nvmax, 0, B)
    else:
        _gru_bwd_par(*args, dwp, dbp, lanes, nvmax)
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
