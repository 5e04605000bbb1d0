"""Linear regression, polynomial fitting with K-fold cross-validation, and weight decay (D2L ch. 3)."""
import math

import numpy as np

import engine
from engine import optim
from engine.datasets import DataLoader
from engine.tensor import default_generator

from . import experiment, host_values, on_device


def squared_loss(y_hat, y):
    """The book's squared loss with the 1/2, averaged over the minibatch."""
    return ((y_hat - y.reshape(y_hat.shape)) ** 2 / 2).mean()


def synthetic_data(w, b, n, noise, rng):
    """y = Xw + b + noise, X ~ N(0, 1)."""
    X = rng.standard_normal((n, len(w)))
    y = X @ np.asarray(w) + b + noise * rng.standard_normal(n)
    return X.astype(np.float32), y.astype(np.float32)


def k_fold(k, *arrays):
    """Yield (train arrays, validation arrays) for each of k folds, in order (no shuffling: do it first)."""
    n = len(arrays[0])
    if not 2 <= k <= n:
        raise ValueError(f"k: need 2 <= k <= {n}, got {k}")
    bounds = np.linspace(0, n, k + 1).astype(int)
    for i in range(k):
        val = np.arange(bounds[i], bounds[i + 1])
        train = np.setdiff1d(np.arange(n), val)
        yield [a[train] for a in arrays], [a[val] for a in arrays]


