"""Train one of the book's models: `python -m engine.train <model> [--device cpu] [--epochs N] [--lr LR]`.

`python -m engine.train --list` names them; each runs on "cpu" or "cuda" (--device): the model and the data
move to the device once, and the losses stay there, read back once per epoch (the progress bar's running
loss every 50 steps). Each run prints a progress bar with the running loss, a per-epoch line with the time
left, and a summary; it writes `<out>/<model>.json` (config, curves, summary, time) first, then
`<out>/<model>.png` (the curves, titled with the model, its data, the settings and the final metrics) and
any figure the model makes (heat maps, paths). Ctrl-C stops the run and still writes what it has (the JSON
then says "interrupted"); a figure that fails to draw costs only that figure.
"""
import argparse
import json
import os
import sys
import textwrap

import numpy as np

_LABELS = {"loss": "loss", "acc": "accuracy", "ppl": "perplexity", "mse": "mean squared error"}
_KEY_SETTINGS = ("epochs", "lr", "batch_size", "momentum", "weight_decay", "num_hiddens", "dropout", "clip")


def _metric(key):
    """'val_acc_bn' -> ('acc', 'validation (bn)'); 'train_loss' -> ('loss', 'train'); other keys as they are."""
    parts = key.split("_")
    if parts[0] in ("train", "val") and len(parts) > 1:
        split = "train" if parts[0] == "train" else "validation"
        return parts[1], split + (f" ({' '.join(parts[2:])})" if len(parts) > 2 else "")
    return key, key


def _fmt(v):
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_fmt(x) for x in v) + "]"
    return str(v)


def caption(name, description, cfg, summary, interrupted=False):
    """The figure's text: model and data, the key settings, the final metrics."""
    settings = ", ".join(f"{k.replace('_', ' ')} {_fmt(cfg[k])}" for k in _KEY_SETTINGS if k in cfg)
    settings += f", seed {cfg.get('seed', 0)}, {cfg.get('device', 'cpu')}"
    finals = ", ".join(f"{k} {_fmt(v)}" for k, v in summary.items() if isinstance(v, (int, float)))
    head = f"{name}: {description}" + ("  (interrupted)" if interrupted else "")
    return "\n".join(textwrap.wrap(head, 110) + textwrap.wrap(settings, 110) +
                     textwrap.wrap(("final: " if not interrupted else "last epoch: ") + finals, 110))


def plot_curves(curves, path, text):
    """One panel per metric (loss, accuracy, perplexity, ...), train and validation together, against whole
    epochs; a linear y axis unless the values span more than 50x (then log, with plain numbers)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import ticker
    groups = {}
    for k, v in curves.items():
        if v:
            groups.setdefault(_metric(k)[0], []).append(k)
    if not groups:
        return None
    fig, axes = plt.subplots(1, len(groups), figsize=(max(7.5, 4.6 * len(groups)), 4.4), squeeze=False)
    for ax, (metric, keys) in zip(axes[0], sorted(groups.items())):
        vals = np.concatenate([np.asarray(curves[k], float) for k in keys])
        for k in keys:
            y = np.asarray(curves[k], float)
            ax.plot(np.arange(1, len(y) + 1), y, marker="." if len(y) < 40 else None, label=_metric(k)[1])
        label = title = _LABELS.get(metric, metric)
        pos = vals[np.isfinite(vals) & (vals > 0)]
        if pos.size == vals.size and pos.size and pos.max() / pos.min() > 50:
            ax.set_yscale("log")
            ax.yaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
            ax.yaxis.set_minor_formatter(ticker.NullFormatter())
            label += " (log scale)"
        ax.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(text, fontsize=9, x=0.01, ha="left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _write_figures(run, out, model, text):
    """The curves PNG and the experiment's own figures; a failure costs only that figure (one line)."""
    written = []
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print("(no PNG: matplotlib is not installed; `pip install matplotlib` draws the curves)")
        return written
    jobs = [(os.path.join(out, f"{model}.png"), lambda p: plot_curves(run.curves, p, text))]
    jobs += [(os.path.join(out, f"{model}-{stem}.png"), lambda p, fig=fig: fig.savefig(p, dpi=110) or p)
             for stem, fig in run.figures.items()]
    for path, draw in jobs:
        try:
            if draw(path):
                written.append(path)
        except Exception as e:
            print(f"(no {os.path.basename(path)}: {type(e).__name__}: {e})")
    return written


