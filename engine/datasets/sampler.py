"""DistributedSampler: each rank's share of a dataset's indices, PyTorch's partition.

Each epoch the indices are a permutation seeded by seed + epoch (every rank draws the same one; NumPy's
generator, so the order differs from PyTorch's), or 0..n-1 without shuffle; padded with the first indices
again (or, with drop_last, cut) to a multiple of the world size; rank r then takes every world-th index from
r. So one epoch covers each example exactly once when the world size divides the dataset (the padding repeats
a few otherwise), and a DataLoader of batch B / world on each rank makes, step by step, the same global
batches as one process taking B at a time from the same permutation.
"""
import math
import numbers

import numpy as np

__all__ = ["DistributedSampler"]


def dataset_length(dataset):
    """len() of a dataset: a tuple of aligned arrays (as DataLoader takes) counts its rows."""
    if isinstance(dataset, numbers.Integral) and not isinstance(dataset, bool):
        return int(dataset)
    if isinstance(dataset, tuple) and dataset and all(hasattr(a, "shape") for a in dataset):
        return len(dataset[0])
    try:
        return len(dataset)
    except TypeError:
        raise TypeError(f"dataset: expected something with a length (a tuple of arrays, an array, a sized "
                        f"dataset), got {type(dataset).__name__}") from None


class DistributedSampler:
    """Indices of this rank's share of `dataset` (a tuple of aligned arrays, an array, anything with len(), or
    the number of examples). num_replicas and rank default to the process group's. Call `set_epoch(e)` before
    each epoch so that each epoch draws a new permutation."""

    def __init__(self, dataset, num_replicas=None, rank=None, shuffle=True, seed=0, drop_last=False):
        if num_replicas is None or rank is None:
            from .. import distributed as dist
            num_replicas = dist.get_world_size() if num_replicas is None else num_replicas
            rank = dist.get_rank() if rank is None else rank
        for name, v in (("num_replicas", num_replicas), ("rank", rank), ("seed", seed)):
            if isinstance(v, bool) or not isinstance(v, numbers.Integral):
                raise TypeError(f"{name}: expected an integer, got {v!r}")
        if num_replicas < 1:
            raise ValueError(f"num_replicas: expected at least 1, got {num_replicas}")
        if not 0 <= rank < num_replicas:
            raise ValueError(f"Invalid rank {rank}, rank should be in the interval [0, {num_replicas - 1}]")
        self.n = dataset_length(dataset)
        self.num_replicas, self.rank = int(num_replicas), int(rank)
        self.shuffle, self.seed, self.drop_last = bool(shuffle), int(seed), bool(drop_last)
        self.epoch = 0
        if self.drop_last and self.n % self.num_replicas:
            self.num_samples = math.ceil((self.n - self.num_replicas) / self.num_replicas)
        else:
            self.num_samples = math.ceil(self.n / self.num_replicas)
        self.total_size = self.num_samples * self.num_replicas

    def set_epoch(self, epoch):
        if isinstance(epoch, bool) or not isinstance(epoch, numbers.Integral):
            raise TypeError(f"epoch: expected an integer, got {epoch!r}")
        self.epoch = int(epoch)

    def indices(self):
        """This epoch's indices for this rank, an int64 array of num_samples entries."""
        if self.shuffle:
            order = np.random.default_rng(self.seed + self.epoch).permutation(self.n)
        else:
            order = np.arange(self.n)
        if self.drop_last:
            order = order[:self.total_size]
        elif self.total_size > self.n:
            order = np.resize(order, self.total_size) if self.n else np.zeros(0, np.int64)   # repeats from the start
        return order[self.rank:self.total_size:self.num_replicas].astype(np.int64)

    def __iter__(self):
        return iter(self.indices().tolist())

    def __len__(self):
        return self.num_samples
