"""Fused layers (conv2d / linear + bias + relu, sigmoid or tanh): kernel checks against the reference, and
cases at the models' shapes against PyTorch's two ops (layer, then activation)."""
import numpy as np

import kernels.reference as ref
from kernels.common import ACTIVATIONS, conv2d_out_size

from .conv import FIXED as CONV_FIXED, _inputs as _conv_inputs, _sample as _conv_sample
from .core import Impls, bench_case, verify_op

_ACTS = list(ACTIVATIONS)


def _conv_run(k, inp, dout_like):
    a = inp["_a"]
    geo = (a["s"], a["p"], a["d"], a["groups"])
    y = k.conv2d_act_fwd(inp["x"], inp["w"], inp["b"], *geo, ACTIVATIONS[a["act"]])
    grads = k.conv2d_act_bwd(dout_like(y), y, inp["x"], inp["w"], *geo, ACTIVATIONS[a["act"]], True, True,
                             inp["b"] is not None)
    return {"fwd": [y], "bwd": list(grads)}


verify_op(op="conv2d_act", family="fused", kernels=("conv2d_act_fwd", "conv2d_act_bwd"),
          fixed=[dict(c, act=_ACTS[i % 3]) for i, c in enumerate(CONV_FIXED)],
          sample=lambda rng: dict(_conv_sample(rng), act=str(rng.choice(_ACTS))),
          inputs=_conv_inputs, run=_conv_run, scale=2.0, noncontig=("x",))


def _linear_inputs(p, rng):
    return {"x": rng.standard_normal(p["x"]), "w": rng.standard_normal((p["out"], p["x"][-1])) / np.sqrt(p["x"][-1]),
            "b": rng.standard_normal(p["out"]) if p["bias"] else None, "act": p["act"]}


def _linear_run(k, inp, dout_like):
    act = ACTIVATIONS[inp["act"]]
    y = k.linear_act_fwd(inp["x"], inp["w"], inp["b"], act)
    return {"fwd": [y], "bwd": list(k.linear_act_bwd(dout_like(y), y, inp["x"], inp["w"], act))}


verify_op(op="linear_act", family="fused", kernels=("linear_act_fwd", "linear_act_bwd"),
          fixed=[{"x": (4, 5), "out": 3, "bias": True, "act": "relu"},
                 {"x": (300, 256), "out": 48, "bias": True, "act": "sigmoid"},
                 {"x": (2, 3, 64), "out": 16, "bias": False, "act": "tanh"},
                 {"x": (0, 7), "out": 5, "bias": True, "act": "relu"}],
          sample=lambda rng: {"x": tuple(int(n) for n in rng.integers(1, 70, size=rng.integers(2, 4))),
                              "out": int(rng.integers(1, 70)), "bias": bool(rng.integers(2)),
                              "act": str(rng.choice(_ACTS))},
          inputs=_linear_inputs, run=_linear_run, noncontig=("x",))


def _conv_act_case(ctx, p):
    import engine.functional as F
    N, C, H, W = p["x"]
    K, kk, pad, act = p["K"], p["k"], p["pad"], p["act"]
    x, w, b = ctx.randn(N, C, H, W), ctx.randn(K, C, kk, kk, scale=(C * kk * kk) ** -0.5), ctx.randn(K)
    T = ctx.torch
    passes = ctx.pair(lambda x_, w_, b_: F.conv2d_act(x_, w_, b_, 1, pad, activation=act),
                      T and (lambda x_, w_, b_: getattr(T, act)(T.nn.functional.conv2d(x_, w_, b_, 1, pad))),
                      [x, w, b], [True] * 3)
    geo = ((1, 1), (pad,) * 4, (1, 1), 1)
    Ho, Wo = conv2d_out_size(H, W, kk, kk, *geo[:3])
    dout = ctx.dout((N, K, Ho, Wo))
    code = ACTIVATIONS[act]
    y = ref.conv2d_act_fwd(x, w, b, *geo, code)
    passes["fwd"]["numpy"] = lambda: ref.conv2d_act_fwd(x, w, b, *geo, code)
    passes["bwd"]["numpy"] = lambda: ref.conv2d_act_bwd(dout, y, x, w, *geo, code)
    mac = N * K * Ho * Wo * C * kk * kk
    io = (x.size + w.size + N * K * Ho * Wo) * ctx.dtype.itemsize
    return Impls(passes, flops={"fwd": 2 * mac + 2 * N * K * Ho * Wo, "bwd": 4 * mac + 2 * N * K * Ho * Wo},
                 bytes={"fwd": io, "bwd": 2 * io}, bound="flops")


bench_case("conv2d_act", "fused", "N256 C1 28x28 K6 5x5 p2 + sigmoid (LeNet)",
           {"x": (256, 1, 28, 28), "K": 6, "k": 5, "pad": 2, "act": "sigmoid"},
           {"x": (8, 1, 28, 28), "K": 6, "k": 5, "pad": 2, "act": "sigmoid"}, engine_op="conv2d_act",
           quick_label="N8 C1 28x28 K6 5x5 p2 + sigmoid")(_conv_act_case)
bench_case("conv2d_act", "fused", "N64 C16 32x32 K16 3x3 p1 + relu",
           {"x": (64, 16, 32, 32), "K": 16, "k": 3, "pad": 1, "act": "relu"},
           {"x": (2, 4, 8, 8), "K": 4, "k": 3, "pad": 1, "act": "relu"}, engine_op="conv2d_act",
           quick_label="N2 C4 8x8 K4 3x3 p1 + relu")(_conv_act_case)


def _linear_act_case(ctx, p):
    import engine.functional as F
    (M, Kin), N, act = p["x"], p["out"], p["act"]
    x, w, b = ctx.randn(M, Kin), ctx.randn(N, Kin, scale=Kin ** -0.5), ctx.randn(N)
    T = ctx.torch
    passes = ctx.pair(lambda x_, w_, b_: F.linear_act(x_, w_, b_, activation=act),
                      T and (lambda x_, w_, b_: getattr(T, act)(T.nn.functional.linear(x_, w_, b_))),
                      [x, w, b], [True] * 3)
    code = ACTIVATIONS[act]
    y = ref.linear_act_fwd(x, w, b, code)
    dout = ctx.dout((M, N))
    passes["fwd"]["numpy"] = lambda: ref.linear_act_fwd(x, w, b, code)
    passes["bwd"]["numpy"] = lambda: ref.linear_act_bwd(dout, y, x, w, code)
    return Impls(passes, flops={"fwd": 2 * M * N * Kin, "bwd": 4 * M * N * Kin}, bound="flops")


bench_case("linear_act", "fused", "4096x128 -> 512 + relu (transformer MLP)",
           {"x": (4096, 128), "out": 512, "act": "relu"}, {"x": (64, 16), "out": 32, "act": "relu"},
           engine_op="linear_act", quick_label="64x16 -> 32 + relu")(_linear_act_case)
bench_case("linear_act", "fused", "256x400 -> 120 + sigmoid (LeNet)",
           {"x": (256, 400), "out": 120, "act": "sigmoid"}, {"x": (8, 40), "out": 12, "act": "sigmoid"},
           engine_op="linear_act", quick_label="8x40 -> 12 + sigmoid")(_linear_act_case)