def _parse(argv):
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
    p.add_argument("--set", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                   help="other hyper-parameters, values as Python literals: --set num_hiddens=64 sizes=64,32")
    return p, p.parse_args(argv)


def _init_data_parallel(p, a, exp, cfg, device, models):
    """Under mpiexec with several ranks: join the process group (MPI, or NCCL on "cuda") and check that the
    experiment trains data-parallel and that the global batch divides evenly; returns this rank (0 alone)."""
    from . import distributed as dist
    launched = dist.launched_world_size()
    if launched is None or launched == 1:
        return 0
    if not exp.data_parallel:
        p.error(f"{a.model} does not train data-parallel; these do: "
                f"{', '.join(n for n in models.names() if models.get(n).data_parallel)}")
    dist.init_process_group("nccl" if device == "cuda" else "mpi")
    try:
        dist.per_rank_batch_size(cfg.batch_size)
    except ValueError as e:
        p.error(f"--batch-size: {e}")
    cfg.update(world_size=dist.get_world_size())
    return dist.get_rank()


def main(argv=None):
    from . import models
    p, a = _parse(argv)
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
    if device not in exp.devices:                    # every bundled experiment runs on both; one registered
        on_device = [n for n in models.names() if device in models.get(n).devices]     # elsewhere may not
        p.error(f"--device: {a.model} runs on {' and '.join(exp.devices)} only; these run on {device}: "
                f"{', '.join(on_device)}")
    cfg = models.Config(exp.defaults)
    for k in ("epochs", "lr", "batch_size"):
        if getattr(a, k) is not None:
            cfg[k] = getattr(a, k)
    for kv in a.set:
        k, eq, v = kv.partition("=")
        if not eq:
            p.error(f"--set: expected KEY=VALUE, got {kv!r}")
        if k not in cfg:
            p.error(f"--set: {a.model} has no hyper-parameter {k!r}; it has {', '.join(sorted(cfg))}")
        try:
            cfg[k] = models.parse_setting(k, v, exp.defaults.get(k, cfg[k]))
        except ValueError as e:
            p.error(str(e))
    cfg.update(device=device, seed=a.seed)
    rank = _init_data_parallel(p, a, exp, cfg, device, models)
    import engine
    engine.manual_seed(a.seed)
    run = models.Run(a.model, cfg, quiet=a.quiet or rank != 0)
    interrupted = False
    try:
        summary = exp.fn(cfg, run)
        if rank != 0:                                 # rank 0 alone prints and writes results
            return 0
    except KeyboardInterrupt:
        run.close()
        run.flush()                                   # epochs logged but not yet read back from the device
        interrupted = True
        summary = {k: v[-1] for k, v in run.curves.items() if v}
        print(f"\ninterrupted after {run.seconds:.1f} s: writing what the run has "
              f"({run.last_epoch or 0} epochs logged)", file=sys.stderr)
    os.makedirs(a.out, exist_ok=True)
    record = {"model": a.model, "config": dict(cfg), "summary": summary, "curves": run.curves,
              "notes": run.notes, "seconds": round(run.seconds, 2), "interrupted": interrupted}
    path = os.path.join(a.out, f"{a.model}.json")
    with open(path, "w") as f:                        # first: a figure that fails must not lose the run
        json.dump(record, f, indent=1, default=float)
    written = [path] + _write_figures(run, a.out, a.model, caption(a.model, exp.description, cfg, summary,
                                                                   interrupted))
    print(f"\n{a.model}: " + ", ".join(f"{k} {_fmt(v)}" for k, v in summary.items()) + f"  ({run.seconds:.1f} s)")
    for w in written:
        print(f"wrote {w}")
    return 130 if interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
