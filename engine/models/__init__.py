"""The book's models as a zoo of experiments, run by `python -m engine.train <name>`.

An experiment is a function `fn(cfg, run) -> dict` registered with `@experiment(name, ...defaults)`.
`cfg` holds the command line (epochs, lr, batch_size, device, seed, and the defaults); `run` is a
`Run`: it shows progress, records per-epoch curves, and collects figures. The returned dict is the
summary (final metrics) that the runner prints and writes to JSON.
"""
import importlib
import time
from dataclasses import dataclass, field

from tqdm.auto import tqdm

__all__ = ["experiment", "REGISTRY", "Run", "get", "names"]

REGISTRY = {}
_MODULES = ["regression", "classification", "language", "attention", "optimization", "information"]


@dataclass
class Experiment:
    name: str
    fn: object
    description: str
    defaults: dict = field(default_factory=dict)
    devices: tuple = ("cpu",)          # where it runs (`python -m engine.train <name> --device cuda`)


def experiment(name, description, devices=("cpu",), **defaults):
    """Register `fn(cfg, run)` under `name`; `defaults` are its hyper-parameters (epochs, lr, ...); `devices`
    where it can run (cfg.device says which)."""
    def register(fn):
        REGISTRY[name] = Experiment(name, fn, description, defaults, tuple(devices))
        return fn
    return register


def _load_all():
    for m in _MODULES:
        try:
            importlib.import_module(f"{__name__}.{m}")
        except ModuleNotFoundError as e:
            if e.name != f"{__name__}.{m}":
                raise


def names():
    _load_all()
    return sorted(REGISTRY)


def get(name):
    _load_all()
    if name not in REGISTRY:
        raise KeyError(f"model: unknown experiment {name!r}; choose one of {', '.join(sorted(REGISTRY))}")
    return REGISTRY[name]


class Config(dict):
    """A dict with attribute access: cfg.lr, cfg.epochs."""
    __getattr__ = dict.__getitem__

    def __setattr__(self, k, v):
        self[k] = v


class Run:
    """What an experiment reports to: curves (per epoch), figures, a progress bar, notes."""

    def __init__(self, name, cfg, quiet=False):
        self.name, self.cfg, self.quiet = name, cfg, quiet
        self.curves = {}          # metric name -> list of values, one per epoch
        self.figures = {}         # file stem -> matplotlib Figure
        self.notes = []
        self.started = time.perf_counter()
        self._bar = None

    def progress(self, iterable, desc="", total=None):
        """Wrap an iterable in a progress bar (silent when quiet)."""
        self._bar = tqdm(iterable, desc=desc, total=total, disable=self.quiet, leave=False, dynamic_ncols=True)
        return self._bar

    def running(self, **metrics):
        """Show running metrics (e.g. loss) on the current progress bar."""
        if self._bar is not None and not self.quiet:
            self._bar.set_postfix({k: f"{v:.4g}" for k, v in metrics.items()}, refresh=False)

    def log(self, epoch=None, **metrics):
        """Record one epoch's metrics (train_loss, val_loss, train_acc, val_ppl, ...)."""
        for k, v in metrics.items():
            self.curves.setdefault(k, []).append(float(v))
        if not self.quiet:
            head = f"epoch {epoch}" if epoch is not None else self.name
            tqdm.write(head + ": " + ", ".join(f"{k} {v:.4g}" for k, v in metrics.items()))

    def figure(self, stem, fig):
        self.figures[stem] = fig

    def note(self, text):
        self.notes.append(text)
        if not self.quiet:
            tqdm.write(text)

    @property
    def seconds(self):
        return time.perf_counter() - self.started
