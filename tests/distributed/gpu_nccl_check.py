"""GPU check of backend="nccl" with the real NCCL (CuPy's cupy.cuda.nccl), for `make gpu-check`:

    python tests/distributed/gpu_nccl_check.py --out DIR                      # a world of one on one GPU
    mpiexec -n <GPUs> python -m mpi4py tests/distributed/gpu_nccl_check.py    # one rank per GPU (needs mpi4py)

Checks that engine.distributed._nccl's NCCL enum values are CuPy's; all_reduce (sum, avg, max), broadcast and
all_gather on CuPy arrays (float32, float64, a non-contiguous view); DistributedDataParallel on "cuda" against
the plain model (float64, to 1e-9) with no device-to-host copy in a training step; SyncBatchNorm's function on
the GPU against batch_norm; then NCCL all-reduce bandwidth for 4 KiB to 256 MiB. Prints each result, writes
DIR/nccl_check.json from rank 0, and exits 1 when a check fails (2 when there is no GPU to check).
"""
import argparse
import json
import os
import sys
import time
import traceback

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

RESULTS = {}


def check(name, fn):
    try:
        RESULTS[name] = {"ok": True, "value": fn()}
    except Exception as e:
        RESULTS[name] = {"ok": False, "error": f"{type(e).__name__}: {e}", "trace": traceback.format_exc()}
    print(f"{name}: {'ok' if RESULTS[name]['ok'] else 'FAILED ' + RESULTS[name]['error']}", flush=True)


def enums():
    from cupy.cuda import nccl
    import engine.distributed._nccl as m
    for name, code in m.NCCL_DTYPES.items():
        assert getattr(nccl, f"NCCL_{name.upper()}") == code, name
    for op, code in m.NCCL_OPS.items():
        const = {"sum": "NCCL_SUM", "product": "NCCL_PROD", "max": "NCCL_MAX", "min": "NCCL_MIN", "avg": "NCCL_AVG"}[op]
        if hasattr(nccl, const):
            assert getattr(nccl, const) == code, op
    return {"nccl_version": nccl.get_version()}


def collectives():
    import cupy
    import engine.distributed as dist
    r, w = dist.get_rank(), dist.get_world_size()
    for dt in (np.float32, np.float64):
        a = cupy.arange(6, dtype=dt).reshape(2, 3) + r
        expect = sum(np.arange(6, dtype=dt).reshape(2, 3) + k for k in range(w))
        s = a.copy()
        dist.all_reduce(s)
        assert np.allclose(cupy.asnumpy(s), expect)
        v = a.copy()
        dist.all_reduce(v, op="avg")
        assert np.allclose(cupy.asnumpy(v), expect / w)
        m = a.copy()
        dist.all_reduce(m, op="max")
        assert np.allclose(cupy.asnumpy(m), np.arange(6).reshape(2, 3) + w - 1)
        big = cupy.zeros((4, 6), dt)
        view = big[:, ::2]
        view[...] = 1
        dist.all_reduce(view)
        assert np.allclose(cupy.asnumpy(big[:, ::2]), w) and float(big[:, 1::2].sum()) == 0
        b = cupy.full(3, float(r), dt)
        dist.broadcast(b, src=w - 1)
        assert np.allclose(cupy.asnumpy(b), w - 1)
        outs = [cupy.zeros(2, dt) for _ in range(w)]
        dist.all_gather(outs, cupy.asarray([r, -r], dt))
        assert [cupy.asnumpy(o).tolist() for o in outs] == [[k, -k] for k in range(w)]
    return "sum, avg, max, non-contiguous, broadcast, all_gather"


def ddp_step():
    import common
    import engine
    import engine.backend as backend
    import engine.distributed as dist
    import engine.functional as F
    from engine.nn.parallel import DistributedDataParallel as DDP
    r, w = dist.get_rank(), dist.get_world_size()
    x, y = common.data()
    rows, local = 32, 32 // w
    errs = {}
    for kind in ("sgd", "adamw"):
        ref, model = common.mlp().to("cuda"), DDP(common.mlp(seed=r).to("cuda"), bucket_cap_mb=0.003)
        opts = common.optimizer(kind, ref.parameters()), common.optimizer(kind, model.parameters())
        for s in range(3):
            xs, ys = x[s * rows:(s + 1) * rows], y[s * rows:(s + 1) * rows]
            for net, opt, lo, n in ((ref, opts[0], 0, rows), (model, opts[1], r * local, local)):
                xb = engine.tensor(xs[lo:lo + n], dtype=engine.float64, device="cuda")
                yb = engine.tensor(ys[lo:lo + n], device="cuda")
                before = backend.DEVICE_TO_HOST[0]
                opt.zero_grad()
                F.cross_entropy(net(xb), yb).backward()
                opt.step()
                assert backend.DEVICE_TO_HOST[0] == before, "a training step copied device data to the host"
        errs[kind] = max(float(np.abs(a.numpy() - b.numpy()).max()) for a, b in
                         zip(model.module.parameters(), ref.parameters()))
        assert errs[kind] <= 1e-9, errs
    return errs


