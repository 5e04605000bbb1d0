"""SyncBatchNorm: batch norm whose training statistics cover the whole global batch, over every rank.

Forward: each rank's per-channel count, mean and sum of squared deviations (float64) are gathered in one
all_gather and combined (Chan et al.'s pairwise update, no cancellation from a sum of squares); the input is
then normalized with the global mean and biased variance by the eval kernel, and the running statistics take
the unbiased global variance. Backward: the per-channel sums of dout and dout * xhat are summed over ranks
(one all_reduce), and dx = w * rstd * (dout - sum(dout) / n - xhat * sum(dout * xhat) / n) with the global
sums and count n, which is the gradient of the sum of every rank's loss with respect to this rank's input.
The weight and bias gradients stay this rank's sums: DistributedDataParallel averages them over ranks as it
does every gradient, which, with each rank's loss a mean over an equal share, gives the whole batch's.
Saves x, weight, the global mean and rstd, and the global count (a 0-d array: on "cuda" nothing waits for the
GPU, and a global batch of one value per channel raises at the next host read, as other device checks do).

Outside a process group of several ranks, or in eval mode, it is BatchNorm (PyTorch's rule).
"""
import numpy as np

from ..autograd import Function
from ..backend import array_module, check_values, kernels_for
from .layers import BatchNorm1d, BatchNorm2d, _BatchNorm

__all__ = ["SyncBatchNorm"]


def _channel_shape(x):
    return (1, x.shape[1]) + (1,) * (x.ndim - 2)


class SyncBatchNormFn(Function):
    """x (N, C, *) -> y like x, normalized with the statistics of every rank's x."""

    @staticmethod
    def forward(ctx, x, weight, bias, *, running_mean, running_var, momentum, eps, group):
        xp = array_module(x)
        C, shape = x.shape[1], _channel_shape(x)
        axes = (0,) + tuple(range(2, x.ndim))
        count = x.size // C
        x64 = x.astype(np.float64, copy=False)
        stats = xp.zeros(1 + 2 * C, np.float64)
        stats[0] = count
        if count:
            mean_l = x64.mean(axis=axes)
            stats[1:1 + C] = mean_l
            stats[1 + C:] = ((x64 - mean_l.reshape(shape)) ** 2).sum(axis=axes)
        every = xp.empty((group.size, 1 + 2 * C), np.float64)
        group.all_gather(stats, every).wait()
        counts, means, m2s = every[:, :1], every[:, 1:1 + C], every[:, 1 + C:]
        n = counts.sum()                     # a 0-d array: on "cuda" it stays there (no wait for the GPU)
        check_values(n <= 1, lambda: f"input: Expected more than 1 value per channel when training, got "
                                     f"{int(n)} over all ranks")
        mean = (counts * means).sum(axis=0) / n
        var = (m2s + counts * (means - mean) ** 2).sum(axis=0) / n
        y, mean, rstd = kernels_for(x).batch_norm_fwd_eval(x, mean, var, weight, bias, eps)
        if running_mean is not None:
            running_mean[...] = (1.0 - momentum) * running_mean + momentum * mean
            running_var[...] = (1.0 - momentum) * running_var + momentum * var * (n / (n - 1))
        ctx.save_for_backward(x, weight, mean, rstd)
        ctx.n, ctx.group = n, group
        return y

    @staticmethod
    def backward(ctx, dout):
        x, weight, mean, rstd = ctx.saved
        xp = array_module(x)
        C, shape = x.shape[1], _channel_shape(x)
        dx_local, dw, db = kernels_for(x).batch_norm_bwd_eval(dout, x, weight, mean, rstd)
        sums = xp.empty(2 * C, np.float64)
        sums[:C], sums[C:] = dw, db
        ctx.group.all_reduce(sums, "sum").wait()
        w = 1.0 if weight is None else weight.astype(np.float64)
        a = w * rstd
        xhat = (x.astype(np.float64, copy=False) - mean.reshape(shape)) * rstd.reshape(shape)
        dx = (dx_local - (a * sums[C:] / ctx.n).reshape(shape) - xhat * (a * sums[:C] / ctx.n).reshape(shape))
        need = ctx.needs_input_grad
        wdt = x.dtype if weight is None else weight.dtype
        return (dx.astype(x.dtype, copy=False) if need[0] else None, dw.astype(wdt, copy=False) if need[1] else None,
                db.astype(wdt, copy=False) if need[2] else None)


class SyncBatchNorm(_BatchNorm):
    """Batch norm over (N, C, *) input whose training statistics span every rank (PyTorch's SyncBatchNorm)."""
    _dims = (2, 3, 4, 5)

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True,
                 process_group=None, dtype=None):
        if process_group is not None:
            raise NotImplementedError("process_group: only the default group (None) is supported")
        super().__init__(num_features, eps, momentum, affine, track_running_stats, dtype=dtype)

    def forward(self, x):
        from .. import distributed as dist
        if x.ndim not in self._dims:
            raise ValueError(f"input: SyncBatchNorm expects 2-D to 5-D input, got shape {x.shape}")
        use_batch_stats = self.training or not self.track_running_stats
        if not (use_batch_stats and self.training and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        if x.shape[1] != self.num_features:
            raise ValueError(f"input: expected {self.num_features} channels, got shape {x.shape}")
        momentum = 0.0 if self.momentum is None else self.momentum
        if self.track_running_stats:
            self.num_batches_tracked._data += 1
            if self.momentum is None:
                momentum = 1.0 / float(self.num_batches_tracked._data)
        rm = self.running_mean._data if self.track_running_stats else None
        rv = self.running_var._data if self.track_running_stats else None
        return SyncBatchNormFn.apply(x, self.weight, self.bias, running_mean=rm, running_var=rv, momentum=momentum,
                                     eps=self.eps, group=dist._group())

    @classmethod
    def convert_sync_batchnorm(cls, module, process_group=None):
        """Replace every BatchNorm1d/BatchNorm2d in `module` by a SyncBatchNorm sharing its parameters and
        buffers; returns the module (a new one when `module` itself is a batch norm)."""
        if process_group is not None:
            raise NotImplementedError("process_group: only the default group (None) is supported")
        if isinstance(module, (BatchNorm1d, BatchNorm2d)):
            new = cls(module.num_features, module.eps, module.momentum, module.affine, module.track_running_stats)
            for name in ("weight", "bias"):
                if getattr(module, name, None) is not None:
                    setattr(new, name, getattr(module, name))
            for name in ("running_mean", "running_var", "num_batches_tracked"):
                new.register_buffer(name, getattr(module, name))
            new.train(module.training)
            return new
        for name, child in list(module.named_children()):
            converted = cls.convert_sync_batchnorm(child)
            if converted is not child:
                module._modules[name] = converted        # in place: a Sequential keeps its order
        return module
