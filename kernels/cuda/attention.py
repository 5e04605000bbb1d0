"""Scaled dot-product attention on the GPU, fused: the L x S probabilities are never stored.

Semantics as kernels/reference/attention.py (masks, is_causal, valid_lens, dropout by the same counter hash,
a fully masked row gives o = 0, lse = -inf and zero gradients). The launchers fold is_causal, valid_lens and
the key count into one key limit per query row (klim), so a query row never visits the keys past it: with
is_causal that skips the masked half. A mask becomes an additive bias (NB, Lm, S), Lm in {1, L}, and
bmap maps each head to its block, so a mask broadcast over heads is not copied out.

Forward: one thread per query row, an online softmax over its keys (FlashAttention's recurrence), the
output accumulated in registers, lse saved. Backward recomputes P from q, k and lse: one thread per query
row for dq, one thread per key row for dk and dv, each summing in a fixed order (no atomics: the same bits
every run). Head dims up to DMAX. These kernels read K and V from global memory (through the caches); a
shared-memory tiled version is the next step for speed.
"""
import math

import numpy as np
from numba import cuda, float64, uint64

from ..reference.attention import key_limits
from ._dev import SIM, contiguous, dev, empty, stream, xp_of

__all__ = ["sdpa_fwd", "sdpa_bwd"]

DMAX = 128          # the largest head dim (q/k and v) the kernels hold in registers
ROWS = 8 if SIM else 64      # threads per block: query (or key) rows (the simulator runs Python threads)


@cuda.jit(device=True)
def _keep(seed, row, j, thr):
    """The reference's dropout_keep for one (row, key): splitmix64's finalizer on a counter."""
    x = uint64(seed) + uint64(row) * uint64(0x9E3779B97F4A7C15) + uint64(j) * uint64(0xC2B2AE3D27D4EB4F)
    x = x ^ (x >> uint64(30))
    x = x * uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> uint64(27))
    x = x * uint64(0x94D049BB133111EB)
    x = x ^ (x >> uint64(31))
    return (x >> uint64(40)) >= thr


@cuda.jit(device=True)
def _score(q, k, bias, bmap, has_bias, n, i, j, scale):
    s = 0.0
    for c in range(q.shape[2]):
        s += float64(q[n, i, c]) * float64(k[n, j, c])
    s *= scale
    if has_bias:
        s += float64(bias[bmap[n], i if bias.shape[1] > 1 else 0, j])
    return s


@cuda.jit
def _fwd(q, k, v, bias, bmap, has_bias, klim, scale, thr, kscale, seed, o, lse):
    n = cuda.blockIdx.y
    i = cuda.blockIdx.x * ROWS + cuda.threadIdx.x
    L, dv = q.shape[1], v.shape[2]
    if i >= L:
        return
    acc = cuda.local.array(DMAX, float64)
    for c in range(dv):
        acc[c] = 0.0
    m = -math.inf
    l = 0.0
    row = n * L + i
    for j in range(klim[n, i]):
        s = _score(q, k, bias, bmap, has_bias, n, i, j, scale)
        if s == -math.inf:
            continue
        mn = max(m, s)
        corr = math.exp(m - mn)
        p = math.exp(s - mn)
        l = l * corr + p
        if thr > 0 and not _keep(seed, row, j, thr):
            p = 0.0
        else:
            p *= kscale
        for c in range(dv):
            acc[c] = acc[c] * corr + p * float64(v[n, j, c])
        m = mn
    inv = 1.0 / l if l > 0.0 else 0.0
    for c in range(dv):
        o[n, i, c] = acc[c] * inv
    lse[n, i] = m + math.log(l) if l > 0.0 else -math.inf


@cuda.jit(device=True)
def _ds(dout, q, k, v, lse, Dv, bias, bmap, has_bias, scale, thr, kscale, seed, n, i, j):
    """(P'_ij, dS_ij) for one query row and key: P' = P * keep/(1-p), dS = P (dP - D_i), dP = dout_i . v_j
    times keep/(1-p)."""
    L = q.shape[1]
    s = _score(q, k, bias, bmap, has_bias, n, i, j, scale)
    if s == -math.inf:
        return 0.0, 0.0
    p = math.exp(s - float64(lse[n, i]))
    ks = kscale
    if thr > 0 and not _keep(seed, n * L + i, j, thr):
        ks = 0.0
    dp = 0.0
    for c in range(v.shape[2]):
        dp += float64(dout[n, i, c]) * float64(v[n, j, c])
    return p * ks, p * (dp * ks - Dv[n, i])


@cuda.jit
def _bwd_dq(dout, q, k, v, lse, Dv, bias, bmap, has_bias, klim, scale, thr, kscale, seed, dq):
    n = cuda.blockIdx.y
    i = cuda.blockIdx.x * ROWS + cuda.threadIdx.x
    L, d = q.shape[1], q.shape[2]
    if i >= L:
        return
    acc = cuda.local.array(DMAX, float64)
    for c in range(d):
        acc[c] = 0.0
    if lse[n, i] != -math.inf:
        for j in range(klim[n, i]):
            _, ds = _ds(dout, q, k, v, lse, Dv, bias, bmap, has_bias, scale, thr, kscale, seed, n, i, j)
            for c in range(d):
                acc[c] += ds * float64(k[n, j, c])
    for c in range(d):
        dq[n, i, c] = acc[c] * scale


