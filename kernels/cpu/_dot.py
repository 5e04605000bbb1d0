"""The register-blocked GEMM micro-kernel the conv and RNN kernels share.

`dot_tile` computes out[a, b] = sum_r A[a, r] * B[b, r] ("dot" form: both operands contiguous along the
reduction axis r) in 4 x 3 blocks: 12 scalar accumulators that LLVM keeps in 12 vector registers, so each
step of r is 7 vector loads and 12 FMAs (measured ~100 GFLOP/s on one AVX-512 core at r = 576; the horizontal
sums closing each block cost most of the rest, so it wants r in the hundreds).
"""
import functools

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from ._config import FASTMATH


@njit(cache=True, fastmath=FASTMATH, error_model="numpy")
def dot_tile(A, aoff, na, B, boff, nb, L, out, zero):
    """out[a, b] = sum_{r < L} A[aoff[a] + r] * B[boff[b] + r] for a < na, b < nb. Serial.

    A, B are flat buffers and aoff, boff the starts of their rows, so rows may be strided or even overlap
    (gemm_dw reads shifted windows of one padded plane). 4x3 register blocks, B blocks outside, A inside;
    a block hanging past na or nb repeats the last row (its duplicate results are written first and then
    overwritten by the real ones), so nothing needs padding.
    """
    for b in range(0, nb, 3):
        b1, b2 = min(b + 1, nb - 1), min(b + 2, nb - 1)
        x0r, x1r, x2r = B[boff[b]:boff[b] + L], B[boff[b1]:boff[b1] + L], B[boff[b2]:boff[b2] + L]
        for a in range(0, na, 4):
            a1, a2, a3 = min(a + 1, na - 1), min(a + 2, na - 1), min(a + 3, na - 1)
            y0r, y1r = A[aoff[a]:aoff[a] + L], A[aoff[a1]:aoff[a1] + L]
            y2r, y3r = A[aoff[a2]:aoff[a2] + L], A[aoff[a3]:aoff[a3] + L]
            s00 = s01 = s02 = s10 = s11 = s12 = s20 = s21 = s22 = s30 = s31 = s32 = zero
            for r in range(L):
                x0, x1, x2 = x0r[r], x1r[r], x2r[r]
                y = y0r[r]
                s00 += y * x0
                s01 += y * x1
                s02 += y * x2
                y = y1r[r]
                s10 += y * x0
                s11 += y * x1
                s12 += y * x2
                y = y2r[r]
                s20 += y * x0
                s21 += y * x1
                s22 += y * x2
                y = y3r[r]
                s30 += y * x0
                s31 += y * x1
                s32 += y * x2
            out[a3, b2], out[a3, b1], out[a3, b] = s32, s31, s30
            out[a2, b2], out[a2, b1], out[a2, b] = s22, s21, s20
            out[a1, b2], out[a1, b1], out[a1, b] = s12, s11, s10
            out[a, b2], out[a, b1], out[a, b] = s02, s01, s00


# ---- the outer-product micro-kernel, written in LLVM IR ------------------------------------------------------
# out[m, q] = sum_r A[a0 + r*lda + m] * B[boff[r] + b0 + q] for m < MR, q < NV*lanes: MR broadcast weights
# against NV vectors of one B row per step r, MR*NV vector accumulators held in registers for the whole
# reduction, no horizontal sums. Numba cannot express a vector register, so the loop is built in LLVM IR
# (vector types and llvm.fmuladd); the block shape follows the target's registers: 16 zmm accumulators on
# AVX-512 (32 registers), 12 ymm elsewhere (16 registers; SSE-only targets split each vector in two).
MR = 4


@functools.lru_cache(maxsize=None)
def _avx512():
    from numba.core import config
    from numba.core.codegen import get_host_cpu_features
    feats = config.CPU_FEATURES if config.CPU_FEATURES is not None else get_host_cpu_features()
    return "+avx512f" in str(feats).split(",")


def outer_shape(itemsize):
    """(lanes per vector, vectors per row) of `outer_tile`'s block for an element of `itemsize` bytes."""
    if _avx512():
        return 64 // itemsize, 4
    return 32 // itemsize, 3


def outer_width(itemsize):
    """Columns (q) one `outer_tile` call computes: lanes * vectors."""
    lanes, nv = outer_shape(itemsize)
    return lanes * nv


