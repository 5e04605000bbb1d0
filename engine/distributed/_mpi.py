"""The process group on MPI (mpi4py): collectives on buffers, started non-blocking and waited on with a
deadline, so that a rank that failed, was killed or called different collectives ends the job instead of
hanging it.

- Arrays travel as buffers, never as pickles (mpi4py's buffer collectives are 7-25x faster than its pickled
  ones); Python objects are pickled into byte buffers.
- Device ("cuda") arrays go through a host copy (CuPy's copy waits for the current stream), so any MPI
  serves them; with ENGINE_MPI_CUDA_AWARE=1 a CUDA-aware MPI is handed the device buffer itself, after the
  current stream is synchronized. The NCCL group (_nccl.py) sends device arrays through NCCL instead.
- Without mpi4py and without a launcher, the group is a world of one and every collective is the identity.
- Faults: an uncaught exception on any rank prints which rank failed and calls MPI_Abort, which ends every
  rank (under plain `python` as under `python -m mpi4py`); a collective that has not completed after
  `timeout` seconds does the same, naming the collective.
"""
import os
import pickle
import sys
import time

import numpy as np

from ..backend import cupy, device_of, to_device
from ._threads import allowed_cores


class ReduceOp:
    """Reduction operators (PyTorch's names). AVG is a sum divided by the world size, for floats only."""
    SUM, AVG, MAX, MIN, PRODUCT = "sum", "avg", "max", "min", "product"
    ALL = (SUM, AVG, MAX, MIN, PRODUCT)


# environment variables by which launchers tell a process its world size (MPICH/Intel MPI's hydra and PMI-2,
# Open MPI, MVAPICH); PMIx (srun --mpi=pmix) sets PMIX_RANK only
_LAUNCHER_SIZE = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")


def launcher_world_size():
    """The world size a launcher announced in the environment: an int, -1 when launched by PMIx (size not
    given), or None when no launcher started this process."""
    for k in _LAUNCHER_SIZE:
        if os.environ.get(k, "").isdigit():
            return int(os.environ[k])
    return -1 if "PMIX_RANK" in os.environ else None


def _import_mpi():
    """mpi4py's MPI module, or None for a world of one (no mpi4py and no launcher)."""
    try:
        from mpi4py import MPI
    except ImportError:
        size = launcher_world_size()
        if size is not None and size != 1:
            raise RuntimeError(f"init_process_group: this process was started by an MPI launcher "
                               f"({'world size ' + str(size) if size > 0 else 'PMIx'}) but mpi4py is not installed; "
                               f"pip install mpi4py (with the cluster's MPI) or '.[distributed]'") from None
        return None
    return MPI


class Work:
    """A collective in flight (PyTorch's Work). `wait()` returns once it is complete and its results are in
    place; `is_completed()` asks without waiting."""

    __slots__ = ("_group", "_request", "_finish", "_what", "_done")

    def __init__(self, group, request=None, finish=None, what=("collective",)):
        self._group, self._request, self._finish, self._what, self._done = group, request, finish, what, False
        if request is None:
            self._complete()

    def is_completed(self):
        if not self._done and self._request.Test():
            self._complete()
        return self._done

    def wait(self):
        if not self._done:
            self._group.wait_request(self._request, self._what)
            self._complete()
        return True

    def _complete(self):
        self._done = True
        finish, self._finish = self._finish, None
        if finish is not None:
            finish()


