"""2-D convolution: kernel check (strides, dilation, groups, asymmetric padding, 1x1) and the two standard
benchmarks. FLOP model: 2 * N * K * Ho * Wo * (C / groups) * kh * kw per pass of forward; backward does it
twice (dx and dw) plus the bias sum."""
import numpy as np

import kernels.reference as ref
from kernels.common import conv2d_out_size

from .core import Impls, bench_case, verify_op


def _inputs(params, rng):
    N, C, H, W = params["x"]
    K, (kh, kw), g = params["K"], params["k"], params["groups"]
    fan = C // g * kh * kw
    return {"x": rng.standard_normal((N, C, H, W)), "w": rng.standard_normal((K, C // g, kh, kw)) / np.sqrt(fan),
            "b": rng.standard_normal(K) if params["bias"] else None, "_a": params}


def _run(k, inp, dout_like):
    a = inp["_a"]
    geo = (a["s"], a["p"], a["d"], a["groups"])
    y = k.conv2d_fwd(inp["x"], inp["w"], inp["b"], *geo)
    dx, dw, db = k.conv2d_bwd(dout_like(y), inp["x"], inp["w"], *geo, True, True, inp["b"] is not None)
    return {"fwd": [y], "bwd": [dx, dw, db]}


def _cfg(x, K, k, s=(1, 1), p=(0, 0, 0, 0), d=(1, 1), groups=1, bias=True):
    return {"x": x, "K": K, "k": k, "s": s, "p": p, "d": d, "groups": groups, "bias": bias}


FIXED = [_cfg((1, 1, 3, 3), 1, (2, 2), bias=False),                       # the book's corr2d example
         _cfg((2, 3, 8, 8), 4, (3, 3), p=(1, 1, 1, 1)),
         _cfg((2, 3, 8, 8), 5, (5, 3), p=(2, 2, 1, 1)),
         _cfg((2, 4, 8, 8), 6, (3, 3), s=(2, 2), p=(1, 1, 1, 1), groups=2),
         _cfg((1, 2, 9, 11), 3, (3, 5), s=(3, 4), p=(0, 0, 1, 1), bias=False),
         _cfg((2, 8, 7, 7), 8, (3, 3), p=(2, 2, 2, 2), d=(2, 2), groups=8),  # depthwise, dilated
         _cfg((3, 16, 5, 6), 32, (1, 1)),                                   # 1x1
         _cfg((2, 3, 10, 9), 4, (3, 3), p=(1, 0, 2, 1), s=(1, 2)),          # asymmetric padding
         _cfg((4, 6, 12, 12), 8, (3, 3), p=(1, 1, 1, 1))]


def _sample(rng):
    g = int(rng.choice([1, 1, 2, 3]))
    C, K = g * int(rng.integers(1, 5)), g * int(rng.integers(1, 5))
    kh, kw = (int(v) for v in rng.integers(1, 6, 2))
    s = tuple(int(v) for v in rng.integers(1, 4, 2))
    d = tuple(int(v) for v in rng.integers(1, 3, 2))
    p = tuple(int(v) for v in rng.integers(0, 3, 4))
    H = int(rng.integers(max(1, d[0] * (kh - 1) + 1 - p[0] - p[1]), 16))
    W = int(rng.integers(max(1, d[1] * (kw - 1) + 1 - p[2] - p[3]), 16))
    return _cfg((int(rng.integers(1, 4)), C, H, W), K, (kh, kw), s, p, d, g, bool(rng.integers(2)))


verify_op(op="conv2d", family="conv", kernels=("conv2d_fwd", "conv2d_bwd"), fixed=FIXED, sample=_sample,
          inputs=_inputs, run=_run, scale=2.0, noncontig=("x",))


def _conv_case(ctx, p):
    import engine.functional as F
    N, C, H, W = p["x"]
    K, kk, pad = p["K"], p["k"], p["pad"]
    x, w, b = ctx.randn(N, C, H, W), ctx.randn(K, C, kk, kk, scale=(C * kk * kk) ** -0.5), ctx.randn(K)
    T = ctx.torch
    passes = ctx.pair(lambda x_, w_, b_: F.conv2d(x_, w_, b_, 1, pad),
                      T and (lambda x_, w_, b_: T.nn.functional.conv2d(x_, w_, b_, 1, pad)), [x, w, b], [True] * 3)
    geo = ((1, 1), (pad,) * 4, (1, 1), 1)
    Ho, Wo = conv2d_out_size(H, W, kk, kk, *geo[:3])
    dout = ctx.dout((N, K, Ho, Wo))
    passes["fwd"]["numpy"] = lambda: ref.conv2d_fwd(x, w, b, *geo)
    passes["bwd"]["numpy"] = lambda: ref.conv2d_bwd(dout, x, w, *geo)
    mac = N * K * Ho * Wo * C * kk * kk
    it = ctx.dtype.itemsize
    io = (x.size + w.size + N * K * Ho * Wo) * it
    return Impls(passes, flops={"fwd": 2 * mac + N * K * Ho * Wo, "bwd": 4 * mac + N * K * Ho * Wo},
                 bytes={"fwd": io, "bwd": 2 * io}, bound="flops")


bench_case("conv2d", "conv", "N32 C64 32x32 K64 3x3 p1", {"x": (32, 64, 32, 32), "K": 64, "k": 3, "pad": 1},
           {"x": (2, 8, 16, 16), "K": 8, "k": 3, "pad": 1}, engine_op="conv2d", gpu_set=True,
           quick_label="N2 C8 16x16 K8 3x3 p1")(_conv_case)
bench_case("conv2d", "conv", "N128 C128 56x56 K128 3x3 p1", {"x": (128, 128, 56, 56), "K": 128, "k": 3, "pad": 1},
           {"x": (2, 16, 14, 14), "K": 16, "k": 3, "pad": 1}, engine_op="conv2d", devices=("cuda",), gpu_set=True,
           quick_label="N2 C16 14x14 K16 3x3 p1")(
    _conv_case)
bench_case("conv2d", "conv", "N256 C1 28x28 K6 5x5 p2", {"x": (256, 1, 28, 28), "K": 6, "k": 5, "pad": 2},
           {"x": (8, 1, 28, 28), "K": 6, "k": 5, "pad": 2}, engine_op="conv2d",
           quick_label="N8 C1 28x28 K6 5x5 p2")(_conv_case)