@intrinsic
def outer_tile(typingctx, A, a0, lda, B, boff, b0, L, C, c0, ldc, nv):
    """C[c0 + m*ldc + q] = sum_{r < L} A[a0 + r*lda + m] * B[boff[r] + b0 + q], m < MR, q < nv * lanes.

    nv: a constant from 1 to 4, the vectors per row: outer_shape()[1] for a full block (more would spill
    registers), fewer for a last, partial one.

    A, B, C: 1-D C-contiguous arrays of one float dtype; boff: 1-D int64. Nothing is bounds-checked: the
    caller guarantees every index is inside its array (pads B and C to whole blocks). The sum over r runs in
    order, one fused multiply-add per step where the target has FMA."""
    if not (isinstance(A, types.Array) and A.ndim == 1 and A.dtype in (types.float32, types.float64)
            and B == A and C == A and isinstance(boff, types.Array) and boff.dtype == types.int64
            and isinstance(nv, types.IntegerLiteral)):
        return None
    dt = A.dtype
    nv_used = nv.literal_value
    if not 1 <= nv_used <= 4:                       # outer_shape()[1] or fewer is what callers use
        return None

    def codegen(context, builder, sig, args):
        aA, ia0, ilda, aB, aoff, ib0, iL, aC, ic0, ildc, _ = args
        fty = context.get_value_type(dt)
        size = 8 if dt == types.float64 else 4
        lanes, nv = outer_shape(size)[0], nv_used
        vty = ir.VectorType(fty, lanes)
        i64 = ir.IntType(64)
        pA = context.make_array(sig.args[0])(context, builder, aA).data
        pB = context.make_array(sig.args[3])(context, builder, aB).data
        pO = context.make_array(sig.args[4])(context, builder, aoff).data
        pC = context.make_array(sig.args[7])(context, builder, aC).data
        fname = f"llvm.fmuladd.v{lanes}f{8 * size}"
        fmuladd = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vty, [vty, vty, vty]), fname)
        zero = ir.Constant(vty, [0.0] * lanes)
        accs = []
        for _ in range(MR * nv):
            slot = cgutils.alloca_once(builder, vty)
            builder.store(zero, slot)
            accs.append(slot)
        splat = ir.Constant(ir.VectorType(ir.IntType(32), lanes), [0] * lanes)
        undef = ir.Constant(vty, ir.Undefined)
        with cgutils.for_range(builder, iL) as loop:
            r = loop.index
            arow = builder.add(ia0, builder.mul(r, ilda))
            brow = builder.add(builder.load(builder.gep(pO, [r])), ib0)
            bv = []
            for v in range(nv):
                p = builder.gep(pB, [builder.add(brow, ir.Constant(i64, v * lanes))])
                bv.append(builder.load(builder.bitcast(p, vty.as_pointer()), align=size))
            for m in range(MR):
                s = builder.load(builder.gep(pA, [builder.add(arow, ir.Constant(i64, m))]))
                w = builder.shuffle_vector(builder.insert_element(undef, s, ir.Constant(ir.IntType(32), 0)),
                                           undef, splat)
                for v in range(nv):
                    slot = accs[m * nv + v]
                    builder.store(builder.call(fmuladd, [w, bv[v], builder.load(slot)]), slot)
        for m in range(MR):
            crow = builder.add(ic0, builder.mul(ir.Constant(i64, m), ildc))
            for v in range(nv):
                p = builder.gep(pC, [builder.add(crow, ir.Constant(i64, v * lanes))])
                builder.store(builder.load(accs[m * nv + v]), builder.bitcast(p, vty.as_pointer()), align=size)
        return context.get_dummy_value()

    return types.void(A, types.int64, types.int64, B, boff, types.int64, types.int64, C, types.int64,
                      types.int64, nv), codegen


@njit(cache=True, error_model="numpy")
def outer_any(A, a0, lda, B, boff, b0, L, C, c0, ldc, nv):
    """outer_tile with a run-time vector count nv (1 to outer_shape()[1]), overwriting C."""
    if nv == 1:
        outer_tile(A, a0, lda, B, boff, b0, L, C, c0, ldc, 1)
    elif nv == 2:
        outer_tile(A, a0, lda, B, boff, b0, L, C, c0, ldc, 2)
    elif nv == 3:
        outer_tile(A, a0, lda, B, boff, b0, L, C, c0, ldc, 3)
    else:
        outer_tile(A, a0, lda, B, boff, b0, L, C, c0, ldc, 4)


@njit(cache=True, error_model="numpy")
def outer_gemm(A, lda, M, B, boff, L, C, ldc, N, lanes, nvmax):
    """C[m*ldc + q] = sum_{l < L} A[l*lda + m] * B[boff[l] + q] for m < M, q < N, with outer_tile blocks:
    M a multiple of MR, N a multiple of lanes (pad the operands); nvmax = outer_shape()[1]. Column blocks
    outside, row blocks inside, so one block of B's columns is reused from cache by every row block."""
    for q0 in range(0, N, nvmax * lanes):
        nv = min(nvmax, (N - q0) // lanes)
        for m0 in range(0, M, MR):
            outer_any(A, m0, lda, B, boff, q0, L, C, m0 * ldc + q0, ldc, nv)


@njit(cache=True, error_model="numpy")
def outer_gemm_packed(A, lda, ablk, M, Bk, boff, L, C, ldc, N, lanes, nvmax):
    """outer_gemm with B in column blocks (pack_cols): C[m*ldc + q] = sum_{l < L} A[(m // MR)*ablk + l*lda + m % MR]
    * B[l, q], Bk the flat (ceil(N / W), L, W) blocks of B (W = nvmax * lanes) and boff = arange(L) * W. A block's
    rows are then one contiguous stretch, whole cache lines, where B's own rows give each block a strided run
    of partial lines (on AVX2, 96-byte runs: measured 10-30% faster at the GRU's step shapes, 16 rows against
    W_hh). A as outer_gemm takes it: ablk = MR; A packed in row blocks too, (M / MR, L, MR): lda = MR and
    ablk = MR * L (a tall A read MR values per cache line otherwise: the GRU's dW_hh, 768 rows, ran 1.8x faster
    on AVX2 so)."""
    W = nvmax * lanes
    for q0 in range(0, N, W):
        nv = min(nvmax, (N - q0) // lanes)
        for m0 in range(0, M, MR):
            outer_any(A, (m0 // MR) * ablk, lda, Bk, boff, q0 * L, L, C, m0 * ldc + q0, ldc, nv)


def pack_cols(b, lanes, nvmax):
    """B (L, N) -> outer_gemm_packed's Bk: its column blocks of W = nvmax * lanes, (ceil(N / W), L, W), the
    last one zero-padded."""
    L, N = b.shape
    W = nvmax * lanes
    nb = -(-N // W)
    padded = np.zeros((L, nb * W), b.dtype)
    padded[:, :N] = b
    return np.ascontiguousarray(padded.reshape(L, nb, W).transpose(1, 0, 2))
