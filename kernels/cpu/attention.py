"""Scaled dot-product attention on the CPU: launchers for the fused kernels in attention_flash.py.

Same names, signatures and semantics as kernels.reference.attention. The launchers flatten the leading dims
to N = prod(q.shape[:-2]) (views, no copies of q, k, v), fold is_causal, valid_lens and the key count into one
key limit per query row (klim), turn a bool or float mask into an additive bias, transposed, plus a map
head -> mask block (a mask broadcast over heads or query rows is not copied out), and call the kernels.
Forward returns (o, lse), which the engine saves; backward recomputes the probabilities from q, k and lse.
"""
import numpy as np

from ..common import dropout_scale, dropout_threshold, key_limits, mask_block_map
from ._dot import outer_shape
from .attention_flash import BK, BQ, flash_bwd, flash_bwd_outer, flash_fwd, keys_t

__all__ = ["sdpa_fwd", "sdpa_bwd"]


def _bias(mask, lead, L, S, dtype):
    """(has_bias, biasT (NB, Sp, Lb), bmap (N,)) for a bool (True = attend) or float mask broadcastable to
    (*lead, L, S): the mask's own leading blocks (bmap maps each head to one), transposed to keys x rows,
    padded to whole tiles; Lb = 1 when the mask does not vary over query rows (never copied out)."""
    N = max(int(np.prod(lead)), 1)
    if mask is None:
        return False, np.zeros((1, 1, 1), dtype), np.zeros(N, np.int64)
    m = np.asarray(mask)
    m = np.where(m, 0.0, -np.inf).astype(dtype) if m.dtype == np.bool_ else m.astype(dtype, copy=False)
    m = m.reshape((1,) * (len(lead) + 2 - m.ndim) + m.shape)
    mlead, Lm = m.shape[:-2], m.shape[-2]
    nb = int(np.prod(mlead))
    bmap = mask_block_map(mlead, lead)
    Sp = -(-S // BK) * BK
    Lb = 1 if Lm == 1 else -(-L // BQ) * BQ
    biasT = np.zeros((nb, Sp, Lb), dtype)
    biasT[:, :S, :Lm] = np.swapaxes(m.reshape(nb, Lm, m.shape[-1]), 1, 2)
    return True, biasT, bmap


def _dropout_args(dropout_p, dtype):
    """(keep_thr, keep_scale): keep where the hash's 24 bits are >= keep_thr (0 = no dropout)."""
    if dropout_p <= 0:
        return np.uint64(0), dtype.type(1)
    return np.uint64(dropout_threshold(dropout_p)), dtype.type(dropout_scale(dropout_p))


def _flat(a, n_lead, dtype):
    """(*lead, R, c) -> a C-contiguous, writable (N, R, c) array of dtype (a view when possible); N may be 0."""
    shape = (int(np.prod(a.shape[:n_lead])),) + tuple(a.shape[n_lead:])
    a = np.ascontiguousarray(a, dtype=dtype)
    a = a if a.flags.writeable else a.copy()       # read-only arrays would compile another signature
    return a.reshape(shape)


def sdpa_fwd(q, k, v, mask, is_causal, scale, valid_lens=None, dropout_p=0.0, seed=0):
    """q (..., L, d), k (..., S, d), v (..., S, dv) -> (o (..., L, dv), lse (..., L)) in q's dtype.
    The engine keeps o and lse for backward."""
    lead, (L, d), (S, dv) = q.shape[:-2], q.shape[-2:], v.shape[-2:]
    dt, nl = q.dtype, len(q.shape) - 2
    qf, kf, vf = (_flat(a, nl, dt) for a in (q, k, v))
    N = qf.shape[0]
    has_bias, biasT, bmap = _bias(mask, lead, L, S, dt)
    klim = key_limits(lead, L, S, is_causal, valid_lens)
    keep_thr, keep_scale = _dropout_args(dropout_p, dt)
    o = np.empty((N, L, dv), dt)
    lse = np.empty((N, L), dt)
    # The tile GEMMs on outer_gemm, unless a causal or valid_lens limit leaves one key tile (L = 128 causal):
    # gemm_nn/gemm_tn skip the masked half of a diagonal tile, and the outer path's transposed keys cost more
    outer = (not is_causal and valid_lens is None) or S > BK
    kT = np.empty((N, d, -(-S // BK) * BK if outer else 0), dt)
    if outer:
        keys_t(kf, kT)
    flash_fwd(qf, kf, kT, vf, biasT, bmap, has_bias, klim, dt.type(scale), keep_thr, keep_scale, np.uint64(seed), o,
              lse, outer, *outer_shape(dt.itemsize))
    return o.reshape(tuple(lead) + (L, dv)), lse.reshape(tuple(lead) + (L,))


def _groups(N, nkt):
    """Key-tile groups per head in backward: enough (n, g) work items for the threads when there are few
    heads. From shapes only, so results do not depend on the thread count."""
    return max(1, min(nkt, -(-16 // max(N, 1))))


def sdpa_bwd(dout, q, k, v, o, lse, mask, is_causal, scale, valid_lens=None, dropout_p=0.0, seed=0):
    """-> (dq, dk, dv) in q's dtype, from dout (..., L, dv) and the forward's o and lse."""
    lead, (L, d), (S, dvn) = q.shape[:-2], q.shape[-2:], v.shape[-2:]
    dt, nl = q.dtype, len(q.shape) - 2
    qf, kf, vf, dof, of = (_flat(a, nl, dt) for a in (q, k, v, dout, o))
    lsef = _flat(lse, nl, dt)
    N = qf.shape[0]
    has_bias, biasT, bmap = _bias(mask, lead, L, S, dt)
    klim = key_limits(lead, L, S, is_causal, valid_lens)
    keep_thr, keep_scale = _dropout_args(dropout_p, dt)
    G = _groups(N, -(-S // BK))
    dq_t = np.empty((G, N, L, d), dt)
    dk = np.empty((N, S, d), dt)
    dv = np.empty((N, S, dvn), dt)
    lanes, nvmax = outer_shape(dt.itemsize)
    # The tile GEMMs on outer_gemm when d and dv are whole vectors and every query sees every key; with a
    # causal or valid_lens limit flash_bwd's gemm_nn/gemm_tn skip the masked parts of the tiles (measured: the
    # same time on AVX-512, 10-30% faster with AVX2)
    if d % lanes == 0 and dvn % lanes == 0 and not is_causal and valid_lens is None:
        kT, vT = np.empty((N, d, -(-S // BK) * BK), dt), np.empty((N, dvn, -(-S // BK) * BK), dt)
        keys_t(kf, kT)
        keys_t(vf, vT)
        flash_bwd_outer(dof, qf, kf, kT, vT, vf, of, lsef, biasT, bmap, has_bias, klim, dt.type(scale), keep_thr,
                        keep_scale, np.uint64(seed), G, dq_t, dk, dv, lanes, nvmax)
    else:
        flash_bwd(dof, qf, kf, vf, of, lsef, biasT, bmap, has_bias, klim, dt.type(scale), keep_thr, keep_scale,
                  np.uint64(seed), G, dq_t, dk, dv)
    dq = dq_t[0] if G == 1 else dq_t.sum(axis=0)
    return dq.reshape(q.shape), dk.reshape(k.shape), dv.reshape(v.shape)
