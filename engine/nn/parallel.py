"""DistributedDataParallel: one model per rank, gradients averaged over ranks during backward (PyTorch's name).

    dist.init_process_group("mpi")
    model = DistributedDataParallel(net)           # rank 0's parameters and buffers everywhere
    loss = F.cross_entropy(model(x_local), y_local)
    loss.backward()                                # net's .grad: the average over ranks
    opt.step()

With the same global batch split evenly over the ranks (each rank's loss the mean over its share), every
rank's gradients equal the single-process gradient of the whole batch, and the optimizer keeps the ranks'
parameters identical. The bucketing is in engine/distributed/reducer.py.
"""
import contextlib
import numbers

from ..autograd import is_grad_enabled
from ..backend import array_module
from .module import Module

__all__ = ["DistributedDataParallel"]


class DistributedDataParallel(Module):
    """Wrap `module` for data-parallel training over the default process group.

    At construction: checks that every rank holds the same model (parameter and buffer names, shapes, dtypes,
    device kind), then broadcasts rank 0's parameters and buffers. Each forward in training mode with grad
    enabled broadcasts rank 0's buffers first (when broadcast_buffers) and arms the next backward to average
    the gradients in buckets of at most bucket_cap_mb MiB (see engine/distributed/reducer.py).
    `no_sync()`: backward passes inside accumulate local gradients only; the first one outside averages the
    total. `state_dict()` is the wrapped module's (no "module." prefix, unlike PyTorch), so a checkpoint from
    rank 0 loads into a plain model; `load_state_dict` takes either form. Evaluate on every rank, or through
    `.module`: a forward that broadcasts on some ranks only would wait for the others.
    """

    def __init__(self, module, device_ids=None, output_device=None, broadcast_buffers=True, bucket_cap_mb=25,
                 find_unused_parameters=False):
        super().__init__()
        from .. import distributed as dist
        if not isinstance(module, Module):
            raise TypeError(f"module: expected an engine.nn.Module, got {type(module).__name__}")
        if isinstance(bucket_cap_mb, bool) or not isinstance(bucket_cap_mb, numbers.Real) or not bucket_cap_mb > 0:
            raise ValueError(f"bucket_cap_mb: expected a positive number of MiB, got {bucket_cap_mb!r}")
        group = dist._group()
        named = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
        if not named:
            raise ValueError("module: DistributedDataParallel needs a module with parameters that require grad")
        device = _one_device(module)
        if group.backend == "nccl" and device != "cuda":
            raise ValueError(f"module: backend 'nccl' averages GPU gradients, but the module is on {device!r}; "
                             f"move it with module.to('cuda') first (or use backend 'mpi')")
        if device_ids not in (None, [], [dist.get_local_rank()]) or output_device not in (None, dist.get_local_rank()):
            raise ValueError(f"device_ids: each rank uses the GPU numbered by its local rank "
                             f"({dist.get_local_rank()} here); got device_ids={device_ids!r}")
        self.module = module
        self.broadcast_buffers = bool(broadcast_buffers)
        self.find_unused_parameters = bool(find_unused_parameters)
        self.require_backward_grad_sync = True
        self._group = group
        if group.size > 1:
            _check_same_model(module, device, group)
            _broadcast_tensors(list(module.parameters()) + list(module.buffers()), group)
        from ..distributed.reducer import Reducer
        self.reducer = Reducer([p for _, p in named], int(bucket_cap_mb * 2 ** 20), self.find_unused_parameters,
                               names=[n for n, _ in named])

    def forward(self, *args, **kwargs):
        sync = self.training and is_grad_enabled() and self.require_backward_grad_sync
        if sync and self.broadcast_buffers and self._group.size > 1:
            _broadcast_tensors(list(self.module.buffers()), self._group)
        out = self.module(*args, **kwargs)
        if sync:
            self.reducer.prepare()
        return out

    @contextlib.contextmanager
    def no_sync(self):
        """Backward passes of forwards run inside accumulate local gradients without averaging them."""
        prev, self.require_backward_grad_sync = self.require_backward_grad_sync, False
        try:
            yield
        finally:
            self.require_backward_grad_sync = prev

    def state_dict(self):
        return self.module.state_dict()

    def load_state_dict(self, state_dict, strict=True):
        keys = list(state_dict)
        if keys and all(k.startswith("module.") for k in keys):          # a checkpoint of PyTorch's form
            state_dict = {k[len("module."):]: v for k, v in state_dict.items()}
        return self.module.load_state_dict(state_dict, strict=strict)

    def extra_repr(self):
        return f"world_size={self._group.size}, buckets={len(self.reducer.buckets)}"


def _one_device(module):
    devices = {t.device for t in list(module.parameters()) + list(module.buffers())}
    if len(devices) > 1:
        raise ValueError(f"module: its parameters and buffers are on more than one device "
                         f"({', '.join(sorted(devices))}); DistributedDataParallel needs the module on one device")
    return devices.pop()


def _signature(module, device):
    rows = [("param", n, tuple(p.shape), str(p.dtype), bool(p.requires_grad)) for n, p in module.named_parameters()]
    rows += [("buffer", n, tuple(b.shape), str(b.dtype)) for n, b in module.named_buffers()]
    return {"device": device, "rows": rows}


def _check_same_model(module, device, group):
    """Every rank raises the same error when a rank's model differs from rank 0's (so no rank waits)."""
    sigs = group.all_gather_object(_signature(module, device))
    ref = sigs[0]
    for r, s in enumerate(sigs[1:], 1):
        if s == ref:
            continue
        if s["device"] != ref["device"]:
            what = f"its model is on {s['device']!r}, rank 0's on {ref['device']!r}"
        else:
            diff = [(a, b) for a, b in zip(ref["rows"], s["rows"]) if a != b]
            if diff:
                a, b = diff[0]
                what = f"rank 0 has {a[0]} {a[1]} {a[2]} {a[3]}, rank {r} has {b[0]} {b[1]} {b[2]} {b[3]}"
            else:
                what = f"rank 0 has {len(ref['rows'])} parameters and buffers, rank {r} has {len(s['rows'])}"
        raise RuntimeError(f"DistributedDataParallel: rank {r}'s model differs from rank 0's: {what}")


def _broadcast_tensors(tensors, group):
    """Rank 0's values into every rank's tensors: one broadcast per (dtype, device) through a flat buffer."""
    by_kind = {}
    for t in tensors:
        by_kind.setdefault((t.dtype, t.device), []).append(t)
    works = []
    for ts in by_kind.values():
        xp = array_module(ts[0]._data)
        flat = xp.concatenate([t._data.reshape(-1) for t in ts])
        works.append((group.broadcast(flat, 0), flat, ts))
    for work, flat, ts in works:
        work.wait()
        off = 0
        for t in ts:
            n = t.numel()
            t._data[...] = flat[off:off + n].reshape(t.shape)
            _bump(t._data)
            off += n


def _bump(array):
    """Tell the tape that `array` changed in place (its version counter), where the tape keeps one."""
    from .. import autograd
    bump = getattr(autograd, "bump_version", None)
    if bump is not None:
        bump(array)
