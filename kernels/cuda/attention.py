"""Scaled dot-product attention on the GPU, fused and tiled: the L x S probabilities are never stored.

Semantics as kernels/reference/attention.py (masks, is_causal, valid_lens, dropout by the same counter hash,
a fully masked row gives o = 0, lse = -inf and zero gradients, a NaN score NaN ones). The launchers fold
is_causal, valid_lens and the key count into one key limit per query row (klim, kernels.common.key_limits);
a block stops at the largest limit of its rows, so with is_causal the key tiles above the diagonal are never
loaded (a block of query rows 0..63 reads keys 0..63 only). A mask becomes an additive bias (NB, Lm, S),
Lm in {1, L}, and bmap maps each head to its block, so a mask broadcast over heads is not copied out; with
no mask the bias is empty (NB = 0) and the kernels skip it.

Three kernels, each built by its own function per (dtype, head-dim bound D):
  fwd      (FlashAttention-2's loop) a block owns ROWS query rows, one thread per row holding its q row and
           output accumulator in registers. The block walks the keys in tiles of BK rows: it loads the K and V
           tiles into shared memory together, then each thread scores its row against the tile, rescales its
           accumulator once per tile by the new running max, and adds P V. Saves lse = m + log(l).
  bwd_dq   the same walk over K/V tiles, recomputing P from q, k and lse: dq += dS k.
  bwd_dkv  a block owns ROWS key rows and walks the query rows in tiles of BK (Q, dO, lse, D and the limits
           in shared memory), skipping tiles whose rows all stop before its keys.
Arguments, in this order: the inputs (dout, q, k, v; backward also stats (N, L, 2) = (lse, D) per query row,
D = rowsum(dout * o)), the mask (bias, bmap), the key limits klim, the scalars (scale; dropout's threshold
thr, 0 for none, its scale kscale and seed), then the outputs. Each sum runs in a fixed order (no atomics:
the same bits every run). Arithmetic in the inputs' dtype (float32 accumulates in float32, as FlashAttention
does); head dims up to DMAX.
"""
import functools
import math

import numpy as np
from numba import cuda, from_dtype, int64

from ..common import dropout_scale, dropout_threshold, key_limits, mask_block_map
from ._dev import SIM, contiguous, empty, xp_of
from ._launch import kernel
from ._rng import keep as _keep

__all__ = ["sdpa_fwd", "sdpa_bwd"]

DMAX = 128          # the largest head dim (q/k and v) the kernels hold in registers
ROWS = 8 if SIM else 64      # threads per block: query (or key) rows (the simulator runs Python threads)
NEG = -math.inf


def _tile(dtype):
    """Rows per shared-memory tile: two (tile, DMAX) arrays fit in 32 KB. At most ROWS (bwd_dkv loads a
    tile's per-row values with one thread per row)."""
    return 4 if SIM else (32 if np.dtype(dtype).itemsize == 4 else 16)


def _head_bound(d, dv):
    """The compile-time head dim a kernel is built for: the smallest of 16, 32, 64, DMAX holding d and dv."""
    return next(D for D in (16, 32, 64, DMAX) if max(d, dv) <= D)


# ---- device functions shared by the kernels ------------------------------------------------------------------
@cuda.jit(device=True)
def _load_rows(dst, src, n, r0, nr, t):
    """dst[:nr, :] = src[n, r0:r0 + nr, :], zero past src's width, the block's threads striding over it."""
    D, width = dst.shape[1], src.shape[2]
    for e in range(t, nr * D, ROWS):
        r = e // D
        c = e - r * D
        dst[r, c] = src[n, r0 + r, c] if c < width else 0


@cuda.jit(device=True)
def _block_max_limit(klim, n, r0, nrows, out):
    """out[0] = the largest klim[n, r] over the block's rows r0.. (0 if none); thread 0 writes it."""
    if cuda.threadIdx.x == 0:
        mx = 0
        for r in range(r0, min(r0 + ROWS, nrows)):
            if klim[n, r] > mx:
                mx = klim[n, r]
        out[0] = mx


@cuda.jit(device=True)
def _bias_at(bias, bmap, n, i, j):
    """The mask's additive value for head n, query row i, key j (a mask of one row serves every row)."""
    return bias[bmap[n], i if bias.shape[1] > 1 else 0, j]


@cuda.jit(device=True)
def _dropped(thr, seed, row, j):
    """Whether dropout drops key j of query row `row` (flat over heads); thr = 0: never."""
    return thr > 0 and not _keep(seed, row, j, thr)


