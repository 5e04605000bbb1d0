"""Embedding lookup and its scatter-add: kernel checks (repeated indices and a padding row included)."""

from .core import verify_op


def _inputs(params, rng):
    num, dim, idx_shape = params["num"], params["dim"], params["idx"]
    return {"w": rng.standard_normal((num, dim)), "idx": rng.integers(0, num, size=idx_shape),
            "num": num, "pad": params["pad"]}


def _run(k, inp, dout_like):
    y = k.embedding_fwd(inp["idx"], inp["w"])
    return {"fwd": [y], "bwd": [k.embedding_bwd(dout_like(y), inp["idx"], inp["num"], inp["pad"])]}


verify_op(op="embedding", family="embedding", kernels=("embedding_fwd", "embedding_bwd"),
          fixed=[{"num": 5, "dim": 3, "idx": (4,), "pad": -1}, {"num": 10, "dim": 33, "idx": (8, 40), "pad": 0},
                 {"num": 1000, "dim": 64, "idx": (16, 128), "pad": 7}],
          sample=lambda rng: {"num": int(rng.integers(1, 200)), "dim": int(rng.integers(1, 70)),
                              "idx": (int(rng.integers(1, 9)), int(rng.integers(1, 50))), "pad": -1},
          inputs=_inputs, run=_run)
