"""Rank script: `mpiexec -n 2 python -m mpi4py tests/distributed/ddp_checks.py OUT` (or, as a world of
one without a launcher, `python tests/distributed/ddp_checks.py OUT --experiments-only`).

Trains the experiments of common.py data-parallel and writes, per rank r, OUT/<experiment>.rank<r>.npz (the
final parameters and buffers) and OUT/checks.rank<r>.json (the outcome of each in-rank check: collectives,
the sampler's coverage, bucket layouts, no_sync, error messages). Rank 0 also writes OUT/ckpt.npz
(engine.save of the DDP state dict). tests/test_distributed.py compares all of it with one process.
"""
import json
import os
import sys
import traceback

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

import engine  # noqa: E402
import engine.distributed as dist  # noqa: E402
import engine.functional as F  # noqa: E402
from engine.datasets import DistributedSampler  # noqa: E402
from engine.nn import SyncBatchNorm  # noqa: E402
from engine.nn.parallel import DistributedDataParallel as DDP  # noqa: E402

CHECKS, TODO = {}, []


def check(name):
    """Register fn: main() runs it after the experiments and records its result (a JSON-able value) under
    `name`, or the exception it raised."""
    def register(fn):
        TODO.append((name, fn))
        return fn
    return register


def run_checks():
    for name, fn in TODO:
        try:
            CHECKS[name] = {"ok": True, "value": fn()}
        except Exception as e:                       # the test reports it; the other checks still run
            CHECKS[name] = {"ok": False, "error": f"{type(e).__name__}: {e}", "trace": traceback.format_exc()}


def save(out, name, model):
    np.savez(os.path.join(out, f"{name}.rank{dist.get_rank()}.npz"), **common.state(model))


def experiments(out):
    rank, world = dist.get_rank(), dist.get_world_size()
    # rank r starts from its own random weights: DDP must broadcast rank 0's
    for kind in ("sgd", "adamw"):
        model = DDP(common.mlp(seed=rank))
        common.train(model, common.optimizer(kind, model.parameters()), world, rank)
        save(out, kind, model)
        if kind == "sgd" and rank == 0:
            engine.save(model.state_dict(), os.path.join(out, "ckpt.npz"))
    model = DDP(SyncBatchNorm.convert_sync_batchnorm(common.cnn(seed=rank)))
    common.train(model, common.optimizer("sgd", model.parameters()), world, rank)
    save(out, "cnn_syncbn", model)
    layouts = {}
    for cap in (1e-5, 0.003, 25):                   # one bucket per parameter, two buckets, one bucket
        model = DDP(common.mlp(seed=rank), bucket_cap_mb=cap)
        layouts[str(cap)] = model.reducer.bucket_sizes()
        common.train(model, common.optimizer("sgd", model.parameters()), world, rank)
        save(out, f"buckets_{cap}", model)
    CHECKS["bucket_layouts"] = {"ok": True, "value": layouts}
    model = DDP(common.mlp(seed=rank), bucket_cap_mb=0.003)
    common.train_no_sync(model, common.optimizer("sgd", model.parameters()), world, rank, no_sync=model.no_sync)
    save(out, "no_sync", model)
    model = DDP(common.TwoBranch(seed=rank), find_unused_parameters=True)
    common.train(model, common.optimizer("sgd", model.parameters()), world, rank)
    save(out, "unused", model)


@check("no_sync_keeps_local_gradients")
def _():
    model = DDP(common.mlp())
    x, y = common.data()
    r = dist.get_rank()
    xb, yb = engine.tensor(x[r * 8:(r + 1) * 8], dtype=engine.float64), engine.tensor(y[r * 8:(r + 1) * 8])
    with model.no_sync():
        F.cross_entropy(model(xb), yb).backward()
    local = [p.grad.numpy().copy() for p in model.parameters()]
    every = [None] * dist.get_world_size()
    dist.all_gather_object(every, local)
    differ = any(not np.array_equal(a, b) for a, b in zip(every[0], every[1]))
    F.cross_entropy(model(xb), yb).backward()       # a synchronized backward: the ranks agree again
    synced = [p.grad.numpy().copy() for p in model.parameters()]
    dist.all_gather_object(every, synced)
    agree = all(np.array_equal(a, b) for a, b in zip(every[0], every[1]))
    return {"local_grads_differ": differ, "synced_grads_agree": agree}


