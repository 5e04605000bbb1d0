"""Batch norm (training and eval) and layer norm: kernel checks and benchmarks.

Byte models count the minimum traffic: forward reads x and writes y; backward reads dout and x and writes dx
(the per-channel or per-row statistics are negligible). Kernels that take two passes over x move more.
"""
import numpy as np

import kernels.reference as ref

from .core import Impls, bench_case, verify_op

EPS = 1e-5


def _bn_inputs(params, rng):
    shape, C = params["shape"], params["shape"][1]
    x = rng.standard_normal(shape) * params.get("std", 1.0) + params.get("shift", 0.0)
    return {"x": x, "w": rng.standard_normal(C) if params["affine"] else None,
            "b": rng.standard_normal(C) if params["affine"] else None,
            "rm": rng.standard_normal(C) * 0.1, "rv": rng.random(C) + 0.5}


def _bn_train_run(k, inp, dout_like):
    y, mean, rstd, var = k.batch_norm_fwd_train(inp["x"], inp["w"], inp["b"], EPS)
    return {"fwd": [y, mean, rstd, var], "bwd": list(k.batch_norm_bwd_train(dout_like(y), inp["x"], inp["w"], mean, rstd))}


def _bn_eval_run(k, inp, dout_like):
    y, mean, rstd = k.batch_norm_fwd_eval(inp["x"], inp["rm"], inp["rv"], inp["w"], inp["b"], EPS)
    return {"fwd": [y, mean, rstd], "bwd": list(k.batch_norm_bwd_eval(dout_like(y), inp["x"], inp["w"], mean, rstd))}


BN_FIXED = [{"shape": (2, 3), "affine": True}, {"shape": (1, 1, 5), "affine": False},
            {"shape": (4, 3, 5, 7), "affine": True}, {"shape": (8, 16, 9, 11), "affine": True, "shift": 100.0},
            {"shape": (3, 5, 97), "affine": True}]


def _bn_sample(rng):
    shape = (int(rng.integers(1, 9)), int(rng.integers(1, 20))) + tuple(int(n) for n in rng.integers(1, 20, rng.integers(0, 3)))
    if int(np.prod(shape)) // shape[1] < 2:            # batch statistics need two values per channel
        shape = (2,) + shape[1:]
    return {"shape": shape, "affine": bool(rng.integers(2)), "std": float(rng.choice([1e-2, 1.0, 30.0]))}


verify_op(op="batch_norm", family="norm", kernels=("batch_norm_fwd_train", "batch_norm_bwd_train"),
          fixed=BN_FIXED, sample=_bn_sample, inputs=_bn_inputs, run=_bn_train_run, scale=5.0, noncontig=("x",))
verify_op(op="batch_norm_eval", family="norm", kernels=("batch_norm_fwd_eval", "batch_norm_bwd_eval"),
          fixed=BN_FIXED, sample=_bn_sample, inputs=_bn_inputs, run=_bn_eval_run, scale=5.0, noncontig=("x",))


def _ln_inputs(params, rng):
    R, D = params["shape"]
    x = rng.standard_normal((R, D)) * params.get("std", 1.0) + params.get("shift", 0.0)
    return {"x": x, "w": rng.standard_normal(D) if params["affine"] else None,
            "b": rng.standard_normal(D) if params["affine"] else None}


def _ln_run(k, inp, dout_like):
    y, mean, rstd = k.layer_norm_fwd(inp["x"], inp["w"], inp["b"], EPS)
    return {"fwd": [y, mean, rstd], "bwd": list(k.layer_norm_bwd(dout_like(y), inp["x"], inp["w"], mean, rstd))}


verify_op(op="layer_norm", family="norm", kernels=("layer_norm_fwd", "layer_norm_bwd"),
          fixed=[{"shape": (2, 2), "affine": False}, {"shape": (1, 1), "affine": True},
                 {"shape": (7, 33), "affine": True}, {"shape": (64, 1024), "affine": True, "shift": 50.0},
                 {"shape": (300, 97), "affine": True}],
          sample=lambda rng: {"shape": (int(rng.integers(1, 200)), int(rng.integers(1, 600))),
                              "affine": bool(rng.integers(2)), "std": float(rng.choice([1e-2, 1.0, 30.0]))},
          inputs=_ln_inputs, run=_ln_run, scale=5.0, noncontig=("x",))