def _per_key(build):
    """Builds a kernel once per (dtype, D) and registers it under that key (kernels/ptxcheck.py rebuilds a
    recorded kernel by calling its builder with the key). Shared tiles and accumulators are typed at compile
    time, and every loop over a head dim runs to the constant D (rows zero-padded past d and dv), so the
    compiler unrolls them and keeps the q row and the accumulators in registers."""
    built = {}

    @functools.wraps(build)
    def get(dtype, D):
        key = (np.dtype(dtype), int(D))
        if key not in built:
            built[key] = build(*key).register(*key)
        return built[key]
    return get


# ---- forward -------------------------------------------------------------------------------------------------
@_per_key
def _fwd_kernel(dtype, D):
    T, BK = from_dtype(dtype), _tile(dtype)

    @kernel
    def fwd(q, k, v, bias, bmap, klim, scale, thr, kscale, seed, o, lse):
        """q (N, L, d), k (N, S, d), v (N, S, dv) -> o (N, L, dv), lse (N, L). Grid (row blocks, N)."""
        n, t = cuda.blockIdx.y, cuda.threadIdx.x
        r0 = cuda.blockIdx.x * ROWS
        i = r0 + t
        L, d, dv = q.shape[1], q.shape[2], v.shape[2]
        masked = bias.shape[0] > 0
        ks = cuda.shared.array((BK, D), T)
        vs = cuda.shared.array((BK, D), T)
        kmax = cuda.shared.array(1, int64)
        qr = cuda.local.array(D, T)
        acc = cuda.local.array(D, T)
        sc = cuda.local.array(BK, T)
        sca, ksc = T(scale), T(kscale)
        active = i < L
        lim = klim[n, i] if active else 0
        if active:
            for c in range(D):
                qr[c] = q[n, i, c] if c < d else T(0)
        for c in range(D):
            acc[c] = T(0)
        m, l = T(NEG), T(0)
        _block_max_limit(klim, n, r0, L, kmax)
        cuda.syncthreads()
        end = kmax[0]
        for j0 in range(0, end, BK):
            nk = min(BK, end - j0)
            _load_rows(ks, k, n, j0, nk, t)
            _load_rows(vs, v, n, j0, nk, t)
            cuda.syncthreads()
            mine = min(nk, lim - j0)             # keys of this tile the row attends (<= 0: none)
            if mine > 0:
                mt = m
                for jj in range(mine):
                    s = T(0)
                    for c in range(D):
                        s += qr[c] * ks[jj, c]
                    s *= sca
                    if masked:
                        s += T(_bias_at(bias, bmap, n, i, j0 + jj))
                    sc[jj] = s
                    if s > mt or s != s:          # a NaN score wins: the row's output and lse become NaN
                        mt = s
                if mt != NEG:                    # else every key of the tile is masked: nothing to add
                    corr = T(math.exp(m - mt))
                    l *= corr
                    for c in range(D):
                        acc[c] *= corr
                    for jj in range(mine):
                        if sc[jj] == NEG:
                            continue
                        p = T(math.exp(sc[jj] - mt))
                        l += p
                        if _dropped(thr, seed, n * L + i, j0 + jj):
                            continue
                        p *= ksc
                        for c in range(D):
                            acc[c] += p * vs[jj, c]
                    m = mt
            cuda.syncthreads()
        if active:
            inv = T(1) / l if l != 0 else T(0)      # l == 0: fully masked; NaN l: NaN output
            for c in range(D):
                if c < dv:
                    o[n, i, c] = acc[c] * inv
            lse[n, i] = m + T(math.log(l)) if l != 0 else T(NEG)
    return fwd


# ---- backward: dq --------------------------------------------------------------------------------------------
@_per_key
def _dq_kernel(dtype, D):
    T, BK = from_dtype(dtype), _tile(dtype)

    @kernel
    def bwd_dq(dout, q, k, v, stats, bias, bmap, klim, scale, thr, kscale, seed, dq):
        """dq (N, L, d) = scale * sum_j dS[i, j] k[j], dS = P (dP * keep - D). Grid (row blocks, N)."""
        n, t = cuda.blockIdx.y, cuda.threadIdx.x
        r0 = cuda.blockIdx.x * ROWS
        i = r0 + t
        L, d, dv = q.shape[1], q.shape[2], v.shape[2]
        masked = bias.shape[0] > 0
        ks = cuda.shared.array((BK, D), T)
        vs = cuda.shared.array((BK, D), T)
        kmax = cuda.shared.array(1, int64)
        qr = cuda.local.array(D, T)
        gr = cuda.local.array(D, T)
        acc = cuda.local.array(D, T)
        sca, ksc = T(scale), T(kscale)
        active = i < L
        lim, li, Di = 0, T(NEG), T(0)
        if active:
            li, Di = stats[n, i, 0], stats[n, i, 1]
            if li != NEG:
                lim = klim[n, i]
            for c in range(D):
                qr[c] = q[n, i, c] if c < d else T(0)
            for c in range(D):
                gr[c] = dout[n, i, c] if c < dv else T(0)
        for c in range(D):
            acc[c] = T(0)
        _block_max_limit(klim, n, r0, L, kmax)
        cuda.syncthreads()
        end = kmax[0]
        for j0 in range(0, end, BK):
            nk = min(BK, end - j0)
            _load_rows(ks, k, n, j0, nk, t)
            _load_rows(vs, v, n, j0, nk, t)
            cuda.syncthreads()
            for jj in range(min(nk, lim - j0)):
                s = T(0)
                for c in range(D):
                    s += qr[c] * ks[jj, c]
                s *= sca
                if masked:
                    s += T(_bias_at(bias, bmap, n, i, j0 + jj))
                if s == NEG:
                    continue
                p = T(math.exp(s - li))
                kp = T(0) if _dropped(thr, seed, n * L + i, j0 + jj) else ksc
                dp = T(0)
                for c in range(D):
                    dp += gr[c] * vs[jj, c]
                ds = p * (dp * kp - Di)
                for c in range(D):
                    acc[c] += ds * ks[jj, c]
            cuda.syncthreads()
        if active:
            for c in range(D):
                if c < d:
                    dq[n, i, c] = acc[c] * sca
    return bwd_dq