class ProcessGroup:
    """The world on MPI.COMM_WORLD (or a world of one). rank, size: this process and the world;
    local_rank, local_size: the same among the ranks on this node. timeout: seconds a collective may take
    before the job is aborted (None: wait forever)."""

    backend = "mpi"

    def __init__(self, timeout):
        self.timeout = timeout
        self.MPI = _import_mpi()
        self.cuda_aware = os.environ.get("ENGINE_MPI_CUDA_AWARE", "") == "1"
        mine = allowed_cores()
        # local_cores: the cores this rank may run on; local_sharing: the ranks on this node that may run on
        # some of them too, itself included (what the thread share divides by)
        self.local_cores, self.local_sharing = len(mine), 1
        if self.MPI is None:
            self.comm, self.rank, self.size, self.local_rank, self.local_size = None, 0, 1, 0, 1
            return
        self.comm = self.MPI.COMM_WORLD.Dup()        # our own context: the user's MPI calls cannot cross ours
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        local = self.comm.Split_type(self.MPI.COMM_TYPE_SHARED, key=self.rank)
        self.local_rank, self.local_size = local.Get_rank(), local.Get_size()
        mine = set(mine)
        self.local_sharing = sum(1 for other in local.allgather(sorted(mine)) if mine.intersection(other))
        local.Free()
        self._ops = {ReduceOp.SUM: self.MPI.SUM, ReduceOp.AVG: self.MPI.SUM, ReduceOp.MAX: self.MPI.MAX,
                     ReduceOp.MIN: self.MPI.MIN, ReduceOp.PRODUCT: self.MPI.PROD}

    def destroy(self):
        if self.comm is not None:
            self.comm.Free()
            self.comm = None

    # ---- faults --------------------------------------------------------------------------------------------
    def abort(self, message):
        """Print `message` naming this rank, then end every rank (MPI_Abort)."""
        text = f"engine.distributed: rank {self.rank} of {self.size}: {message}; aborting all ranks\n"
        if self.comm is not None and self.size > 1:
            abort_world(self.MPI, text)
        sys.stderr.write(text)
        raise RuntimeError(message)

    def wait_request(self, request, what):
        """Wait for an MPI request; abort the job if it is not done within the timeout. Spins on Test (as
        MPI's own Wait does) and reads the clock every 1024 tests. `what`: a string, or a tuple (name, array)
        described only when needed (formatting a dtype costs 20 us, a small all-reduce 7)."""
        if self.timeout is None:
            request.Wait()
            return
        if request.Test():
            return
        deadline = time.monotonic() + self.timeout
        n = 0
        while not request.Test():
            n += 1
            if n & 1023 == 0 and time.monotonic() > deadline:
                self.abort(f"{_describe(what)} did not complete within {self.timeout:g} s: another rank failed, "
                           f"was killed, or called a different collective")

    # ---- buffers -------------------------------------------------------------------------------------------
    def _buffer(self, array):
        """(buf, write_back): a C-contiguous host buffer MPI may read and write that stands for `array`, and a
        function that copies buf into array (None when buf is the array itself)."""
        if type(array) is np.ndarray:                 # the common case first: this runs on every collective
            flags = array.flags
            if flags.c_contiguous and flags.writeable:
                return array, None
        if device_of(array) == "cpu":
            buf = np.ascontiguousarray(array)
            return buf, lambda: np.copyto(array, buf)
        if self.cuda_aware and array.flags.c_contiguous:
            synchronize(array)
            return array, None
        buf = np.ascontiguousarray(to_device(array, "cpu"))     # waits for the stream's work on `array`
        return buf, lambda: array.__setitem__(Ellipsis, to_device(buf, "cuda"))

    # ---- collectives on arrays (each returns a Work) -------------------------------------------------------
    def all_reduce(self, array, op):
        if self.size == 1:
            return Work(self)
        buf, write_back = self._buffer(array)
        req = self.comm.Iallreduce(self.MPI.IN_PLACE, buf, op=self._ops[op])
        if op != ReduceOp.AVG and write_back is None:
            return Work(self, req, None, ("all_reduce", array, op))

        def finish():
            if op == ReduceOp.AVG:
                divide_(buf, self.size)
            if write_back is not None:
                write_back()
        return Work(self, req, finish, ("all_reduce", array, op))

    def broadcast(self, array, src):
        if self.size == 1:
            return Work(self)
        buf, write_back = self._buffer(array)
        req = self.comm.Ibcast(buf, root=src)
        return Work(self, req, write_back, ("broadcast", array, src))

    def all_gather(self, array, out):
        """out: array of shape (size, *array.shape) on array's device, filled with every rank's array."""
        if self.size == 1:
            out[0] = array
            return Work(self)
        send, _ = self._buffer(array)
        recv, write_back = self._buffer(out)
        req = self.comm.Iallgather(send, recv)
        return Work(self, req, write_back, ("all_gather", array))

    def barrier(self):
        if self.size == 1:
            return Work(self)
        return Work(self, self.comm.Ibarrier(), None, "barrier")

    # ---- Python objects (pickled into byte buffers; blocking) -----------------------------------------------
    def all_gather_object(self, obj):
        if self.size == 1:
            return [obj]
        data = np.frombuffer(pickle.dumps(obj), dtype=np.uint8)
        sizes = np.empty(self.size, np.int64)
        self.wait_request(self.comm.Iallgather(np.array([data.size], np.int64), sizes), "all_gather_object (sizes)")
        recv = np.empty(int(sizes.sum()), np.uint8)
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        req = self.comm.Iallgatherv(data, [recv, sizes, offsets, self.MPI.BYTE])
        self.wait_request(req, "all_gather_object")
        return [pickle.loads(recv[o:o + n].tobytes()) for o, n in zip(offsets, sizes)]

    def broadcast_object(self, obj, src):
        if self.size == 1:
            return obj
        data = np.frombuffer(pickle.dumps(obj), dtype=np.uint8) if self.rank == src else None
        n = np.array([0 if data is None else data.size], np.int64)
        self.wait_request(self.comm.Ibcast(n, root=src), "broadcast_object (size)")
        buf = data.copy() if data is not None else np.empty(int(n[0]), np.uint8)
        self.wait_request(self.comm.Ibcast(buf, root=src), "broadcast_object")
        return obj if self.rank == src else pickle.loads(buf.tobytes())


