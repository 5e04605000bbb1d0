"""Scalar math that LLVM can vectorize, for use inside @njit kernels.

`vexp(x)`: exp made of arithmetic, so loops that call it vectorize (np.exp does not: the llvmlite wheels
ship no vector math library). Range reduction exp(x) = 2^k * exp(r), |r| <= ln2/2, a Taylor polynomial
for exp(r) (degree 6 in float32, degree 11 in float64), and 2^k built from the exponent bits.
Relative error: about 2e-7 (float32), 1e-15 (float64) against np.exp. exp(-inf) = 0, exp(+inf) = inf,
exp(nan) = nan: masks written as -inf keep working. `vexp_neg(x)` is the same for x <= 0 (softmax's
x - max, log-probabilities, scores minus lse), without the overflow branch and with 2^k built in int32
lanes: about 1.6-1.9x faster. Both take the reduction and the polynomial from `_exp_parts32/64`.
Results below about 1e-38 (float32) or 3e-308 (float64) flush to zero: no denormals.
`vmax(a, b)` is a NaN-propagating max whose reduction loops vectorize.
"""
import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic, overload

LOG2E = 1.4426950408889634
LN2_HI = 0.693145751953125            # ln2 split so k*LN2_HI is exact for |k| < 2^11
LN2_LO = 1.42860682030941723212e-6


@intrinsic
def _bits_to_f32(typingctx, v):
    """Reinterpret the low 32 bits of an int64 as a float32."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(builder.trunc(args[0], ir.IntType(32)), ir.FloatType())
    return types.float32(types.int64), codegen


@intrinsic
def _bits_to_f64(typingctx, v):
    """Reinterpret an int64 as a float64."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())
    return types.float64(types.int64), codegen


@njit(inline="always", error_model="numpy")
def _exp_parts32(xc):
    """(k, exp(r)) for float32 xc = k ln2 + r, |r| <= ln2/2: the range reduction and the degree-6 Taylor
    polynomial that vexp and vexp_neg share (inlined into each, so it takes their fastmath flags)."""
    kf = np.floor(xc * np.float32(LOG2E) + np.float32(0.5))
    r = xc - kf * np.float32(LN2_HI) - kf * np.float32(LN2_LO)
    p = np.float32(1.0 / 720)
    p = p * r + np.float32(1.0 / 120)
    p = p * r + np.float32(1.0 / 24)
    p = p * r + np.float32(1.0 / 6)
    p = p * r + np.float32(0.5)
    p = p * r + np.float32(1.0)
    p = p * r + np.float32(1.0)
    return kf, p


@njit(inline="always", error_model="numpy")
def _exp_parts64(xc):
    """(k, exp(r)) for float64 xc: as _exp_parts32 with the degree-11 polynomial."""
    kf = np.floor(xc * LOG2E + 0.5)
    r = xc - kf * LN2_HI - kf * LN2_LO
    p = 1.0 / 39916800
    p = p * r + 1.0 / 3628800
    p = p * r + 1.0 / 362880
    p = p * r + 1.0 / 40320
    p = p * r + 1.0 / 5040
    p = p * r + 1.0 / 720
    p = p * r + 1.0 / 120
    p = p * r + 1.0 / 24
    p = p * r + 1.0 / 6
    p = p * r + 0.5
    p = p * r + 1.0
    p = p * r + 1.0
    return kf, p


def vexp(x):
    """exp(x), vectorizable; float32 or float64 (see module docstring)."""
    return np.exp(x)


@overload(vexp, inline="always")
def _vexp_impl(x):
    if x == types.float32:
        def impl(x):
            kf, p = _exp_parts32(min(max(x, np.float32(-87.0)), np.float32(88.7228)))
            y = p * _bits_to_f32((np.int64(kf) + 126) << 23) * np.float32(2.0)
            y = np.float32(0.0) if x < np.float32(-87.0) else y       # selects, not branches: the loop vectorizes
            y = np.float32(np.inf) if x > np.float32(88.7228) else y
            return x if x != x else y
        return impl
    if x == types.float64:
        def impl(x):
            kf, p = _exp_parts64(min(max(x, -708.0), 709.78))
            y = p * _bits_to_f64((np.int64(kf) + 1022) << 52) * 2.0
            y = 0.0 if x < -708.0 else y
            y = np.inf if x > 709.78 else y
            return x if x != x else y
        return impl


@intrinsic
def vmax(typingctx, a, b):
    """max(a, b) for two floats of one type as llvm.maximum: NaN if either is NaN; a max-reduction loop
    written with it vectorizes (Python's max, a compare-and-select, does not without nnan)."""
    if not (isinstance(a, types.Float) and a == b):
        return None

    def codegen(context, builder, signature, args):
        ty = args[0].type
        fn = builder.module.declare_intrinsic("llvm.maximum", [ty], ir.FunctionType(ty, [ty, ty]))
        return builder.call(fn, args)
    return a(a, b), codegen


def vexp_neg(x):
    """exp(x) for x <= 0 (or NaN), vectorizable: vexp without the overflow branch, and for float32 the
    exponent built in int32 lanes (vexp converts to int64, which halves the vector width): about 1.6x
    faster than vexp here. Valid for x <= 88 (float32) / 709 (float64), which covers every use here:
    x - rowmax, log-probabilities, x - lse. exp(-inf) = 0, exp(NaN) = NaN, results below ~1e-38 (float32)
    or ~1e-308 (float64) flush to 0. Same range reduction and polynomials as vexp."""
    return np.exp(x)


@overload(vexp_neg)
def _vexp_neg_impl(x):
    if x == types.float32:
        def impl(x):
            kf, p = _exp_parts32(max(x, np.float32(-87.0)))
            y = p * _bits_to_f32((np.int64(np.int32(kf)) + 127) << 23)     # LLVM narrows this to int32
            y = np.float32(0.0) if x < np.float32(-87.0) else y             # a select: the loop vectorizes
            return x if x != x else y
        return impl
    if x == types.float64:
        def impl(x):
            kf, p = _exp_parts64(max(x, -708.0))
            y = p * _bits_to_f64((np.int64(kf) + 1023) << 52)
            y = 0.0 if x < -708.0 else y
            return x if x != x else y
        return impl


@njit(cache=True, error_model="numpy")
def _vexp_array(x, out):
    for i in range(x.size):
        out[i] = vexp(x[i])


def vexp_array(x):
    """Apply vexp elementwise to a 1-D array (for tests of the scalar routine)."""
    x = np.ascontiguousarray(x).ravel()
    out = np.empty_like(x)
    _vexp_array(x, out)
    return out