@bench_case("batch_norm", "norm", "train N128 C128 56x56", {"shape": (128, 128, 56, 56)}, {"shape": (4, 8, 8, 8)},
            engine_op="batch_norm", devices=("cuda",), gpu_set=True, quick_label="train N4 C8 8x8")
@bench_case("batch_norm", "norm", "train N32 C64 32x32", {"shape": (32, 64, 32, 32)}, {"shape": (4, 8, 8, 8)},
            engine_op="batch_norm", quick_label="train N4 C8 8x8")
def batch_norm_case(ctx, p):
    import engine
    import engine.functional as F
    shape, C = p["shape"], p["shape"][1]
    x, w, b = ctx.randn(*shape), ctx.randn(C), ctx.randn(C)
    rm, rv = engine.Tensor(np.zeros(C, ctx.dtype)), engine.Tensor(np.ones(C, ctx.dtype))
    ef, eb, _ = ctx.engine(lambda x_, w_, b_: F.batch_norm(x_, rm, rv, w_, b_, True, 0.1, EPS), [x, w, b],
                           [True, True, True])
    passes = {"fwd": {"engine": ef}, "bwd": {"engine": eb}}
    if ctx.torch is not None:
        T = ctx.torch
        trm, trv = T.zeros(C, dtype=ctx.tdtype), T.ones(C, dtype=ctx.tdtype)
        tf, tb, _ = ctx.torch_fns(lambda x_, w_, b_: T.nn.functional.batch_norm(x_, trm, trv, w_, b_, True, 0.1, EPS),
                                  [x, w, b], [True, True, True])
        passes["fwd"]["torch"], passes["bwd"]["torch"] = tf, tb
    y, mean, rstd, _ = ref.batch_norm_fwd_train(x, w, b, EPS)
    dout = ctx.dout(shape)
    passes["fwd"]["numpy"] = lambda: ref.batch_norm_fwd_train(x, w, b, EPS)
    passes["bwd"]["numpy"] = lambda: ref.batch_norm_bwd_train(dout, x, w, mean, rstd)
    n = x.size * ctx.dtype.itemsize
    return Impls(passes, bytes={"fwd": 2 * n, "bwd": 3 * n}, bound="bytes")


@bench_case("layer_norm", "overhead", "1x8 (per-op overhead)", {"shape": (1, 8)}, {"shape": (1, 8)},
            engine_op="layer_norm", gpu_set=True, quick_label="1x8 (per-op overhead)")
@bench_case("layer_norm", "norm", "16384x1024", {"shape": (16384, 1024)}, {"shape": (128, 1024)}, engine_op="layer_norm",
            devices=("cuda",), gpu_set=True)
@bench_case("layer_norm", "norm", "4096x1024", {"shape": (4096, 1024)}, {"shape": (64, 96)}, engine_op="layer_norm")
def layer_norm_case(ctx, p):
    import engine.functional as F
    R, D = p["shape"]
    x, w, b = ctx.randn(R, D), ctx.randn(D), ctx.randn(D)
    T = ctx.torch
    passes = ctx.pair(lambda x_, w_, b_: F.layer_norm(x_, (D,), w_, b_, EPS),
                      T and (lambda x_, w_, b_: T.nn.functional.layer_norm(x_, (D,), w_, b_, EPS)),
                      [x, w, b], [True, True, True])
    _, mean, rstd = ref.layer_norm_fwd(x, w, b, EPS)
    dout = ctx.dout((R, D))
    passes["fwd"]["numpy"] = lambda: ref.layer_norm_fwd(x, w, b, EPS)
    passes["fwd"]["cupy"] = ctx.cupy_fwd(lambda cp, x_, w_, b_: (x_ - x_.mean(-1, keepdims=True)) /
                                         cp.sqrt(x_.var(-1, keepdims=True) + EPS) * w_ + b_, [x, w, b])
    passes["bwd"]["numpy"] = lambda: ref.layer_norm_bwd(dout, x, w, mean, rstd)
    n = x.size * ctx.dtype.itemsize
    return Impls(passes, bytes={"fwd": 2 * n, "bwd": 3 * n}, bound="bytes")
