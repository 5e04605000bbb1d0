"""Fused (FlashAttention-2 style) forward and backward kernels.

Score tiles are held transposed, sT (BK keys, BQ queries): every softmax step (row max, exp, row sum,
masks) is then an elementwise loop over the contiguous query axis, with no horizontal reductions.
The tile GEMMs read keys and values in place (rows of k[n], v[n]); the only copies are the transposed,
scaled query tile (and, in backward, the transposed dout) of one head.
  q (N, L, d), k (N, S, d), v (N, S, dv), o and dout (N, L, dv), lse (N, L): C-contiguous.
  klim (N, L) int64: query row i attends keys j < klim[n, i]; it carries S, is_causal and valid_lens and
  decides which tiles are skipped.
  biasT (NB, Sp, Lb) with bmap (N,): an additive mask, transposed and padded to whole tiles, used only when
  has_bias (Lb = 1 for a mask broadcast over query rows).
  Dropout: keep where keep_bits(row_key(seed, n * L + i), j) >= keep_thr (keep_thr = 0: no dropout);
  kept probabilities are scaled by keep_scale.
"""
import numpy as np
from numba import njit, prange

from ._config import FASTMATH
from ._math import vexp_neg as exp_neg
from ._dot import outer_gemm
from .attention_tiles import gemm_nn, gemm_tn, keep_bits, row_key, tile_bounds

BQ = 128       # query rows per tile
BK = 128       # keys per tile


@njit(cache=True, fastmath=FASTMATH, error_model="numpy")
def _mask_tile(st, j0, i0, kl, biasT, b, has_bias):
    """st[j, i] += bias (if has_bias) where key j0 + j < kl[i], else -inf."""
    for j in range(BK):
        jj = j0 + j
        if has_bias:
            if biasT.shape[2] > 1:
                brow = biasT[b, jj, i0:i0 + BQ]       # a view: no index arithmetic from i0 in the loop
                for i in range(BQ):
                    st[j, i] = st[j, i] + brow[i] if jj < kl[i] else -np.inf
            else:
                bj = biasT[b, jj, 0]
                for i in range(BQ):
                    st[j, i] = st[j, i] + bj if jj < kl[i] else -np.inf
        else:
            for i in range(BQ):
                st[j, i] = st[j, i] if jj < kl[i] else -np.inf


@njit(cache=True, parallel=True, error_model="numpy")
def keys_t(k, kT):
    """kT (N, d, Sp) = k (N, S, d) transposed, zero-padded to Sp (whole key tiles): the score GEMM's A operand
    (outer-product form wants the reduction axis d outermost). prange over heads."""
    N, S, d = k.shape
    for n in prange(N):
        for c in range(d):
            row = kT[n, c]
            for j in range(S):
                row[j] = k[n, j, c]
            for j in range(S, kT.shape[2]):
                row[j] = 0


