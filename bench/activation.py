"""Activations and dropout: kernel checks, and relu's per-op overhead case (elementwise ops are otherwise not
among the benchmarked families)."""
import numpy as np

import kernels.reference as ref

from .core import Impls, bench_case, verify_op

SHAPES = [(1,), (7, 5), (3, 4, 33), (70000,)]


def _shape(rng):
    return {"shape": tuple(int(n) for n in rng.integers(1, 40, size=rng.integers(1, 4)))}


def _off_kink(params, rng):
    x = rng.standard_normal(params["shape"]) * 4
    return {"x": np.where(np.abs(x) < 0.05, 0.5, x)}          # no input at relu's kink


def _pointwise(name):
    def run(k, inp, dout_like):
        y = getattr(k, f"{name}_fwd")(inp["x"])
        return {"fwd": [y], "bwd": [getattr(k, f"{name}_bwd")(dout_like(y), y)]}
    return run


for _name in ("relu", "sigmoid", "tanh"):
    verify_op(op=_name, family="activation", kernels=(f"{_name}_fwd", f"{_name}_bwd"),
              fixed=[{"shape": s} for s in SHAPES], sample=_shape, inputs=_off_kink, run=_pointwise(_name),
              noncontig=("x",))


def _dropout_inputs(params, rng):
    return {"x": rng.standard_normal(params["shape"]), "seed": int(rng.integers(0, 2**63 - 1)), "p": params["p"]}


def _dropout_run(k, inp, dout_like):
    y, mask = k.dropout_fwd(inp["x"], inp["seed"], inp["p"])
    return {"fwd": [y, mask], "bwd": [k.dropout_bwd(dout_like(y), mask, inp["p"])]}


verify_op(op="dropout", family="activation", kernels=("dropout_fwd", "dropout_bwd"),
          fixed=[{"shape": (7, 5), "p": 0.3}, {"shape": (70000,), "p": 0.5}, {"shape": (3, 33), "p": 1.0},
                 {"shape": (64, 33), "p": 0.0}],
          sample=lambda rng: dict(_shape(rng), p=float(np.round(rng.random(), 2))),
          inputs=_dropout_inputs, run=_dropout_run)


def _gelu_run(k, inp, dout_like):
    y = k.gelu_fwd(inp["x"], inp["approximate"])
    return {"fwd": [y], "bwd": [k.gelu_bwd(dout_like(y), inp["x"], inp["approximate"])]}


verify_op(op="gelu", family="activation", kernels=("gelu_fwd", "gelu_bwd"),
          fixed=[{"shape": s, "approximate": a} for s in SHAPES for a in ("none", "tanh")],
          sample=lambda rng: dict(_shape(rng), approximate=str(rng.choice(["none", "tanh"]))),
          inputs=lambda p, rng: {"x": rng.standard_normal(p["shape"]) * 4, "approximate": p["approximate"]},
          run=_gelu_run, noncontig=("x",))


@bench_case("relu", "overhead", "1x8 (per-op overhead)", {"shape": (1, 8)}, {"shape": (1, 8)}, engine_op="relu",
            gpu_set=True, quick_label="1x8 (per-op overhead)")
def relu_case(ctx, p):
    import engine.functional as F
    x = ctx.randn(*p["shape"])
    T = ctx.torch
    passes = ctx.pair(F.relu, T and T.nn.functional.relu, [x], [True])
    dout = ctx.dout(p["shape"])
    y = ref.relu_fwd(x)
    passes["fwd"]["numpy"] = lambda: ref.relu_fwd(x)
    passes["bwd"]["numpy"] = lambda: ref.relu_bwd(dout, y)
    passes["fwd"]["cupy"] = ctx.cupy_fwd(lambda cp, x_: cp.maximum(x_, 0), [x])
    n = x.size * ctx.dtype.itemsize
    return Impls(passes, bytes={"fwd": 2 * n, "bwd": 3 * n}, bound="bytes")
