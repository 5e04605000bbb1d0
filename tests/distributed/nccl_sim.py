"""Rank script for the NCCL group under the CUDA simulator, where there is no NCCL:
`NUMBA_ENABLE_CUDASIM=1 mpiexec -n 2 python -m mpi4py tests/distributed/nccl_sim.py OUT`.

The communicator class (engine.distributed._nccl.NCCL_COMM) is replaced by MpiNccl, which makes the same
array-level calls through MPI on the simulator's device arrays and records them. Everything else is the real
NCCL group: the unique id from rank 0 over MPI, device arrays routed to the communicator and host arrays to
MPI, DistributedDataParallel and SyncBatchNorm on "cuda". Writes OUT/nccl_sim.rank<r>.json.
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
import engine.distributed._nccl as nccl_group  # noqa: E402
import engine.functional as F  # noqa: E402
from engine import nn, optim  # noqa: E402
from engine.backend import array_module, device_of  # noqa: E402
from engine.nn.parallel import DistributedDataParallel as DDP  # noqa: E402


class MpiNccl:
    """CupyNccl's interface (unique_id, all_reduce, broadcast, all_gather, destroy) done by MPI on host copies
    of the device arrays (.get(), as CuPy's); every call is recorded with the NCCL data type it would have used."""
    calls, ids = [], []

    @staticmethod
    def unique_id():
        return tuple(int(b) for b in np.random.default_rng().integers(-128, 128, 128))

    def __init__(self, unique_id, size, rank):
        from mpi4py import MPI
        self.MPI, self.comm, self.size = MPI, MPI.COMM_WORLD.Dup(), size
        MpiNccl.ids.append(list(unique_id))

    def _check(self, name, array, *extra):
        assert device_of(array) == "cuda" and array.flags.c_contiguous, (name, type(array))
        MpiNccl.calls.append([name, nccl_group.nccl_dtype(array.dtype), *extra])

    def all_reduce(self, array, op):
        self._check("all_reduce", array, op)
        xp = array_module(array)
        host = array.get()
        ops = {"sum": self.MPI.SUM, "avg": self.MPI.SUM, "max": self.MPI.MAX, "min": self.MPI.MIN,
               "product": self.MPI.PROD}
        self.comm.Allreduce(self.MPI.IN_PLACE, host, op=ops[op])
        array[...] = xp.asarray(host / self.size if op == "avg" else host)

    def broadcast(self, array, root):
        self._check("broadcast", array, root)
        host = array.get()
        self.comm.Bcast(host, root=root)
        array[...] = array_module(array).asarray(host)

    def all_gather(self, send, recv):
        self._check("all_gather", send)
        host = np.empty(recv.shape, recv.dtype)
        self.comm.Allgather(send.get(), host)
        recv[...] = array_module(recv).asarray(host)

    def destroy(self):
        self.comm.Free()


def small_mlp(seed):
    engine.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 8), nn.ReLU(), nn.Linear(8, 10)).double()


def bn_mlp(seed, norm):
    engine.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 8), norm(8), nn.ReLU(), nn.Linear(8, 10)).double()


def steps(model, x, y, rank, world, n=2, rows=16):
    """n SGD steps, each on `rows` global rows, of which this rank takes its contiguous rows / world."""
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
    local = rows // world
    dev = next(model.parameters()).device
    for s in range(n):
        lo = s * rows + rank * local
        xb = engine.tensor(x[lo:lo + local], dtype=engine.float64, device=dev)
        yb = engine.tensor(y[lo:lo + local], device=dev)
        opt.zero_grad()
        F.cross_entropy(model(xb), yb).backward()
        opt.step()
    return {k: np.asarray(v.numpy(), np.float64) for k, v in model.state_dict().items()}


def max_err(a, b):
    return max(float(np.abs(a[k] - b[k]).max()) for k in b)


def checks():
    rank, world = dist.get_rank(), dist.get_world_size()
    out = {"backend": dist.get_backend(), "ids": MpiNccl.ids}
    t = engine.tensor(np.arange(4.0) + rank, dtype=engine.float64, device="cuda")
    dist.all_reduce(t, op="avg")
    out["avg_cuda"] = [t.device, t.numpy().tolist()]
    t = engine.tensor(np.arange(3, dtype=np.float32) * (rank + 1), device="cuda")
    dist.all_reduce(t, op="max")
    out["max_cuda"] = t.numpy().tolist()
    t = engine.tensor(np.full(2, rank + 1.0), dtype=engine.float64, device="cuda")
    dist.broadcast(t, src=1)
    out["broadcast_cuda"] = t.numpy().tolist()
    outs = [engine.zeros(2, dtype=engine.float64, device="cuda") for _ in range(world)]
    dist.all_gather(outs, engine.tensor([rank, rank + 0.5], dtype=engine.float64, device="cuda"))
    out["all_gather_cuda"] = [o.numpy().tolist() for o in outs]
    n_calls = len(MpiNccl.calls)
    h = engine.tensor(np.ones(3) * rank, dtype=engine.float64)
    dist.all_reduce(h)
    out["host_through_mpi"] = [h.numpy().tolist(), len(MpiNccl.calls) == n_calls]
    from engine.distributed._mpi import ProcessGroup
    g = dist._group()
    for aware in (False, True):                # the MPI group's device path: staged through the host, or not
        g.cuda_aware = aware
        a = engine.tensor(np.full(3, rank + 1.0), dtype=engine.float64, device="cuda")._data
        ProcessGroup.all_reduce(g, a, "avg").wait()
        out[f"mpi_cuda_aware_{aware}"] = [device_of(a), a.tolist()]
    g.cuda_aware = False
    x, y = common.data()
    ref = steps(small_mlp(0), x, y, 0, 1)                              # one process, the CPU, whole batches
    got = steps(DDP(small_mlp(rank).to("cuda")), x, y, rank, world)    # rank r starts from its own weights
    out["ddp_cuda_err"] = max_err(got, ref)
    ref = steps(bn_mlp(0, nn.BatchNorm1d), x, y, 0, 1)
    got = steps(DDP(bn_mlp(rank, nn.SyncBatchNorm).to("cuda")), x, y, rank, world)
    out["syncbn_cuda_err"] = max_err(got, ref)
    out["calls"] = sorted({c[0] for c in MpiNccl.calls})
    errors = {}
    for name, make in (("cpu_module", lambda: small_mlp(0)),
                       ("mixed_devices", lambda: _mixed())):
        try:
            DDP(make())
            errors[name] = None
        except ValueError as e:
            errors[name] = str(e)
    out["errors"] = errors
    return out


def _mixed():
    m = small_mlp(0)
    m[1].to("cuda")
    return m


def main(out_dir):
    nccl_group.NCCL_COMM = MpiNccl
    dist.init_process_group("nccl", timeout=300)
    try:
        result = {"ok": True, "value": checks()}
    except Exception as e:
        result = {"ok": False, "error": f"{type(e).__name__}: {e}", "trace": traceback.format_exc()}
    with open(os.path.join(out_dir, f"nccl_sim.rank{dist.get_rank()}.json"), "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main(sys.argv[1])