# ---- backward: dk, dv ----------------------------------------------------------------------------------------
@_per_key
def _dkv_kernel(dtype, D):
    T, BK = from_dtype(dtype), _tile(dtype)

    @kernel
    def bwd_dkv(dout, q, k, v, stats, bias, bmap, klim, scale, thr, kscale, seed, dk, dv):
        """dk (N, S, d) = scale * sum_i dS[i, j] q[i], dv (N, S, dv) = sum_i P[i, j] keep / (1 - p) dout[i].
        Grid (key-row blocks, N)."""
        n, t = cuda.blockIdx.y, cuda.threadIdx.x
        c0 = cuda.blockIdx.x * ROWS                     # the block's first key row
        j = c0 + t
        L, S, dh, dvh = q.shape[1], k.shape[1], q.shape[2], v.shape[2]
        masked = bias.shape[0] > 0
        qs = cuda.shared.array((BK, D), T)
        gs = cuda.shared.array((BK, D), T)
        ls = cuda.shared.array(BK, T)
        Ds = cuda.shared.array(BK, T)
        lims = cuda.shared.array(BK, int64)
        use = cuda.shared.array(1, int64)
        kr = cuda.local.array(D, T)
        vr = cuda.local.array(D, T)
        ak = cuda.local.array(D, T)
        av = cuda.local.array(D, T)
        sca, ksc = T(scale), T(kscale)
        active = j < S
        if active:
            for c in range(D):
                kr[c] = k[n, j, c] if c < dh else T(0)
            for c in range(D):
                vr[c] = v[n, j, c] if c < dvh else T(0)
        for c in range(D):
            ak[c] = T(0)
        for c in range(D):
            av[c] = T(0)
        for i0 in range(0, L, BK):
            nq = min(BK, L - i0)
            if t < nq:                              # BK <= ROWS: one thread per tile row
                li = stats[n, i0 + t, 0]
                ls[t] = li
                Ds[t] = stats[n, i0 + t, 1]
                lims[t] = klim[n, i0 + t] if li != NEG else 0
            cuda.syncthreads()
            if t == 0:                              # does any row of the tile reach the block's first key?
                u = 0
                for r in range(nq):
                    if lims[r] > c0:
                        u = 1
                use[0] = u
            cuda.syncthreads()
            if use[0]:
                _load_rows(qs, q, n, i0, nq, t)
                _load_rows(gs, dout, n, i0, nq, t)
                cuda.syncthreads()
                if active:
                    for r in range(nq):
                        if j >= lims[r]:
                            continue
                        i = i0 + r
                        s = T(0)
                        for c in range(D):
                            s += qs[r, c] * kr[c]
                        s *= sca
                        if masked:
                            s += T(_bias_at(bias, bmap, n, i, j))
                        if s == NEG:
                            continue
                        p = T(math.exp(s - ls[r]))
                        kp = T(0) if _dropped(thr, seed, n * L + i, j) else ksc
                        dp = T(0)
                        for c in range(D):
                            dp += gs[r, c] * vr[c]
                        ds = p * (dp * kp - Ds[r])
                        pk = p * kp
                        for c in range(D):
                            av[c] += pk * gs[r, c]
                        for c in range(D):
                            ak[c] += ds * qs[r, c]
            cuda.syncthreads()
        if active:
            for c in range(D):
                if c < dh:
                    dk[n, j, c] = ak[c] * sca
            for c in range(D):
                if c < dvh:
                    dv[n, j, c] = av[c]
    return bwd_dkv


