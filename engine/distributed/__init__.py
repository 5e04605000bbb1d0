"""Data-parallel processes on MPI (mpi4py) and NCCL, PyTorch's `torch.distributed` names.

    mpiexec -n 4 python -m mpi4py train.py        # or: srun --mpi=pmix python train.py

    import engine.distributed as dist
    dist.init_process_group("mpi")                 # "nccl" for GPUs; a world of one without a launcher
    model = engine.nn.parallel.DistributedDataParallel(model)

Collectives work in place on Tensors (or NumPy/CuPy arrays): `all_reduce` (SUM, AVG, MAX, MIN, PRODUCT),
`broadcast`, `all_gather`, `barrier`, and on picklable objects `all_gather_object`, `broadcast_object_list`.
With `async_op=True` they return a Work whose `wait()` completes them.

Launchers and faults. After `init_process_group`, an uncaught exception on any rank prints
"engine.distributed: rank R of W failed with ..." and calls MPI_Abort, which ends every rank within a second;
a collective still incomplete after `timeout` seconds (default 1800, PyTorch's) aborts the job the same way,
naming the collective. A killed rank (SIGKILL, out of memory) is the launcher's to handle: hydra (MPICH, Intel
MPI) and Open MPI's mpirun end the other ranks when one dies, Slurm's srun with --kill-on-bad-exit=1;
elsewhere the timeout ends them. `sys.exit(n)` with n != 0 on one rank aborts the job under
`python -m mpi4py`; under plain `python` the others wait for the timeout, so launch with `python -m mpi4py`.

Threads: unless the user set them (NUMBA_NUM_THREADS; OPENBLAS_NUM_THREADS, OMP_NUM_THREADS, MKL_NUM_THREADS),
each rank sets Numba's and the BLAS's thread counts to its share of its node's cores (see _threads.py).
"""
import datetime
import numbers

import numpy as np

from ..backend import array_module, device_of
from ..tensor import Tensor
from ._mpi import ReduceOp, Work, install_abort_on_exception, launcher_world_size, remove_abort_on_exception

__all__ = ["ReduceOp", "Work", "init_process_group", "destroy_process_group", "is_available", "is_initialized",
           "get_backend", "get_rank", "get_world_size", "get_local_rank", "get_local_world_size", "barrier",
           "all_reduce", "broadcast", "all_gather", "all_gather_object", "broadcast_object_list",
           "per_rank_batch_size", "thread_share", "launched_world_size"]

DEFAULT_TIMEOUT = 1800.0
_GROUP = None
_THREADS = None


def is_available():
    """True: the MPI group falls back to a world of one where mpi4py is missing."""
    return True


def is_initialized():
    return _GROUP is not None


def init_process_group(backend="mpi", timeout=DEFAULT_TIMEOUT, set_threads=True):
    """Join the world of processes the launcher started (a world of one without a launcher).
    backend: "mpi" (CPU collectives through mpi4py; device arrays staged through the host) or "nccl" (GPU
    arrays through NCCL on the GPU numbered by the local rank, the rest through MPI).
    timeout: seconds (or a timedelta) a collective may take before the job is aborted; None waits forever.
    set_threads: give Numba and the BLAS this rank's share of its cores (unless the user set them)."""
    global _GROUP, _THREADS
    if backend not in ("mpi", "nccl"):
        raise ValueError(f"backend: expected 'mpi' or 'nccl', got {backend!r}")
    if _GROUP is not None:
        raise RuntimeError("init_process_group: the default process group is already initialized; call "
                           "destroy_process_group() first")
    if isinstance(timeout, datetime.timedelta):
        timeout = timeout.total_seconds()
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, numbers.Real) or timeout <= 0):
        raise ValueError(f"timeout: expected a positive number of seconds, a timedelta or None, got {timeout!r}")
    if backend == "nccl":
        from ._nccl import NCCLGroup
        group = NCCLGroup(timeout)
    else:
        from ._mpi import ProcessGroup
        group = ProcessGroup(timeout)
    if set_threads:
        from ._threads import apply_share
        _THREADS = apply_share(group.local_cores, group.local_sharing)
    install_abort_on_exception(group)
    _GROUP = group


def destroy_process_group():
    """Leave the group (MPI itself stays initialized until the process exits, as mpi4py arranges)."""
    global _GROUP
    if _GROUP is not None:
        _GROUP.destroy()
        _GROUP = None
        remove_abort_on_exception()


def _group():
    if _GROUP is None:
        raise ValueError("Default process group has not been initialized, please make sure to call "
                         "init_process_group.")
    return _GROUP


def get_backend():
    return _group().backend


def get_rank():
    return _group().rank


def get_world_size():
    return _group().size


def get_local_rank():
    """This rank's index among the ranks on its node (the GPU it uses with backend="nccl")."""
    return _group().local_rank


def get_local_world_size():
    return _group().local_size


def thread_share():
    """What init_process_group did to the thread pools: {"cores", "numba", "blas"}, or None."""
    return _THREADS


