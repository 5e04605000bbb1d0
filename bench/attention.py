"""Scaled dot-product attention: kernel check (FlashAttention's criterion: the kernel's error at most twice
that of a naive same-dtype forward, or within the dtype tolerance) and the standard benchmarks, plain and
causal. FLOP model: forward 4 * B * H * L * S * d (QK^T and PV), backward 2.5x forward (five matmuls with
the recomputed probabilities); causal halves both."""
import numpy as np

import kernels.reference as ref

from .core import Impls, bench_case, verify_op


def _inputs(params, rng):
    lead, L, S, d, dv = params["lead"], params["L"], params["S"], params["d"], params.get("dv", params["d"])
    q = rng.standard_normal((*lead, L, d)) * params.get("std", 1.0)
    k = rng.standard_normal((*lead, S, d)) * params.get("std", 1.0)
    v = rng.standard_normal((*lead, S, dv))
    mask = None
    if params.get("mask") == "bool":
        mask = rng.random((L, S)) < 0.8
        mask[:, 0] = True
    elif params.get("mask") == "float":
        mask = rng.standard_normal((*lead, L, S))
    vl = None
    if params.get("valid_lens"):
        vl = rng.integers(0, S + 1, size=lead[0])
        vl[0] = S
    return {"q": q, "k": k, "v": v, "mask": mask, "vl": vl, "_a": params}


def _args(inp):
    a = inp["_a"]
    return inp["mask"], a.get("causal", False), 1.0 / np.sqrt(a["d"]), inp["vl"], a.get("dropout", 0.0), 1234


def _run(k, inp, dout_like):
    args = _args(inp)
    o, lse = k.sdpa_fwd(inp["q"], inp["k"], inp["v"], *args)
    dq, dk, dv = k.sdpa_bwd(dout_like(o), inp["q"], inp["k"], inp["v"], o, lse, *args)
    return {"fwd": [o, lse], "bwd": [dq, dk, dv]}


def _naive(inp):
    return list(ref.attention.naive_fwd(inp["q"], inp["k"], inp["v"], *_args(inp)))


def _cfg(lead, L, S, d, **kw):
    return {"lead": lead, "L": L, "S": S, "d": d, **kw}


FIXED = [_cfg((1,), 1, 1, 1), _cfg((2, 3), 97, 97, 16, causal=True), _cfg((2,), 5, 257, 64),
         _cfg((2, 2), 33, 65, 32, dv=24, mask="bool"), _cfg((3,), 17, 40, 8, valid_lens=True),
         _cfg((2, 2), 64, 64, 32, mask="float", std=3.0), _cfg((2,), 40, 40, 16, dropout=0.25),
         _cfg((1, 2), 130, 130, 64, causal=True)]


def _sample(rng):
    extra = rng.choice(["", "causal", "bool", "valid_lens"])
    L = int(rng.integers(1, 150))
    kw = {"causal": True} if extra == "causal" else {"mask": "bool"} if extra == "bool" else \
        {"valid_lens": True} if extra == "valid_lens" else {}
    S = L if extra == "causal" else int(rng.integers(1, 150))
    return _cfg((int(rng.integers(1, 3)), int(rng.integers(1, 3))), L, S, int(rng.choice([8, 16, 32, 64])), **kw)


verify_op(op="sdpa", family="attention", kernels=("sdpa_fwd", "sdpa_bwd"), fixed=FIXED, sample=_sample,
          inputs=_inputs, run=_run, naive=_naive, scale=2.0, noncontig=("q",))


def _sdpa_case(ctx, p):
    import engine.functional as F
    B, H, L, d = p["B"], p["H"], p["L"], p["d"]
    causal = p["causal"]
    q, k, v = (ctx.randn(B, H, L, d) for _ in range(3))
    T = ctx.torch
    passes = ctx.pair(lambda q_, k_, v_: F.scaled_dot_product_attention(q_, k_, v_, is_causal=causal),
                      T and (lambda q_, k_, v_: T.nn.functional.scaled_dot_product_attention(q_, k_, v_, is_causal=causal)),
                      [q, k, v], [True] * 3)
    scale = 1.0 / np.sqrt(d)
    if ctx.device == "cpu":         # the reference holds the L x L scores: only where it is timed
        o, lse = ref.sdpa_fwd(q, k, v, None, causal, scale)
        dout = ctx.dout(o.shape)
        passes["fwd"]["numpy"] = lambda: ref.sdpa_fwd(q, k, v, None, causal, scale)
        passes["bwd"]["numpy"] = lambda: ref.sdpa_bwd(dout, q, k, v, o, lse, None, causal, scale)
    f = 4 * B * H * L * L * d * (0.5 if causal else 1.0)
    io = 4 * q.nbytes
    return Impls(passes, flops={"fwd": f, "bwd": 2.5 * f}, bytes={"fwd": io, "bwd": 2 * io}, bound="flops")


for _causal in (False, True):
    bench_case("sdpa", "attention", f"B8 H8 L512 d64{' causal' if _causal else ''}",
               {"B": 8, "H": 8, "L": 512, "d": 64, "causal": _causal},
               {"B": 2, "H": 2, "L": 64, "d": 32, "causal": _causal},
               quick_label=f"B2 H2 L64 d32{' causal' if _causal else ''}",
               engine_op="scaled_dot_product_attention")(_sdpa_case)
    bench_case("sdpa", "attention", f"B16 H16 L2048 d64{' causal' if _causal else ''}",
               {"B": 16, "H": 16, "L": 2048, "d": 64, "causal": _causal},
               {"B": 2, "H": 2, "L": 256, "d": 64, "causal": _causal},
               quick_label=f"B2 H2 L256 d64{' causal' if _causal else ''}",
               engine_op="scaled_dot_product_attention", devices=("cuda",), gpu_set=True)(_sdpa_case)