# ---- launchers -----------------------------------------------------------------------------------------------
def _bias(xp, mask, lead, L, S, dtype):
    """(bias (NB, Lm, S), bmap (N,)): a bool (True = attend) or float mask broadcastable to (*lead, L, S), kept at
    its own leading blocks; no mask: an empty bias (NB = 0), which the kernels skip, and an empty bmap."""
    if mask is None:
        return xp.zeros((0, 1, 1), dtype), xp.zeros(0, np.int64)
    m = xp.asarray(mask)
    m = xp.where(m, 0.0, -np.inf).astype(dtype) if m.dtype == np.bool_ else m.astype(dtype)
    m = m.reshape((1,) * (len(lead) + 2 - m.ndim) + m.shape)
    mlead, Lm = m.shape[:-2], m.shape[-2]
    nb = int(np.prod(mlead))
    bias = xp.ascontiguousarray(xp.broadcast_to(m.reshape(nb, Lm, m.shape[-1]), (nb, Lm, S)))
    return bias, xp.asarray(mask_block_map(mlead, lead))


def _dropout_args(dropout_p):
    """(thr, kscale) for the kernels: thr = 0 means no dropout."""
    if dropout_p <= 0:
        return 0, 1.0
    return dropout_threshold(dropout_p), dropout_scale(dropout_p)


def _flat(a, n_lead, dtype):
    """(*lead, R, c) -> (N, R, c), N = prod(lead) (which may be 0)."""
    return contiguous(a, dtype).reshape((int(np.prod(a.shape[:n_lead])),) + tuple(a.shape[n_lead:]))


def _check_dims(d, dv):
    if d > DMAX or dv > DMAX:
        raise ValueError(f"q, v: the CUDA attention kernel holds head dims up to {DMAX}; got {d} and {dv}")


def sdpa_fwd(q, k, v, mask, is_causal, scale, valid_lens=None, dropout_p=0.0, seed=0):
    """q (..., L, d), k (..., S, d), v (..., S, dv) on the device -> (o (..., L, dv), lse (..., L)), q's dtype."""
    xp = xp_of(q)
    lead, (L, d), (S, dvn) = tuple(q.shape[:-2]), q.shape[-2:], v.shape[-2:]
    _check_dims(d, dvn)
    dt, nl = q.dtype, len(q.shape) - 2
    qf, kf, vf = (_flat(a, nl, dt) for a in (q, k, v))
    N = qf.shape[0]
    bias, bmap = _bias(xp, mask, lead, L, S, dt)
    klim = key_limits(lead, L, S, is_causal, valid_lens, xp)
    thr, ks = _dropout_args(dropout_p)
    o = empty((N, L, dvn), dt, qf)
    lse = empty((N, L), dt, qf)
    if N and L:
        fwd = _fwd_kernel(dt, _head_bound(d, dvn))
        fwd[(-(-L // ROWS), N), ROWS](qf, kf, vf, bias, bmap, klim, float(scale), thr, ks, int(seed), o, lse)
    return o.reshape(lead + (L, dvn)), lse.reshape(lead + (L,))


def sdpa_bwd(dout, q, k, v, o, lse, mask, is_causal, scale, valid_lens=None, dropout_p=0.0, seed=0):
    """-> (dq, dk, dv) in q's dtype, from dout (..., L, dv) and the forward's o and lse."""
    xp = xp_of(q)
    lead, (L, d), (S, dvn) = tuple(q.shape[:-2]), q.shape[-2:], v.shape[-2:]
    _check_dims(d, dvn)
    dt, nl = q.dtype, len(q.shape) - 2
    qf, kf, vf, dof, of = (_flat(a, nl, dt) for a in (q, k, v, dout, o))
    N = qf.shape[0]
    bias, bmap = _bias(xp, mask, lead, L, S, dt)
    klim = key_limits(lead, L, S, is_causal, valid_lens, xp)
    thr, ks = _dropout_args(dropout_p)
    stats = empty((N, L, 2), dt, qf)                 # per query row: lse, and D = rowsum(dout * o) (float64 sum)
    stats[..., 0] = _flat(lse, nl, dt)
    stats[..., 1] = (dof.astype(np.float64) * of.astype(np.float64)).sum(axis=-1)
    dq, dk, dvv = empty(qf.shape, dt, qf), empty(kf.shape, dt, qf), empty(vf.shape, dt, qf)
    args = (dof, qf, kf, vf, stats, bias, bmap, klim, float(scale), thr, ks, int(seed))
    D = _head_bound(d, dvn)
    if N and L:
        _dq_kernel(dt, D)[(-(-L // ROWS), N), ROWS](*args, dq)
    if N and S:
        _dkv_kernel(dt, D)[(-(-S // ROWS), N), ROWS](*args, dk, dvv)
    return dq.reshape(q.shape), dk.reshape(k.shape), dvv.reshape(v.shape)
