"""torch.utils.data's basics: Dataset, TensorDataset and DataLoader(dataset, batch_size, shuffle, ...).

A TensorDataset on the CPU is batched by engine.datasets.DataLoader (one fancy-index per tensor per batch);
any other dataset (one on "cuda", or your own Dataset with __getitem__ and __len__) is read item by item and
collated: tensors are stacked, numbers become a tensor, tuples and dicts are collated field by field.
Workers are not used (num_workers and pin_memory are accepted and ignored): batches are made in the loop.
"""
import numbers

import numpy as np

from ..backend import array_module
from ..creation import default_generator, tensor
from ..datasets import DataLoader as _ArrayLoader
from ..tensor import Tensor, stack

__all__ = ["Dataset", "TensorDataset", "DataLoader", "default_collate"]


class Dataset:
    """Base class: subclasses define __getitem__(i) and __len__()."""

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} does not define __getitem__")

    def __len__(self):
        raise NotImplementedError(f"{type(self).__name__} does not define __len__")


class TensorDataset(Dataset):
    """Rows of tensors that share their first dim: item i is (t[i] for t in tensors)."""

    def __init__(self, *tensors):
        if not tensors:
            raise ValueError("tensors: TensorDataset needs at least one tensor")
        for i, t in enumerate(tensors):
            if not isinstance(t, Tensor):
                raise TypeError(f"tensors[{i}]: expected a Tensor, got {type(t).__name__}")
            if t.ndim == 0 or t.shape[0] != tensors[0].shape[0]:
                raise ValueError(f"tensors[{i}]: size mismatch between tensors (first dims {t.shape[:1]} and "
                                 f"{tensors[0].shape[:1]})")
        self.tensors = tensors

    def __getitem__(self, index):
        return tuple(t[index] for t in self.tensors)

    def __len__(self):
        return self.tensors[0].shape[0]


def default_collate(items):
    """A list of samples as one batch: tensors stacked (a new first dim), numbers as a tensor, tuples and
    lists field by field (a list), dicts key by key."""
    first = items[0]
    if isinstance(first, Tensor):
        return stack(items)
    if isinstance(first, (numbers.Number, np.generic, np.ndarray)):
        return tensor(np.stack([np.asarray(v) for v in items]))
    if isinstance(first, dict):
        return {k: default_collate([d[k] for d in items]) for k in first}
    if isinstance(first, (tuple, list)):
        if any(len(v) != len(first) for v in items):
            raise RuntimeError("batch: each sample in a batch must have the same number of fields")
        return [default_collate(list(f)) for f in zip(*items)]
    if isinstance(first, str):
        return list(items)
    raise TypeError(f"batch: default_collate cannot batch a {type(first).__name__}")


class DataLoader:
    """Batches of a dataset: `for X, y in DataLoader(TensorDataset(X, y), batch_size=32, shuffle=True)`.
    shuffle draws a new order each epoch from the engine's generator (or `generator=`, a NumPy Generator);
    drop_last drops a last incomplete batch; sampler (an iterable of indices with a length) sets the order."""

    def __init__(self, dataset, batch_size=1, shuffle=False, sampler=None, num_workers=0, collate_fn=None,
                 pin_memory=False, drop_last=False, generator=None, **ignored):
        if not hasattr(dataset, "__getitem__") or not hasattr(dataset, "__len__"):
            raise TypeError(f"dataset: expected a Dataset (with __getitem__ and __len__), got {type(dataset).__name__}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < 1:
            raise ValueError(f"batch_size: expected a positive int, got {batch_size!r}")
        if sampler is not None and shuffle:
            raise ValueError("sampler: the sampler option is mutually exclusive with shuffle")
        self.dataset, self.batch_size, self.shuffle, self.drop_last = dataset, int(batch_size), shuffle, drop_last
        self.sampler, self.collate_fn, self.generator = sampler, collate_fn or default_collate, generator
        self.num_workers = num_workers
        self._arrays = None
        if (isinstance(dataset, TensorDataset) and collate_fn is None
                and all(t.device == "cpu" for t in dataset.tensors)):
            self._arrays = _ArrayLoader([t._data for t in dataset.tensors], batch_size=self.batch_size,
                                        shuffle=shuffle, drop_last=drop_last, generator=generator, sampler=sampler)

    def __len__(self):
        n = len(self.sampler) if self.sampler is not None else len(self.dataset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self):
        if self._arrays is not None:
            yield from (list(b) for b in self._arrays)
            return
        n = len(self.dataset)
        if self.sampler is not None:
            order = np.asarray(list(self.sampler), dtype=np.int64)
        elif self.shuffle:
            order = (self.generator or default_generator()).permutation(n)
        else:
            order = np.arange(n)
        if isinstance(self.dataset, TensorDataset) and self.collate_fn is default_collate:
            for b in range(len(self)):
                idx = order[b * self.batch_size:(b + 1) * self.batch_size]
                yield [Tensor._wrap(t._data[_on(t, idx)]) for t in self.dataset.tensors]
            return
        for b in range(len(self)):
            idx = order[b * self.batch_size:(b + 1) * self.batch_size]
            yield self.collate_fn([self.dataset[int(i)] for i in idx])


def _on(t, idx):
    """The batch's row indices on t's device."""
    xp = array_module(t._data)
    return idx if xp is np else xp.asarray(idx)
