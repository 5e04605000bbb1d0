"""Batch norm's per-task schedule (kernels/cpu/norm.py uses it for few channels or small L, e.g. (N, C) input).

x is viewed as (N, C, L). A task is a block of rows n (and of L when N is small and L long); prange runs
over tasks and each task owns one row of the (T, C) partial-sum buffers, which are then added in task
order. The split depends on the shape only, never on the thread count, so results are the same bits for
any number of threads.
"""
import numpy as np
from numba import njit, prange

from ._config import FASTMATH_NORM

__all__ = []

_MAX_TASKS = 64                          # task count cap (not the thread count)
_BLK = 64                                # dtype-precision partial sums over at most this many terms


@njit(cache=True, parallel=True, fastmath=FASTMATH_NORM, error_model="numpy")
def _bn_sums_tasks(u, x, su, sx, nb, lb, p1, p2):
    """u, x (N, C, L); su, sx (C,) of x's dtype. Task t covers rows [n0, n0+nb) and l in [l0, l0+lb) and
    writes p1[t, c] = sum(u - su[c]), p2[t, c] = sum((u - su[c]) * (x - sx[c])) (p1, p2 (T, C) float64, zeroed).
    Sums run in x's dtype over at most _BLK elements (rows for 2-D input), then in float64.
    prange over tasks t; each task owns its row of p1, p2."""
    N, C, L = x.shape
    ntl = max(1, (L + lb - 1) // lb)
    for t in prange(p1.shape[0]):
        n0 = (t // ntl) * nb
        n1 = min(N, n0 + nb)
        l0 = (t % ntl) * lb
        l1 = min(L, l0 + lb)
        q1 = p1[t]
        q2 = p2[t]
        if L == 1:                               # 2-D input: vectorize across channels
            u2, x2 = u.reshape(N, C), x.reshape(N, C)
            a1 = np.zeros(C, x.dtype)
            a2 = np.zeros(C, x.dtype)
            for m0 in range(n0, n1, _BLK):
                for n in range(m0, min(n1, m0 + _BLK)):
                    ur, xr = u2[n], x2[n]
                    for c in range(C):
                        d = ur[c] - su[c]
                        a1[c] += d
                        a2[c] += d * (xr[c] - sx[c])
                for c in range(C):
                    q1[c] += a1[c]
                    q2[c] += a2[c]
                    a1[c] = 0
                    a2[c] = 0
        else:
            for c in range(C):
                a = su[c]
                k = sx[c]
                s1 = 0.0
                s2 = 0.0
                for n in range(n0, n1):
                    for j0 in range(l0, l1, _BLK):
                        us = u[n, c, j0:min(l1, j0 + _BLK)]
                        xs = x[n, c, j0:min(l1, j0 + _BLK)]
                        acc1 = x.dtype.type(0)
                        acc2 = x.dtype.type(0)
                        for l in range(xs.shape[0]):
                            d = us[l] - a
                            acc1 += d
                            acc2 += d * (xs[l] - k)
                        s1 += acc1
                        s2 += acc2
                q1[c] = s1
                q2[c] = s2


@njit(cache=True, parallel=True, fastmath=FASTMATH_NORM, error_model="numpy")
def _bn_affine_tasks(u, x, su, a, sx, beta, gamma, two, nb, lb, out):
    """out = (u - su[c]) * a[c] + gamma[c] (+ (x - sx[c]) * beta[c] when `two`) in x's dtype; u, x, out
    (N, C, L), the rest (C,) of x's dtype. Serves the forward (u = x, two = False) and dx (u = dout, su = 0).
    prange over the tasks of _bn_sums_tasks."""
    N, C, L = x.shape
    ntl = max(1, (L + lb - 1) // lb)
    u2, x2, o2 = u.reshape(N, C * L), x.reshape(N, C * L), out.reshape(N, C * L)
    for t in prange(((N + nb - 1) // nb) * ntl):
        n0 = (t // ntl) * nb
        l0 = (t % ntl) * lb
        for n in range(n0, min(N, n0 + nb)):
            if L == 1:                           # 2-D input: vectorize across channels
                ur, xr, orow = u2[n], x2[n], o2[n]
                if two:
                    for c in range(C):
                        orow[c] = (ur[c] - su[c]) * a[c] + (xr[c] - sx[c]) * beta[c] + gamma[c]
                else:
                    for c in range(C):
                        orow[c] = (ur[c] - su[c]) * a[c] + gamma[c]
            else:
                for c in range(C):
                    p, q, r, s, o = su[c], a[c], sx[c], beta[c], gamma[c]
                    us = u[n, c, l0:min(L, l0 + lb)]
                    xs = x[n, c, l0:min(L, l0 + lb)]
                    os = out[n, c, l0:min(L, l0 + lb)]
                    if two:
                        for l in range(xs.shape[0]):
                            os[l] = (us[l] - p) * q + (xs[l] - r) * s + o
                    else:
                        for l in range(xs.shape[0]):
                            os[l] = (us[l] - p) * q + o


def _tasks(N, L):
    """(nb, lb, T): rows per task, L-elements per task, task count. Depends on the shape only."""
    tn = max(1, min(N, _MAX_TASKS))
    nb = max(1, -(-N // tn))
    tn = max(1, -(-N // nb))
    tl = max(1, min(_MAX_TASKS // tn, L // 4096))     # split L only when N is small and L is long
    lb = max(1, -(-L // tl))
    tl = max(1, -(-L // lb))
    return nb, lb, tn * tl


def _sums(u, x, su, sx):
    """(sum(u - su), sum((u - su) * (x - sx))) per channel, float64 (C,) each. su must be exact in x's dtype
    (a value of x, or 0); sx is rounded to x's dtype and the rounding corrected here."""
    N, C, L = x.shape
    nb, lb, T = _tasks(N, L)
    p1, p2 = np.zeros((T, C)), np.zeros((T, C))
    sxt = sx.astype(x.dtype)
    _bn_sums_tasks(u, x, su.astype(x.dtype), sxt, nb, lb, p1, p2)
    s1 = p1.sum(axis=0)
    return s1, p2.sum(axis=0) - (sx - sxt) * s1


def _affine(u, x, su, a, sx, beta, gamma, out, two=True):
    """out = (u - su) * a + (x - sx) * beta + gamma per channel (float64 (C,) coefficients, cast to x's dtype)."""
    N, C, L = x.shape
    nb, lb, _ = _tasks(N, L)
    dt = x.dtype
    _bn_affine_tasks(u, x, su.astype(dt), a.astype(dt), sx.astype(dt), beta.astype(dt), gamma.astype(dt),
                     two, nb, lb, out)
