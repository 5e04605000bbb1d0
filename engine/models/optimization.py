"""Gradient descent and stochastic gradient descent on 2-D functions (D2L's optimization chapter).

Gradients come from the engine's tape; each step is `engine.optim.SGD`, on cfg.device. The trajectory stays
on the device and is read back once, at the end; the noise of SGD is drawn on the host up front and moved
there once. The trajectories are drawn over the function's contours.
"""
import numpy as np

import engine
from engine import optim

from . import experiment

FUNCTIONS = {
    # name: (f on Tensors or arrays, start, minimum for reference, plot box)
    "convex": (lambda x1, x2: x1 ** 2 + 2 * x2 ** 2, (-5.0, -2.0), (0.0, 0.0), (-5.5, 1.0, -3.0, 1.5)),
    # a non-convex landscape: two wells separated by a ridge
    "nonconvex": (lambda x1, x2: 0.25 * x1 ** 4 - x1 ** 2 + 0.5 * x1 + x2 ** 2, (0.2, 2.0), (-1.5, 0.0),
                  (-2.4, 2.4, -2.5, 2.5)),
}


def descend(f, start, lr, steps, noise=0.0, rng=None, device="cpu"):
    """Minimize f from `start` on `device`; with noise > 0 the gradient gets N(0, noise^2) added (the book's
    SGD model of a minibatch gradient; drawn from `rng` for all steps at once, in the order of a draw per
    step). Returns the (steps + 1, 2) trajectory as a NumPy array (one host read)."""
    x = engine.tensor(np.array(start), dtype=np.float64, device=device, requires_grad=True)
    opt = optim.SGD([x], lr=lr)
    kicks = engine.tensor(rng.normal(0.0, noise, (steps, 2)), dtype=np.float64, device=device) if noise else None
    path = [x.detach().clone()]
    for i in range(steps):
        opt.zero_grad()
        f(x[0], x[1]).backward()
        if noise:
            x.grad.add_(kicks[i])
        opt.step()
        path.append(x.detach().clone())
    return engine.stack(path).numpy()


def plot_paths(name, f, box, paths):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    g1, g2 = np.meshgrid(np.linspace(box[0], box[1], 200), np.linspace(box[2], box[3], 200))
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.contour(g1, g2, f(g1, g2), levels=30, colors="#9aa", linewidths=0.7)
    for label, p in paths.items():
        ax.plot(p[:, 0], p[:, 1], "-o", ms=2.5, lw=1, label=label)
    ax.set_xlabel("x1")
    ax.set_ylabel("x2")
    ax.set_title(name)
    ax.legend()
    fig.tight_layout()
    return fig


@experiment("optimization", "gradient descent and SGD on a convex and a non-convex 2-D function; paths plotted",
            epochs=40, lr=0.1, noise=1.0)
def optimization(cfg, run):
    rng = np.random.default_rng(cfg.seed)
    summary = {}
    for name, (f, start, minimum, box) in FUNCTIONS.items():
        paths = {"GD": descend(f, start, cfg.lr, cfg.epochs, device=cfg.device),
                 "SGD": descend(f, start, cfg.lr, cfg.epochs, noise=cfg.noise, rng=rng, device=cfg.device)}
        for label, p in paths.items():
            final = f(*p[-1])
            summary[f"{name}_{label}_f"] = float(final)
            summary[f"{name}_{label}_dist_to_min"] = float(np.linalg.norm(p[-1] - np.array(minimum)))
            run.curves[f"{name}_{label}_f"] = [float(f(*q)) for q in p]
            run.note(f"{name} {label}: end at {np.round(p[-1], 3).tolist()}, f = {final:.4f}")
        run.figure(name, plot_paths(f"{name}: GD and SGD, lr {cfg.lr}", f, box, paths))
    return summary