@njit(cache=True, parallel=True, error_model="numpy")
def flash_fwd(q, k, kT, v, biasT, bmap, has_bias, klim, scale, keep_thr, keep_scale, seed, o, lse, outer, lanes,
              nvmax):
    """o (N, L, dv) = softmax(scale q k^T + mask) v and lse (N, L) (-inf on fully masked rows, whose o is 0;
    NaN on rows with a NaN score, whose o is NaN: the max skips NaN, their exp makes the row sum NaN).
    outer: the tile GEMMs run on outer_gemm (kT = keys_t(k); P V too when dv is a whole number of vectors), else
    on gemm_nn / gemm_tn, which skip what a causal or valid_lens limit removes (kT unused). lanes, nvmax:
    _dot.outer_shape of the dtype.

    prange over (n, query tile); each iteration runs _fwd_tile and owns its rows of o and lse."""
    N, L = q.shape[0], q.shape[1]
    nqt = (L + BQ - 1) // BQ
    for it in prange(N * nqt):
        _fwd_tile(q, k, kT, v, biasT, bmap, has_bias, klim, scale, keep_thr, keep_scale, seed, o, lse,
                  outer, lanes, nvmax, it // nqt, (it % nqt) * BQ)


@njit(cache=True, fastmath=FASTMATH, error_model="numpy")
def _fwd_tile(q, k, kT, v, biasT, bmap, has_bias, klim, scale, keep_thr, keep_scale, seed, o, lse, outer, lanes,
              nvmax, n, i0):
    """Query rows i0 .. i0 + BQ of head n: online softmax over key tiles with a running max m and sum l per
    row; key tiles past the largest klim of the rows are never touched (causal: nothing above the diagonal)."""
    L, d = q.shape[1], q.shape[2]
    S, dv = v.shape[1], v.shape[2]
    dt = q.dtype
    zero = scale - scale
    mr = min(BQ, L - i0)
    qsT = np.zeros((d, BQ), dt)
    kl = np.zeros(BQ, np.int64)
    kmax, kmin = 0, klim[n, i0]
    for i in range(mr):
        kl[i] = klim[n, i0 + i]
        kmax, kmin = max(kmax, kl[i]), min(kmin, kl[i])
        for c in range(d):
            qsT[c, i] = q[n, i0 + i, c] * scale
    mono = True                                         # kl non-decreasing: causal, 1-d valid_lens
    for i in range(1, mr):
        mono = mono and kl[i] >= kl[i - 1]
    rk = np.empty(BQ, np.uint64)
    for i in range(BQ):
        rk[i] = row_key(seed, n * L + i0 + i)
    stf = np.empty(BK * BQ, dt)
    st = stf.reshape(BK, BQ)
    Sp = kT.shape[2]
    kTf, qsTf, vf = kT.reshape(-1), qsT.reshape(-1), v.reshape(-1)
    boffq = np.arange(d) * BQ                           # B rows of the score GEMM: rows of qsT
    boffv = np.arange(BK) * dv                          # B rows of P V: rows of the key tile of v
    outer_pv = outer and dv % lanes == 0
    pv = np.empty(BQ * dv, dt)
    acc = np.zeros((BQ, dv), dt)
    m = np.empty(BQ, dt)
    l = np.zeros(BQ, dt)
    for i in range(BQ):
        m[i] = -np.inf
    mnew = np.empty(BQ, dt)
    alpha = np.empty(BQ, dt)
    lo, zk, hi = np.empty(BK, np.int64), np.zeros(BK, np.int64), np.empty(BQ, np.int64)
    b = bmap[n]
    for kt in range((kmax + BK - 1) // BK):
        j0 = kt * BK
        mk = min(BK, S - j0)
        tile_bounds(kl, j0, mk, lo, hi)
        if outer:    # st[j, i] = sum_c kT[n, c, j0 + j] qsT[c, i], the whole tile (padded keys give 0; what the
            outer_gemm(kTf[n * d * Sp + j0:], Sp, BK, qsTf, boffq, d, stf, BQ, BQ, lanes, nvmax)   # mask removes
        else:        # is skipped or zeroed below)
            st[:] = zero
            gemm_nn(k[n, j0:j0 + mk], qsT, st, mk, BQ, d, lo, zk)
        if has_bias or (kmin < j0 + BK and not mono):
            _mask_tile(st, j0, i0, kl, biasT, b, has_bias)
        for i in range(BQ):
            mnew[i] = m[i]
        for j in range(BK):                             # rows i < lo[j] do not see key j: skipped here,
            c0 = max(lo[j], 0)                          # zeroed in the exp pass (covers monotone kl)
            for ii in range(BQ - c0):
                x = st[j, c0 + ii]
                mnew[c0 + ii] = x if x > mnew[c0 + ii] else mnew[c0 + ii]
        for i in range(BQ):
            ms = mnew[i] if mnew[i] > -np.inf else zero        # all masked so far: p = exp(-inf) = 0
            alpha[i] = exp_neg(m[i] - ms)
            m[i] = mnew[i]
            mnew[i] = ms
            l[i] = l[i] * alpha[i]
        for j in range(BK):
            c0 = max(lo[j], 0)
            for i in range(c0):
                st[j, i] = zero
            for ii in range(BQ - c0):
                p = exp_neg(st[j, c0 + ii] - mnew[c0 + ii])
                st[j, c0 + ii] = p
                l[c0 + ii] += p
        if keep_thr > 0:
            for j in range(BK):
                for i in range(BQ):
                    st[j, i] = st[j, i] * keep_scale if keep_bits(rk[i], j0 + j) >= keep_thr else zero
        if outer_pv:                                    # acc = alpha acc + P V (st is P^T; masked entries 0)
            outer_gemm(stf, BQ, BQ, vf[(n * S + j0) * dv:], boffv, mk, pv, dv, dv, lanes, nvmax)
            for i in range(BQ):
                a = alpha[i]
                for c in range(dv):
                    acc[i, c] = acc[i, c] * a + pv[i * dv + c]
        else:
            for i in range(BQ):
                a = alpha[i]
                if a != 1:                              # the row max moved
                    for c in range(dv):
                        acc[i, c] *= a
            gemm_tn(st, v[n, j0:j0 + mk], acc, BQ, dv, mk, hi)
    one = q.dtype.type(1.0)
    for i in range(mr):
        if l[i] != 0:                                   # a NaN score made l NaN: o and lse are NaN, as in PyTorch
            inv = one / l[i]
            for c in range(dv):
                o[n, i0 + i, c] = acc[i, c] * inv
            lse[n, i0 + i] = m[i] + np.log(l[i])
        else:
            for c in range(dv):
                o[n, i0 + i, c] = zero
            lse[n, i0 + i] = -np.inf


@njit(cache=True, parallel=True, error_model="numpy")
def flash_bwd(dout, q, k, v, o, lse, biasT, bmap, has_bias, klim, scale, keep_thr, keep_scale, seed, G,
              dq_t, dk, dv):
    """Recompute P tile by tile from q, k and lse; D_i = rowsum(dout * o); dS = P (dP - D).

    Outputs: dq_t (G, N, L, d) holds dq summed over the key tiles of group g (G = 1: dq itself); dk (N, S, d)
    and dv (N, S, dv) are overwritten. Fully masked rows (lse = -inf) get P = 0, so zero gradients.
    prange over (n, g) for g < G: iteration (n, g) owns key tiles g, g + G, ... of head n (their dk, dv)
    and its own dq_t[g, n], so no two iterations write the same element."""
    N = q.shape[0]
    for it in prange(N * G):
        _bwd_keys(dout, q, k, v, o, lse, biasT, bmap, has_bias, klim, scale, keep_thr, keep_scale, seed, G,
                  dq_t, dk, dv, it // G, it % G)


@njit(cache=True, fastmath=FASTMATH, error_model="numpy")
def _head_prep(dout, q, o, lse, klim, scale, dvn, n):
    """Both backward paths' per-head inputs, in whole query tiles: scale * q^T and dout^T (nqt, d or dv, BQ),
    lse (+inf on padding and on fully masked rows: P = exp(s - lse) = 0 there), D = rowsum(dout * o), klim
    (0 on padding), and each query tile's largest klim."""
    L, d = q.shape[1], q.shape[2]
    nqt = (L + BQ - 1) // BQ
    dt = q.dtype
    zero = scale - scale
    qsT = np.zeros((nqt, d, BQ), dt)
    doT = np.zeros((nqt, dvn, BQ), dt)
    ls = np.empty(nqt * BQ, dt)
    di = np.zeros(nqt * BQ, dt)
    kl = np.zeros(nqt * BQ, np.int64)
    for i in range(nqt * BQ):
        ls[i] = np.inf
    for i in range(L):
        qt, r = i // BQ, i % BQ
        for c in range(d):
            qsT[qt, c, r] = q[n, i, c] * scale
        s = zero
        for c in range(dvn):
            doT[qt, c, r] = dout[n, i, c]
            s += dout[n, i, c] * o[n, i, c]
        di[i] = s
        ls[i] = np.inf if lse[n, i] == -np.inf else lse[n, i]     # NaN stays: NaN gradients
        kl[i] = klim[n, i]
    qtmax = np.zeros(nqt, np.int64)
    for qt in range(nqt):
        for i in range(qt * BQ, min((qt + 1) * BQ, L)):
            qtmax[qt] = max(qtmax[qt], kl[i])
    return qsT, doT, ls, di, kl, qtmax


@njit(cache=True, fastmath=FASTMATH, error_model="numpy")
def _bwd_keys(dout, q, k, v, o, lse, biasT, bmap, has_bias, klim, scale, keep_thr, keep_scale, seed, G,
              dq_t, dk, dv, n, g):
    """Key tiles g, g + G, ... of head n; for each, the query tiles that see it. Per head it first builds
    scale * q^T and dout^T in query tiles, D, and lse / klim padded to whole tiles (lse = +inf, klim = 0 on
    padding and lse = +inf on fully masked rows: P = exp(s - lse) = 0 there)."""
    L, d = q.shape[1], q.shape[2]
    S, dvn = v.shape[1], v.shape[2]
    nqt, nkt = (L + BQ - 1) // BQ, (S + BK - 1) // BK
    dt = q.dtype
    zero = scale - scale
    qsT, doT, ls, di, kl, qtmax = _head_prep(dout, q, o, lse, klim, scale, dvn, n)
    qtmin = np.zeros(nqt, np.int64)
    qtmono = np.ones(nqt, np.bool_)                     # kl non-decreasing over the tile's rows
    for qt in range(nqt):
        qtmin[qt] = kl[qt * BQ]
        for i in range(qt * BQ, min((qt + 1) * BQ, L)):
            qtmin[qt] = min(qtmin[qt], kl[i])
            if i > qt * BQ and kl[i] < kl[i - 1]:
                qtmono[qt] = False
    st = np.empty((BK, BQ), dt)
    dpt = np.empty((BK, BQ), dt)
    dkacc = np.empty((BK, d), dt)
    dvacc = np.empty((BK, dvn), dt)
    rk = np.empty(BQ, np.uint64)
    lo, zk, hi = np.empty(BK, np.int64), np.zeros(BK, np.int64), np.empty(BQ, np.int64)
    dqn = dq_t[g, n]
    dqn[:] = zero
    b = bmap[n]
    for kt in range(g, nkt, G):
        j0 = kt * BK
        mk = min(BK, S - j0)
        kr, vr = k[n, j0:j0 + mk], v[n, j0:j0 + mk]
        dkacc[:] = zero
        dvacc[:] = zero
        for qt in range(nqt):
            if qtmax[qt] <= j0:
                continue
            i0 = qt * BQ
            mr = min(BQ, L - i0)
            lst, dit = ls[i0:i0 + BQ], di[i0:i0 + BQ]
            tile_bounds(kl[i0:i0 + BQ], j0, mk, lo, hi)
            st[:] = zero
            gemm_nn(kr, qsT[qt], st, mk, BQ, d, lo, zk)
            dpt[:] = zero
            gemm_nn(vr, doT[qt], dpt, mk, BQ, dvn, lo, zk)
            if has_bias or (qtmin[qt] < j0 + BK and not qtmono[qt]):
                _mask_tile(st, j0, i0, kl[i0:i0 + BQ], biasT, b, has_bias)
            for j in range(BK):                        # rows i < lo[j] do not see key j: P = dS = 0
                for i in range(max(lo[j], 0)):
                    st[j, i] = -np.inf
            if keep_thr > 0:     # P -> P keep / (1 - p) for dV; dS = P (dP keep / (1 - p) - D), times scale
                for i in range(BQ):
                    rk[i] = row_key(seed, n * L + i0 + i)
                for j in range(BK):
                    for i in range(BQ):
                        sc = st[j, i]
                        p = exp_neg(sc - lst[i])
                        f = keep_scale if keep_bits(rk[i], j0 + j) >= keep_thr else zero
                        st[j, i] = zero if sc == -np.inf else p * f
                        dpt[j, i] = zero if sc == -np.inf else (p * scale) * (dpt[j, i] * f - dit[i])
            else:            # masked entries are exactly 0 (selects): a NaN row's lse and D reach only its keys
                for j in range(BK):
                    for i in range(BQ):
                        sc = st[j, i]
                        p = exp_neg(sc - lst[i])
                        st[j, i] = zero if sc == -np.inf else p
                        dpt[j, i] = zero if sc == -np.inf else (p * scale) * (dpt[j, i] - dit[i])
            gemm_nn(st, dout[n, i0:i0 + mr], dvacc, mk, dvn, mr, zk, lo)
            gemm_nn(dpt, q[n, i0:i0 + mr], dkacc, mk, d, mr, zk, lo)
            gemm_tn(dpt, kr, dqn[i0:i0 + mr], mr, d, mk, hi)
        for j in range(mk):
            for c in range(d):
                dk[n, j0 + j, c] = dkacc[j, c]
            for c in range(dvn):
                dv[n, j0 + j, c] = dvacc[j, c]


@njit(cache=True, parallel=True, error_model="numpy")
def flash_bwd_outer(dout, q, k, kT, vT, v, o, lse, biasT, bmap, has_bias, klim, scale, keep_thr, keep_scale,
                    seed, G, dq_t, dk, dv, lanes, nvmax):
    """flash_bwd on outer_gemm, for d and dv whole numbers of vectors (`lanes`): the same outputs and the
    same (n, g) work split. kT (N, d, Sp), vT (N, dv, Sp): keys_t of k and v."""
    N = q.shape[0]
    for it in prange(N * G):
        _bwd_keys_outer(dout, q, k, kT, vT, v, o, lse, biasT, bmap, has_bias, klim, scale, keep_thr, keep_scale,
                        seed, G, dq_t, dk, dv, lanes, nvmax, it // G, it % G)


@njit(cache=True, fastmath=FASTMATH, error_model="numpy")
def _transpose(a, at, m, n):
    """at[j, i] = a[i, j] for i < m, j < n (8 x 8 blocks, each in cache)."""
    for i0 in range(0, m, 8):
        for j0 in range(0, n, 8):
            for i in range(i0, min(m, i0 + 8)):
                for j in range(j0, min(n, j0 + 8)):
                    at[j, i] = a[i, j]


@njit(cache=True, fastmath=FASTMATH, error_model="numpy")
def _bwd_keys_outer(dout, q, k, kT, vT, v, o, lse, biasT, bmap, has_bias, klim, scale, keep_thr, keep_scale,
                    seed, G, dq_t, dk, dv, lanes, nvmax, n, g):
    """_bwd_keys with the tiles held query-major, s (BQ queries, BK keys), so that every tile GEMM is an
    outer_gemm whose reduction index is its operands' row index:
      s  = (scale q) k^T     reduction over d:   A = scale q^T (d, BQ),  B = rows of kT
      dp = dout v^T          reduction over dv:  A = dout^T (dv, BQ),    B = rows of vT
      dV += P^T dout         reduction over i:   A = P (BQ, BK),         B = rows of dout
      dK += dS^T q           reduction over i:   A = dS (BQ, BK),        B = rows of q
      dQ += dS k             reduction over j:   A = dS^T (BK, BQ),      B = rows of k
    A query row i sees the tile's first hi[i] keys (tile_bounds): the rest of its row is -inf, then P = dS = 0
    (selects, so a NaN elsewhere in the row stays out)."""
    L, d = q.shape[1], q.shape[2]
    S, dvn = v.shape[1], v.shape[2]
    Sp = kT.shape[2]
    nqt, nkt = (L + BQ - 1) // BQ, (S + BK - 1) // BK
    dt = q.dtype
    zero = scale - scale
    qsT, doT, ls, di, kl, qtmax = _head_prep(dout, q, o, lse, klim, scale, dvn, n)
    qsTf, doTf = qsT.reshape(-1), doT.reshape(-1)
    kTf, vTf = kT.reshape(-1), vT.reshape(-1)
    qf, kf, dof = q.reshape(-1), k.reshape(-1), dout.reshape(-1)
    sf = np.empty(BQ * BK, dt)
    dpf = np.empty(BQ * BK, dt)
    st, dpt = sf.reshape(BQ, BK), dpf.reshape(BQ, BK)
    dsT = np.empty((BK, BQ), dt)
    dsTf = dsT.reshape(-1)
    tkv = np.empty(BK * max(d, dvn), dt)               # one GEMM's product before it is added in
    tq = np.empty(BQ * d, dt)
    boffk = n * d * Sp + np.arange(d) * Sp             # rows of kT[n] (plus the tile's j0)
    boffv = n * dvn * Sp + np.arange(dvn) * Sp
    rows = np.arange(max(BQ, BK))
    rk = np.empty(BQ, np.uint64)
    lo, hi = np.empty(BK, np.int64), np.empty(BQ, np.int64)
    dkacc = np.empty((BK, d), dt)
    dvacc = np.empty((BK, dvn), dt)
    dqn = dq_t[g, n]
    dqn[:] = zero
    b = bmap[n]
    for kt in range(g, nkt, G):
        j0 = kt * BK
        mk = min(BK, S - j0)
        dkacc[:] = zero
        dvacc[:] = zero
        boffkr = (n * S + j0 + rows[:BK]) * d           # rows of k in the tile
        for qt in range(nqt):
            if qtmax[qt] <= j0:
                continue
            i0 = qt * BQ
            mr = min(BQ, L - i0)
            tile_bounds(kl[i0:i0 + BQ], j0, mk, lo, hi)
            outer_gemm(qsTf[qt * d * BQ:], BQ, BQ, kTf[j0:], boffk, d, sf, BK, BK, lanes, nvmax)
            outer_gemm(doTf[qt * dvn * BQ:], BQ, BQ, vTf[j0:], boffv, dvn, dpf, BK, BK, lanes, nvmax)
            if has_bias:
                for i in range(BQ):
                    for j in range(BK):
                        st[i, j] += biasT[b, j0 + j, i0 + i if biasT.shape[2] > 1 else 0]
            if keep_thr > 0:
                for i in range(BQ):
                    rk[i] = row_key(seed, n * L + i0 + i)
            for i in range(BQ):
                li, dii, hii = ls[i0 + i], di[i0 + i], hi[i]
                sr, dr = st[i], dpt[i]
                if keep_thr > 0:     # P -> P keep / (1 - p) for dV; dS = P (dP keep / (1 - p) - D), times scale
                    for j in range(hii):
                        sc = sr[j]
                        p = exp_neg(sc - li)
                        f = keep_scale if keep_bits(rk[i], j0 + j) >= keep_thr else zero
                        sr[j] = zero if sc == -np.inf else p * f
                        dr[j] = zero if sc == -np.inf else (p * scale) * (dr[j] * f - dii)
                else:
                    for j in range(hii):
                        sc = sr[j]
                        p = exp_neg(sc - li)
                        sr[j] = zero if sc == -np.inf else p
                        dr[j] = zero if sc == -np.inf else (p * scale) * (dr[j] - dii)
                sr[hii:] = zero                          # keys row i does not see
                dr[hii:] = zero
            outer_gemm(sf, BK, BK, dof, (n * L + i0 + rows[:mr]) * dvn, mr, tkv, dvn, dvn, lanes, nvmax)
            for j in range(BK):
                for c in range(dvn):
                    dvacc[j, c] += tkv[j * dvn + c]
            outer_gemm(dpf, BK, BK, qf, (n * L + i0 + rows[:mr]) * d, mr, tkv, d, d, lanes, nvmax)
            for j in range(BK):
                for c in range(d):
                    dkacc[j, c] += tkv[j * d + c]
            _transpose(dpt, dsT, BQ, BK)
            outer_gemm(dsTf, BQ, BQ, kf, boffkr[:mk], mk, tq, d, d, lanes, nvmax)
            for i in range(mr):
                for c in range(d):
                    dqn[i0 + i, c] += tq[i * d + c]
        for j in range(mk):
            for c in range(d):
                dk[n, j0 + j, c] = dkacc[j, c]
            for c in range(dvn):
                dv[n, j0 + j, c] = dvacc[j, c]