@check("buckets_start_during_backward")
def _():
    """The order of events in one backward with a bucket per parameter: each gradient's arrival (a hook
    registered after DDP's) and each bucket's all-reduce start. The first all-reduce must start before the
    first layer's weight gradient (the last to arrive) exists."""
    model = DDP(common.mlp(), bucket_cap_mb=1e-5)
    events = []
    group, start = model.reducer.group, model.reducer.group.all_reduce

    def logged(array, op):
        events.append(f"all_reduce {array.size}")
        return start(array, op)
    group.all_reduce = logged
    for name, p in model.module.named_parameters():
        p.register_post_accumulate_grad_hook(lambda p, name=name: events.append(f"grad {name}"))
    x, y = common.data()
    try:
        F.cross_entropy(model(engine.tensor(x[:8], dtype=engine.float64)), engine.tensor(y[:8])).backward()
    finally:
        del group.all_reduce
    return events


class Mixed(engine.nn.Module):
    """A float64 layer, then a float32 one: two dtypes, so two buckets however large the cap."""

    def __init__(self):
        super().__init__()
        engine.manual_seed(4)
        self.a, self.b = engine.nn.Linear(64, 12).double(), engine.nn.Linear(12, 10)

    def forward(self, x):
        return self.b(F.relu(self.a(x.flatten(1))).float())


@check("mixed_dtype_buckets")
def _():
    """One bucket per dtype under a large cap, and each averaged gradient equals the whole batch's gradient
    computed on this rank alone (relative error per parameter)."""
    rank, world = dist.get_rank(), dist.get_world_size()
    x, y = common.data()
    ref = Mixed()
    F.cross_entropy(ref(engine.tensor(x[:16], dtype=engine.float64)), engine.tensor(y[:16])).backward()
    model = DDP(Mixed())
    lo, n = rank * 16 // world, 16 // world
    F.cross_entropy(model(engine.tensor(x[lo:lo + n], dtype=engine.float64)), engine.tensor(y[lo:lo + n])).backward()
    errs = [float(np.abs(p.grad.numpy() - q.grad.numpy()).max() / np.abs(q.grad.numpy()).max())
            for p, q in zip(model.module.parameters(), ref.parameters())]
    return {"buckets": [[k, str(b.dtype)] for k, b in zip(model.reducer.bucket_sizes(), model.reducer.buckets)],
            "errors": errs}


@check("collectives")
def _():
    rank, world = dist.get_rank(), dist.get_world_size()
    got = {}
    for dt in (np.float64, np.float32, np.int64):
        for op in ("sum", "avg", "max", "min", "product"):
            if op == "avg" and dt == np.int64:
                continue
            t = engine.tensor(np.arange(6, dtype=dt).reshape(2, 3) + rank + 1, dtype=dt)
            dist.all_reduce(t, op=op)
            got[f"{op}_{np.dtype(dt).name}"] = t.numpy().tolist()
    base = np.zeros((4, 6))
    view = base[:, ::2]                               # a non-contiguous view, reduced in place
    view[...] = rank + 1
    dist.all_reduce(view)
    got["noncontiguous"] = [view.tolist(), float(base[:, 1::2].sum())]
    t = engine.tensor(np.full(5, float(rank)), dtype=engine.float64)
    work = dist.all_reduce(t, async_op=True)
    work.wait()
    got["async"] = [t.numpy().tolist(), work.is_completed()]
    t = engine.tensor(np.full(3, 10.0 * rank), dtype=engine.float64)
    dist.broadcast(t, src=world - 1)
    got["broadcast"] = t.numpy().tolist()
    outs = [engine.zeros(2, dtype=engine.float64) for _ in range(world)]
    dist.all_gather(outs, engine.tensor([rank, -rank], dtype=engine.float64))
    got["all_gather"] = [o.numpy().tolist() for o in outs]
    objs = [None] * world
    dist.all_gather_object(objs, {"rank": rank, "tag": "x" * (rank + 1)})
    got["all_gather_object"] = objs
    lst = [rank, f"from {rank}"]
    dist.broadcast_object_list(lst, src=world - 1)
    got["broadcast_object_list"] = lst
    dist.barrier()
    return got


@check("sampler_coverage")
def _():
    out = {}
    for n, drop in ((96, False), (11, False), (11, True)):
        s = DistributedSampler(n, seed=5, drop_last=drop)
        per_epoch = []
        for epoch in range(2):
            s.set_epoch(epoch)
            every = [None] * dist.get_world_size()
            dist.all_gather_object(every, [int(i) for i in s])
            per_epoch.append(every)
        out[f"{n}_{drop}"] = per_epoch
    return out