def fit_linear(X, y, *, lr, epochs, batch_size, weight_decay=0.0, bias=True, init_std=0.01, run=None, val=None,
               desc="", on_epoch=None, device="cpu"):
    """Minibatch SGD on squared loss for y ~ Xw (+ b) on `device` (the host arrays X, y and val move there
    once); returns (w, b, curves) with per-epoch MSE/2. The per-epoch losses stay on the device and are read
    back at the end in one copy; `on_epoch(epoch, curves)`, if given, is called after each epoch with the
    curves read so far (e.g. to log it as it happens: one host read per epoch)."""
    rng = default_generator()
    w = engine.tensor(rng.normal(0, init_std, (X.shape[1], 1)), dtype=X.dtype, device=device, requires_grad=True)
    b = engine.zeros(1, dtype=X.dtype, device=device, requires_grad=True) if bias else None
    opt = optim.SGD([{"params": [w], "weight_decay": weight_decay}] + ([{"params": [b]}] if bias else []), lr=lr)
    X, y = on_device((X, y), device)
    val = None if val is None else on_device(val, device)

    def loss_of(Xa, ya):
        with engine.no_grad():
            return squared_loss(Xa @ w + (b if bias else 0.0), ya)

    losses = {"train_loss": [], "val_loss": []}          # 0-d Tensors on the device, one per epoch
    curves = {"train_loss": [], "val_loss": []}
    epochs_iter = range(epochs) if run is None else run.progress(range(epochs), desc=desc)
    for _ in epochs_iter:
        for xb, yb in DataLoader((X, y), batch_size=batch_size, shuffle=True):
            loss = squared_loss(xb @ w + (b if bias else 0.0), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
        losses["train_loss"].append(loss_of(X, y))
        if val is not None:
            losses["val_loss"].append(loss_of(*val))
        if on_epoch is not None:
            _read(losses, curves)
            on_epoch(len(curves["train_loss"]), curves)
    _read(losses, curves)
    return w.numpy().ravel(), (b.item() if bias else 0.0), curves


def _read(losses, curves):
    """Move the device losses to the curves as floats (one host read)."""
    keys = [k for k in losses if losses[k]]
    values = iter(host_values([v for k in keys for v in losses[k]]))
    for k in keys:
        curves[k] += [next(values) for _ in losses[k]]
        losses[k] = []


@experiment("linear-regression", "synthetic y = Xw + b + noise, squared loss, minibatch SGD (recovers w, b)",
            epochs=3, lr=0.03, batch_size=10, n=1000)
def linear_regression(cfg, run):
    true_w, true_b = np.array([2.0, -3.4]), 4.2
    X, y = synthetic_data(true_w, true_b, cfg.n, 0.01, np.random.default_rng(cfg.seed))
    w, b, curves = fit_linear(X, y, lr=cfg.lr, epochs=cfg.epochs, batch_size=cfg.batch_size, run=run,
                              device=cfg.device,
                              on_epoch=lambda epoch, c: run.log(epoch, train_loss=c["train_loss"][-1]))
    err_w, err_b = np.abs(w - true_w).max(), abs(b - true_b)
    run.note(f"w = {np.round(w, 4).tolist()} (true [2, -3.4]), b = {b:.4f} (true 4.2)")
    return {"w_error": float(err_w), "b_error": float(err_b), "train_loss": curves["train_loss"][-1]}


def polynomial_features(x, degree):
    """x^i / i! for i = 0..degree-1 (the book's scaling keeps the gradients tame)."""
    return np.stack([x ** i / math.factorial(i) for i in range(degree)], axis=1).astype(np.float32)


@experiment("polynomial", "polynomial fitting with 2, 4 and 20 features: under-fit, fit, over-fit; K-fold CV",
            epochs=1500, lr=0.01, batch_size=10, k=5, n_train=20, data_seed=0)
def polynomial(cfg, run):
    """The book's cubic with noise 0.1, features x^i / i!. With 20 training points the 20-feature model has as
    many weights as points: its training error falls below the noise while its validation error grows.
    The data is drawn once, from `data_seed` (as the book draws it once); `seed` sets the initial weights and
    the minibatch order. With only 20 points, what a draw shows depends on the draw (seed 1 puts every
    training x within |x| < 1.3 while validation x reach 2.7: every model then fails by extrapolating)."""
    rng = np.random.default_rng(cfg.data_seed)
    max_degree, n = 20, cfg.n_train
    true_w = np.zeros(max_degree)
    true_w[:4] = [5, 1.2, -3.4, 5.6]
    x = rng.standard_normal(n + 100)
    feats = polynomial_features(x, max_degree)
    y = (feats @ true_w + 0.1 * rng.standard_normal(n + 100)).astype(np.float32)
    summary = {}
    for label, d in (("underfit_2", 2), ("fit_4", 4), ("overfit_20", max_degree)):
        F = feats[:, :d]
        _, _, curves = fit_linear(F[:n], y[:n], lr=cfg.lr, epochs=cfg.epochs, batch_size=cfg.batch_size, bias=False,
                                  val=(F[n:], y[n:]), run=run, desc=label, device=cfg.device)
        run.curves[f"train_loss_{label}"] = curves["train_loss"]
        run.curves[f"val_loss_{label}"] = curves["val_loss"]
        folds = [fit_linear(tr[0], tr[1], lr=cfg.lr, epochs=cfg.epochs, batch_size=cfg.batch_size,
                            bias=False, val=va, device=cfg.device)[2] for tr, va in k_fold(cfg.k, F[:n], y[:n])]
        summary[f"{label}_train"] = curves["train_loss"][-1]
        summary[f"{label}_val"] = curves["val_loss"][-1]
        summary[f"{label}_kfold_val"] = float(np.mean([f["val_loss"][-1] for f in folds]))
        run.note(f"{label}: train {summary[f'{label}_train']:.4f}, val {summary[f'{label}_val']:.4f}, "
                 f"{cfg.k}-fold val {summary[f'{label}_kfold_val']:.4f}")
    return summary


@experiment("weight-decay", "high-dimensional linear regression (d=200, 20 train points): L2 penalty vs over-fit",
            epochs=100, lr=0.01, batch_size=5)
def weight_decay(cfg, run):
    rng = np.random.default_rng(cfg.seed)
    d, n_train, n_val = 200, 20, 100
    X, y = synthetic_data(np.full(d, 0.01), 0.05, n_train + n_val, 0.01, rng)
    summary = {}
    for lam in (0.0, 1.0, 2.0, 3.0):
        engine.manual_seed(cfg.seed)              # the same initial weights and minibatches for every lambda
        w, _, curves = fit_linear(X[:n_train], y[:n_train], lr=cfg.lr, epochs=cfg.epochs, batch_size=cfg.batch_size,
                                  weight_decay=lam, val=(X[n_train:], y[n_train:]), run=run, desc=f"lambda={lam}",
                                  device=cfg.device)
        run.curves[f"train_loss_wd{lam:g}"] = curves["train_loss"]
        run.curves[f"val_loss_wd{lam:g}"] = curves["val_loss"]
        summary[f"val_loss_wd{lam:g}"] = curves["val_loss"][-1]
        summary[f"w_norm_wd{lam:g}"] = float(np.linalg.norm(w))
        run.note(f"lambda {lam:g}: train {curves['train_loss'][-1]:.4g}, val {curves['val_loss'][-1]:.4g}, "
                 f"|w| {np.linalg.norm(w):.4g}")
    return summary
