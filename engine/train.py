"""Train one of the book's models: `python -m engine.train <model> [--device cpu] [--epochs N] [--lr LR]`.

`python -m engine.train --list` names them. Each run prints a progress bar with the running loss, a
per-epoch line, and a summary; it writes `<out>/<model>.json` (config, curves, summary, time) and
`<out>/<model>.png` (train and validation curves), plus any figure the model makes (heat maps, paths).
"""
import argparse
import json
import os
import sys

import numpy as np


def _plot_curves(run, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    groups = {}
    for k in run.curves:
        metric = k.split("_")[1] if k.startswith(("train_", "val_")) else k      # val_acc_bn -> acc
        groups.setdefault(metric, []).append(k)
    if not groups:
        return None
    fig, axes = plt.subplots(1, len(groups), figsize=(4.5 * len(groups), 3.5), squeeze=False)
    for ax, (metric, keys) in zip(axes[0], sorted(groups.items())):
        for k in keys:
            ax.plot(np.arange(1, len(run.curves[k]) + 1), run.curves[k], marker="." if len(run.curves[k]) < 40 else None,
                    label=k)
        ax.set_xlabel("epoch")
        ax.set_title(metric)
        if metric in ("loss", "ppl", "mse") and all(v > 0 for k in keys for v in run.curves[k]):
            ax.set_yscale("log")
        ax.legend()
    fig.suptitle(run.name)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv=None):
    from . import models
    p = argparse.ArgumentParser(prog="python -m engine.train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", nargs="?", help="experiment name (see --list)")
    p.add_argument("--list", action="store_true", help="list the models and exit")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--epochs", type=int, help="number of epochs (default: the model's)")
    p.add_argument("--lr", type=float, help="learning rate (default: the model's)")
    p.add_argument("--batch-size", type=int, help="minibatch size (default: the model's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs", help="folder for the JSON and PNG files (default: runs/)")
    p.add_argument("--quiet", action="store_true", help="no progress bar or per-epoch lines")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="other hyper-parameters")
    a = p.parse_args(argv)
    if a.list or not a.model:
        for name in models.names():
            print(f"{name:24s} {models.get(name).description}")
        return 0
    try:
        exp = models.get(a.model)
    except KeyError as e:
        p.error(str(e.args[0]))
    from .backend import check_device
    try:
        device = check_device(a.device)
    except (RuntimeError, ValueError) as e:
        p.error(str(e))
    if device not in exp.devices:
        on_cuda = [n for n in models.names() if "cuda" in models.get(n).devices]
        p.error(f"--device: {a.model} runs on the CPU only for now; these run on {device}: {', '.join(on_cuda)}")
    cfg = models.Config(exp.defaults)
    for k in ("epochs", "lr", "batch_size"):
        if getattr(a, k) is not None:
            cfg[k] = getattr(a, k)
    for kv in a.set:
        k, _, v = kv.partition("=")
        if k not in cfg:
            p.error(f"--set: {a.model} has no hyper-parameter {k!r}; it has {', '.join(sorted(cfg))}")
        cfg[k] = type(cfg[k])(v) if not isinstance(cfg[k], bool) else v.lower() in ("1", "true", "yes")
    cfg.update(device=a.device, seed=a.seed)
    import engine
    engine.manual_seed(a.seed)
    run = models.Run(a.model, cfg, quiet=a.quiet)
    summary = exp.fn(cfg, run)
    os.makedirs(a.out, exist_ok=True)
    written = []
    png = _plot_curves(run, os.path.join(a.out, f"{a.model}.png"))
    written += [png] if png else []
    for stem, fig in run.figures.items():
        path = os.path.join(a.out, f"{a.model}-{stem}.png")
        fig.savefig(path, dpi=110)
        written.append(path)
    record = {"model": a.model, "config": dict(cfg), "summary": summary, "curves": run.curves,
              "notes": run.notes, "seconds": round(run.seconds, 2)}
    path = os.path.join(a.out, f"{a.model}.json")
    with open(path, "w") as f:
        json.dump(record, f, indent=1, default=float)
    written.append(path)
    print(f"\n{a.model}: " + ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in summary.items())
          + f"  ({run.seconds:.1f} s)")
    for w in written:
        print(f"wrote {w}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