@check("syncbn_matches_batchnorm")
def _():
    """Each rank's SyncBatchNorm on its half of a batch against BatchNorm on the whole batch (computed on every
    rank): outputs, input gradients, summed weight/bias gradients, running statistics; float32 and float64,
    with and without affine."""
    rank, world = dist.get_rank(), dist.get_world_size()
    rng = np.random.default_rng(11)
    errs = {}
    for dt in (np.float32, np.float64):
        for affine in (True, False):
            x = (rng.standard_normal((6 * world, 3, 4, 5)) * 3 + 1).astype(dt)
            g = rng.standard_normal(x.shape).astype(dt)
            half = slice(rank * 6, rank * 6 + 6)
            out = {}
            for name, bn, rows in (("sync", SyncBatchNorm(3, affine=affine, dtype=dt), half),
                                   ("ref", engine.nn.BatchNorm2d(3, affine=affine, dtype=dt), slice(None))):
                xt = engine.tensor(x[rows], dtype=dt, requires_grad=True)
                y = bn(xt)
                (y * engine.tensor(g[rows], dtype=dt)).sum().backward()
                grads = [p.grad.numpy().astype(np.float64) for p in bn.parameters()]
                y_out, dx = y.numpy(), xt.grad.numpy()
                if name == "sync":
                    for gr in grads:                # each rank's share: their sum is the whole batch's
                        dist.all_reduce(gr)
                else:
                    y_out, dx = y_out[half], dx[half]
                out[name] = [y_out, dx, *grads, bn.running_mean.numpy(), bn.running_var.numpy()]
            errs[f"{np.dtype(dt).name}_affine{affine}"] = [
                float(np.abs(a.astype(np.float64) - b.astype(np.float64)).max() / max(1.0, np.abs(b).max()))
                for a, b in zip(out["sync"], out["ref"])]
    return errs


@check("different_models_raise")
def _():
    try:
        DDP(common.mlp(hidden=32 if dist.get_rank() == 0 else 33))
    except RuntimeError as e:
        return str(e)
    return None


@check("unused_parameters_raise")
def _():
    model = DDP(common.TwoBranch())
    x, y = common.data()
    try:
        F.cross_entropy(model(engine.tensor(x[:4], dtype=engine.float64)), engine.tensor(y[:4])).backward()
    except RuntimeError as e:
        return str(e)
    return None


@check("batch_not_divisible_raises")
def _():
    try:
        dist.per_rank_batch_size(33)
    except ValueError as e:
        return [str(e), dist.per_rank_batch_size(32)]
    return None


@check("load_prefixed_state_dict")
def _():
    model = DDP(common.mlp(seed=1))
    prefixed = {"module." + k: v for k, v in common.mlp(seed=7).state_dict().items()}
    model.load_state_dict(prefixed)
    return all(np.array_equal(a.numpy(), b.numpy()) for a, b in
               zip(model.module.parameters(), common.mlp(seed=7).parameters()))


def api_errors():
    """Bad arguments: the exception type and message of each, or None where nothing was raised."""
    out = {}
    t = engine.tensor(np.ones(3), dtype=engine.float64)
    for name, fn in (("bad_op", lambda: dist.all_reduce(t, op="mean")),
                     ("avg_of_ints", lambda: dist.all_reduce(engine.tensor([1, 2]), op="avg")),
                     ("bool_sum", lambda: dist.all_reduce(engine.tensor([True]))),
                     ("src_out_of_range", lambda: dist.broadcast(t, src=dist.get_world_size())),
                     ("gather_list_length", lambda: dist.all_gather([t], t) if dist.get_world_size() > 1
                      else dist.all_gather([t, t], t)),
                     ("not_a_tensor", lambda: dist.all_reduce([1.0, 2.0])),
                     ("init_twice", lambda: dist.init_process_group()),
                     ("bad_backend", lambda: dist.init_process_group("gloo")),
                     ("ddp_not_a_module", lambda: DDP(lambda x: x)),
                     ("ddp_bad_cap", lambda: DDP(common.mlp(), bucket_cap_mb=0))):
        try:
            fn()
            out[name] = None
        except Exception as e:
            out[name] = [type(e).__name__, str(e)]
    return out


def main(out, experiments_only=False):
    dist.init_process_group("mpi", timeout=120)
    experiments(out)
    if experiments_only:
        TODO[:] = []
    check("api_errors")(api_errors)
    run_checks()
    info = {"rank": dist.get_rank(), "world": dist.get_world_size(), "local_rank": dist.get_local_rank(),
            "local_world": dist.get_local_world_size(), "threads": dist.thread_share()}
    with open(os.path.join(out, f"checks.rank{dist.get_rank()}.json"), "w") as f:
        json.dump({"info": info, "checks": CHECKS}, f, default=str)
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1], experiments_only="--experiments-only" in sys.argv)
