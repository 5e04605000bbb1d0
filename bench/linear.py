"""Linear layer y = x W^T + b: kernel check and benchmark (BLAS GEMMs on the CPU)."""
import numpy as np

import kernels.reference as ref

from .core import Impls, bench_case, verify_op


def _inputs(params, rng):
    *lead, fin = params["x"]
    fout = params["out"]
    return {"x": rng.standard_normal(params["x"]), "w": rng.standard_normal((fout, fin)) / np.sqrt(fin),
            "b": rng.standard_normal(fout) if params["bias"] else None}


def _run(k, inp, dout_like):
    y = k.linear_fwd(inp["x"], inp["w"], inp["b"])
    return {"fwd": [y], "bwd": list(k.linear_bwd(dout_like(y), inp["x"], inp["w"], True, True, inp["b"] is not None))}


verify_op(op="linear", family="linear", kernels=("linear_fwd", "linear_bwd"),
          fixed=[{"x": (1, 1), "out": 1, "bias": True}, {"x": (7, 33), "out": 5, "bias": False},
                 {"x": (2, 3, 64), "out": 17, "bias": True}, {"x": (256, 300), "out": 129, "bias": True}],
          sample=lambda rng: {"x": tuple(int(n) for n in rng.integers(1, 90, size=rng.integers(2, 4))),
                              "out": int(rng.integers(1, 90)), "bias": bool(rng.integers(2))},
          inputs=_inputs, run=_run, noncontig=("x",))


@bench_case("linear", "overhead", "1x8 -> 8 +bias (per-op overhead)", {"M": 1, "K": 8, "N": 8},
            {"M": 1, "K": 8, "N": 8}, engine_op="linear", gpu_set=True, quick_label="1x8 -> 8 +bias (per-op overhead)")
@bench_case("linear", "linear", "M4096 K1024 N1024 +bias", {"M": 4096, "K": 1024, "N": 1024},
            {"M": 64, "K": 128, "N": 96}, engine_op="linear",
            quick_label="M64 K128 N96 +bias")
def linear_case(ctx, p):
    M, K, N = p["M"], p["K"], p["N"]
    x, w, b = ctx.randn(M, K), ctx.randn(N, K, scale=K ** -0.5), ctx.randn(N)
    import engine.functional as F
    passes = ctx.pair(F.linear, ctx.torch and ctx.torch.nn.functional.linear, [x, w, b], [True, True, True])
    dout = ctx.dout((M, N))
    passes["fwd"]["numpy"] = lambda: ref.linear_fwd(x, w, b)
    passes["fwd"]["cupy"] = ctx.cupy_fwd(lambda cp, x_, w_, b_: x_ @ w_.T + b_, [x, w, b])
    passes["bwd"]["numpy"] = lambda: ref.linear_bwd(dout, x, w)
    it = ctx.dtype.itemsize
    return Impls(passes, flops={"fwd": 2 * M * K * N + M * N, "bwd": 4 * M * K * N + M * N},
                 bytes={"fwd": (M * K + N * K + N + M * N) * it, "bwd": (2 * M * N + 2 * M * K + 2 * N * K + N) * it},
                 bound="flops")
