"""The NCCL process group: device ("cuda") arrays through NCCL (CuPy's `cupy.cuda.nccl`), everything else
(host arrays, Python objects, barriers) through MPI as in the MPI group.

Each rank uses the GPU numbered by its local rank. Rank 0 makes NCCL's unique id and broadcasts it over MPI;
every rank then joins the communicator. NCCL calls are queued on CuPy's current stream, the stream the
engine's kernels run on, so a collective is ordered after the kernels that wrote its input and before those
that read its output: the host never waits, and a Work on device data is complete as soon as it is queued.

`NCCL_COMM` is the class that wraps a communicator; the tests replace it with one that does the same over
MPI on the CUDA simulator's arrays, so that everything here but CupyNccl's calls runs in `make test`.
"""
from ..backend import cupy, device_of, simulated
from ._mpi import ProcessGroup, ReduceOp, Work, divide_

# NCCL's data types, from the ncclDataType_t enum in nccl.h (a stable ABI)
NCCL_DTYPES = {"int8": 0, "uint8": 1, "int32": 2, "uint32": 3, "int64": 4, "uint64": 5, "float16": 6,
               "float32": 7, "float64": 8}
# ncclRedOp_t: ncclSum, ncclProd, ncclMax, ncclMin, ncclAvg (NCCL 2.10+)
NCCL_OPS = {ReduceOp.SUM: 0, ReduceOp.PRODUCT: 1, ReduceOp.MAX: 2, ReduceOp.MIN: 3, ReduceOp.AVG: 4}


def nccl_dtype(dtype):
    name = str(dtype)
    if name not in NCCL_DTYPES:
        raise TypeError(f"tensor: NCCL has no data type for {name}; expected one of {', '.join(NCCL_DTYPES)}")
    return NCCL_DTYPES[name]


class CupyNccl:
    """One NCCL communicator through CuPy, with an array-level interface: every call is queued on CuPy's
    current stream and works in place on C-contiguous CuPy arrays."""

    @staticmethod
    def unique_id():
        from cupy.cuda import nccl
        return nccl.get_unique_id()

    def __init__(self, unique_id, size, rank):
        from cupy.cuda import nccl
        self.size = size
        self.comm = nccl.NcclCommunicator(size, unique_id, rank)
        self.native_avg = nccl.get_version() >= 21000          # ncclAvg arrived in NCCL 2.10

    @staticmethod
    def _stream():
        return cupy().cuda.get_current_stream().ptr

    def all_reduce(self, array, op):
        nop = NCCL_OPS[ReduceOp.SUM if op == ReduceOp.AVG and not self.native_avg else op]
        self.comm.allReduce(array.data.ptr, array.data.ptr, array.size, nccl_dtype(array.dtype), nop, self._stream())
        if op == ReduceOp.AVG and not self.native_avg:
            divide_(array, self.size)

    def broadcast(self, array, root):
        self.comm.bcast(array.data.ptr, array.size, nccl_dtype(array.dtype), root, self._stream())

    def all_gather(self, send, recv):
        self.comm.allGather(send.data.ptr, recv.data.ptr, send.size, nccl_dtype(send.dtype), self._stream())

    def destroy(self):
        self.comm.destroy()


NCCL_COMM = CupyNccl


def use_local_gpu(local_rank, rank):
    """Make GPU `local_rank` current for CuPy and Numba; a clear error when this node has too few GPUs."""
    if simulated():
        return
    import cupy
    n = cupy.cuda.runtime.getDeviceCount()
    if local_rank >= n:
        raise RuntimeError(f"init_process_group: rank {rank} is local rank {local_rank} on its node, which has "
                           f"{n} GPU(s): start at most {n} rank(s) per node with backend='nccl'")
    cupy.cuda.Device(local_rank).use()
    from numba import cuda
    cuda.select_device(local_rank)


class NCCLGroup(ProcessGroup):
    backend = "nccl"

    def __init__(self, timeout):
        super().__init__(timeout)
        use_local_gpu(self.local_rank, self.rank)
        uid = self.broadcast_object(NCCL_COMM.unique_id() if self.rank == 0 else None, 0)
        self.nccl = NCCL_COMM(uid, self.size, self.rank)

    def destroy(self):
        self.nccl.destroy()
        super().destroy()

    def _device_buffer(self, array):
        """(buf, write_back) as ProcessGroup._buffer, on the device: NCCL needs C-contiguous memory."""
        if array.flags.c_contiguous:
            return array, None
        buf = array.copy()
        return buf, lambda: array.__setitem__(Ellipsis, buf)

    def all_reduce(self, array, op):
        if device_of(array) != "cuda":
            return super().all_reduce(array, op)
        buf, write_back = self._device_buffer(array)
        self.nccl.all_reduce(buf, op)
        return Work(self, None, write_back)

    def broadcast(self, array, src):
        if device_of(array) != "cuda":
            return super().broadcast(array, src)
        buf, write_back = self._device_buffer(array)
        self.nccl.broadcast(buf, src)
        return Work(self, None, write_back)

    def all_gather(self, array, out):
        if device_of(array) != "cuda":
            return super().all_gather(array, out)
        send, _ = self._device_buffer(array)
        recv, write_back = self._device_buffer(out)
        self.nccl.all_gather(send, recv)
        return Work(self, None, write_back)
