"""The book's models as a zoo of experiments, run by `python -m engine.train <name>`.

An experiment is a function `fn(cfg, run) -> dict` registered with `@experiment(name, ...defaults)`.
`cfg` holds the command line (epochs, lr, batch_size, device, seed, and the defaults); `run` is a
`Run`: it shows progress, records per-epoch curves, and collects figures. The returned dict is the
summary (final metrics) that the runner prints and writes to JSON.

Every experiment runs on cfg.device ("cpu" or "cuda"): data made on the host (NumPy) moves to the device
once, and values the training loop produces (losses, hits, perplexity sums) stay there, summed by `Mean`;
they are read back once per epoch, or every `Run.every` steps for the progress bar, never each step, so a GPU
step never waits for the host.
"""
import ast
import importlib
import time
from dataclasses import dataclass, field

from tqdm.auto import tqdm

__all__ = ["experiment", "REGISTRY", "Config", "Run", "Mean", "get", "names", "parse_setting", "host_values",
           "on_device"]

REGISTRY = {}
_MODULES = ["regression", "classification", "language", "attention", "optimization"]


@dataclass
class Experiment:
    name: str
    fn: object
    description: str
    defaults: dict = field(default_factory=dict)
    devices: tuple = ("cpu", "cuda")   # where it runs (`python -m engine.train <name> --device cuda`)
    data_parallel: bool = False        # trains data-parallel under mpiexec (engine.distributed)


def experiment(name, description, devices=("cpu", "cuda"), data_parallel=False, **defaults):
    """Register `fn(cfg, run)` under `name`; `defaults` are its hyper-parameters (epochs, lr, ...); `devices`
    where it can run (cfg.device says which); `data_parallel` whether it trains data-parallel when launched
    with several ranks (`mpiexec -n 4 python -m mpi4py -m engine.train <name>`)."""
    def register(fn):
        REGISTRY[name] = Experiment(name, fn, description, defaults, tuple(devices), bool(data_parallel))
        return fn
    return register


def _load_all():
    for m in _MODULES:                # an import error in an experiment module surfaces, as any other would
        importlib.import_module(f"{__name__}.{m}")


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


def on_device(arrays, device):
    """Host arrays (NumPy) as Tensors on `device`, each keeping its dtype: one copy each, made once."""
    import engine
    return [engine.tensor(a, dtype=a.dtype, device=device) for a in arrays]


def host_values(values):
    """0-d Tensors (losses, sums; all on one device) as Python floats, read back in one copy."""
    import engine
    values = list(values)
    if not values:
        return []
    with engine.no_grad():
        return engine.stack([v.detach().reshape(()).double() for v in values]).tolist()


class Mean:
    """A running mean whose sum stays on the values' device, in float64, with no host read until `value()`
    (one read). `add_mean(mean, count)` adds a 0-d Tensor that is the mean of `count` items (a minibatch's
    loss); `add_sum(total, count)` one that is their sum (a batch's hit count). `total` is the sum so far, a
    0-d Tensor (None before the first add)."""

    def __init__(self):
        self.total, self.count = None, 0

    def add_sum(self, total, count):
        import engine
        with engine.no_grad():
            t = total.detach().double()
            self.total = t if self.total is None else self.total + t
        self.count += count

    def add_mean(self, mean, count):
        import engine
        with engine.no_grad():
            self.add_sum(mean.detach().double() * count, count)

    def value(self):
        return self.total.item() / self.count if self.count else float("nan")


def _duration(s):
    return f"{s:.0f} s" if s < 60 else f"{int(s // 60)} min {int(s % 60):02d} s"


class Run:
    """What an experiment reports to: curves (per epoch), figures, a progress bar, notes.

    Each logged epoch prints its metrics with the time the current training loop has taken and an
    estimate of the time it has left (cfg.epochs minus the epoch, at the mean epoch time so far); a
    loop is counted anew when the epoch number starts again (an experiment that trains several models).
    Reading a value on "cuda" makes the host wait for the GPU, so the progress bar reads its running metrics
    every `every` steps only (never when quiet), and `log_later` queues epochs whose metrics are device
    values, to be read `every` epochs at a time in one copy."""

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
        self._steps = 0           # calls of running() since the progress bar opened
        self._queued = []         # (epoch, {metric: 0-d Tensor}) waiting for log_later's read

    def progress(self, iterable, desc="", total=None):
        """Wrap an iterable in a progress bar (silent when quiet); its label carries the time left."""
        if self.left_s:
            desc = f"{desc} (~{_duration(self.left_s)} left)" if desc else f"~{_duration(self.left_s)} left"
        self._bar = tqdm(iterable, desc=desc, total=total, disable=self.quiet, leave=False, dynamic_ncols=True)
        self._steps = 0
        return self._bar

    def close(self):
        """Close the current progress bar (the runner calls it when a run is interrupted)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    every = 50                    # steps between reads of running metrics; epochs per log_later read

    def running(self, **metrics):
        """Show running metrics on the current progress bar: numbers, or callables that give them (a `Mean`'s
        value: a host read on "cuda"). Callables are called on the first and every `every`-th call only, and
        never when the run is quiet."""
        if self._bar is None or self.quiet:
            return
        self._steps += 1
        if (self._steps - 1) % self.every and any(callable(v) for v in metrics.values()):
            return
        values = {k: v() if callable(v) else v for k, v in metrics.items()}
        self._bar.set_postfix({k: f"{v:.4g}" for k, v in values.items()}, refresh=False)

    def log_later(self, epoch, **metrics):
        """`log(epoch, **metrics)` for metrics that are 0-d Tensors on the device, without a host read now: the
        queued epochs are read back in one copy and logged once `every` have piled up, or at `flush()`."""
        self._queued.append((epoch, metrics))
        if len(self._queued) >= self.every:
            self.flush()

    def flush(self):
        """Read back and log the epochs that log_later queued (one host read)."""
        queued, self._queued = self._queued, []
        values = iter(host_values([v for _, m in queued for v in m.values()]))
        for epoch, m in queued:
            self.log(epoch, **{k: next(values) for k in m})

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