def _describe(what):
    """A collective's description for an error: `what` is a string or (name, array[, op or root])."""
    if isinstance(what, str):
        return what
    name, array, *extra = what
    more = f" ({extra[0]})" if extra else ""
    return f"{name}{more} of {array.size} x {array.dtype}"


def divide_(array, n):
    """array /= n in place (NumPy or CuPy)."""
    array /= n


def synchronize(array):
    """Wait for the current CUDA stream (before a host library reads `array`'s device memory). The simulator's
    device arrays are host memory: nothing to wait for."""
    if isinstance(array, np.ndarray):
        return
    cupy().cuda.get_current_stream().synchronize()


def abort_world(MPI, text):
    """Write `text` to stderr, then end every rank. MPI_Abort on COMM_WORLD, not on the engine's duplicate: MPI
    promises only a best attempt at a sub-communicator's ranks, and once (in CI, MPICH) a rank sleeping outside
    MPI outlived rank 0's abort on the duplicate by a minute. The pause lets the launcher forward the text
    before it kills the job: without it, MPICH's launcher lost rank 0's message in 7 of 20 runs."""
    sys.stderr.write(text)
    sys.stderr.flush()
    time.sleep(0.25)
    MPI.COMM_WORLD.Abort(1)


_HOOKED = []


def install_abort_on_exception(group):
    """An uncaught exception on this rank prints which rank failed, then MPI_Abort ends every rank, so the
    others never wait forever in a collective (under `python -m mpi4py` too, whose own handler runs after)."""
    if group.size == 1 or _HOOKED:
        return
    previous = sys.excepthook

    def hook(kind, value, tb):
        try:
            previous(kind, value, tb)
        finally:
            abort_world(group.MPI, f"engine.distributed: rank {group.rank} of {group.size} failed with "
                                   f"{kind.__name__}: {value}; aborting all ranks\n")
    sys.excepthook = hook
    _HOOKED.append(previous)


def remove_abort_on_exception():
    if _HOOKED:
        sys.excepthook = _HOOKED.pop()