@cuda.jit
def _bwd_dkv(dout, q, k, v, lse, Dv, bias, bmap, has_bias, klim, scale, thr, kscale, seed, dk, dvo):
    n = cuda.blockIdx.y
    j = cuda.blockIdx.x * ROWS + cuda.threadIdx.x
    L, S, d, dvn = q.shape[1], k.shape[1], q.shape[2], v.shape[2]
    if j >= S:
        return
    ak = cuda.local.array(DMAX, float64)
    av = cuda.local.array(DMAX, float64)
    for c in range(d):
        ak[c] = 0.0
    for c in range(dvn):
        av[c] = 0.0
    for i in range(L):
        if j < klim[n, i] and lse[n, i] != -math.inf:
            pk, ds = _ds(dout, q, k, v, lse, Dv, bias, bmap, has_bias, scale, thr, kscale, seed, n, i, j)
            for c in range(dvn):
                av[c] += pk * float64(dout[n, i, c])
            for c in range(d):
                ak[c] += ds * float64(q[n, i, c])
    for c in range(d):
        dk[n, j, c] = ak[c] * scale
    for c in range(dvn):
        dvo[n, j, c] = av[c]


def _bias(xp, mask, lead, L, S, dtype):
    """(has_bias, bias (NB, Lm, S), bmap (N,)): a bool (True = attend) or float mask broadcastable to
    (*lead, L, S), kept at its own leading blocks."""
    N = max(int(np.prod(lead)), 1)
    if mask is None:
        return False, xp.zeros((1, 1, 1), dtype), xp.zeros(N, np.int64)
    m = xp.asarray(mask)
    m = xp.where(m, 0.0, -np.inf).astype(dtype) if m.dtype == np.bool_ else m.astype(dtype)
    m = m.reshape((1,) * (len(lead) + 2 - m.ndim) + m.shape)
    mlead, Lm = m.shape[:-2], m.shape[-2]
    nb = int(np.prod(mlead))
    bmap = np.array(np.broadcast_to(np.arange(nb, dtype=np.int64).reshape(mlead), tuple(lead)).ravel())
    bias = xp.ascontiguousarray(xp.broadcast_to(m.reshape(nb, Lm, m.shape[-1]), (nb, Lm, S)))
    return True, bias, xp.asarray(bmap)


def _dropout_args(dropout_p):
    if dropout_p <= 0:
        return 0, 1.0
    return int(np.ceil(dropout_p * (1 << 24))), 1.0 / (1.0 - dropout_p)


def _flat(a, n_lead, dtype):
    return contiguous(a, dtype).reshape((-1,) + tuple(a.shape[n_lead:]))


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
    has_bias, bias, bmap = _bias(xp, mask, lead, L, S, dt)
    klim = key_limits(lead, L, S, is_causal, valid_lens, xp)
    thr, ks = _dropout_args(dropout_p)
    o = empty((N, L, dvn), dt, qf)
    lse = empty((N, L), dt, qf)
    if N and L:
        _fwd[(-(-L // ROWS), N), ROWS, stream(qf)](dev(qf), dev(kf), dev(vf), dev(bias), dev(bmap), has_bias, dev(klim),
                                                   float(scale), thr, ks, int(seed), dev(o), dev(lse))
    return o.reshape(lead + (L, dvn)), lse.reshape(lead + (L,))


def sdpa_bwd(dout, q, k, v, o, lse, mask, is_causal, scale, valid_lens=None, dropout_p=0.0, seed=0):
    """-> (dq, dk, dv) in q's dtype, from dout (..., L, dv) and the forward's o and lse."""
    xp = xp_of(q)
    lead, (L, d), (S, dvn) = tuple(q.shape[:-2]), q.shape[-2:], v.shape[-2:]
    _check_dims(d, dvn)
    dt, nl = q.dtype, len(q.shape) - 2
    qf, kf, vf, dof, of = (_flat(a, nl, dt) for a in (q, k, v, dout, o))
    lsef = _flat(lse, nl, dt)
    N = qf.shape[0]
    has_bias, bias, bmap = _bias(xp, mask, lead, L, S, dt)
    klim = key_limits(lead, L, S, is_causal, valid_lens, xp)
    thr, ks = _dropout_args(dropout_p)
    Dv = xp.ascontiguousarray((dof.astype(np.float64) * of.astype(np.float64)).sum(axis=-1))
    dq, dk, dvv = empty(qf.shape, dt, qf), empty(kf.shape, dt, qf), empty(vf.shape, dt, qf)
    args = (dev(dof), dev(qf), dev(kf), dev(vf), dev(lsef), dev(Dv), dev(bias), dev(bmap), has_bias, dev(klim),
            float(scale), thr, ks, int(seed))
    s = stream(qf)
    if N and L:
        _bwd_dq[(-(-L // ROWS), N), ROWS, s](*args, dev(dq))
    if N and S:
        _bwd_dkv[(-(-S // ROWS), N), ROWS, s](*args, dev(dk), dev(dvv))
    return dq.reshape(q.shape), dk.reshape(k.shape), dvv.reshape(v.shape)
