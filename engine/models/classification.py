"""Classifiers on the bundled digits (8x8, 10 classes): softmax regression, MLPs with and without dropout,
LeNet (the book's sigmoid / average-pool network on 28x28 input), LeNet with batch norm, and a small ResNet.
"""
import functools

import numpy as np

import engine
import engine.functional as F
from engine import nn, optim
from engine.datasets import DataLoader, DistributedSampler, load_digits, train_test_split

from . import Mean, experiment, host_values, on_device

# every experiment here trains through train_classifier, which runs data-parallel under mpiexec
classifier = functools.partial(experiment, data_parallel=True)


def digits(size=8, seed=0):
    """(x_train, x_val, y_train, y_val): 80/20 split; size 8 keeps the originals, 16 upsamples x2
    (nearest), 28 upsamples x3 and pads 2 (LeNet's 28x28 input)."""
    x, y = load_digits()
    if size == 16:
        x = x.repeat(2, axis=2).repeat(2, axis=3)
    elif size == 28:
        x = np.pad(x.repeat(3, axis=2).repeat(3, axis=3), ((0, 0), (0, 0), (2, 2), (2, 2)))
    elif size != 8:
        raise ValueError(f"size: expected 8, 16 or 28, got {size}")
    return train_test_split(x, y, test_fraction=0.2, seed=seed)


def evaluate(model, x, y, batch_size=512):
    """(mean cross-entropy, accuracy) in eval mode; x, y arrays or Tensors (on the model's device). The sums
    stay on the device; both are read back at the end, in one copy."""
    model.eval()
    loss, hits = Mean(), Mean()
    with engine.no_grad():
        for xb, yb in DataLoader((x, y), batch_size=batch_size):
            logits = model(xb)
            loss.add_sum(F.cross_entropy(logits, yb, reduction="sum"), len(yb))
            hits.add_sum((logits.argmax(dim=1) == yb).sum(), len(yb))
    model.train()
    loss_sum, hit_sum = host_values([loss.total, hits.total])
    return loss_sum / loss.count, hit_sum / hits.count