def syncbn_function():
    import cupy
    import engine
    import engine.distributed as dist
    import engine.functional as F
    from engine.nn.sync_batchnorm import SyncBatchNormFn
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 3, 5, 5)) * 2 + 1
    g = rng.standard_normal(x.shape)
    w, b = rng.standard_normal(3), rng.standard_normal(3)
    out = []
    for use_sync in (True, False):
        xt = engine.tensor(x, dtype=engine.float64, device="cuda", requires_grad=True)
        wt = engine.tensor(w, dtype=engine.float64, device="cuda", requires_grad=True)
        bt = engine.tensor(b, dtype=engine.float64, device="cuda", requires_grad=True)
        rm, rv = cupy.zeros(3), cupy.ones(3)
        if use_sync:
            yt = SyncBatchNormFn.apply(xt, wt, bt, running_mean=rm, running_var=rv, momentum=0.1, eps=1e-5,
                                       group=dist._group())
        else:
            yt = F.batch_norm(xt, engine.Tensor(rm), engine.Tensor(rv), wt, bt, True, 0.1, 1e-5)
        (yt * engine.tensor(g, dtype=engine.float64, device="cuda")).sum().backward()
        out.append([yt.numpy(), xt.grad.numpy(), wt.grad.numpy(), bt.grad.numpy(), cupy.asnumpy(rv)])
    errs = [float(np.abs(a - b).max()) for a, b in zip(*out)]
    if dist.get_world_size() == 1:
        assert max(errs) <= 1e-10, errs
    return errs


def bandwidth():
    import cupy
    import engine.distributed as dist
    w = dist.get_world_size()
    rows = []
    for n_bytes in (4 << 10, 256 << 10, 16 << 20, 256 << 20):
        a = cupy.ones(n_bytes // 4, np.float32)
        for _ in range(3):
            dist.all_reduce(a)
        cupy.cuda.get_current_stream().synchronize()
        reps = 20 if n_bytes < (64 << 20) else 5
        start, end = cupy.cuda.Event(), cupy.cuda.Event()
        start.record()
        for _ in range(reps):
            dist.all_reduce(a)
        end.record()
        end.synchronize()
        t = cupy.cuda.get_elapsed_time(start, end) / 1e3 / reps
        rows.append({"bytes": n_bytes, "us": round(t * 1e6, 2), "algbw_GBps": round(n_bytes / t / 1e9, 2),
                     "busbw_GBps": round(n_bytes / t / 1e9 * 2 * (w - 1) / w, 2)})
        print(f"  all_reduce {n_bytes:>10d} B: {t * 1e6:9.1f} us, {n_bytes / t / 1e9:7.2f} GB/s", flush=True)
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=None, help="folder for nccl_check.json")
    a = ap.parse_args(argv)
    import engine.backend as backend
    ok, why = backend.cuda_status()
    if not ok or backend.simulated():
        print(f"gpu_nccl_check: no GPU to check ({why or 'the CUDA simulator is on'})")
        return 2
    import engine.distributed as dist
    t0 = time.perf_counter()
    dist.init_process_group("nccl", timeout=300)
    RESULTS["world"] = {"ok": True, "value": {"size": dist.get_world_size(), "init_s": time.perf_counter() - t0}}
    for name, fn in (("enums", enums), ("collectives", collectives), ("ddp_step", ddp_step),
                     ("syncbn_function", syncbn_function), ("bandwidth", bandwidth)):
        check(name, fn)
    failed = [k for k, v in RESULTS.items() if not v["ok"]]
    if a.out and dist.get_rank() == 0:
        os.makedirs(a.out, exist_ok=True)
        with open(os.path.join(a.out, "nccl_check.json"), "w") as f:
            json.dump(RESULTS, f, indent=1, default=str)
    print(f"gpu_nccl_check: {'ok' if not failed else 'FAILED: ' + ', '.join(failed)}")
    dist.destroy_process_group()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