def per_rank_batch_size(batch_size):
    """The per-rank share of a global batch; ValueError when the world size does not divide it."""
    size = get_world_size()
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < 1:
        raise ValueError(f"batch_size: expected a positive integer, got {batch_size!r}")
    if batch_size % size:
        raise ValueError(f"batch_size: the global batch of {batch_size} does not divide among {size} ranks; "
                         f"choose a multiple of {size}")
    return batch_size // size


# ---- collectives ----------------------------------------------------------------------------------------------
def _array(tensor, name="tensor"):
    """The array a collective works on in place: a Tensor's data, or a NumPy or CuPy array itself."""
    if isinstance(tensor, Tensor):
        return tensor._data
    if isinstance(tensor, np.ndarray) or hasattr(tensor, "__cuda_array_interface__"):
        return tensor
    raise TypeError(f"{name}: expected a Tensor or a NumPy/CuPy array (changed in place), got {type(tensor).__name__}")


def _result(work, async_op):
    if async_op:
        return work
    work.wait()
    return None


def all_reduce(tensor, op=ReduceOp.SUM, group=None, async_op=False):
    """Reduce `tensor` over all ranks in place (every rank gets the result)."""
    _no_subgroups(group)
    data = _array(tensor)
    if op not in ReduceOp.ALL:
        raise ValueError(f"op: expected one of ReduceOp.{', ReduceOp.'.join(o.upper() for o in ReduceOp.ALL)}, "
                         f"got {op!r}")
    if data.dtype.kind not in "iufc":
        raise TypeError(f"tensor: all_reduce needs a numeric dtype, got {data.dtype}")
    if op == ReduceOp.AVG and data.dtype.kind not in "fc":
        raise TypeError(f"op: ReduceOp.AVG needs a floating-point tensor, got {data.dtype}")
    return _result(_group().all_reduce(data, op), async_op)


def broadcast(tensor, src=0, group=None, async_op=False):
    """Copy rank `src`'s `tensor` into every rank's `tensor` in place."""
    _no_subgroups(group)
    g = _group()
    _check_rank("src", src, g.size)
    return _result(g.broadcast(_array(tensor), src), async_op)


def all_gather(tensor_list, tensor, group=None, async_op=False):
    """Fill tensor_list[r] (world-size Tensors or arrays shaped like `tensor`) with rank r's `tensor`."""
    _no_subgroups(group)
    g = _group()
    data = _array(tensor)
    if not isinstance(tensor_list, (list, tuple)):
        raise TypeError(f"tensor_list: expected a list of {g.size} tensors, got {type(tensor_list).__name__}")
    if len(tensor_list) != g.size:
        raise ValueError(f"tensor_list: expected a list of {g.size} tensors (the world size), got {len(tensor_list)}")
    outs = [_array(t, f"tensor_list[{i}]") for i, t in enumerate(tensor_list)]
    for i, o in enumerate(outs):
        if o.shape != data.shape or o.dtype != data.dtype or device_of(o) != device_of(data):
            raise ValueError(f"tensor_list[{i}]: shape {o.shape}, {o.dtype} on {device_of(o)} does not match "
                             f"tensor's {data.shape}, {data.dtype} on {device_of(data)}")
    xp = array_module(data)
    gathered = xp.empty((g.size,) + data.shape, data.dtype)
    work = g.all_gather(data, gathered)

    def scatter():
        for o, part in zip(outs, gathered):
            o[...] = part
    work = _Then(work, scatter)
    return _result(work, async_op)


class _Then:
    """A Work followed by a step that runs once it completes (copying gathered rows out)."""

    def __init__(self, work, then):
        self._work, self._then = work, then

    def is_completed(self):
        done = self._work.is_completed()
        if done and self._then is not None:
            self._then, then = None, self._then
            then()
        return done

    def wait(self):
        self._work.wait()
        self.is_completed()
        return True


def barrier(group=None, async_op=False):
    _no_subgroups(group)
    return _result(_group().barrier(), async_op)


def all_gather_object(object_list, obj, group=None):
    """object_list[r] = rank r's picklable `obj` (object_list has world-size entries)."""
    _no_subgroups(group)
    g = _group()
    if not isinstance(object_list, list) or len(object_list) != g.size:
        raise ValueError(f"object_list: expected a list of {g.size} entries (the world size)")
    object_list[:] = g.all_gather_object(obj)


def broadcast_object_list(object_list, src=0, group=None):
    """Replace every rank's object_list entries with rank `src`'s (picklable objects)."""
    _no_subgroups(group)
    g = _group()
    _check_rank("src", src, g.size)
    if not isinstance(object_list, list):
        raise TypeError(f"object_list: expected a list, got {type(object_list).__name__}")
    got = g.broadcast_object(list(object_list), src)
    if len(got) != len(object_list):
        raise ValueError(f"object_list: rank {src} sent {len(got)} objects, this rank's list has {len(object_list)}")
    object_list[:] = got


def _check_rank(name, r, size):
    if isinstance(r, bool) or not isinstance(r, numbers.Integral) or not 0 <= r < size:
        raise ValueError(f"{name}: expected a rank in [0, {size - 1}], got {r!r}")


def _no_subgroups(group):
    if group is not None:
        raise NotImplementedError("group: only the default group (group=None) is supported")


def launched_world_size():
    """The world size the launcher announced (before init_process_group), or None without a launcher."""
    return launcher_world_size()
