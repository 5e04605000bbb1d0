"""Attention experiments (D2L ch. 11): Nadaraya–Watson kernel regression, additive and scaled dot-product
attention with valid_lens, and multi-head attention, with their weights drawn as heat maps.

The transformer language model lives in `language.py`. The kernel regressions (no parameters) are NumPy on the
host; what trains or runs attention modules does so on cfg.device.
"""
import numpy as np

import engine
import engine.functional as F
from engine import nn, optim

from . import experiment, on_device

KERNELS = {
    "gaussian": lambda d: np.exp(-d ** 2 / 2),
    "boxcar": lambda d: (np.abs(d) < 1.0).astype(float),
    "epanechnikov": lambda d: np.maximum(0.0, 1.0 - np.abs(d)),
}


def nw_data(n=40, seed=0):
    """The book's data: x ~ U(0, 5) sorted, y = 2 sin x + x + N(0, 0.5^2); validation on a grid."""
    rng = np.random.default_rng(seed)
    f = lambda x: 2 * np.sin(x) + x  # noqa: E731
    x_train = np.sort(rng.uniform(0, 5, n))
    y_train = f(x_train) + rng.normal(0.0, 0.5, n)
    x_val = np.arange(0, 5, 5 / 50)
    return x_train, y_train, x_val, f(x_val)


def nadaraya_watson(x_train, y_train, x_query, kernel, width=1.0):
    """Predictions sum_i alpha(q, x_i) y_i with alpha = kernel((q - x_i) / width), normalized per query
    (a query with no key in reach gets the mean of y). Returns (predictions, attention weights)."""
    w = KERNELS[kernel]((x_query[:, None] - x_train[None, :]) / width)
    s = w.sum(axis=1, keepdims=True)
    alpha = np.where(s > 0, w / np.where(s > 0, s, 1), 1.0 / len(x_train))
    return alpha @ y_train, alpha


def heatmaps(mats, titles, xlabel="keys", ylabel="queries"):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(mats), figsize=(3.6 * len(mats), 3.2), squeeze=False)
    for ax, m, t in zip(axes[0], mats, titles):
        im = ax.imshow(m, cmap="Reds", aspect="auto")
        ax.set_title(t)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        fig.colorbar(im, ax=ax, shrink=0.8)
    fig.tight_layout()
    return fig


@experiment("nadaraya-watson", "Nadaraya–Watson regression: gaussian, boxcar, epanechnikov kernels; a learned width",
            epochs=50, lr=0.5, n_train=40)
def nadaraya_watson_experiment(cfg, run):
    x_train, y_train, x_val, y_val = nw_data(cfg.n_train, seed=cfg.seed)
    summary, mats = {}, []
    for k in KERNELS:
        pred, alpha = nadaraya_watson(x_train, y_train, x_val, k)
        summary[f"{k}_val_mse"] = float(np.mean((pred - y_val) ** 2))
        mats.append(alpha)
        run.note(f"{k}: validation MSE {summary[f'{k}_val_mse']:.4f}")
    summary["mean_predictor_val_mse"] = float(np.mean((y_train.mean() - y_val) ** 2))
    # Parametric version: a learnable width w in the Gaussian kernel exp(-((q - x) w)^2 / 2), trained by SGD on
    # leave-one-out predictions of the training points.
    # An epoch is one step here: the losses stay on the device, read back `run.every` epochs at a time.
    w = engine.tensor([1.0], dtype=np.float64, device=cfg.device, requires_grad=True)
    opt = optim.SGD([w], lr=cfg.lr)
    xt, yt, eye = on_device((x_train, y_train, np.eye(len(x_train)) * 1e9), cfg.device)
    for epoch in run.progress(range(cfg.epochs), desc="learned width"):
        d = (xt.reshape(-1, 1) - xt.reshape(1, -1)) * w
        alpha = F.softmax(-(d * d) / 2 - eye, dim=1)              # leave-one-out: a point does not see itself
        loss = ((alpha @ yt - yt) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        run.log_later(epoch + 1, train_loss=loss.detach())
    run.flush()
    width = 1.0 / abs(w.item())
    pred, alpha = nadaraya_watson(x_train, y_train, x_val, "gaussian", width)
    summary["learned_width"] = width
    summary["learned_val_mse"] = float(np.mean((pred - y_val) ** 2))
    mats.append(alpha)
    run.note(f"learned gaussian width {width:.3f}: validation MSE {summary['learned_val_mse']:.4f}")
    run.figure("weights", heatmaps(mats, list(KERNELS) + [f"learned (width {width:.2f})"], "training inputs",
                                   "validation inputs"))
    run.figure("fit", _plot_fit(x_train, y_train, x_val, y_val, width))
    return summary


def _plot_fit(x_train, y_train, x_val, y_val, width):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(x_train, y_train, "o", alpha=0.5, label="training data")
    ax.plot(x_val, y_val, "k-", label="truth")
    for k in KERNELS:
        ax.plot(x_val, nadaraya_watson(x_train, y_train, x_val, k)[0], label=k)
    ax.plot(x_val, nadaraya_watson(x_train, y_train, x_val, "gaussian", width)[0], "--", label="learned width")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


@experiment("attention-scoring", "additive, scaled dot-product and multi-head attention with valid_lens (heat maps)")
def attention_scoring(cfg, run):
    rng = np.random.default_rng(cfg.seed)
    B, Q, K, d = 2, 4, 10, 8
    queries, keys, values, valid_lens = on_device((
        rng.standard_normal((B, Q, d)).astype(np.float32), rng.standard_normal((B, K, d)).astype(np.float32),
        np.tile(np.arange(40, dtype=np.float32).reshape(1, K, 4), (B, 1, 1)), np.array([2, 6])), cfg.device)
    additive = nn.AdditiveAttention(num_hiddens=8, query_size=d, key_size=d).to(cfg.device)
    additive.eval()
    out_add = additive(queries, keys, values, valid_lens)
    dot = nn.DotProductAttention(need_weights=True)
    out_dot = dot(queries, keys, values, valid_lens)
    fused = nn.DotProductAttention()(queries, keys, values, valid_lens)     # the fused kernel: same output
    mha = nn.MultiHeadAttention(num_hiddens=d, num_heads=2, need_weights=True).to(cfg.device)
    out_mha = mha(queries, keys, keys, valid_lens)
    w_add, w_dot = additive.attention_weights.numpy(), dot.attention_weights.numpy()
    summary = {
        "additive_masked_weight": float(w_add[0, :, 2:].sum() + w_add[1, :, 6:].sum()),
        "dot_masked_weight": float(w_dot[0, :, 2:].sum() + w_dot[1, :, 6:].sum()),
        "fused_vs_explicit_max_diff": float(np.abs(fused.numpy() - out_dot.numpy()).max()),
        "mha_output_shape": list(out_mha.shape),
    }
    run.note(f"additive output {out_add.shape}, dot-product output {out_dot.shape}, multi-head {out_mha.shape}")
    run.figure("weights", heatmaps([w_add[0], w_add[1], w_dot[0], w_dot[1]],
                                   ["additive, valid 2", "additive, valid 6", "dot, valid 2", "dot, valid 6"]))
    return summary
