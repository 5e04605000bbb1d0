"""Gradient buckets for DistributedDataParallel: average gradients over ranks while backward still runs.

Parameters are laid out in reverse registration order (roughly the order backward produces their gradients)
and cut into buckets of at most `cap` bytes, one open bucket per (dtype, device), so that every bucket is one
flat buffer. During backward each parameter's post-accumulate-grad hook copies its gradient into its
bucket's buffer; a bucket whose gradients are all in starts its all-reduce (AVG) at once, without blocking.
Buckets start in index order on every rank, whatever order their gradients arrive in, because MPI and NCCL
need every rank to issue collectives in the same order. At the end of backward (a callback queued on the
tape) the reducer waits for every bucket and points each parameter's `.grad` at its averaged slice of the
bucket buffer. Each step gets fresh buffers, so a gradient handed out before stays valid.

Parameters that get no gradient: with find_unused_parameters they count as zeros on this rank, and a
parameter that no rank used keeps its `.grad` as it was (PyTorch's rule); without it, the end of backward
raises and names them.
"""
import numpy as np

from ..backend import array_module
from ..tensor import Tensor
from . import ReduceOp, _group


class _Bucket:
    __slots__ = ("params", "offsets", "numel", "dtype", "device", "flat", "pending", "work")

    def __init__(self, like):
        self.params, self.offsets, self.numel = [], [], 0
        self.dtype, self.device = like.dtype, like.device
        self.flat = self.work = None
        self.pending = 0

    def add(self, p):
        self.params.append(p)
        self.offsets.append(self.numel)
        self.numel += p.numel()

    @property
    def nbytes(self):
        return self.numel * self.dtype.itemsize


class Reducer:
    """Buckets of `params` (a list of Parameters, in registration order) of at most `cap_bytes` each."""

    def __init__(self, params, cap_bytes, find_unused_parameters=False, names=None):
        self.group = _group()
        self.find_unused = find_unused_parameters
        self.names = {id(p): n for n, p in zip(names or [str(i) for i in range(len(params))], params)}
        self.buckets = []
        open_ = {}
        for p in reversed(params):
            key = (p.dtype, p.device)
            b = open_.get(key)
            if b is None or (b.params and b.nbytes + p.numel() * p.dtype.itemsize > cap_bytes):
                b = open_[key] = _Bucket(p)
                self.buckets.append(b)
            b.add(p)
        self.where = {id(p): (i, j) for i, b in enumerate(self.buckets) for j, p in enumerate(b.params)}
        self.ready = {}                       # id(param) -> True for this step's gradients already in
        self.armed = False
        self.next_bucket = self.oldest = 0
        self.handles = [p.register_post_accumulate_grad_hook(self._on_grad) for p in params]

    def remove_hooks(self):
        for h in self.handles:
            h.remove()
        self.handles = []

    def bucket_sizes(self):
        """[(number of parameters, bytes)] per bucket, in launch order."""
        return [(len(b.params), b.nbytes) for b in self.buckets]

    # ---- one step ------------------------------------------------------------------------------------------
    def prepare(self):
        """Called by each synchronizing forward: the next backward reduces. Raises if the last one did not
        finish (some gradients arrived, the rest never did)."""
        if self.armed and self.ready:
            missing = [self.names[id(p)] for b in self.buckets for p in b.params if id(p) not in self.ready]
            raise RuntimeError(f"DistributedDataParallel: expected to have finished reduction in the prior "
                               f"iteration before starting a new one; parameters that got no gradient: {missing}")
        self.armed, self.ready, self.next_bucket, self.oldest = True, {}, 0, 0
        for b in self.buckets:
            b.flat, b.work, b.pending = None, None, len(b.params)

    def _flat(self, b):
        """The bucket's buffer for this step, made on first use (on the device its parameters are on now)."""
        if b.flat is None:
            like = b.params[0]._data
            if like.dtype != b.dtype or b.params[0].device != b.device:
                raise RuntimeError(f"DistributedDataParallel: parameter {self.names[id(b.params[0])]} is now "
                                   f"{like.dtype} on {b.params[0].device}, it was {b.dtype} on {b.device} when the "
                                   f"buckets were made: move or cast the module before wrapping it")
            b.flat = array_module(like).empty(b.numel, b.dtype)
        return b.flat

    def _on_grad(self, p):
        """The post-accumulate-grad hook: p.grad holds this backward's total gradient for p."""
        if not self.armed:
            return
        if id(p) in self.ready:
            raise RuntimeError(f"DistributedDataParallel: parameter {self.names[id(p)]} got its gradient twice in "
                               f"one step (two backward passes after one forward?)")
        if not self.ready:
            from ..autograd import queue_callback
            queue_callback(self._finish)
        self.ready[id(p)] = True
        i, j = self.where[id(p)]
        b = self.buckets[i]
        off, n = b.offsets[j], p.numel()
        self._flat(b)[off:off + n] = p.grad._data.reshape(-1)
        b.pending -= 1
        self._launch_ready()
        while self.oldest < self.next_bucket and self.buckets[self.oldest].work.is_completed():
            self.oldest += 1               # testing the buckets in flight is what lets MPI progress them

    def _launch_ready(self):
        while self.next_bucket < len(self.buckets) and self.buckets[self.next_bucket].pending == 0:
            b = self.buckets[self.next_bucket]
            b.work = self.group.all_reduce(self._flat(b), ReduceOp.AVG)
            self.next_bucket += 1

    def _finish(self):
        """End of backward: zeros for unused parameters (or an error), wait for every bucket, hand out grads."""
        if not self.armed:
            return
        unused = [p for b in self.buckets for p in b.params if id(p) not in self.ready]
        if unused and not self.find_unused:
            self.armed = False
            for b in self.buckets[:self.next_bucket]:
                b.work.wait()              # every rank launched these: finish them before leaving
            raise RuntimeError(f"DistributedDataParallel: parameters {[self.names[id(p)] for p in unused]} got no "
                               f"gradient in this backward; pass find_unused_parameters=True when a forward "
                               f"may leave parameters out")
        for p in unused:
            i, j = self.where[id(p)]
            b = self.buckets[i]
            self._flat(b)[b.offsets[j]:b.offsets[j] + p.numel()] = 0
            b.pending -= 1
        self._launch_ready()
        used_anywhere = self._used_anywhere() if self.find_unused else None
        for b in self.buckets:
            b.work.wait()
        for b in self.buckets:
            for p, off in zip(b.params, b.offsets):
                if used_anywhere is not None and not used_anywhere[id(p)]:
                    continue
                view = b.flat[off:off + p.numel()].reshape(p.shape)
                if p.grad is None:
                    p.grad = Tensor._wrap(view)
                else:
                    p.grad._data = view
        self.armed, self.ready = False, {}

    def _used_anywhere(self):
        """{id(param): used by some rank} from one MAX all-reduce of this rank's used map."""
        params = [p for b in self.buckets for p in b.params]
        used = np.array([id(p) in self.ready for p in params], np.int32)
        self.group.all_reduce(used, ReduceOp.MAX).wait()
        return {id(p): bool(u) for p, u in zip(params, used)}