def train_classifier(model, data, cfg, run, opt=None, prefix=""):
    """Minibatch training with cross-entropy on cfg.device ("cpu" by default; on "cuda" the model and the
    data move there once, and batches are cut on the device); logs train/val loss and accuracy each epoch. The
    running loss stays on the device: the progress bar reads it every `run.every` steps, nothing else does
    before the epoch's evaluation.
    In a process group of several ranks (engine.distributed) it trains data-parallel with the same global
    batch: each rank takes its share of every epoch (DistributedSampler), gradients are averaged by
    DistributedDataParallel and batch norm uses the whole batch's statistics (SyncBatchNorm)."""
    import engine.distributed as dist
    device = cfg.get("device", "cpu")
    if device != "cpu":
        model.to(device)
        data = on_device(data, device)
    x_train, x_val, y_train, y_val = data
    net, sampler, batch = model, None, cfg.batch_size
    if dist.is_initialized() and dist.get_world_size() > 1:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        net = nn.parallel.DistributedDataParallel(model)
        batch = dist.per_rank_batch_size(cfg.batch_size)
        sampler = DistributedSampler(len(y_train), seed=cfg.seed)
    opt = opt or optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.get("momentum", 0.0),
                           weight_decay=cfg.get("weight_decay", 0.0))
    for epoch in range(cfg.epochs):
        if sampler is not None:
            sampler.set_epoch(epoch)
            batches = DataLoader((x_train, y_train), batch_size=batch, sampler=sampler)
        else:
            batches = DataLoader((x_train, y_train), batch_size=batch, shuffle=True)
        running = Mean()
        for xb, yb in run.progress(batches, desc=f"{prefix}epoch {epoch + 1}"):
            loss = F.cross_entropy(net(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            running.add_mean(loss, len(yb))
            run.running(loss=running.value)
        tl, ta = evaluate(model, x_train, y_train)
        vl, va = evaluate(model, x_val, y_val)
        run.log(epoch + 1, **{f"train_loss{prefix}": tl, f"val_loss{prefix}": vl,
                              f"train_acc{prefix}": ta, f"val_acc{prefix}": va})
    return {"train_acc": ta, "val_acc": va, "train_loss": tl, "val_loss": vl}


def _xavier(model):
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            nn.init.xavier_uniform_(m.weight)
    return model


@classifier("softmax-regression", "softmax regression on the digits", epochs=20, lr=0.1, batch_size=64)
def softmax_regression(cfg, run):
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    return train_classifier(model, digits(seed=cfg.seed), cfg, run)


def mlp(dropout=0.0, hidden=256):
    layers = [nn.Flatten(), nn.Linear(64, hidden), nn.ReLU()]
    layers += [nn.Dropout(dropout)] if dropout else []
    layers += [nn.Linear(hidden, hidden), nn.ReLU()]
    layers += [nn.Dropout(dropout)] if dropout else []
    return nn.Sequential(*layers, nn.Linear(hidden, 10))


@classifier("mlp", "two-hidden-layer MLP (ReLU) on the digits", epochs=30, lr=0.1, batch_size=64, hidden=256)
def mlp_experiment(cfg, run):
    return train_classifier(mlp(hidden=cfg.hidden), digits(seed=cfg.seed), cfg, run)


@classifier("mlp-dropout", "the same MLP without and with dropout 0.5: the train/validation gap", epochs=60, lr=0.1,
            batch_size=64, dropout=0.5, train_size=300, hidden=256)
def mlp_dropout(cfg, run):
    x_train, x_val, y_train, y_val = digits(seed=cfg.seed)
    data = (x_train[:cfg.train_size], x_val, y_train[:cfg.train_size], y_val)     # small data: over-fitting shows
    summary = {}
    for label, p in (("plain", 0.0), ("dropout", cfg.dropout)):
        engine.manual_seed(cfg.seed)
        r = train_classifier(mlp(p, cfg.hidden), data, cfg, run, prefix=f"_{label}")
        summary.update({f"{label}_{k}": v for k, v in r.items()})
        summary[f"{label}_gap"] = r["train_acc"] - r["val_acc"]
        # the loss gap is the steadier measure: on 300 images the accuracy gap moves by a few images per seed
        summary[f"{label}_loss_gap"] = r["val_loss"] - r["train_loss"]
        run.note(f"{label}: train acc {r['train_acc']:.3f}, val acc {r['val_acc']:.3f}, "
                 f"train - val loss {r['val_loss'] - r['train_loss']:.3f}")
    return summary


def lenet(batch_norm=False, activation="sigmoid", pool="avg"):
    """The book's LeNet-5 on 28x28 input: two 5x5 conv layers (6 and 16 channels) each followed by 2x2
    pooling, then 120 and 84 hidden units. The book's original has sigmoid and average pooling; with
    batch_norm, BN after each conv and hidden linear layer (the book's LeNet-BN); activation="relu",
    pool="max" is the modern variant the book suggests as an exercise."""
    bn2, bn1 = (nn.BatchNorm2d, nn.BatchNorm1d) if batch_norm else (None, None)
    act = {"sigmoid": nn.Sigmoid, "relu": nn.ReLU}[activation]
    pooling = {"avg": nn.AvgPool2d, "max": nn.MaxPool2d}[pool]

    def block(layer, norm=None):
        return [layer] + ([norm] if norm is not None else []) + [act()]
    layers = (block(nn.Conv2d(1, 6, 5, padding=2), bn2 and bn2(6)) + [pooling(2, stride=2)]
              + block(nn.Conv2d(6, 16, 5), bn2 and bn2(16)) + [pooling(2, stride=2), nn.Flatten()]
              + block(nn.Linear(16 * 5 * 5, 120), bn1 and bn1(120))
              + block(nn.Linear(120, 84), bn1 and bn1(84)) + [nn.Linear(84, 10)])
    return _xavier(nn.Sequential(*layers))


@classifier("lenet", "LeNet-5 on the digits upsampled to 28x28 (ReLU and max pooling; --set activation=sigmoid "
            "pool=avg for the book's original, which needs batch norm to learn on data this small: see lenet-bn)",
            epochs=20, lr=0.05, batch_size=64, momentum=0.9, activation="relu", pool="max")
def lenet_experiment(cfg, run):
    return train_classifier(lenet(activation=cfg.activation, pool=cfg.pool), digits(28, seed=cfg.seed), cfg, run)


def _epochs_to(curve, level):
    hit = [i + 1 for i, v in enumerate(curve) if v >= level]
    return hit[0] if hit else None


@classifier("lenet-bn", "LeNet with and without batch norm: epochs to reach 90% validation accuracy", epochs=15,
            lr=0.1, batch_size=64)
def lenet_bn(cfg, run):
    data = digits(28, seed=cfg.seed)
    summary = {}
    for label, bn in (("plain", False), ("bn", True)):
        engine.manual_seed(cfg.seed)
        r = train_classifier(lenet(bn), data, cfg, run, prefix=f"_{label}")
        summary[f"{label}_val_acc"] = r["val_acc"]
        summary[f"{label}_epochs_to_90"] = _epochs_to(run.curves[f"val_acc_{label}"], 0.9)
        run.note(f"{label}: val acc {r['val_acc']:.3f}, epochs to 90%: {summary[f'{label}_epochs_to_90']}")
    return summary


class Residual(nn.Module):
    """The book's residual block: two 3x3 conv + BN, an optional 1x1 conv on the shortcut."""

    def __init__(self, in_channels, out_channels, use_1x1conv=False, strides=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1, stride=strides)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.conv3 = nn.Conv2d(in_channels, out_channels, 1, stride=strides) if use_1x1conv else None
        self.bn1, self.bn2 = nn.BatchNorm2d(out_channels), nn.BatchNorm2d(out_channels)

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + (self.conv3(x) if self.conv3 is not None else x))


def resnet(channels=(16, 32)):
    """A small ResNet: a stem, two residual stages (the second halves the size), global average pooling."""
    c1, c2 = channels
    return nn.Sequential(
        nn.Conv2d(1, c1, 3, padding=1), nn.BatchNorm2d(c1), nn.ReLU(),
        Residual(c1, c1), Residual(c1, c1),
        Residual(c1, c2, use_1x1conv=True, strides=2), Residual(c2, c2),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c2, 10))


@classifier("resnet", "a small ResNet (two residual stages) on the digits upsampled to 16x16", epochs=10, lr=0.01,
            batch_size=64, momentum=0.9, weight_decay=1e-4)
def resnet_experiment(cfg, run):
    return train_classifier(resnet(), digits(16, seed=cfg.seed), cfg, run)
