"""Data that ships with the engine (nothing is downloaded) and a minimal minibatch loader.

- `load_digits()`: the UCI optical-recognition handwritten digits (8x8, 1,797 images, values 0..16), the
  same data scikit-learn bundles (CC BY 4.0, Alpaydin & Kaynak).
- `load_time_machine()`: H. G. Wells, *The Time Machine* (public domain), the D2L language-model corpus.
"""
import os

import numpy as np

from ..backend import device_of, to_device
from ..tensor import Tensor, default_generator
from .sampler import DistributedSampler

__all__ = ["load_digits", "load_time_machine", "train_test_split", "DataLoader", "DistributedSampler"]

_HERE = os.path.dirname(os.path.abspath(__file__))


def load_digits():
    """(images, labels): images float32 (1797, 1, 8, 8) scaled to [0, 1], labels int64 (1797,)."""
    with np.load(os.path.join(_HERE, "digits.npz")) as d:
        return (d["images"].astype(np.float32) / 16.0)[:, None], d["target"].astype(np.int64)


def load_time_machine():
    """The raw text of The Time Machine."""
    with open(os.path.join(_HERE, "timemachine.txt"), encoding="utf-8") as f:
        return f.read()


def train_test_split(*arrays, test_fraction=0.2, seed=0):
    """Shuffle with a fixed seed and split each array the same way: returns train0, test0, train1, test1, ..."""
    n = len(arrays[0])
    perm = np.random.default_rng(seed).permutation(n)
    n_test = int(round(n * test_fraction))
    out = []
    for a in arrays:
        out += [a[perm[n_test:]], a[perm[:n_test]]]
    return out


def _array(a):
    """A Tensor's array, a device array as it is, anything else through np.asarray (host data)."""
    if isinstance(a, Tensor):
        return a._data
    if isinstance(a, np.ndarray) or hasattr(a, "__cuda_array_interface__"):
        return a
    return np.asarray(a)


class DataLoader:
    """Minibatches of aligned arrays as Tensors: `for x, y in DataLoader((X, Y), batch_size=64, shuffle=True)`.
    `sampler` (e.g. a DistributedSampler; exclusive with shuffle) gives the row order: an iterable of row
    indices with a length, batched in the order it yields them. Arrays (or Tensors) on "cuda" give batches
    on "cuda", cut there: the row order is drawn on the host, as on the CPU, and copied to the device once
    per epoch."""

    def __init__(self, arrays, batch_size=1, shuffle=False, drop_last=False, generator=None, sampler=None):
        self.arrays = [_array(a) for a in arrays]
        n = len(self.arrays[0])
        for i, a in enumerate(self.arrays):
            if len(a) != n:
                raise ValueError(f"arrays[{i}]: has {len(a)} rows, arrays[0] has {n}")
        if batch_size < 1:
            raise ValueError(f"batch_size: must be at least 1, got {batch_size}")
        if sampler is not None and shuffle:
            raise ValueError("sampler: the sampler option is mutually exclusive with shuffle")
        if sampler is not None and not (hasattr(sampler, "__iter__") and hasattr(sampler, "__len__")):
            raise TypeError(f"sampler: expected an iterable of indices with a length, got {type(sampler).__name__}")
        self.batch_size, self.shuffle, self.drop_last, self.generator = batch_size, shuffle, drop_last, generator
        self.sampler = sampler

    def __len__(self):
        n = len(self.arrays[0]) if self.sampler is None else len(self.sampler)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self):
        n = len(self.arrays[0])
        if self.sampler is not None:
            order = self._sampled(n)
        else:
            order = (self.generator or default_generator()).permutation(n) if self.shuffle else np.arange(n)
        orders = {d: order if d == "cpu" else to_device(order, d) for d in {device_of(a) for a in self.arrays}}
        for b in range(len(self)):
            cut = slice(b * self.batch_size, (b + 1) * self.batch_size)
            yield tuple(Tensor(a[orders[device_of(a)][cut]]) for a in self.arrays)

    def _sampled(self, n):
        get = getattr(self.sampler, "indices", None)
        order = np.asarray(get() if callable(get) else list(self.sampler), dtype=np.int64).reshape(-1)
        if order.size and (order.max() >= n or order.min() < -n):
            bad = order.max() if order.max() >= n else order.min()
            raise ValueError(f"sampler: index {bad} is out of range for arrays of {n} rows")
        return order
