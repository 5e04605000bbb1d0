"""Max, average and adaptive average pooling: kernel checks and benchmarks.

Max-pool check inputs are distinct values (a shuffled range), so that no window holds a tie and the argmax
is unique. Byte models: forward reads x and writes y (plus the int32 argmax for max pool); backward reads
dout (and argmax) and writes dx.
"""
import numpy as np

import kernels.reference as ref

from .core import Impls, bench_case, verify_op


def _distinct(shape, rng):
    n = int(np.prod(shape))
    return (rng.permutation(n).reshape(shape) - n / 2) / max(n / 8, 1)     # exact in float32 for n < 2**24


def _pool_params(rng):
    kh, kw = (int(v) for v in rng.integers(1, 5, 2))
    sh, sw = (int(v) for v in rng.integers(1, 4, 2))
    ph, pw = int(rng.integers(0, kh // 2 + 1)), int(rng.integers(0, kw // 2 + 1))
    H, W = int(rng.integers(kh, 20)), int(rng.integers(kw, 20))
    return {"shape": (int(rng.integers(1, 4)), int(rng.integers(1, 6)), H, W), "k": (kh, kw), "s": (sh, sw),
            "p": (ph, pw), "ceil": bool(rng.integers(2)), "cip": bool(rng.integers(2))}


POOL_FIXED = [{"shape": (1, 1, 3, 3), "k": (2, 2), "s": (1, 1), "p": (0, 0), "ceil": False, "cip": True},
              {"shape": (1, 1, 4, 4), "k": (3, 3), "s": (2, 2), "p": (1, 1), "ceil": False, "cip": True},
              {"shape": (2, 3, 9, 7), "k": (3, 2), "s": (2, 3), "p": (1, 1), "ceil": True, "cip": False},
              {"shape": (2, 4, 16, 16), "k": (2, 2), "s": (2, 2), "p": (0, 0), "ceil": False, "cip": True},
              {"shape": (2, 5, 15, 17), "k": (3, 3), "s": (1, 1), "p": (1, 1), "ceil": False, "cip": False}]


def _max_run(k, inp, dout_like):
    a = inp["_a"]
    y, am = k.max_pool2d_fwd(inp["x"], a["k"], a["s"], a["p"], a["ceil"])
    return {"fwd": [y, am], "bwd": [k.max_pool2d_bwd(dout_like(y), am, tuple(a["shape"]), a["k"], a["s"], a["p"],
                                                    a["ceil"])]}


def _avg_run(k, inp, dout_like):
    a = inp["_a"]
    y = k.avg_pool2d_fwd(inp["x"], a["k"], a["s"], a["p"], a["ceil"], a["cip"])
    return {"fwd": [y], "bwd": [k.avg_pool2d_bwd(dout_like(y), tuple(a["shape"]), a["k"], a["s"], a["p"], a["ceil"],
                                                a["cip"])]}


verify_op(op="max_pool2d", family="pool", kernels=("max_pool2d_fwd", "max_pool2d_bwd"), fixed=POOL_FIXED,
          sample=_pool_params, inputs=lambda p, rng: {"x": _distinct(p["shape"], rng), "_a": p}, run=_max_run,
          noncontig=("x",))
verify_op(op="avg_pool2d", family="pool", kernels=("avg_pool2d_fwd", "avg_pool2d_bwd"), fixed=POOL_FIXED,
          sample=_pool_params, inputs=lambda p, rng: {"x": rng.standard_normal(p["shape"]), "_a": p}, run=_avg_run,
          noncontig=("x",))


def _adaptive_run(k, inp, dout_like):
    a = inp["_a"]
    y = k.adaptive_avg_pool2d_fwd(inp["x"], a["out"])
    return {"fwd": [y], "bwd": [k.adaptive_avg_pool2d_bwd(dout_like(y), tuple(a["shape"]))]}


verify_op(op="adaptive_avg_pool2d", family="pool", kernels=("adaptive_avg_pool2d_fwd", "adaptive_avg_pool2d_bwd"),
          fixed=[{"shape": (1, 1, 4, 4), "out": (1, 1)}, {"shape": (2, 3, 7, 9), "out": (3, 4)},
                 {"shape": (2, 4, 5, 5), "out": (5, 5)}, {"shape": (2, 3, 3, 3), "out": (6, 7)}],
          sample=lambda rng: {"shape": (int(rng.integers(1, 4)), int(rng.integers(1, 6)), int(rng.integers(1, 20)),
                                        int(rng.integers(1, 20))),
                              "out": (int(rng.integers(1, 8)), int(rng.integers(1, 8)))},
          inputs=lambda p, rng: {"x": rng.standard_normal(p["shape"]), "_a": p}, run=_adaptive_run, noncontig=("x",))


@bench_case("max_pool2d", "pool", "2x2 s2 on 128x128x56x56", {"shape": (128, 128, 56, 56)}, {"shape": (4, 8, 16, 16)},
            engine_op="max_pool2d", devices=("cuda",), gpu_set=True, quick_label="2x2 s2 on 4x8x16x16")
@bench_case("max_pool2d", "pool", "2x2 s2 on 32x64x32x32", {"shape": (32, 64, 32, 32)}, {"shape": (4, 8, 16, 16)},
            engine_op="max_pool2d", quick_label="2x2 s2 on 4x8x16x16")
def max_pool_case(ctx, p):
    import engine.functional as F
    x = ctx.randn(*p["shape"])
    T = ctx.torch
    passes = ctx.pair(lambda x_: F.max_pool2d(x_, 2, 2), T and (lambda x_: T.nn.functional.max_pool2d(x_, 2, 2)),
                      [x], [True])
    y, am = ref.max_pool2d_fwd(x, (2, 2), (2, 2), (0, 0), False)
    dout = ctx.dout(y.shape)
    passes["fwd"]["numpy"] = lambda: ref.max_pool2d_fwd(x, (2, 2), (2, 2), (0, 0), False)
    passes["bwd"]["numpy"] = lambda: ref.max_pool2d_bwd(dout, am, x.shape, (2, 2), (2, 2), (0, 0), False)
    b, yb = x.nbytes, x.nbytes // 4
    return Impls(passes, bytes={"fwd": b + yb + am.size * 4, "bwd": yb + am.size * 4 + b}, bound="bytes")


@bench_case("avg_pool2d", "pool", "3x3 s1 p1 on 32x64x32x32", {"shape": (32, 64, 32, 32)}, {"shape": (4, 8, 16, 16)},
            engine_op="avg_pool2d", quick_label="3x3 s1 p1 on 4x8x16x16")
def avg_pool_case(ctx, p):
    import engine.functional as F
    x = ctx.randn(*p["shape"])
    T = ctx.torch
    passes = ctx.pair(lambda x_: F.avg_pool2d(x_, 3, 1, 1), T and (lambda x_: T.nn.functional.avg_pool2d(x_, 3, 1, 1)),
                      [x], [True])
    dout = ctx.dout(x.shape)
    args = ((3, 3), (1, 1), (1, 1), False, True)
    passes["fwd"]["numpy"] = lambda: ref.avg_pool2d_fwd(x, *args)
    passes["bwd"]["numpy"] = lambda: ref.avg_pool2d_bwd(dout, x.shape, *args)
    return Impls(passes, bytes={"fwd": 2 * x.nbytes, "bwd": 2 * x.nbytes}, bound="bytes")
