"""Softmax, log-softmax, masked softmax and cross-entropy: kernel checks and benchmarks.

Check inputs are meant to be meaningful (llm.c): spiky logits (a few dominant entries), +-1000 logits, rows
of length 1, odd lengths, and rows that are all -inf (softmax gives zeros, log-softmax -inf).
Byte models: softmax / log-softmax forward read x, write y; backward read dout and y, write dx.
Cross-entropy forward reads the logits; backward reads them and writes dx.
"""
import numpy as np

import kernels.reference as ref

from .core import Impls, bench_case, verify_op


def _logits(params, rng):
    R, n = params["shape"]
    x = rng.standard_normal((R, n)) * params.get("std", 1.0)
    if params.get("spiky"):
        hot = rng.random((R, n)) < 0.02
        x = np.where(hot, x + 20.0, x)
    if params.get("huge"):
        x = x * 1000.0
    if params.get("dead_row") and R > 1:
        x[R // 2] = -np.inf
        x[0, : n // 2] = -np.inf
    return x


FIXED = [{"shape": (1, 1)}, {"shape": (5, 1)}, {"shape": (7, 33), "spiky": True}, {"shape": (4, 1000), "huge": True},
         {"shape": (6, 513), "dead_row": True}, {"shape": (64, 1024), "spiky": True}]


def _sample(rng):
    return {"shape": (int(rng.integers(1, 100)), int(rng.integers(1, 3000))), "spiky": bool(rng.integers(2)),
            "std": float(rng.choice([0.1, 1.0, 5.0]))}


def _pair(name):
    def run(k, inp, dout_like):
        y = getattr(k, f"{name}_fwd")(inp["x"])
        d = dout_like(y)
        return {"fwd": [y], "bwd": [getattr(k, f"{name}_bwd")(d, y)]}
    return run


for _name in ("softmax", "log_softmax"):
    verify_op(op=_name, family="softmax", kernels=(f"{_name}_fwd", f"{_name}_bwd"), fixed=FIXED, sample=_sample,
              inputs=lambda p, rng: {"x": _logits(p, rng)}, run=_pair(_name), scale=2.0, noncontig=("x",))


def _masked_inputs(params, rng):
    x = _logits(params, rng)
    R, n = x.shape
    lens = rng.integers(0, n + 1, size=R)
    lens[0] = n
    return {"x": x, "lens": lens}


def _masked_run(k, inp, dout_like):
    y = k.masked_softmax_fwd(inp["x"], inp["lens"])
    return {"fwd": [y], "bwd": [k.masked_softmax_bwd(dout_like(y), y, inp["lens"])]}


verify_op(op="masked_softmax", family="softmax", kernels=("masked_softmax_fwd", "masked_softmax_bwd"),
          fixed=[f for f in FIXED if not f.get("dead_row")], sample=_sample, inputs=_masked_inputs, run=_masked_run,
          scale=2.0)


def _ce_inputs(params, rng):
    x = _logits(params, rng)
    N, C = x.shape
    t = rng.integers(0, C, size=N)
    if params.get("ignore") and N > 1:
        t[rng.random(N) < 0.3] = -100
    return {"x": x, "t": t, "ls": params.get("ls", 0.0)}


def _ce_run(k, inp, dout_like):
    loss, lse = k.cross_entropy_fwd(inp["x"], inp["t"], inp["ls"], -100)
    return {"fwd": [loss, lse], "bwd": [k.cross_entropy_bwd(dout_like(loss), inp["x"], inp["t"], lse, inp["ls"], -100)]}


verify_op(op="cross_entropy", family="softmax", kernels=("cross_entropy_fwd", "cross_entropy_bwd"),
          fixed=[{"shape": (1, 1)}, {"shape": (7, 33), "spiky": True, "ls": 0.1},
                 {"shape": (64, 1000), "huge": True, "ignore": True}, {"shape": (300, 10), "ls": 0.2, "ignore": True}],
          sample=lambda rng: dict(_sample(rng), ls=float(rng.choice([0.0, 0.1])), ignore=bool(rng.integers(2))),
          inputs=_ce_inputs, run=_ce_run, scale=2.0, noncontig=("x",))


def _cupy_softmax(log):
    def fn(cp, x):
        z = x - x.max(axis=-1, keepdims=True)
        e = cp.exp(z)
        s = e.sum(axis=-1, keepdims=True)
        return z - cp.log(s) if log else e / s
    return fn


def _rows_case(name):
    def build(ctx, p):
        import engine.functional as F
        R, n = p["shape"]
        x = ctx.randn(R, n, scale=3.0)
        T = ctx.torch
        passes = ctx.pair(lambda x_: getattr(F, name)(x_, -1), T and (lambda x_: getattr(T.nn.functional, name)(x_, -1)),
                          [x], [True])
        y = getattr(ref, f"{name}_fwd")(x)
        dout = ctx.dout((R, n))
        passes["fwd"]["numpy"] = lambda: getattr(ref, f"{name}_fwd")(x)
        passes["fwd"]["cupy"] = ctx.cupy_fwd(_cupy_softmax(name == "log_softmax"), [x])
        passes["bwd"]["numpy"] = lambda: getattr(ref, f"{name}_bwd")(dout, y)
        b = x.nbytes
        return Impls(passes, bytes={"fwd": 2 * b, "bwd": 3 * b}, bound="bytes")
    return build


for _name in ("softmax", "log_softmax"):
    bench_case(_name, "softmax", "4096x1024", {"shape": (4096, 1024)}, {"shape": (64, 100)}, engine_op=_name,
               quick_label="64x100")(
        _rows_case(_name))
bench_case("softmax", "softmax", "16384x1024", {"shape": (16384, 1024)}, {"shape": (128, 1024)}, engine_op="softmax",
           devices=("cuda",), gpu_set=True)(_rows_case("softmax"))
# the engine's cost per op where the work is nothing: Python, the tape, allocation and the kernel launch
bench_case("softmax", "overhead", "1x8 (per-op overhead)", {"shape": (1, 8)}, {"shape": (1, 8)}, engine_op="softmax",
           gpu_set=True, quick_label="1x8 (per-op overhead)")(_rows_case("softmax"))


@bench_case("cross_entropy", "softmax", "4096x1024 mean", {"shape": (4096, 1024)}, {"shape": (64, 100)},
            engine_op="cross_entropy", quick_label="64x100 mean")
def cross_entropy_case(ctx, p):
    import engine
    import engine.functional as F
    N, C = p["shape"]
    x = ctx.randn(N, C, scale=3.0)
    t = ctx.rng.integers(0, C, size=N)
    T = ctx.torch
    te = engine.Tensor(ctx.put(t))
    tt = T.from_numpy(t).to("cuda" if ctx.device == "cuda" else "cpu") if T is not None else None
    passes = ctx.pair(lambda x_: F.cross_entropy(x_, te), T and (lambda x_: T.nn.functional.cross_entropy(x_, tt)),
                      [x], [True])
    loss, lse = ref.cross_entropy_fwd(x, t, 0.0, -100)
    dloss = np.full(N, 1.0 / N)
    passes["fwd"]["numpy"] = lambda: ref.cross_entropy_fwd(x, t, 0.0, -100)[0].mean()
    passes["bwd"]["numpy"] = lambda: ref.cross_entropy_bwd(dloss, x, t, lse, 0.0, -100)
    return Impls(passes, bytes={"fwd": x.nbytes, "bwd": 2 * x.nbytes}, bound="bytes")


def _mse_run(k, inp, dout_like):
    y = k.mse_loss_fwd(inp["x"], inp["t"], inp["red"])
    return {"fwd": [y], "bwd": [k.mse_loss_bwd(dout_like(y), inp["x"], inp["t"], inp["red"])]}


verify_op(op="mse_loss", family="loss", kernels=("mse_loss_fwd", "mse_loss_bwd"),
          fixed=[{"shape": (1,), "red": "mean"}, {"shape": (7, 33), "red": "none"}, {"shape": (300, 97), "red": "sum"},
                 {"shape": (70000,), "red": "mean"}],
          sample=lambda rng: {"shape": tuple(int(n) for n in rng.integers(1, 60, size=rng.integers(1, 4))),
                              "red": str(rng.choice(["mean", "sum", "none"]))},
          inputs=lambda p, rng: {"x": rng.standard_normal(p["shape"]), "t": rng.standard_normal(p["shape"]),
                                 "red": p["red"]},
          run=_mse_run, scale=2.0, noncontig=("x",))
