"""The book's models as a zoo of experiments, run by `python -m engine.train <name>`.

An experiment is a function `fn(cfg, run) -> dict` registered with `@experiment(name, ...defaults)`.
`cfg` holds the command line (epochs, lr, batch_size, device, seed, and the defaults); `run` is a
`Run`: it shows progress, records per-epoch curves, and collects figures. The returned dict is the
summary (final metrics) that the runner prints and writes to JSON.
"""
import ast
import importlib
import time
from dataclasses import dataclass, field

from tqdm.auto import tqdm

__all__ = ["experiment", "REGISTRY", "Config", "Run", "get", "names", "parse_setting"]

REGISTRY = {}
_MODULES = ["regression", "classification", "language", "attention", "optimization", "information"]


@dataclass
class Experiment:
    name: str
    fn: object
    description: str
    defaults: dict = field(default_factory=dict)
    devices: tuple = ("cpu",)          # where it runs (`python -m engine.train <name> --device cuda`)
    data_parallel: bool = False        # trains data-parallel under mpiexec (engine.distributed)


def experiment(name, description, devices=("cpu",), data_parallel=False, **defaults):
    """Register `fn(cfg, run)` under `name`; `defaults` are its hyper-parameters (epochs, lr, ...); `devices`
    where it can run (cfg.device says which); `data_parallel` whether it trains data-parallel when launched
    with several ranks (`mpiexec -n 4 python -m mpi4py -m engine.train <name>`)."""
    def register(fn):
        REGISTRY[name] = Experiment(name, fn, description, defaults, tuple(devices), bool(data_parallel))
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
    """A dict with attribute access: cfg.lr, cfg.epochs; a missing key is an AttributeError, so
    `hasattr(cfg, "x")` and `getattr(cfg, "x", default)` work."""

    def __getattr__(self, k):
        try:
            return self[k]
        except KeyError:
            raise AttributeError(f"config has no {k!r}; it has {', '.join(sorted(map(str, self)))}") from None

    def __setattr__(self, k, v):
        self[k] = v

    def __delattr__(self, k):
        try:
            del self[k]
        except KeyError:
            raise AttributeError(k) from None


_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def _literal(text):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text


def _scalar(text, value, default, what):
    """`value` (text already read as a literal) as the type of `default` (bool, int, float or str)."""
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        low = str(text).strip().lower()
        if low in _TRUE or low in _FALSE:
            return low in _TRUE
    elif isinstance(default, int):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif isinstance(default, float):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif isinstance(default, str):
        return value if isinstance(value, str) else str(text)
    else:
        return value
    raise ValueError(f"{what}: expected {type(default).__name__} like the default {default!r}, got {text!r}")


def parse_setting(key, text, default):
    """The value of `--set key=text` for a hyper-parameter whose default is `default`.

    The text is read as a Python literal when it is one (3, 0.5, (64, 32), None, 'a'), else taken as a
    string. Then: a bool default takes true/false/yes/no/on/off/1/0; an int default an integer (1e3 too);
    a float default any number; a str default the text; a tuple or list default a sequence ("64,32",
    "(64, 32)"; "64" gives (64,)), each element cast like the default's first; a None default takes the
    literal as it is (true/false as booleans, none as None). Anything else raises ValueError."""
    what = f"--set {key}={text}"
    value = _literal(text)
    if default is None:
        low = text.strip().lower()
        if low in ("true", "false", "none", "null"):
            return {"true": True, "false": False}.get(low)
        return value
    if isinstance(default, (tuple, list)):
        if isinstance(value, str) and "," in value:
            value = tuple(_literal(v.strip()) for v in value.split(",") if v.strip())
        items = list(value) if isinstance(value, (tuple, list)) else [value]
        if default:
            items = [_scalar(str(v), v, default[0], what) for v in items]
        return type(default)(items)
    if isinstance(default, dict):
        if isinstance(value, dict):
            return value
        raise ValueError(f"{what}: expected a dict literal like the default {default!r}")
    return _scalar(text, value, default, what)


def _duration(s):
    return f"{s:.0f} s" if s < 60 else f"{int(s // 60)} min {int(s % 60):02d} s"


class Run:
    """What an experiment reports to: curves (per epoch), figures, a progress bar, notes.

    Each logged epoch prints its metrics with the time the current training loop has taken and an
    estimate of the time it has left (cfg.epochs minus the epoch, at the mean epoch time so far); a
    loop is counted anew when the epoch number starts again (an experiment that trains several models)."""

    def __init__(self, name, cfg, quiet=False):
        self.name, self.cfg, self.quiet = name, cfg, quiet
        self.curves = {}          # metric name -> list of values, one per epoch
        self.figures = {}         # file stem -> matplotlib Figure
        self.notes = []
        self.started = time.perf_counter()
        self.last_epoch = None    # the last epoch number logged
        self.left_s = None        # estimated seconds left in the current training loop
        self._bar = None
        self._mark = self._loop_start = self.started

    def progress(self, iterable, desc="", total=None):
        """Wrap an iterable in a progress bar (silent when quiet); its label carries the time left."""
        if self.left_s:
            desc = f"{desc} (~{_duration(self.left_s)} left)" if desc else f"~{_duration(self.left_s)} left"
        self._bar = tqdm(iterable, desc=desc, total=total, disable=self.quiet, leave=False, dynamic_ncols=True)
        return self._bar

    def close(self):
        """Close the current progress bar (the runner calls it when a run is interrupted)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def running(self, **metrics):
        """Show running metrics (e.g. loss) on the current progress bar."""
        if self._bar is not None and not self.quiet:
            self._bar.set_postfix({k: f"{v:.4g}" for k, v in metrics.items()}, refresh=False)

    def _timing(self, epoch):
        """(seconds of the current loop, estimated seconds left or None) after logging `epoch`."""
        now = time.perf_counter()
        if not isinstance(epoch, int):
            self._mark = now
            return None, None
        if self.last_epoch is None or epoch <= self.last_epoch:
            self._loop_start = self._mark                # a new training loop began after the last log
        self.last_epoch, self._mark = epoch, now
        spent = now - self._loop_start
        total = self.cfg.get("epochs") if isinstance(self.cfg, dict) else None
        if isinstance(total, int) and 0 < epoch <= total:
            self.left_s = spent / epoch * (total - epoch)
        else:
            self.left_s = None
        return spent, self.left_s

    def log(self, epoch=None, **metrics):
        """Record one epoch's metrics (train_loss, val_loss, train_acc, val_ppl, ...)."""
        for k, v in metrics.items():
            self.curves.setdefault(k, []).append(float(v))
        spent, left = self._timing(epoch)
        if not self.quiet:
            total = self.cfg.get("epochs") if isinstance(self.cfg, dict) else None
            head = self.name if epoch is None else (f"epoch {epoch}/{total}" if left is not None else f"epoch {epoch}")
            tail = "" if spent is None else f"  [{_duration(spent)}" + (
                f", ~{_duration(left)} left]" if left else "]")
            tqdm.write(head + ": " + ", ".join(f"{k} {v:.4g}" for k, v in metrics.items()) + tail)

    def figure(self, stem, fig):
        self.figures[stem] = fig

    def note(self, text):
        self.notes.append(text)
        if not self.quiet:
            tqdm.write(text)

    @property
    def seconds(self):
        return time.perf_counter() - self.started
