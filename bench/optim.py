"""Optimizer steps (SGD with momentum, AdamW): kernel checks over several steps and the benchmark of one
step on a large parameter. The kernels update in place; each check works on fresh copies."""
import numpy as np

import kernels.reference as ref

from .core import Impls, bench_case, verify_op

STEPS = 3


def _inputs(params, rng):
    n = params["n"]
    return {"p": rng.standard_normal(n), **{f"g{i}": rng.standard_normal(n) for i in range(STEPS)}, **params}


def _sgd_run(k, inp, dout_like):
    p = inp["p"].copy()
    buf = np.empty_like(p) if inp["momentum"] else None
    for i in range(STEPS):
        k.sgd_step(p, inp[f"g{i}"], buf, 0.05, inp["momentum"], inp["dampening"], inp["nesterov"], inp["wd"], i == 0)
    return {"step": [p, buf]}


def _adamw_run(k, inp, dout_like):
    p = inp["p"].copy()
    m, v = np.zeros_like(p), np.zeros_like(p)
    for i in range(STEPS):
        k.adamw_step(p, inp[f"g{i}"], m, v, 1e-2, 0.9, 0.999, 1e-8, inp["wd"], i + 1)
    return {"step": [p, m, v]}


def _adam_run(k, inp, dout_like):
    p = inp["p"].copy()
    m, v = np.zeros_like(p), np.zeros_like(p)
    for i in range(STEPS):
        k.adam_step(p, inp[f"g{i}"], m, v, 1e-2, 0.9, 0.999, 1e-8, inp["wd"], i + 1)
    return {"step": [p, m, v]}


def _sgd_sample(rng):
    mom = float(rng.choice([0.0, 0.9]))
    nest = bool(mom and rng.integers(2))
    return {"n": int(rng.integers(1, 100000)), "momentum": mom, "dampening": 0.0 if nest else float(rng.choice([0, .1])),
            "nesterov": nest, "wd": float(rng.choice([0, 1e-2]))}


verify_op(op="sgd_step", family="optim", kernels=("sgd_step",), scale=5.0,
          fixed=[{"n": 1, "momentum": 0.0, "dampening": 0.0, "nesterov": False, "wd": 0.0},
                 {"n": 40000, "momentum": 0.9, "dampening": 0.0, "nesterov": False, "wd": 1e-4},
                 {"n": 40001, "momentum": 0.9, "dampening": 0.1, "nesterov": False, "wd": 0.0},
                 {"n": 1000, "momentum": 0.8, "dampening": 0.0, "nesterov": True, "wd": 1e-2}],
          sample=_sgd_sample, inputs=_inputs, run=_sgd_run)

verify_op(op="adamw_step", family="optim", kernels=("adamw_step",), scale=5.0,
          fixed=[{"n": 1, "wd": 0.0}, {"n": 40000, "wd": 0.05}, {"n": 70001, "wd": 0.0}],
          sample=lambda rng: {"n": int(rng.integers(1, 100000)), "wd": float(rng.choice([0, 0.01, 0.1]))},
          inputs=_inputs, run=_adamw_run)


def _opt_case(ctx, n, make_engine, make_torch, ref_step, words):
    """One optimizer step on one parameter of n elements with a fixed gradient; state is created by a first
    step during setup, so that every timed step is a steady-state one."""
    import engine
    p0, g = ctx.randn(n), ctx.randn(n, scale=1e-3)
    pe = engine.Tensor(ctx.put(p0.copy()), requires_grad=True)
    pe.grad = engine.Tensor(ctx.put(g))
    oe = make_engine([pe])
    oe.step()
    passes = {"step": {"engine": oe.step}}
    if ctx.torch is not None:
        pt = ctx.torch.from_numpy(p0.copy()).requires_grad_(True)
        pt.grad = ctx.torch.from_numpy(g.copy())
        ot = make_torch([pt])
        ot.step()
        passes["step"]["torch"] = ot.step
    passes["step"]["numpy"] = ref_step(p0.copy(), g)
    return Impls(passes, bytes={"step": words * n * ctx.dtype.itemsize}, bound="bytes")


@bench_case("sgd_step", "optim", "n=4M momentum 0.9 wd 1e-4", {"n": 1 << 22}, {"n": 1 << 14},
            quick_label="n=16K momentum 0.9 wd 1e-4")
def sgd_case(ctx, p):
    from engine import optim
    kw = dict(lr=1e-3, momentum=0.9, weight_decay=1e-4)
    torch = ctx.torch

    def ref_step(param, g):
        buf = np.empty_like(param)
        ref.sgd_step(param, g, buf, 1e-3, 0.9, 0.0, False, 1e-4, True)
        return lambda: ref.sgd_step(param, g, buf, 1e-3, 0.9, 0.0, False, 1e-4, False)
    return _opt_case(ctx, p["n"], lambda ps: optim.SGD(ps, **kw), torch and (lambda ps: torch.optim.SGD(ps, **kw)),
                     ref_step, words=5)                        # read p, g, buf; write p, buf


@bench_case("adamw_step", "optim", "n=4M wd 1e-2", {"n": 1 << 22}, {"n": 1 << 14}, quick_label="n=16K wd 1e-2")
def adamw_case(ctx, p):
    from engine import optim
    torch = ctx.torch

    def ref_step(param, g):
        m, v = np.zeros_like(param), np.zeros_like(param)
        state = {"t": 1}
        ref.adamw_step(param, g, m, v, 1e-3, 0.9, 0.999, 1e-8, 1e-2, 1)

        def step():
            state["t"] += 1
            ref.adamw_step(param, g, m, v, 1e-3, 0.9, 0.999, 1e-8, 1e-2, state["t"])
        return step
    return _opt_case(ctx, p["n"], lambda ps: optim.AdamW(ps, lr=1e-3),
                     torch and (lambda ps: torch.optim.AdamW(ps, lr=1e-3)), ref_step, words=7)   # r p g m v, w p m v

verify_op(op="adam_step", family="optim", kernels=("adam_step",), scale=5.0,
          fixed=[{"n": 1, "wd": 0.0}, {"n": 40000, "wd": 0.05}, {"n": 70001, "wd": 0.0}],
          sample=lambda rng: {"n": int(rng.integers(1, 100000)), "wd": float(rng.choice([0, 0.01, 0.1]))},
          inputs=_inputs, run=_adam_run)
