"""What the rank scripts and tests/test_distributed.py share: the models, data and training loops, so that
the single-process reference (in pytest) and the ranks (under mpiexec) run the same code.

Every experiment is float64. A global batch of B rows is what one process takes at a time from a
DistributedSampler permutation; each of W ranks takes B / W rows of its own sampler share, which together are
the same global batch (see engine/datasets/sampler.py).
"""
import numpy as np

import engine
import engine.functional as F
from engine import nn, optim
from engine.datasets import DataLoader, DistributedSampler, load_digits

N, BATCH, EPOCHS, SEED = 96, 32, 2, 3       # 96 rows: divisible by 1, 2 and 4 ranks, so no padding


def data(n=N):
    x, y = load_digits()
    return x[:n].astype(np.float64), y[:n]


def mlp(hidden=32, seed=0):
    engine.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, 10)).double()


def cnn(seed=0):
    """A conv net with batch norm: its statistics are what SyncBatchNorm must make global."""
    engine.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(64, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 10)).double()


class TwoBranch(nn.Module):
    """Two heads of which forward uses only the first: the second's parameters never get a gradient."""

    def __init__(self, seed=0):
        super().__init__()
        engine.manual_seed(seed)
        self.body, self.head, self.spare = nn.Linear(64, 16), nn.Linear(16, 10), nn.Linear(16, 10)
        self.double()

    def forward(self, x):
        return self.head(F.relu(self.body(x.flatten(1))))


def optimizer(kind, params):
    if kind == "sgd":
        return optim.SGD(params, lr=0.1, momentum=0.9, weight_decay=1e-3)
    if kind == "adamw":
        return optim.AdamW(params, lr=1e-2, weight_decay=0.05)
    raise ValueError(kind)


def train(model, opt, world=1, rank=0, epochs=EPOCHS, batch=BATCH):
    """Epochs of minibatch SGD over data(): each of `world` ranks takes batch / world rows per step."""
    x, y = data()
    sampler = DistributedSampler((x, y), num_replicas=world, rank=rank, seed=SEED)
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        for xb, yb in DataLoader((x, y), batch_size=batch // world, sampler=sampler):
            opt.zero_grad()
            F.cross_entropy(model(xb), yb).backward()
            opt.step()
    return model


def train_no_sync(model, opt, world=1, rank=0, steps=2, micro=3, rows=16, no_sync=None):
    """Gradient accumulation: each step sums the gradients of `micro` micro-batches of `rows` global rows
    (rank r takes its contiguous rows / world of each), then steps. `no_sync` (a DDP's) wraps all but the
    last micro-batch of each step."""
    x, y = data()
    local = rows // world
    for s in range(steps):
        opt.zero_grad()
        for k in range(micro):
            lo = (s * micro + k) * rows + rank * local
            xb, yb = engine.tensor(x[lo:lo + local], dtype=engine.float64), engine.tensor(y[lo:lo + local])
            if no_sync is not None and k < micro - 1:
                with no_sync():
                    F.cross_entropy(model(xb), yb).backward()
            else:
                F.cross_entropy(model(xb), yb).backward()
        opt.step()
    return model


def state(model):
    """Name -> float64/int array copy of every parameter and buffer."""
    return {k: np.array(v.numpy()) for k, v in model.state_dict().items()}
