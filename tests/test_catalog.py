"""The bad-input catalog (issue 9): every public op, layer, loss and optimizer on classes of bad or hard input,
compared with PyTorch.

Each row of CASES is one input: an id, its class, what PyTorch 2.13 does with it (RAISES or VALUES) and the
call, written once for both libraries (`S.F`, `S.nn`, `S.optim` are the engine's or PyTorch's). Inputs are
float64 unless the class is about dtypes. The test checks that:
  - PyTorch still does what the row records (when PyTorch is installed; the table is its memory otherwise),
  - where PyTorch raises, the engine raises TypeError, ValueError or RuntimeError (or the class PyTorch
    raises, `also=`) with a message matching `match`, which names the argument: never an internal error,
  - where PyTorch returns, the engine returns the same values and the same gradients (float64, compared with
    PyTorch's run: skipped when PyTorch is not installed).
A documented deliberate difference (`differs=`) says why, and the row then asserts the engine's own behaviour:
it raises (`match=`), or `expect(outputs, gradients)` holds (also for random ops, and for the engine's own
ops, which PyTorch lacks: `torch=None`). Tensor-level findings (engine/tensor.py, not the ops) are strict
xfails marked "tensor-level, lead" while they stand, and keep their finding in `note=` once fixed.

Classes: type (not a tensor, a list, a str), dtype (int, bool, float16, mixed), rank, shape (mismatched
arguments), range (dims, indices, class labels, lengths), size (kernel larger than the input, sequences
past max_len), hyper (negative, zero or NaN kernel_size, stride, padding, p, eps, lr, momentum, betas...),
0-d, empty (a zero-size dim anywhere), nonfinite (NaN, +-inf), extreme (+-3e38 float32, 1e300, 1e-310,
ties), noncontig (transposed and strided views).
"""
import math
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np
import pytest

import engine
import engine.functional
import engine.information
import engine.nn
import engine.optim

try:
    import torch
except ImportError:                      # the catalog's VALUES rows skip; its RAISES rows still run
    torch = None

RAISES, VALUES = "raises", "values"
ERRORS = (TypeError, ValueError, RuntimeError)
_rng = np.random.default_rng(9)


def rnd(*shape, dtype=np.float64, scale=1.0):
    return (_rng.standard_normal(shape) * scale).astype(dtype)


def ints(*shape, hi=3):
    return _rng.integers(0, hi, shape).astype(np.int64)


@dataclass(frozen=True)
class C:
    """An input passed as a tensor that does not require grad (masks, running statistics, targets)."""
    a: object


@dataclass(frozen=True)
class Raw:
    """An input passed as it is (a NumPy array, a list, None: the wrong-type rows)."""
    a: object


@dataclass
class Case:
    id: str
    cls: str
    inputs: tuple
    call: Callable
    torch: Optional[str]                  # RAISES, VALUES, or None: the engine has the op, PyTorch does not
    match: Optional[str] = None           # the engine raises, with a message matching this
    also: tuple = ()                      # exception classes accepted besides ERRORS (PyTorch's own choice)
    differs: Optional[str] = None         # why the engine deliberately differs from PyTorch here
    expect: Optional[Callable] = None     # the engine's documented values, where it differs or PyTorch lacks the op
    tcall: Optional[Callable] = None      # PyTorch's call where it is spelled differently
    rtol: float = 1e-7
    atol: float = 1e-12
    xfail: Optional[str] = None
    note: Optional[str] = None            # a finding this row recorded, fixed since (the report lists them)
    marks: list = field(default_factory=list)


class Side:
    """What a row's call sees: the engine or PyTorch, behind one set of names."""

    def __init__(self, name, shared):
        self.name, self.shared = name, shared
        if name == "engine":
            self.lib, self.F, self.nn, self.optim = engine, engine.functional, engine.nn, engine.optim
        else:
            self.lib, self.F, self.nn, self.optim = torch, torch.nn.functional, torch.nn, torch.optim

    def tensor(self, a, grad=False):
        a = np.asarray(a)
        if self.name == "engine":
            return engine.tensor(a, dtype=a.dtype, requires_grad=grad)
        return torch.tensor(a, requires_grad=grad)

    def param(self, a):
        return self.nn.Parameter(self.tensor(np.array(a)) if self.name == "torch" else np.array(a))

    def layer(self, cls, *args, **kw):
        """nn.<cls>(*args, **kw) in float64, with PyTorch's initial weights on both sides."""
        m = getattr(self.nn, cls)(*args, dtype=torch.float64 if self.name == "torch" else np.float64, **kw)
        if self.name == "torch":
            self.shared[cls] = {k: v.detach().numpy().copy() for k, v in m.state_dict().items()}
        elif cls in self.shared:
            m.load_state_dict({k: engine.tensor(v, dtype=v.dtype) for k, v in self.shared[cls].items()})
        return m

    def steps(self, cls, p, grads, **kw):
        """The parameter p after one optimizer step per gradient in grads."""
        p = self.param(p)
        opt = getattr(self.optim, cls)([p], **kw)
        for g in grads:
            p.grad = self.tensor(np.asarray(g))
            opt.step()
        return p.detach()


def _leaves(out):
    if isinstance(out, (tuple, list)):
        return [t for o in out for t in _leaves(o)]
    return [out] if out is not None and hasattr(out, "shape") else []


def _numpy(t):
    return t.detach().numpy() if torch is not None and isinstance(t, torch.Tensor) else np.asarray(t.numpy())


def run(side, case):
    """(output arrays, gradient arrays of the inputs that require grad) of one side's run of a case."""
    args = []
    for a in case.inputs:
        if isinstance(a, Raw):
            args.append(a.a)
        elif isinstance(a, C):
            args.append(side.tensor(a.a))
        else:
            args.append(side.tensor(a, grad=np.asarray(a).dtype.kind == "f"))
    call = case.tcall if side.name == "torch" and case.tcall is not None else case.call
    outs = _leaves(call(side, *args))
    rng = np.random.default_rng(len(case.id))
    douts = [rng.standard_normal(o.shape) for o in outs]
    live = [(o, d) for o, d in zip(outs, douts) if o.requires_grad]
    if live:
        total = None
        for o, d in live:
            term = (o * side.tensor(d.astype(_numpy(o).dtype))).sum()
            total = term if total is None else total + term
        total.backward()
    grads = [None if t.grad is None else _numpy(t.grad) for t in args if getattr(t, "requires_grad", False)]
    return [_numpy(o) for o in outs], grads


def _same(engine_arrays, torch_arrays, rtol, atol, what):
    assert len(engine_arrays) == len(torch_arrays), f"{what}: {len(engine_arrays)} vs {len(torch_arrays)}"
    for i, (e, t) in enumerate(zip(engine_arrays, torch_arrays)):
        if e is None or t is None:                     # no gradient on one side is a zero gradient
            other = t if e is None else e
            assert other is None or not np.any(other), f"{what}[{i}]: None against nonzero"
            continue
        assert e.shape == t.shape, f"{what}[{i}]: shape {e.shape} vs PyTorch's {t.shape}"
        assert e.dtype == t.dtype, f"{what}[{i}]: dtype {e.dtype} vs PyTorch's {t.dtype}"
        np.testing.assert_allclose(e, t, rtol=rtol, atol=atol, equal_nan=True, err_msg=f"{what}[{i}]")


def check(case):
    shared = {}
    if case.torch is not None and torch is not None:
        try:
            want = run(Side("torch", shared), case)
            got_torch = VALUES
        except Exception as e:                         # noqa: BLE001: any PyTorch error counts as raising
            got_torch, torch_error = RAISES, e
        assert got_torch == case.torch, (f"PyTorch {got_torch} here, the table says {case.torch}"
                                         + (f" ({type(torch_error).__name__}: {torch_error})"
                                            if got_torch == RAISES else ""))
    engine_raises = case.match is not None
    if case.torch is None:
        assert engine_raises or case.expect, "a row without PyTorch says what the engine does (match= or expect=)"
    elif case.differs:
        assert engine_raises != (case.torch == RAISES) or case.expect, "differs= on a row where nothing differs"
    else:
        assert engine_raises == (case.torch == RAISES), "a row where the engine and PyTorch part ways says why"
    if engine_raises:
        with pytest.raises(ERRORS + tuple(case.also), match=case.match):
            run(Side("engine", shared), case)
        return
    got = run(Side("engine", shared), case)
    if case.expect is not None:
        assert case.expect(*got), "the engine's documented behaviour does not hold"
        return
    if torch is None:
        pytest.skip("PyTorch is not installed: nothing to compare the values with")
    _same(got[0], want[0], case.rtol, case.atol, "output")
    _same(got[1], want[1], max(case.rtol, 1e-7), case.atol, "gradient")


R = Case
V, X = VALUES, RAISES
CASES = []


def arr(*v, dtype=np.float64):
    return np.array(v, dtype=dtype)


NONFINITE = arr(np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0)
DIFF_DTYPE = "float32 and float64 only: other dtypes raise TypeError naming the argument"
RANDOM = "a random op: the engine's draw is checked, not PyTorch's"


def dropped_or_scaled(p):
    """A 0-d input of 1.5: dropped (0, gradient 0) or kept (1.5 / (1 - p), gradient nonzero), shape ()."""
    def ok(outs, grads):
        (y,), (g,) = outs, grads
        kept = float(y) != 0.0
        return y.shape == g.shape == () and (float(y) == 1.5 / (1 - p) if kept else float(g) == 0.0) \
            and (float(g) != 0.0) == kept
    return ok


# ---- activations and dropout -------------------------------------------------------------------------------
for _op in ("relu", "sigmoid", "tanh"):
    CASES += [
        R(f"{_op}-0d", "0-d", (np.array(1.5),), lambda S, x, o=_op: getattr(S.F, o)(x), V),
        R(f"{_op}-empty", "empty", (rnd(0, 3),), lambda S, x, o=_op: getattr(S.F, o)(x), V),
        R(f"{_op}-nonfinite", "nonfinite", (NONFINITE,), lambda S, x, o=_op: getattr(S.F, o)(x), V),
        R(f"{_op}-extreme", "extreme", (arr(-1e308, 1e308, -745.0, 710.0, 1e-310, -1e-310),),
          lambda S, x, o=_op: getattr(S.F, o)(x), V),
        R(f"{_op}-noncontig", "noncontig", (rnd(3, 4),), lambda S, x, o=_op: getattr(S.F, o)(x.transpose(0, 1)), V),
        R(f"{_op}-int", "dtype", (ints(3),), lambda S, x, o=_op: getattr(S.F, o)(x), V, match="input",
          differs=DIFF_DTYPE),
        R(f"{_op}-float16", "dtype", (rnd(3, dtype=np.float16),), lambda S, x, o=_op: getattr(S.F, o)(x), V,
          match="input", differs=DIFF_DTYPE),
        R(f"{_op}-ndarray", "type", (Raw(rnd(3)),), lambda S, x, o=_op: getattr(S.F, o)(x), X, match="input"),
    ]
CASES += [
    R("relu-bool", "dtype", (np.array([True, False]),), lambda S, x: S.F.relu(x), X, match="input"),
    R("relu-list", "type", (Raw([1.0, -1.0]),), lambda S, x: S.F.relu(x), X, match="input"),
    R("dropout-0d", "0-d", (np.array(1.5),), lambda S, x: S.F.dropout(x, 0.5), V, expect=dropped_or_scaled(0.5),
      differs=RANDOM),
    R("dropout-empty", "empty", (rnd(0, 4),), lambda S, x: S.F.dropout(x, 0.5), V),
    R("dropout-p1", "hyper", (rnd(3, 4),), lambda S, x: S.F.dropout(x, 1.0), V),
    R("dropout-p0", "hyper", (rnd(3, 4),), lambda S, x: S.F.dropout(x, 0.0), V),
    R("dropout-eval", "hyper", (rnd(3, 4),), lambda S, x: S.F.dropout(x, 0.5, training=False), V),
    R("dropout-p-negative", "hyper", (rnd(3),), lambda S, x: S.F.dropout(x, -0.1), X, match="p"),
    R("dropout-p-above-1", "hyper", (rnd(3),), lambda S, x: S.F.dropout(x, 1.5), X, match="p"),
    R("dropout-p-nan", "hyper", (rnd(3),), lambda S, x: S.F.dropout(x, math.nan), X, match="p"),
    R("dropout-p-str", "type", (rnd(3),), lambda S, x: S.F.dropout(x, "0.5"), X, match="p"),
    R("dropout-training-str", "type", (rnd(3),), lambda S, x: S.F.dropout(x, 0.5, "yes"), X, match="training"),
    R("dropout-int", "dtype", (ints(3),), lambda S, x: S.F.dropout(x, 0.5), X, match="input"),
    R("dropout-nonfinite-p1", "nonfinite", (NONFINITE,), lambda S, x: S.F.dropout(x, 1.0), V,
      differs="a dropped element is exactly 0 (PyTorch multiplies by the mask: a dropped inf or NaN gives NaN)",
      expect=lambda outs, grads: not np.any(outs[0]) and not np.any(grads[0])),
    R("dropout-nonfinite-p0.5", "nonfinite", (np.full(64, np.nan),), lambda S, x: S.F.dropout(x, 0.5), V,
      differs=RANDOM, expect=lambda outs, grads: np.isnan(outs[0]).any() and (outs[0] == 0).any()),
    R("Dropout-layer-0d", "0-d", (np.array(1.5),), lambda S, x: S.nn.Dropout(0.5)(x), V,
      expect=dropped_or_scaled(0.5), differs=RANDOM),
    R("Dropout-layer-p", "hyper", (), lambda S: S.nn.Dropout(1.5), X, match="p"),
]
gelu = lambda a: (lambda S, x: S.F.gelu(x, approximate=a))      # noqa: E731
for _a in ("none", "tanh"):
    CASES += [
        R(f"gelu-{_a}-0d", "0-d", (np.array(1.5),), gelu(_a), V),
        R(f"gelu-{_a}-empty", "empty", (rnd(0, 3),), gelu(_a), V),
        R(f"gelu-{_a}-nonfinite", "nonfinite", (NONFINITE,), gelu(_a), V),
        R(f"gelu-{_a}-moderate", "extreme", (arr(-745.0, 710.0, -38.0, -8.0, 1e-310, -1e-310, 30.0),), gelu(_a), V),
        R(f"gelu-{_a}-noncontig", "noncontig", (rnd(3, 4),),
          lambda S, x, a=_a: S.F.gelu(x.transpose(0, 1), approximate=a), V),
        R(f"gelu-{_a}-int", "dtype", (ints(3),), gelu(_a), X, match="input", also=(NotImplementedError,)),
        R(f"GELU-{_a}-layer", "shape", (rnd(2, 3),), lambda S, x, a=_a: S.nn.GELU(approximate=a)(x), V),
    ]
CASES += [
    R("gelu-none-huge", "extreme", (arr(-1e308, 1e308),), gelu("none"), V),
    R("gelu-tanh-huge", "extreme", (arr(-1e308, 1e308),), gelu("tanh"), V,
      differs="the gradient at a huge finite x is its limit, 0 or 1 (PyTorch: NaN, from x^3 overflowing)",
      expect=lambda outs, grads: outs[0].tolist() == [0.0, 1e308] and grads[0][0] == 0 and grads[0][1] != 0
      and np.isfinite(grads[0]).all()),           # grads[0] is dout * (0, 1) for the row's random dout
    R("gelu-approximate-str", "hyper", (rnd(3),), lambda S, x: S.F.gelu(x, approximate="erf"), X,
      match="approximate"),
    R("GELU-approximate-str", "hyper", (), lambda S: S.nn.GELU("exact"), V, match="approximate",
      differs="nn.GELU checks approximate when it is built (PyTorch at its first call)"),
    R("gelu-ndarray", "type", (Raw(rnd(3)),), gelu("none"), X, match="input"),
]

# ---- the softmax family ------------------------------------------------------------------------------------
ALL_NEG_INF = np.array([[-np.inf, -np.inf, -np.inf], [0.0, 1.0, -np.inf]])
for _op in ("softmax", "log_softmax"):
    f = lambda o, **kw: (lambda S, x: getattr(S.F, o)(x, **kw))      # noqa: E731
    CASES += [
        R(f"{_op}-0d", "0-d", (np.array(2.0),), f(_op, dim=0), V),
        R(f"{_op}-0d-dim-1", "0-d", (np.array(2.0),), f(_op, dim=-1), V),
        R(f"{_op}-empty-rows", "empty", (rnd(0, 3),), f(_op, dim=1), V),
        R(f"{_op}-empty-dim", "empty", (rnd(3, 0),), f(_op, dim=1), V),
        R(f"{_op}-dim-0", "shape", (rnd(3, 4),), f(_op, dim=0), V),
        R(f"{_op}-dim-out-of-range", "range", (rnd(3, 4),), f(_op, dim=2), X, match="dim", also=(IndexError,)),
        R(f"{_op}-dim-negative-out", "range", (rnd(3, 4),), f(_op, dim=-3), X, match="dim", also=(IndexError,)),
        R(f"{_op}-dim-float", "type", (rnd(3, 4),), f(_op, dim=1.0), X, match="dim"),
        R(f"{_op}-int", "dtype", (ints(3, 4),), f(_op, dim=1), X, match="input"),
        R(f"{_op}-float16", "dtype", (rnd(3, 4, dtype=np.float16),), f(_op, dim=1), V, match="input",
          differs=DIFF_DTYPE),
        R(f"{_op}-nan", "nonfinite", (np.array([[0.0, np.nan, 1.0], [0.0, 1.0, 2.0]]),), f(_op, dim=1), V),
        R(f"{_op}-posinf", "nonfinite", (np.array([[0.0, np.inf, 1.0], [0.0, 1.0, 2.0]]),), f(_op, dim=1), V),
        R(f"{_op}-neginf", "nonfinite", (np.array([[0.0, -np.inf, 1.0]]),), f(_op, dim=1), V),
        R(f"{_op}-all-neginf-row", "nonfinite", (ALL_NEG_INF,), f(_op, dim=1), V,
          differs=("a row of all -inf gives zeros from softmax, -inf from log_softmax, with zero gradients "
                   "(PyTorch: NaN)"),
          expect=(lambda outs, grads, o=_op: (np.all(outs[0][0] == 0) if o == "softmax" else
                                              np.all(outs[0][0] == -np.inf)) and np.all(np.isfinite(outs[0][1][:2]))
                  and np.all(np.isfinite(grads[0])))),
        R(f"{_op}-huge-f64", "extreme", (np.array([[1e308, 1e308, -1e308, 1e308]]),), f(_op, dim=1), V),
        R(f"{_op}-huge-f32", "extreme", (np.array([[3e38, 3e38, -3e38, 0.0]], np.float32),), f(_op, dim=1), V,
          rtol=1e-6),
        R(f"{_op}-tiny", "extreme", (np.array([[1e-300, -1e-300, 5e-324]]),), f(_op, dim=1), V),
        R(f"{_op}-noncontig", "noncontig", (rnd(3, 4),), lambda S, x, o=_op: getattr(S.F, o)(x.transpose(0, 1), dim=0),
          V),
        R(f"{_op}-ndarray", "type", (Raw(rnd(3)),), f(_op, dim=0), X, match="input"),
        R(f"{_op}-3d-middle-dim", "shape", (rnd(2, 3, 4),), f(_op, dim=1), V),
    ]
CASES += [
    R("softmax-dim-None", "hyper", (rnd(3, 4),), lambda S, x: S.F.softmax(x, dim=None), V, match="dim",
      differs="PyTorch's implicit dim choice (dim=None) is deprecated there; the engine takes an int"),
    R("Softmax-layer-dim-out", "range", (rnd(3, 4),), lambda S, x: S.nn.Softmax(dim=5)(x), X, match="dim",
      also=(IndexError,)),
    R("LogSoftmax-layer", "shape", (rnd(3, 4),), lambda S, x: S.nn.LogSoftmax(dim=0)(x), V),
]

# masked_softmax: the book's op; PyTorch has none (its softmax of the masked scores is the reference)
def _torch_masked(S, x, lens):
    keep = torch.arange(x.shape[-1])[None, :] < lens.reshape(-1, 1)
    return torch.softmax(x.masked_fill(~keep.reshape(x.shape), -torch.inf), dim=-1)


CASES += [
    R("masked_softmax-values", "shape", (rnd(2, 3), C(arr(3, 1, dtype=np.int64))),
      lambda S, x, v: S.F.masked_softmax(x, v), V, tcall=_torch_masked),
    R("masked_softmax-zero-length", "range", (rnd(2, 3), C(arr(0, 2, dtype=np.int64))),
      lambda S, x, v: S.F.masked_softmax(x, v), None,
      expect=lambda outs, grads: np.all(outs[0][0] == 0) and np.all(grads[0][0] == 0) and outs[0][1, :2].sum() > .99),
    R("masked_softmax-length-past-K", "range", (rnd(2, 3), C(arr(4, 1, dtype=np.int64))),
      lambda S, x, v: S.F.masked_softmax(x, v), None, match="valid_lens"),
    R("masked_softmax-negative-length", "range", (rnd(2, 3), C(arr(-1, 1, dtype=np.int64))),
      lambda S, x, v: S.F.masked_softmax(x, v), None, match="valid_lens"),
    R("masked_softmax-float-lengths", "dtype", (rnd(2, 3), C(arr(1.0, 2.0))),
      lambda S, x, v: S.F.masked_softmax(x, v), None, match="valid_lens"),
    R("masked_softmax-shape", "shape", (rnd(2, 3), C(arr(1, 2, 3, dtype=np.int64))),
      lambda S, x, v: S.F.masked_softmax(x, v), None, match="valid_lens"),
    R("masked_softmax-1d", "rank", (rnd(3), C(arr(1, dtype=np.int64))),
      lambda S, x, v: S.F.masked_softmax(x, v), None, match="X"),
    R("masked_softmax-empty", "empty", (rnd(0, 3), C(np.zeros(0, np.int64))),
      lambda S, x, v: S.F.masked_softmax(x, v), None, expect=lambda outs, grads: outs[0].shape == (0, 3)),
    R("masked_softmax-ndarray-lens", "type", (rnd(2, 3), Raw(arr(1, 2, dtype=np.int64))),
      lambda S, x, v: S.F.masked_softmax(x, v), None, match="valid_lens"),
]

# ---- losses ------------------------------------------------------------------------------------------------
T3 = C(arr(0, 2, 1, 0, dtype=np.int64))
ce = lambda **kw: (lambda S, x, t: S.F.cross_entropy(x, t, **kw))      # noqa: E731
NAN_MEAN = "the mean over no targets is 0.0 with zero gradient (PyTorch: NaN)"
CASES += [
    R("cross_entropy-values", "shape", (rnd(4, 3), T3), ce(), V),
    R("cross_entropy-0d-target", "0-d", (rnd(3), C(np.array(2))), ce(), V),
    R("cross_entropy-0d-input", "0-d", (np.array(1.0), C(np.array(0))), ce(), X, match="input"),
    R("cross_entropy-kdim", "shape", (rnd(2, 3, 4), C(ints(2, 4))), ce(), V),
    R("cross_entropy-target-past-C", "range", (rnd(4, 3), C(arr(0, 3, 1, 0, dtype=np.int64))), ce(), X,
      match="target"),
    R("cross_entropy-target-negative", "range", (rnd(4, 3), C(arr(0, -1, 1, 0, dtype=np.int64))), ce(), X,
      match="target"),
    R("cross_entropy-target-float", "dtype", (rnd(4, 3), C(arr(0.0, 1.0, 1.0, 0.0))), ce(), X, match="target"),
    R("cross_entropy-target-bool", "dtype", (rnd(2, 3), C(np.array([True, False]))), ce(), X, match="target"),
    R("cross_entropy-target-int32", "dtype", (rnd(4, 3), C(arr(0, 2, 1, 0, dtype=np.int32))), ce(), X,
      differs="any integer dtype is a class index (PyTorch wants int64 or uint8)",
      expect=lambda outs, grads: np.isfinite(outs[0]) and grads[0].shape == (4, 3)),
    R("cross_entropy-target-shape", "shape", (rnd(4, 3), C(ints(5))), ce(), X, match="target"),
    R("cross_entropy-no-classes", "empty", (rnd(2, 0), C(ints(2, hi=1))), ce(), X, match="input|target"),
    R("cross_entropy-empty-sum", "empty", (rnd(0, 3), C(np.zeros(0, np.int64))), ce(reduction="sum"), V),
    R("cross_entropy-empty-none", "empty", (rnd(0, 3), C(np.zeros(0, np.int64))), ce(reduction="none"), V),
    R("cross_entropy-empty-mean", "empty", (rnd(0, 3), C(np.zeros(0, np.int64))), ce(), V, differs=NAN_MEAN,
      expect=lambda outs, grads: float(outs[0]) == 0.0),
    R("cross_entropy-all-ignored", "range", (rnd(2, 3), C(arr(-100, -100, dtype=np.int64))), ce(), V,
      differs=NAN_MEAN, expect=lambda outs, grads: float(outs[0]) == 0.0 and not np.any(grads[0])),
    R("cross_entropy-ignore-index", "range", (rnd(4, 3), C(arr(0, 5, 1, 5, dtype=np.int64))), ce(ignore_index=5), V),
    R("cross_entropy-smoothing", "hyper", (rnd(4, 3), T3), ce(label_smoothing=0.3), V),
    R("cross_entropy-smoothing-1.5", "hyper", (rnd(4, 3), T3), ce(label_smoothing=1.5), X, match="label_smoothing"),
    R("cross_entropy-smoothing-negative", "hyper", (rnd(4, 3), T3), ce(label_smoothing=-0.1), V,
      match="label_smoothing", differs="label_smoothing must be in [0, 1] (PyTorch takes a negative one)"),
    R("cross_entropy-reduction", "hyper", (rnd(4, 3), T3), ce(reduction="avg"), X, match="reduction"),
    R("cross_entropy-ignore-index-float", "type", (rnd(4, 3), T3), ce(ignore_index=1.5), X, match="ignore_index"),
    R("cross_entropy-logits-int", "dtype", (ints(4, 3), T3), ce(), X, match="input"),
    R("cross_entropy-nan", "nonfinite", (np.array([[0.0, np.nan, 1.0], [0.0, 1.0, 2.0]]), C(arr(0, 1, dtype=np.int64))),
      ce(reduction="none"), V),
    R("cross_entropy-posinf", "nonfinite", (np.array([[0.0, np.inf, 1.0], [0.0, 1.0, 2.0]]),
                                            C(arr(0, 1, dtype=np.int64))), ce(reduction="none"), V),
    R("cross_entropy-neginf-target", "nonfinite", (np.array([[0.0, -np.inf, 1.0], [0.0, -np.inf, 2.0]]),
                                                   C(arr(0, 1, dtype=np.int64))), ce(reduction="none"), V),
    R("cross_entropy-4-equal-3e38-f32", "extreme", (np.full((1, 4), 3e38, np.float32), C(arr(0, dtype=np.int64))),
      ce(), V, rtol=1e-6),
    R("cross_entropy-tied-3e38-f32", "extreme", (np.array([[3e38, 3e38, -3e38]], np.float32),
                                                 C(arr(0, dtype=np.int64))), ce(), V, rtol=1e-6),
    R("cross_entropy-tied-1e300", "extreme", (np.array([[1e300, 1e300, -1e300, 0.0]]), C(arr(0, dtype=np.int64))),
      ce(), V),
    R("cross_entropy-1e20-spread", "extreme", (np.array([[1e20, 1e20 - 2e4, 1e20 + 3e4]]), C(arr(0, dtype=np.int64))),
      ce(), V),
    R("cross_entropy-1e300-smoothing", "extreme", (np.array([[1e300, 1e300, 1e300]]), C(arr(1, dtype=np.int64))),
      ce(label_smoothing=0.2), V),
    R("cross_entropy-1e20-smoothing", "extreme", (np.array([[1e20, 1e20 - 2e4, 1e20 + 3e4]]),
                                                  C(arr(1, dtype=np.int64))), ce(label_smoothing=0.2), V),
    R("cross_entropy-noncontig", "noncontig", (rnd(3, 4), T3),
      lambda S, x, t: S.F.cross_entropy(x.transpose(0, 1), t), V),
    R("cross_entropy-ndarray-target", "type", (rnd(4, 3), Raw(arr(0, 2, 1, 0, dtype=np.int64))), ce(), X,
      match="target"),
    R("CrossEntropyLoss-reduction", "hyper", (rnd(4, 3), T3),
      lambda S, x, t: S.nn.CrossEntropyLoss(reduction="bad")(x, t), X, match="reduction"),
]
nll = lambda **kw: (lambda S, x, t: S.F.nll_loss(x, t, **kw))      # noqa: E731
CASES += [
    R("nll_loss-values", "shape", (rnd(4, 3), T3), nll(), V),
    R("nll_loss-weight", "hyper", (rnd(4, 3), T3, C(np.abs(rnd(3)))), lambda S, x, t, w: S.F.nll_loss(x, t, w), V),
    R("nll_loss-ignore", "range", (rnd(4, 3), C(arr(0, -100, 1, -100, dtype=np.int64))), nll(), V),
    R("nll_loss-kdim", "shape", (rnd(2, 3, 4), C(ints(2, 4))), nll(reduction="none"), V),
    R("nll_loss-unbatched", "0-d", (rnd(3), C(np.array(1))), nll(), V),
    R("nll_loss-0d-input", "0-d", (np.array(1.0), C(np.array(0))), nll(), X, match="input"),
    R("nll_loss-empty-mean", "empty", (rnd(0, 3), C(np.zeros(0, np.int64))), nll(), V),
    R("nll_loss-target-past-C", "range", (rnd(4, 3), C(arr(0, 3, 1, 0, dtype=np.int64))), nll(), X, match="target"),
    R("nll_loss-target-float", "dtype", (rnd(4, 3), C(arr(0.0, 1.0, 1.0, 0.0))), nll(), X, match="target"),
    R("nll_loss-target-shape", "shape", (rnd(4, 3), C(ints(3))), nll(), X, match="target"),
    R("nll_loss-weight-shape", "shape", (rnd(4, 3), T3, C(rnd(4))), lambda S, x, t, w: S.F.nll_loss(x, t, w), X,
      match="weight"),
    R("nll_loss-reduction", "hyper", (rnd(4, 3), T3), nll(reduction="avg"), X, match="reduction"),
    R("nll_loss-nonfinite", "nonfinite", (np.array([[np.nan, -np.inf, 0.0], [-1.0, np.inf, 0.0]]),
                                          C(arr(0, 1, dtype=np.int64))), nll(reduction="none"), V),
    R("nll_loss-noncontig", "noncontig", (rnd(3, 4), T3), lambda S, x, t: S.F.nll_loss(x.transpose(0, 1), t), V),
]
oh = lambda *a: (lambda S, t: S.F.one_hot(t, *a))      # noqa: E731
CASES += [
    R("one_hot-values", "shape", (C(arr(0, 2, 1, dtype=np.int64)),), oh(4), V),
    R("one_hot-infer", "shape", (C(arr(0, 2, 1, dtype=np.int64)),), oh(), V),
    R("one_hot-0d", "0-d", (C(np.array(2)),), oh(3), V),
    R("one_hot-empty", "empty", (C(np.zeros((0, 2), np.int64)),), oh(3), V),
    R("one_hot-empty-infer", "empty", (C(np.zeros(0, np.int64)),), oh(), X, match="num_classes"),
    R("one_hot-past", "range", (C(arr(0, 4, dtype=np.int64)),), oh(3), X, match="class|tensor"),
    R("one_hot-negative", "range", (C(arr(0, -1, dtype=np.int64)),), oh(3), X, match="class|tensor"),
    R("one_hot-float", "dtype", (C(arr(0.0, 1.0)),), oh(3), X, match="tensor"),
    R("one_hot-num-classes", "hyper", (C(arr(0, 1, dtype=np.int64)),), oh(-2), X, match="num_classes"),
]
mse = lambda **kw: (lambda S, x, t: S.F.mse_loss(x, t, **kw))      # noqa: E731
CASES += [
    R("mse_loss-values", "shape", (rnd(3, 2), rnd(3, 2)), mse(), V),
    R("mse_loss-0d", "0-d", (np.array(1.5), np.array(-0.5)), mse(), V),
    R("mse_loss-empty-mean", "empty", (rnd(0, 2), rnd(0, 2)), mse(), V),
    R("mse_loss-empty-sum", "empty", (rnd(0, 2), rnd(0, 2)), mse(reduction="sum"), V),
    R("mse_loss-broadcast", "shape", (rnd(3), rnd(1)), mse(), V, match="target",
      differs="no broadcasting: a target of another shape raises (PyTorch broadcasts with a warning)"),
    R("mse_loss-shape", "shape", (rnd(3), rnd(4)), mse(), X, match="target"),
    R("mse_loss-int", "dtype", (ints(3), ints(3)), mse(), X, match="input"),
    R("mse_loss-mixed-dtypes", "dtype", (rnd(3, dtype=np.float32), rnd(3)), mse(), V, match="target",
      differs="one float dtype for input and target (PyTorch promotes)"),
    R("mse_loss-nonfinite", "nonfinite", (NONFINITE, np.zeros(7)), mse(reduction="none"), V),
    R("mse_loss-huge", "extreme", (arr(1e200, -1e200), arr(-1e200, 1e200)), mse(), V),
    R("mse_loss-reduction", "hyper", (rnd(3), rnd(3)), mse(reduction="bad"), X, match="reduction"),
    R("mse_loss-noncontig", "noncontig", (rnd(3, 4), rnd(4, 3)), lambda S, x, t: S.F.mse_loss(x.transpose(0, 1), t), V),
    R("mse_loss-ndarray-target", "type", (rnd(3), Raw(rnd(3))), mse(), X, match="target"),
    R("MSELoss-reduction", "hyper", (rnd(3), rnd(3)), lambda S, x, t: S.nn.MSELoss(reduction="bad")(x, t), X,
      match="reduction"),
]

# ---- normalization -----------------------------------------------------------------------------------------
RM, RV = C(rnd(3)), C(np.abs(rnd(3)) + 0.5)
bn = lambda **kw: (lambda S, x, m, v, w, b: S.F.batch_norm(x, m, v, w, b, **kw))      # noqa: E731
BN_IN = lambda x: (x, RM, RV, rnd(3), rnd(3))      # noqa: E731
CASES += [
    R("batch_norm-train", "shape", BN_IN(rnd(4, 3, 2)), bn(training=True), V),
    R("batch_norm-eval", "shape", BN_IN(rnd(4, 3, 2)), bn(training=False), V),
    R("batch_norm-eval-N0", "empty", BN_IN(rnd(0, 3)), bn(training=False), V),
    R("batch_norm-eval-N0-4d", "empty", BN_IN(rnd(0, 3, 2, 2)), bn(training=False), V),
    R("batch_norm-eval-L0", "empty", BN_IN(rnd(2, 3, 0)), bn(training=False), V),
    R("batch_norm-train-N0", "empty", BN_IN(rnd(0, 3)), lambda S, x, m, v, w, b: (
        S.F.batch_norm(x, m, v, w, b, training=True), m, v), V),
    R("batch_norm-train-one-value", "size", BN_IN(rnd(1, 3)), bn(training=True), X, match="input"),
    R("batch_norm-1d-input", "rank", BN_IN(rnd(3)), bn(training=False), X, match="input"),
    R("batch_norm-running-shape", "shape", (rnd(4, 3), C(rnd(4)), RV, rnd(3), rnd(3)), bn(training=False), X,
      match="running_mean"),
    R("batch_norm-weight-shape", "shape", (rnd(4, 3), RM, RV, rnd(2), rnd(3)), bn(training=False), X, match="weight"),
    R("batch_norm-eps-negative", "hyper", BN_IN(rnd(4, 3)), bn(training=False, eps=-1.0), X, match="eps"),
    R("batch_norm-int", "dtype", (ints(4, 3), RM, RV, rnd(3), rnd(3)), bn(training=False), X, match="input"),
    R("batch_norm-negative-var", "nonfinite", (rnd(4, 3), RM, C(arr(-1.0, 1.0, 2.0)), rnd(3), rnd(3)),
      bn(training=False), V),
    R("batch_norm-nan", "nonfinite", BN_IN(np.array([[np.nan, 1, 2], [0, 1, 2], [3, 4, 5]], float)),
      bn(training=True), V),
    R("batch_norm-train-eps0", "hyper", BN_IN(np.ones((4, 3))), bn(training=True, eps=0.0), X, match="eps"),
    R("batch_norm-eval-eps0", "extreme", (rnd(4, 3), RM, C(arr(0.0, 1.0, 2.0)), rnd(3), rnd(3)),
      bn(training=False, eps=0.0), V,
      differs=("eps = 0 with a zero running variance: (x - mean) * inf gives +-inf (PyTorch's fused "
               "x * scale + shift gives NaN where inf - inf meet)"),
      expect=lambda outs, grads: np.isinf(outs[0][:, 0]).all() and np.isfinite(outs[0][:, 1:]).all()),
    R("batch_norm-constant", "extreme", BN_IN(np.ones((4, 3))), bn(training=True), V),
    R("batch_norm-huge", "extreme", BN_IN(np.array([[1e150, 1, 2], [-1e150, 3, 4]])), bn(training=True), V),
    R("batch_norm-noncontig", "noncontig", BN_IN(rnd(4, 3, 4)),
      lambda S, x, m, v, w, b: S.F.batch_norm(x[:, :, ::2], m, v, w, b, training=True), V),
    R("BatchNorm1d-4d", "rank", (rnd(2, 3, 2, 2),), lambda S, x: S.layer("BatchNorm1d", 3)(x), X, match="input"),
    R("BatchNorm2d-eval-N0", "empty", (rnd(0, 3, 2, 2),), lambda S, x: S.layer("BatchNorm2d", 3).eval()(x), V),
    R("BatchNorm1d-cumulative", "hyper", (rnd(4, 3), rnd(5, 3)),
      lambda S, a, b: (lambda m: (m(a), m(b), m.running_mean, m.running_var))(S.layer("BatchNorm1d", 3, momentum=None)),
      V),
    R("BatchNorm1d-num-features", "hyper", (), lambda S: S.nn.BatchNorm1d(-1), X, match="num_features"),
]
ln = lambda shape, **kw: (lambda S, x, w, b: S.F.layer_norm(x, shape, w, b, **kw))      # noqa: E731
CASES += [
    R("layer_norm-values", "shape", (rnd(2, 3, 4), rnd(3, 4), rnd(3, 4)), ln((3, 4)), V),
    R("layer_norm-int-shape", "shape", (rnd(2, 4),), lambda S, x: S.F.layer_norm(x, 4), X,
      differs="an int normalized_shape means (int,), as nn.LayerNorm takes it (PyTorch's F.layer_norm wants a tuple)",
      expect=lambda outs, grads: np.allclose(outs[0].mean(axis=1), 0) and np.allclose(outs[0].var(axis=1), 1, 1e-2)),
    R("layer_norm-empty-rows", "empty", (rnd(0, 4), rnd(4), rnd(4)), ln((4,)), V),
    R("layer_norm-zero-features", "empty", (rnd(3, 0), C(rnd(0)), C(rnd(0))), ln((0,)), V, match="normalized_shape",
      differs="normalized_shape sizes must be at least 1 (PyTorch returns an empty result)"),
    R("layer_norm-shape-mismatch", "shape", (rnd(2, 4), rnd(3), rnd(3)), ln((3,)), X, match="normalized_shape"),
    R("layer_norm-weight-shape", "shape", (rnd(2, 4), rnd(3), rnd(4)), ln((4,)), X, match="weight"),
    R("layer_norm-0d", "0-d", (np.array(1.0), rnd(1), rnd(1)), ln((1,)), X, match="normalized_shape"),
    R("layer_norm-eps-negative", "hyper", (rnd(2, 4), rnd(4), rnd(4)), ln((4,), eps=-1.0), V, match="eps",
      differs="eps must be >= 0 (PyTorch's layer_norm takes a negative eps and returns NaN where var < -eps)"),
    R("layer_norm-shape-float", "type", (rnd(2, 4), rnd(4), rnd(4)), ln((4.0,)), X, match="normalized_shape"),
    R("layer_norm-constant-eps0", "extreme", (np.ones((2, 4)), rnd(4), rnd(4)), ln((4,), eps=0.0), V),
    R("layer_norm-nan", "nonfinite", (np.array([[np.nan, 1, 2, 3], [0, 1, 2, 3]]), rnd(4), rnd(4)), ln((4,)), V),
    R("layer_norm-huge", "extreme", (np.array([[1e150, -1e150, 1.0, 2.0]]), rnd(4), rnd(4)), ln((4,)), V),
    R("layer_norm-noncontig", "noncontig", (rnd(4, 3), rnd(4), rnd(4)),
      lambda S, x, w, b: S.F.layer_norm(x.transpose(0, 1), (4,), w, b), V),
    R("LayerNorm-negative", "hyper", (), lambda S: S.nn.LayerNorm(-1), X, match="normalized_shape"),
    R("LayerNorm-str", "type", (), lambda S: S.nn.LayerNorm("a"), X, match="normalized_shape"),
]

# ---- convolution and pooling -------------------------------------------------------------------------------
cv = lambda **kw: (lambda S, x, w, b: S.F.conv2d(x, w, b, **kw))      # noqa: E731
CONV_IN = lambda x, w=(2, 1, 3, 3): (x, rnd(*w), rnd(w[0]))      # noqa: E731
CASES += [
    R("conv2d-values", "shape", CONV_IN(rnd(2, 1, 5, 5)), cv(padding=1), V),
    R("conv2d-unbatched", "rank", CONV_IN(rnd(1, 5, 5)), cv(stride=2), V),
    R("conv2d-N0", "empty", CONV_IN(rnd(0, 1, 5, 5)), cv(), V),
    R("conv2d-cout0", "empty", CONV_IN(rnd(1, 1, 5, 5), (0, 1, 3, 3)), cv(), X, match="weight"),
    R("conv2d-2d-input", "rank", CONV_IN(rnd(5, 5)), cv(), X, match="input"),
    R("conv2d-3d-weight", "rank", (rnd(1, 1, 5, 5), rnd(2, 3, 3), rnd(2)), cv(), X, match="weight"),
    R("conv2d-channels", "shape", CONV_IN(rnd(1, 2, 5, 5)), cv(), X, match="input|channels"),
    R("conv2d-bias-shape", "shape", (rnd(1, 1, 5, 5), rnd(2, 1, 3, 3), rnd(3)), cv(), X, match="bias"),
    R("conv2d-kernel-too-big", "size", CONV_IN(rnd(1, 1, 2, 2)), cv(), X, match="kernel|weight"),
    R("conv2d-stride-0", "hyper", CONV_IN(rnd(1, 1, 5, 5)), cv(stride=0), X, match="stride"),
    R("conv2d-stride-float", "type", CONV_IN(rnd(1, 1, 5, 5)), cv(stride=1.5), X, match="stride"),
    R("conv2d-stride-triple", "shape", CONV_IN(rnd(1, 1, 5, 5)), cv(stride=(1, 1, 1)), X, match="stride"),
    R("conv2d-padding-negative", "hyper", CONV_IN(rnd(1, 1, 5, 5)), cv(padding=-1), X, match="padding"),
    R("conv2d-padding-same-strided", "hyper", CONV_IN(rnd(1, 1, 5, 5)), cv(padding="same", stride=2), X,
      match="padding"),
    R("conv2d-padding-str", "hyper", CONV_IN(rnd(1, 1, 5, 5)), cv(padding="full"), X, match="padding"),
    R("conv2d-padding-same", "hyper", CONV_IN(rnd(1, 1, 5, 6), (2, 1, 2, 3)), cv(padding="same"), V),
    R("conv2d-dilation-0", "hyper", CONV_IN(rnd(1, 1, 5, 5)), cv(dilation=0), X, match="dilation"),
    R("conv2d-groups-0", "hyper", CONV_IN(rnd(1, 1, 5, 5)), cv(groups=0), X, match="groups"),
    R("conv2d-groups-indivisible", "hyper", CONV_IN(rnd(1, 3, 5, 5), (2, 1, 3, 3)), cv(groups=2), X,
      match="groups|input"),
    R("conv2d-int", "dtype", (ints(1, 1, 5, 5), rnd(2, 1, 3, 3), rnd(2)), cv(), X, match="input"),
    R("conv2d-mixed-dtypes", "dtype", (rnd(1, 1, 5, 5, dtype=np.float32), rnd(2, 1, 3, 3), rnd(2)), cv(), X,
      match="weight"),
    R("conv2d-nonfinite", "nonfinite", CONV_IN(np.where(rnd(1, 1, 5, 5) > 1, np.inf, rnd(1, 1, 5, 5))), cv(), V),
    R("conv2d-nan", "nonfinite", CONV_IN(np.where(rnd(1, 1, 5, 5) > 1, np.nan, rnd(1, 1, 5, 5))), cv(), V),
    R("conv2d-noncontig", "noncontig", CONV_IN(rnd(1, 1, 5, 5)),
      lambda S, x, w, b: S.F.conv2d(x.transpose(2, 3), w.transpose(2, 3), b), V),
    R("Conv2d-padding-same-strided", "hyper", (), lambda S: S.nn.Conv2d(1, 2, 3, padding="same", stride=2), X,
      match="padding"),
    R("Conv2d-groups", "hyper", (), lambda S: S.nn.Conv2d(3, 2, 3, groups=2), X, match="groups"),
    R("Conv2d-negative-channels", "hyper", (), lambda S: S.nn.Conv2d(-1, 2, 3), X, match="in_channels"),
]
mp = lambda *a, **kw: (lambda S, x: S.F.max_pool2d(x, *a, **kw))      # noqa: E731
ap = lambda *a, **kw: (lambda S, x: S.F.avg_pool2d(x, *a, **kw))      # noqa: E731
for _n, _p in (("max_pool2d", mp), ("avg_pool2d", ap)):
    CASES += [
        R(f"{_n}-values", "shape", (rnd(2, 2, 5, 5),), _p(3, 2, 1), V),
        R(f"{_n}-ceil", "shape", (rnd(1, 2, 5, 5),), _p(2, ceil_mode=True), V),
        R(f"{_n}-unbatched", "rank", (rnd(2, 4, 4),), _p(2), V),
        R(f"{_n}-N0", "empty", (rnd(0, 2, 4, 4),), _p(2), V),
        R(f"{_n}-C0", "empty", (rnd(1, 0, 4, 4),), _p(2), X, match="input"),
        R(f"{_n}-2d-input", "rank", (rnd(4, 4),), _p(2), X, match="input"),
        R(f"{_n}-kernel-0", "hyper", (rnd(1, 1, 4, 4),), _p(0), X, match="kernel_size"),
        R(f"{_n}-kernel-too-big", "size", (rnd(1, 1, 2, 2),), _p(3), X, match="kernel_size|output"),
        R(f"{_n}-stride-0", "hyper", (rnd(1, 1, 4, 4),), _p(2, 0), X, match="stride"),
        R(f"{_n}-padding-past-half", "hyper", (rnd(1, 1, 4, 4),), _p(2, 1, 2), X, match="padding"),
        R(f"{_n}-padding-negative", "hyper", (rnd(1, 1, 4, 4),), _p(2, 1, -1), X, match="padding"),
        R(f"{_n}-kernel-float", "type", (rnd(1, 1, 4, 4),), _p(2.0), X, match="kernel_size"),
        R(f"{_n}-int", "dtype", (ints(1, 1, 4, 4),), _p(2), V, match="input", differs=DIFF_DTYPE),
        R(f"{_n}-nonfinite", "nonfinite", (np.array([[[[np.nan, 1, -np.inf, 0], [2, 3, -np.inf, -np.inf],
                                                      [np.inf, 0, 1, 2], [0, 0, 5, 6]]]]),), _p(2), V),
        R(f"{_n}-noncontig", "noncontig", (rnd(1, 2, 4, 6),), lambda S, x, p=_p: p(3, 1, 1)(S, x.transpose(2, 3)), V),
        R(f"{_n}-huge", "extreme", (np.full((1, 1, 2, 2), 1e308),), _p(2), V),
    ]
CASES += [
    R("max_pool2d-dilation", "hyper", (rnd(1, 1, 5, 5),), mp(2, 1, 0, 1), V),
    R("max_pool2d-dilation-2", "hyper", (rnd(1, 1, 5, 5),), mp(2, 1, 0, 2), V, match="dilation",
      differs="max_pool2d has no dilation: dilation=1 only"),
    R("max_pool2d-return-indices", "hyper", (rnd(1, 1, 4, 4),), mp(2, return_indices=True), V,
      match="return_indices", differs="no return_indices (ValueError)"),
    R("max_pool2d-ties", "extreme", (np.zeros((1, 1, 4, 4)),), mp(2), V),
    R("avg_pool2d-count-include-pad", "hyper", (rnd(1, 1, 5, 5),), ap(3, 2, 1, False, False), V),
    R("avg_pool2d-divisor-override", "hyper", (rnd(1, 1, 4, 4),), ap(2, divisor_override=3), V, match="divisor",
      differs="no divisor_override (an unexpected keyword: TypeError)"),
    R("adaptive_avg_pool2d-values", "shape", (rnd(2, 2, 5, 7),), lambda S, x: S.F.adaptive_avg_pool2d(x, (2, 3)), V),
    R("adaptive_avg_pool2d-upsample", "size", (rnd(1, 1, 2, 2),), lambda S, x: S.F.adaptive_avg_pool2d(x, 3), V),
    R("adaptive_avg_pool2d-None", "hyper", (rnd(1, 1, 4, 5),), lambda S, x: S.F.adaptive_avg_pool2d(x, (2, None)), V),
    R("adaptive_avg_pool2d-0", "hyper", (rnd(1, 1, 4, 4),), lambda S, x: S.F.adaptive_avg_pool2d(x, 0), X,
      match="output_size"),
    R("adaptive_avg_pool2d-negative", "hyper", (rnd(1, 1, 4, 4),), lambda S, x: S.F.adaptive_avg_pool2d(x, -1), X,
      match="output_size"),
    R("adaptive_avg_pool2d-N0", "empty", (rnd(0, 1, 4, 4),), lambda S, x: S.F.adaptive_avg_pool2d(x, 2), V),
    R("adaptive_avg_pool2d-2d", "rank", (rnd(4, 4),), lambda S, x: S.F.adaptive_avg_pool2d(x, 2), X, match="input"),
    R("adaptive_avg_pool2d-nan", "nonfinite", (np.array([[[[np.nan, 1], [2, 3]]]]),),
      lambda S, x: S.F.adaptive_avg_pool2d(x, 1), V),
    R("MaxPool2d-layer-kernel-0", "hyper", (rnd(1, 1, 4, 4),), lambda S, x: S.nn.MaxPool2d(0)(x), X,
      match="kernel_size"),
]

# ---- linear, embedding -------------------------------------------------------------------------------------
lin = lambda S, x, w, b: S.F.linear(x, w, b)      # noqa: E731
CASES += [
    R("linear-values", "shape", (rnd(2, 3), rnd(4, 3), rnd(4)), lin, V),
    R("linear-1d-input", "rank", (rnd(3), rnd(4, 3), rnd(4)), lin, V),
    R("linear-3d-input", "rank", (rnd(2, 2, 3), rnd(4, 3), rnd(4)), lin, V),
    R("linear-0d-input", "0-d", (np.array(1.0), rnd(4, 3), rnd(4)), lin, X, match="input"),
    R("linear-empty-batch", "empty", (rnd(0, 3), rnd(4, 3), rnd(4)), lin, V),
    R("linear-zero-features", "empty", (rnd(2, 0), rnd(4, 0), rnd(4)), lin, V),
    R("linear-in-features", "shape", (rnd(2, 3), rnd(4, 2), rnd(4)), lin, X, match="input"),
    R("linear-1d-weight", "rank", (rnd(2, 3), rnd(3), C(np.array(0.5))), lin, X, match="weight"),
    R("linear-bias-broadcast", "shape", (rnd(2, 3), rnd(4, 3), rnd(1)), lin, V, match="bias",
      differs="bias must have shape (out_features,) (PyTorch broadcasts a bias of shape (1,))"),
    R("linear-bias-shape", "shape", (rnd(2, 3), rnd(4, 3), rnd(3)), lin, X, match="bias"),
    R("linear-int", "dtype", (ints(2, 3), rnd(4, 3), rnd(4)), lin, X, match="input"),
    R("linear-nonfinite", "nonfinite", (np.array([[np.nan, 1, 2], [np.inf, 0, 1]]), rnd(4, 3), rnd(4)), lin, V),
    R("linear-noncontig", "noncontig", (rnd(3, 2), rnd(3, 4), rnd(4)),
      lambda S, x, w, b: S.F.linear(x.transpose(0, 1), w.transpose(0, 1), b), V),
    R("Linear-negative", "hyper", (), lambda S: S.nn.Linear(-1, 3), X, match="in_features"),
    R("Linear-float", "type", (), lambda S: S.nn.Linear(2.5, 3), X, match="in_features"),
    R("Linear-layer-input", "shape", (rnd(2, 5),), lambda S, x: S.layer("Linear", 3, 2)(x), X, match="input"),
]

# ---- the engine's fused layers, against PyTorch's two ops (tcall) ------------------------------------------
def fused(op, act, **kw):
    """The engine's F.<op>_act(..., activation=act) and PyTorch's act(F.<op>(...)): the same values."""
    return dict(call=lambda S, x, w, b: getattr(S.F, op + "_act")(x, w, b, activation=act, **kw),
                tcall=lambda S, x, w, b: getattr(torch, act)(getattr(S.F, op)(x, w, b, **kw)))


CASES += [
    R("linear_act-values", "shape", (rnd(2, 3), rnd(4, 3), rnd(4)), torch=V, **fused("linear", "tanh")),
    R("linear_act-3d-input", "rank", (rnd(2, 2, 3), rnd(4, 3), rnd(4)), torch=V, **fused("linear", "sigmoid")),
    R("linear_act-empty-batch", "empty", (rnd(0, 3), rnd(4, 3), rnd(4)), torch=V, **fused("linear", "relu")),
    R("linear_act-nonfinite", "nonfinite", (np.array([[np.nan, 1, 2], [np.inf, 0, 1]]), rnd(4, 3), rnd(4)),
      torch=V, **fused("linear", "relu")),
    R("linear_act-extreme", "extreme", (np.array([[3e38, -3e38, 1.0]], np.float32), rnd(4, 3, dtype=np.float32),
                                        rnd(4, dtype=np.float32)), torch=V, **fused("linear", "sigmoid")),
    R("linear_act-noncontig", "noncontig", (rnd(3, 2), rnd(3, 4), rnd(4)), torch=V,
      call=lambda S, x, w, b: S.F.linear_act(x.transpose(0, 1), w.transpose(0, 1), b, activation="relu"),
      tcall=lambda S, x, w, b: torch.relu(S.F.linear(x.transpose(0, 1), w.transpose(0, 1), b))),
    R("linear_act-in-features", "shape", (rnd(2, 3), rnd(4, 2), rnd(4)), torch=X, match="input",
      **fused("linear", "relu")),
    R("linear_act-int", "dtype", (ints(2, 3), rnd(4, 3), rnd(4)), torch=X, match="input", **fused("linear", "relu")),
    R("linear_act-activation", "hyper", (rnd(2, 3), rnd(4, 3), rnd(4)),
      lambda S, x, w, b: S.F.linear_act(x, w, b, activation="gelu"), None, match="activation"),
    R("conv2d_act-values", "shape", CONV_IN(rnd(2, 1, 5, 5)), torch=V, **fused("conv2d", "relu", padding=1)),
    R("conv2d_act-unbatched", "rank", CONV_IN(rnd(1, 5, 5)), torch=V, **fused("conv2d", "tanh", stride=2)),
    R("conv2d_act-N0", "empty", CONV_IN(rnd(0, 1, 5, 5)), torch=V, **fused("conv2d", "sigmoid")),
    R("conv2d_act-nonfinite", "nonfinite", CONV_IN(np.full((1, 1, 4, 4), np.nan)), torch=V,
      **fused("conv2d", "relu")),
    R("conv2d_act-noncontig", "noncontig", CONV_IN(rnd(1, 1, 6, 5)), torch=V,
      call=lambda S, x, w, b: S.F.conv2d_act(x.transpose(2, 3), w, b, activation="sigmoid"),
      tcall=lambda S, x, w, b: torch.sigmoid(S.F.conv2d(x.transpose(2, 3), w, b))),
    R("conv2d_act-channels", "shape", CONV_IN(rnd(1, 2, 5, 5)), torch=X, match="input|channels",
      **fused("conv2d", "relu")),
    R("conv2d_act-stride-0", "hyper", CONV_IN(rnd(1, 1, 5, 5)), torch=X, match="stride",
      **fused("conv2d", "relu", stride=0)),
    R("conv2d_act-activation", "hyper", CONV_IN(rnd(1, 1, 5, 5)),
      lambda S, x, w, b: S.F.conv2d_act(x, w, b, activation="softmax"), None, match="activation"),
]
emb = lambda **kw: (lambda S, i, w: S.F.embedding(i, w, **kw))      # noqa: E731
W5 = rnd(5, 2)
CASES += [
    R("embedding-values", "shape", (C(arr(0, 4, 4, 1, dtype=np.int64)), W5), emb(), V),
    R("embedding-0d", "0-d", (C(np.array(3)), W5), emb(), V),
    R("embedding-empty", "empty", (C(np.zeros((0, 2), np.int64)), W5), emb(), V),
    R("embedding-int32", "dtype", (C(arr(0, 4, dtype=np.int32)), W5), emb(), V),
    R("embedding-padding", "hyper", (C(arr(0, 2, 2, 1, dtype=np.int64)), W5), emb(padding_idx=2), V),
    R("embedding-padding-negative", "hyper", (C(arr(0, 4, 1, dtype=np.int64)), W5), emb(padding_idx=-1), V),
    R("embedding-index-past", "range", (C(arr(0, 5, dtype=np.int64)), W5), emb(), X, match="input",
      also=(IndexError,)),
    R("embedding-index-negative", "range", (C(arr(0, -1, dtype=np.int64)), W5), emb(), X, match="input",
      also=(IndexError,)),
    R("embedding-float-index", "dtype", (C(arr(0.0, 1.0)), W5), emb(), X, match="input"),
    R("embedding-1d-weight", "rank", (C(arr(0, 1, dtype=np.int64)), rnd(5)), emb(), X, match="weight"),
    R("embedding-padding-past", "range", (C(arr(0, 1, dtype=np.int64)), W5), emb(padding_idx=5), X,
      match="padding_idx", also=(AssertionError,)),
    R("embedding-ndarray-index", "type", (Raw(arr(0, 1, dtype=np.int64)), W5), emb(), X, match="input"),
    R("embedding-dim-0", "empty", (C(arr(0, 4, dtype=np.int64)), rnd(5, 0)), emb(), V),
    R("embedding-nonfinite", "nonfinite", (C(arr(0, 1, dtype=np.int64)), np.array([[np.nan, 1], [np.inf, 2]])), emb(),
      V),
    R("Embedding-padding-past", "range", (), lambda S: S.nn.Embedding(3, 2, padding_idx=5), X, match="padding_idx",
      also=(AssertionError,)),
    R("Embedding-padding-float", "type", (), lambda S: S.nn.Embedding(3, 2, padding_idx=1.5), X, match="padding_idx",
      also=(AssertionError,)),
    R("Embedding-negative", "hyper", (), lambda S: S.nn.Embedding(-1, 2), X, match="num_embeddings"),
]

# ---- attention ---------------------------------------------------------------------------------------------
sd = lambda **kw: (lambda S, q, k, v: S.F.scaled_dot_product_attention(q, k, v, **kw))      # noqa: E731
sdm = lambda **kw: (lambda S, q, k, v, m: S.F.scaled_dot_product_attention(q, k, v, attn_mask=m, **kw))  # noqa: E731
QKV = lambda L=3, S=4, d=2, lead=(2,): (rnd(*lead, L, d), rnd(*lead, S, d), rnd(*lead, S, 3))      # noqa: E731
MASK = C(np.array([[True, False, True, True], [False, False, False, False], [True, True, False, False]]))
CASES += [
    R("sdpa-values", "shape", QKV(), sd(), V),
    R("sdpa-2d", "rank", QKV(lead=()), sd(), V),
    R("sdpa-L0", "empty", QKV(L=0), sd(), V),
    R("sdpa-S0", "empty", QKV(S=0), sd(), V),
    R("sdpa-L0-S0", "empty", QKV(L=0, S=0), sd(), V),
    R("sdpa-B0", "empty", QKV(lead=(0,)), sd(), V),
    R("sdpa-causal-L-gt-S", "shape", QKV(L=5, S=3), sd(is_causal=True), V),
    R("sdpa-bool-mask", "shape", QKV() + (MASK,), sdm(), V),
    R("sdpa-float-mask", "shape", QKV() + (C(rnd(3, 4)),), sdm(), V),
    R("sdpa-neginf-float-mask", "nonfinite", QKV() + (C(np.where(MASK.a, 0.0, -np.inf)),), sdm(), V),
    R("sdpa-mask-and-causal-4d", "shape", (rnd(2, 2, 3, 2), rnd(2, 2, 4, 2), rnd(2, 2, 4, 2), MASK),
      sdm(is_causal=True), V),
    R("sdpa-mask-and-causal-3d", "shape", QKV() + (MASK,), sdm(is_causal=True), X,
      differs=("attn_mask and is_causal together apply both masks, for any rank, as PyTorch 2.13's fused CPU path "
               "does for 4-D input (its math path, taken for 3-D input, raises instead)"),
      expect=lambda outs, grads: outs[0].shape == (2, 3, 3) and not np.any(outs[0][:, 1])),
    R("sdpa-mask-shape", "shape", QKV() + (C(np.ones((3, 5), bool)),), sdm(), X, match="attn_mask"),
    R("sdpa-mask-int", "dtype", QKV() + (C(np.ones((3, 4), np.int64)),), sdm(), X, match="attn_mask"),
    R("sdpa-1d", "rank", (rnd(2), rnd(2), rnd(2)), sd(), X, match="query"),
    R("sdpa-feature-mismatch", "shape", (rnd(2, 3, 2), rnd(2, 4, 3), rnd(2, 4, 3)), sd(), X, match="key"),
    R("sdpa-length-mismatch", "shape", (rnd(2, 3, 2), rnd(2, 4, 2), rnd(2, 5, 3)), sd(), X, match="value"),
    R("sdpa-broadcast-batch", "shape", (rnd(2, 3, 2), rnd(1, 4, 2), rnd(1, 4, 3)), sd(), V, match="key",
      differs="no broadcasting of the leading dims (documented)"),
    R("sdpa-dropout-1.5", "hyper", QKV(), sd(dropout_p=1.5), X, match="dropout_p"),
    R("sdpa-scale-0", "hyper", QKV(), sd(scale=0.0), V),
    R("sdpa-scale-negative", "hyper", QKV(), sd(scale=-0.5), V),
    R("sdpa-scale-nan", "hyper", QKV(), sd(scale=math.nan), V, match="scale",
      differs="scale must be finite (PyTorch returns NaN)"),
    R("sdpa-int", "dtype", (ints(2, 3, 2), ints(2, 4, 2), ints(2, 4, 3)), sd(), X, match="query"),
    R("sdpa-float16", "dtype", tuple(a.astype(np.float16) for a in QKV()), sd(), V, match="query",
      differs=DIFF_DTYPE),
    R("sdpa-mixed-dtypes", "dtype", (rnd(2, 3, 2, dtype=np.float32), rnd(2, 4, 2), rnd(2, 4, 3)), sd(), X,
      match="key"),
    R("sdpa-nan", "nonfinite", (np.array([[[0.5, np.nan], [0.5, 0.1], [1.0, 2.0]]]),) + QKV(lead=(1,))[1:],
      sd(), V, differs=("a NaN query row gives a NaN output row, as in PyTorch, but its NaN reaches only the "
                        "value gradients of the keys it attends (PyTorch's dense backward spreads it to all)"),
      expect=lambda outs, grads: np.isnan(outs[0][0, 0]).all() and np.isfinite(outs[0][0, 1:]).all()
      and np.isnan(grads[0][0, 0]).all() and np.isfinite(grads[0][0, 1:]).all()),
    R("sdpa-nan-causal-value", "nonfinite", QKV(L=4, S=4, lead=(1,))[:2] + (np.where(np.arange(12).reshape(1, 4, 3)
                                                                                      == 10, np.nan, 0.5),),
      sd(is_causal=True), V),
    R("sdpa-huge", "extreme", (np.full((1, 2, 2), 1e150), np.array([[[1e150, 1e150], [-1e150, 1e150]]]),
                               rnd(1, 2, 3)), sd(), V, atol=1e137),
    R("sdpa-noncontig", "noncontig", (rnd(2, 2, 3), rnd(2, 2, 4), rnd(2, 3, 4)),
      lambda S, q, k, v: S.F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)),
      V),
    R("sdpa-causal-str", "type", QKV(), sd(is_causal="yes"), X, match="is_causal"),
]

# ---- recurrent layers: PyTorch has no functional RNN, so its reference is the same recurrence written out --
def _t_rnn(S, x, h0, wih, whh, bih, bhh):
    h, outs = h0, []
    for t in range(x.shape[0]):
        h = torch.tanh(x[t] @ wih.T + bih + h @ whh.T + bhh)
        outs.append(h)
    return torch.stack(outs), h


rnn = lambda S, x, h, a, b, c, d: S.F.rnn_tanh(x, h, a, b, c, d)      # noqa: E731
RNN_W = lambda I=3, H=4: (rnd(H, I), rnd(H, H), rnd(H), rnd(H))      # noqa: E731
CASES += [
    R("rnn_tanh-values", "shape", (rnd(3, 2, 3), rnd(2, 4)) + RNN_W(), rnn, V, tcall=_t_rnn),
    R("rnn_tanh-nan", "nonfinite", (np.full((2, 1, 3), np.nan), rnd(1, 4)) + RNN_W(), rnn, V, tcall=_t_rnn),
    R("rnn_tanh-huge", "extreme", (np.full((2, 1, 3), 1e300), rnd(1, 4)) + RNN_W(), rnn, V, tcall=_t_rnn),
    R("rnn_tanh-T0", "empty", (rnd(0, 2, 3), rnd(2, 4)) + RNN_W(), rnn, None, match="input"),
    R("rnn_tanh-w_hh-shape", "shape", (rnd(3, 2, 3), rnd(2, 4), rnd(4, 3), rnd(4, 3), rnd(4), rnd(4)), rnn, None,
      match="w_hh"),
    R("rnn_tanh-h0-shape", "shape", (rnd(3, 2, 3), rnd(3, 4)) + RNN_W(), rnn, None, match="h0"),
    R("rnn_tanh-2d", "rank", (rnd(3, 3), rnd(2, 4)) + RNN_W(), rnn, None, match="input"),
    R("gru-w_ih-shape", "shape", (rnd(3, 2, 3), rnd(2, 4), rnd(12, 2), rnd(12, 4), rnd(12), rnd(12)),
      lambda S, x, h, a, b, c, d: S.F.gru(x, h, a, b, c, d), None, match="w_ih"),
    R("RNN-values", "shape", (rnd(3, 2, 3),), lambda S, x: S.layer("RNN", 3, 4, num_layers=2)(x), V),
    R("GRU-values", "shape", (rnd(3, 2, 3),), lambda S, x: S.layer("GRU", 3, 4)(x), V),
    R("GRU-unbatched", "rank", (rnd(3, 3),), lambda S, x: S.layer("GRU", 3, 4)(x), V),
    R("GRU-batch-first", "shape", (rnd(2, 3, 3),), lambda S, x: S.layer("GRU", 3, 4, batch_first=True)(x), V),
    R("RNN-T0", "empty", (rnd(0, 2, 3),), lambda S, x: S.layer("RNN", 3, 4)(x), X, match="input"),
    R("RNN-B0", "empty", (rnd(2, 0, 3),), lambda S, x: S.layer("RNN", 3, 4)(x), V, match="input",
      differs="an empty batch raises (PyTorch returns an empty result)"),
    R("RNN-input-size", "shape", (rnd(2, 2, 5),), lambda S, x: S.layer("RNN", 3, 4)(x), X, match="input"),
    R("RNN-4d", "rank", (rnd(2, 2, 2, 3),), lambda S, x: S.layer("RNN", 3, 4)(x), X, match="input"),
    R("RNN-hx-shape", "shape", (rnd(2, 2, 3), rnd(1, 3, 4)), lambda S, x, h: S.layer("RNN", 3, 4)(x, h), X,
      match="hx|hidden"),
    R("RNN-int", "dtype", (ints(2, 2, 3),), lambda S, x: S.layer("RNN", 3, 4)(x), X, match="input"),
    R("RNN-nonlinearity", "hyper", (), lambda S: S.nn.RNN(3, 4, nonlinearity="gelu"), X, match="nonlinearity"),
    R("RNN-hidden-0", "hyper", (), lambda S: S.nn.RNN(3, 0), X, match="hidden_size"),
    R("RNN-dropout", "hyper", (), lambda S: S.nn.RNN(3, 4, dropout=1.5), X, match="dropout"),
    R("RNN-noncontig", "noncontig", (rnd(3, 3, 2),), lambda S, x: S.layer("RNN", 3, 4)(x.transpose(1, 2)), V),
]


def _t_lstm(S, x, h0, c0, wih, whh, bih, bhh):
    h, c, outs = h0, c0, []
    for t in range(x.shape[0]):
        i, f, g, o = (x[t] @ wih.T + bih + h @ whh.T + bhh).chunk(4, dim=-1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        outs.append(h)
    return torch.stack(outs), h, c


lstm = lambda S, x, h, c, a, b, d, e: (lambda o: (o[0],) + o[1])(S.F.lstm(x, (h, c), a, b, d, e))   # noqa: E731
LSTM_W = lambda I=3, H=4: (rnd(4 * H, I), rnd(4 * H, H), rnd(4 * H), rnd(4 * H))                 # noqa: E731
CASES += [
    R("lstm-values", "shape", (rnd(3, 2, 3), rnd(2, 4), rnd(2, 4)) + LSTM_W(), lstm, V, tcall=_t_lstm),
    R("lstm-nan", "nonfinite", (np.full((2, 1, 3), np.nan), rnd(1, 4), rnd(1, 4)) + LSTM_W(), lstm, V,
      tcall=_t_lstm),
    R("lstm-huge", "extreme", (np.full((2, 1, 3), 1e300), rnd(1, 4), rnd(1, 4)) + LSTM_W(), lstm, V, tcall=_t_lstm),
    R("lstm-T0", "empty", (rnd(0, 2, 3), rnd(2, 4), rnd(2, 4)) + LSTM_W(), lstm, None, match="input"),
    R("lstm-c0-shape", "shape", (rnd(3, 2, 3), rnd(2, 4), rnd(2, 3)) + LSTM_W(), lstm, None, match="c0"),
    R("lstm-w_hh-shape", "shape", (rnd(3, 2, 3), rnd(2, 4), rnd(2, 4), rnd(16, 3), rnd(12, 4), rnd(16), rnd(16)),
      lstm, None, match="w_hh"),
    R("LSTM-values", "shape", (rnd(3, 2, 3),), lambda S, x: S.layer("LSTM", 3, 4, num_layers=2)(x), V),
    R("LSTM-states", "shape", (rnd(3, 2, 3), rnd(1, 2, 4), rnd(1, 2, 4)),
      lambda S, x, h, c: S.layer("LSTM", 3, 4)(x, (h, c)), V),
    R("LSTM-unbatched", "rank", (rnd(3, 3),), lambda S, x: S.layer("LSTM", 3, 4)(x), V),
    R("LSTM-batch-first", "shape", (rnd(2, 3, 3),), lambda S, x: S.layer("LSTM", 3, 4, batch_first=True)(x), V),
    R("LSTM-noncontig", "noncontig", (rnd(3, 3, 2),), lambda S, x: S.layer("LSTM", 3, 4)(x.transpose(1, 2)), V),
    R("LSTM-hx-tensor", "type", (rnd(2, 2, 3), rnd(1, 2, 4)), lambda S, x, h: S.layer("LSTM", 3, 4)(x, h), X,
      match="hx"),
    R("LSTM-hx-shape", "shape", (rnd(2, 2, 3), rnd(1, 2, 4), rnd(2, 2, 4)),
      lambda S, x, h, c: S.layer("LSTM", 3, 4)(x, (h, c)), X, match="hx"),
    R("LSTM-proj-size", "hyper", (), lambda S: S.nn.LSTM(3, 4, proj_size=2), V, match="proj_size",
      differs="proj_size is not implemented: a nonzero one raises ValueError naming it"),
]

# ---- modules -----------------------------------------------------------------------------------------------
def _lsd(value):
    return lambda S: S.nn.Linear(2, 2).load_state_dict(value(S))


CASES += [
    R("load_state_dict-None", "type", (), _lsd(lambda S: None), X, match="state_dict"),
    R("load_state_dict-list", "type", (), _lsd(lambda S: [1, 2]), X, match="state_dict"),
    R("load_state_dict-shape", "shape", (), _lsd(lambda S: {"weight": S.tensor(np.zeros((3, 2))),
                                                           "bias": S.tensor(np.zeros(2))}), X, match="weight"),
    R("load_state_dict-missing", "shape", (), _lsd(lambda S: {"weight": S.tensor(np.zeros((2, 2)))}), X,
      match="bias", also=(KeyError,)),
    R("load_state_dict-unexpected", "shape", (), _lsd(lambda S: {"weight": S.tensor(np.zeros((2, 2))),
                                                                "bias": S.tensor(np.zeros(2)),
                                                                "extra": S.tensor(np.zeros(1))}), X, match="extra",
      also=(KeyError,)),
    R("load_state_dict-str-value", "type", (), _lsd(lambda S: {"weight": "abc", "bias": S.tensor(np.zeros(2))}), X,
      match="weight"),
    R("Module-to-int", "dtype", (), lambda S: S.nn.Linear(2, 2).to(S.lib.int64), X, match="dtype"),
    R("Module-to-positional-dtype", "dtype", (), lambda S: S.layer("Linear", 2, 2).to(S.lib.float32).weight, V),
    R("Module-to-device", "type", (), lambda S: S.nn.Linear(2, 2).to("tpu"), X, match="device|tpu"),
    R("register_buffer-dot", "hyper", (), lambda S: S.nn.Module().register_buffer("a.b", S.tensor(np.zeros(1))), X,
      match="name|'.'", also=(KeyError,)),
    R("register_buffer-int", "type", (), lambda S: S.nn.Module().register_buffer("a", 3), X, match="buffer|Tensor"),
    R("Sequential-non-module", "type", (), lambda S: S.nn.Sequential(S.nn.ReLU(), "relu"), X, match="modul|relu|1"),
    R("Flatten-values", "shape", (rnd(2, 3, 4),), lambda S, x: S.nn.Flatten()(x), V),
    R("Flatten-1d", "rank", (rnd(3),), lambda S, x: S.nn.Flatten()(x), X, match="dim", also=(IndexError,)),
    R("Flatten-0d", "0-d", (np.array(1.0),), lambda S, x: S.nn.Flatten()(x), X, match="dim", also=(IndexError,),
      note="was: Tensor.flatten(1) of a 0-d tensor returned shape (1,) instead of raising"),
    R("Identity-0d", "0-d", (np.array(1.0),), lambda S, x: S.nn.Identity()(x), V),
]

# the book's attention layers (engine only: PyTorch's MultiheadAttention has another signature)
X3 = rnd(2, 3, 4, dtype=np.float32)                 # the layers' default dtype
CASES += [
    R("MultiHeadAttention-heads-0", "hyper", (), lambda S: S.nn.MultiHeadAttention(4, 0), None, match="num_heads"),
    R("MultiHeadAttention-heads-indivisible", "hyper", (), lambda S: S.nn.MultiHeadAttention(5, 2), None,
      match="num_heads"),
    R("MultiHeadAttention-2d", "rank", (X3[0],), lambda S, x: S.nn.MultiHeadAttention(4, 2)(x, x, x), None,
      match="queries"),
    R("MultiHeadAttention-valid-lens-float", "dtype", (X3, C(arr(1.0, 2.0))),
      lambda S, x, v: S.nn.MultiHeadAttention(4, 2)(x, x, x, v), None, match="valid_lens"),
    R("AdditiveAttention-2d", "rank", (X3[0],), lambda S, x: S.nn.AdditiveAttention(4)(x, x, x), None,
      match="queries"),
    R("AdditiveAttention-valid-lens-past", "range", (X3, C(arr(5, 1, dtype=np.int64))),
      lambda S, x, v: S.nn.AdditiveAttention(4)(x, x, x, v), None, match="valid_lens"),
    R("DotProductAttention-zero-length", "range", (X3, C(arr(0, 3, dtype=np.int64))),
      lambda S, x, v: S.nn.DotProductAttention()(x, x, x, v), None,
      expect=lambda outs, grads: not np.any(outs[0][0]) and np.isfinite(outs[0]).all() and not np.any(grads[0][0])),
    R("PositionalEncoding-features", "shape", (X3,), lambda S, x: S.nn.PositionalEncoding(6)(x), None, match="x"),
    R("PositionalEncoding-too-long", "size", (X3,), lambda S, x: S.nn.PositionalEncoding(4, max_len=2)(x), None,
      match="max_len"),
    R("AddNorm-shapes", "shape", (X3, rnd(2, 3, 5)), lambda S, x, y: S.nn.AddNorm(4)(x, y), None, match="y"),
    R("Sequential-index", "range", (), lambda S: S.nn.Sequential(S.nn.ReLU())[3], X, match="index|range",
      also=(IndexError,)),
    R("ModuleList-index", "range", (), lambda S: S.nn.ModuleList([S.nn.ReLU()])[-2], X, match="index|range",
      also=(IndexError,)),
]

# ---- optimizers --------------------------------------------------------------------------------------------
P3, G3 = rnd(3), [rnd(3), rnd(3)]
steps = lambda cls, grads=G3, p=P3, **kw: (lambda S: S.steps(cls, p, grads, **kw))      # noqa: E731
CASES += [
    R("SGD-single-Parameter", "type", (), lambda S: S.optim.SGD(S.param(P3), lr=0.1), X, match="params"),
    R("SGD-non-leaf", "type", (), lambda S: S.optim.SGD([S.param(P3) * 2], lr=0.1), X, match="leaf"),
    R("SGD-empty", "empty", (), lambda S: S.optim.SGD([], lr=0.1), X, match="params|empty"),
    R("SGD-ints", "type", (), lambda S: S.optim.SGD([1, 2], lr=0.1), X, match="params|int"),
    R("SGD-ndarray", "type", (), lambda S: S.optim.SGD([np.zeros(3)], lr=0.1), X, match="params|ndarray"),
    R("SGD-shared-groups", "shape", (), lambda S, p=P3: (lambda q: S.optim.SGD([{"params": [q]}, {"params": [q]}],
                                                                                lr=0.1))(S.param(p)), X,
      match="more than one"),
    R("SGD-group-without-params", "type", (), lambda S: S.optim.SGD([{"lr": 1.0}], lr=0.1), X, match="params",
      also=(KeyError,)),
    R("SGD-duplicate", "shape", (), lambda S, p=P3: (lambda q: S.optim.SGD([q, q], lr=0.1))(S.param(p)), V,
      match="twice", differs="a parameter twice in one group raises (PyTorch warns, then steps it twice)"),
    R("SGD-no-grad-required", "hyper", (), lambda S: S.optim.SGD([S.tensor(P3)], lr=0.1), V),
    R("SGD-lr-negative", "hyper", (), steps("SGD", lr=-0.1), X, match="lr|learning rate"),
    R("SGD-lr-str", "type", (), steps("SGD", lr="0.1"), X, match="lr"),
    R("SGD-lr-nan", "hyper", (), steps("SGD", lr=math.nan), V, match="lr",
      differs="lr must be finite (PyTorch takes NaN and fills the parameter with NaN)"),
    R("SGD-momentum-negative", "hyper", (), steps("SGD", lr=0.1, momentum=-0.5), X, match="momentum"),
    R("SGD-weight-decay-negative", "hyper", (), steps("SGD", lr=0.1, weight_decay=-1.0), X, match="weight_decay"),
    R("SGD-nesterov-no-momentum", "hyper", (), steps("SGD", lr=0.1, nesterov=True), X, match="nesterov|Nesterov"),
    R("SGD-values", "hyper", (), steps("SGD", lr=0.1, momentum=0.9, dampening=0.5, weight_decay=0.1), V),
    R("SGD-nesterov", "hyper", (), steps("SGD", lr=0.1, momentum=0.9, nesterov=True), V),
    R("SGD-nan-grad", "nonfinite", (), steps("SGD", grads=[NONFINITE], p=rnd(7), lr=0.1, momentum=0.9), V),
    R("SGD-0d", "0-d", (), steps("SGD", grads=[np.array(2.0)], p=np.array(1.0), lr=0.1, momentum=0.9), V),
    R("SGD-empty-param", "empty", (), steps("SGD", grads=[np.zeros(0)], p=np.zeros(0), lr=0.1, momentum=0.9), V),
    R("SGD-grad-shape", "shape", (), steps("SGD", grads=[rnd(4)], lr=0.1), X, match="grad"),
    R("SGD-load_state_dict-None", "type", (), lambda S: S.optim.SGD([S.param(P3)], lr=0.1).load_state_dict(None), X,
      match="state_dict", also=(AttributeError,)),
    R("SGD-load_state_dict-empty", "type", (), lambda S: S.optim.SGD([S.param(P3)], lr=0.1).load_state_dict({}), X,
      match="param_groups", also=(KeyError,)),
    R("AdamW-values", "hyper", (), steps("AdamW", lr=0.1, weight_decay=0.1), V),
    R("AdamW-nan-grad", "nonfinite", (), steps("AdamW", grads=[NONFINITE], p=rnd(7), lr=0.1), V),
    R("AdamW-tiny-grad", "extreme", (), steps("AdamW", grads=[np.full(3, 1e-300)], lr=0.1, eps=0.0), V),
    R("AdamW-0d", "0-d", (), steps("AdamW", grads=[np.array(2.0)], p=np.array(1.0), lr=0.1), V),
    R("AdamW-betas-1.0", "hyper", (), steps("AdamW", betas=(1.0, 0.9)), X, match="beta"),
    R("AdamW-betas-one", "shape", (), steps("AdamW", betas=(0.9,)), X, match="beta", also=(IndexError,)),
    R("AdamW-betas-str", "type", (), steps("AdamW", betas=("0.9", 0.99)), X, match="beta"),
    R("AdamW-eps-negative", "hyper", (), steps("AdamW", eps=-1.0), X, match="eps|epsilon"),
    R("AdamW-lr-negative", "hyper", (), steps("AdamW", lr=-1.0), X, match="lr|learning rate"),
    R("AdamW-weight-decay-negative", "hyper", (), steps("AdamW", weight_decay=-1.0), X, match="weight_decay"),
    R("Adam-values", "hyper", (), steps("Adam", lr=0.1, betas=(0.8, 0.9), eps=1e-6, weight_decay=0.1), V),
    R("Adam-defaults", "hyper", (), steps("Adam"), V),
    R("Adam-decoupled", "hyper", (), steps("Adam", lr=0.1, weight_decay=0.1, decoupled_weight_decay=True), V),
    R("Adam-nan-grad", "nonfinite", (), steps("Adam", grads=[NONFINITE], p=rnd(7), lr=0.1, weight_decay=0.1), V),
    R("Adam-tiny-grad", "extreme", (), steps("Adam", grads=[np.full(3, 1e-300)], lr=0.1, eps=0.0), V),
    R("Adam-0d", "0-d", (), steps("Adam", grads=[np.array(2.0)], p=np.array(1.0), lr=0.1, weight_decay=0.5), V),
    R("Adam-empty-param", "empty", (), steps("Adam", grads=[np.zeros(0)], p=np.zeros(0), lr=0.1), V),
    R("Adam-betas-1.0", "hyper", (), steps("Adam", betas=(0.9, 1.0)), X, match="beta"),
    R("Adam-betas-str", "type", (), steps("Adam", betas=(0.9, "0.99")), X, match="beta"),
    R("Adam-eps-negative", "hyper", (), steps("Adam", eps=-1.0), X, match="eps|epsilon"),
    R("Adam-lr-negative", "hyper", (), steps("Adam", lr=-1.0), X, match="lr|learning rate"),
    R("Adam-weight-decay-negative", "hyper", (), steps("Adam", weight_decay=-1.0), X, match="weight_decay"),
    R("Adam-amsgrad", "hyper", (), steps("Adam", lr=0.1, amsgrad=True), V, match="amsgrad",
      differs="amsgrad is not implemented: amsgrad=True raises ValueError naming it"),
    R("Adam-grad-shape", "shape", (), steps("Adam", grads=[rnd(4)], lr=0.1), X, match="grad"),
]

# ---- nn.init and nn.utils ----------------------------------------------------------------------------------
CASES += [
    R("xavier_uniform_-1d", "rank", (C(rnd(3)),), lambda S, t: S.nn.init.xavier_uniform_(t), X, match="fan"),
    R("kaiming_uniform_-mode", "hyper", (C(rnd(3, 2)),), lambda S, t: S.nn.init.kaiming_uniform_(t, mode="x"), X,
      match="mode"),
    R("kaiming_uniform_-empty-fan-out", "empty", (C(rnd(0, 3)),),
      lambda S, t: S.nn.init.kaiming_uniform_(t, mode="fan_out"), V),
    R("kaiming_normal_-empty", "empty", (C(rnd(3, 0)),), lambda S, t: S.nn.init.kaiming_normal_(t), V),
    R("xavier_normal_-empty", "empty", (C(rnd(0, 0)),), lambda S, t: S.nn.init.xavier_normal_(t), X,
      differs="a zero-element tensor is left as it is (PyTorch raises ZeroDivisionError for a (0, 0) one)",
      expect=lambda outs, grads: outs[0].shape == (0, 0)),
    R("calculate_gain-unknown", "hyper", (), lambda S: S.nn.init.calculate_gain("swish"), X, match="nonlinearity|swish"),
    R("calculate_gain-slope-str", "type", (), lambda S: S.nn.init.calculate_gain("leaky_relu", "a"), X,
      match="slope|param"),
    R("normal_-std-negative", "hyper", (C(rnd(3)),), lambda S, t: S.nn.init.normal_(t, std=-1.0), X, match="std"),
    R("uniform_-reversed", "hyper", (C(rnd(3)),), lambda S, t: S.nn.init.uniform_(t, 1.0, 0.0), X, match="from|a|b"),
    R("normal_-int", "dtype", (C(ints(3)),), lambda S, t: S.nn.init.normal_(t), X, match="tensor|dtype",
      also=(NotImplementedError,)),
    R("constant_-nan", "nonfinite", (C(rnd(3)),), lambda S, t: S.nn.init.constant_(t, math.nan), V),
]


def _clip(max_norm, grads, **kw):
    def call(S):
        ps = [S.param(np.zeros_like(g)) for g in grads]
        for p, g in zip(ps, grads):
            p.grad = S.tensor(g)
        total = S.nn.utils.clip_grad_norm_(ps, max_norm, **kw)
        return [total] + [p.grad for p in ps]
    return call


CASES += [
    R("clip_grad_norm_-values", "hyper", (), _clip(1.0, [rnd(3), rnd(2, 2)]), V),
    R("clip_grad_norm_-inf-norm", "hyper", (), _clip(0.5, [rnd(3), rnd(2, 2)], norm_type=math.inf), V),
    R("clip_grad_norm_-nan-grad", "nonfinite", (), _clip(1.0, [NONFINITE[:1].copy(), rnd(2)]), V),
    R("clip_grad_norm_-inf-grad", "nonfinite", (), _clip(1.0, [arr(np.inf, 1.0)]), V),
    R("clip_grad_norm_-tiny", "extreme", (), _clip(1.0, [np.full(3, 1e-300)]), V),
    R("clip_grad_norm_-huge", "extreme", (), _clip(1.0, [np.full(3, 1e200)]), V),
    R("clip_grad_norm_-max-norm-negative", "hyper", (), _clip(-1.0, [rnd(3)]), V, match="max_norm",
      differs="max_norm must be >= 0 (PyTorch flips the gradients' sign)"),
    R("clip_grad_norm_-max-norm-str", "type", (), _clip("1.0", [rnd(3)]), V, match="max_norm",
      differs="max_norm must be a number (PyTorch converts the string '1.0')"),
    R("clip_grad_norm_-norm-type-0", "hyper", (), _clip(1.0, [rnd(3)], norm_type=0), V, match="norm_type",
      differs="norm_type must be positive or inf"),
]

# ---- engine.information (no PyTorch counterpart: the engine's documented values) ---------------------------
inf_ = engine.information
CASES += [
    R("entropy-negative", "range", (), lambda S: inf_.entropy([0.5, -0.1, 0.6]), None, match="p"),
    R("entropy-nan", "nonfinite", (), lambda S: inf_.entropy([0.5, np.nan]), None, match="p"),
    R("entropy-str", "type", (), lambda S: inf_.entropy(["a", "b"]), None, match="p"),
    R("entropy-int-tensor", "dtype", (), lambda S: inf_.entropy(engine.tensor([1, 0])), None, match="p"),
    R("entropy-empty", "empty", (), lambda S: inf_.entropy(np.zeros(0)), None,
      expect=lambda outs, grads: float(outs[0]) == 0.0),
    R("entropy-0d", "0-d", (), lambda S: inf_.entropy(0.5), None, match="p|dim"),
    R("entropy-zeros", "extreme", (), lambda S: inf_.entropy([0.0, 1.0]), None,
      expect=lambda outs, grads: float(outs[0]) == 0.0),
    R("entropy-dim", "range", (), lambda S: inf_.entropy([[0.5, 0.5]], dim=2), None, match="dim"),
    R("entropy-base-1", "hyper", (), lambda S: inf_.entropy([0.5, 0.5], base=1), None, match="base"),
    R("entropy-base-negative", "hyper", (), lambda S: inf_.entropy([0.5, 0.5], base=-2), None, match="base"),
    R("kl_divergence-zero-q", "extreme", (), lambda S: inf_.kl_divergence([0.5, 0.5], [1.0, 0.0]), None,
      expect=lambda outs, grads: float(outs[0]) == np.inf),
    R("kl_divergence-shape", "shape", (), lambda S: inf_.kl_divergence([0.5, 0.5], [0.2, 0.3, 0.5]), None,
      match="q"),
    R("cross_entropy-info-shape", "shape", (), lambda S: inf_.cross_entropy([0.5, 0.5], [0.2, 0.3, 0.5]), None,
      match="q"),
    R("mutual_information-1d", "rank", (), lambda S: inf_.mutual_information([0.5, 0.5]), None, match="p_xy"),
    R("mutual_information-p_x-shape", "shape", (), lambda S: inf_.mutual_information(np.full((2, 2), .25), [1.0]),
      None, match="p_x"),
    R("conditional_entropy-1d", "rank", (), lambda S: inf_.conditional_entropy([0.5, 0.5]), None, match="p_xy"),
    R("pointwise_mutual_information-3d", "rank", (),
      lambda S: inf_.pointwise_mutual_information(np.full((2, 2, 2), .125)), None, match="p_xy"),
    R("joint_entropy-values", "shape", (), lambda S: inf_.joint_entropy(np.full((2, 2), .25)), None,
      expect=lambda outs, grads: abs(float(outs[0]) - math.log(4)) < 1e-12),
]

# ---- tensor-level findings (engine/tensor.py is the lead's): strict xfails until they are fixed -----------
LEAD = "tensor-level, lead: "
CASES += [
    R("tensor-len-0d", "0-d", (np.array(1.0),), lambda S, x: len(x), X, match="0-d|len", note=LEAD +
      "len() of a 0-d tensor raises IndexError 'tuple index out of range' (PyTorch: TypeError 'len() of a 0-d tensor')"),
    R("tensor-transpose-out-of-range", "range", (rnd(2, 3),), lambda S, x: x.transpose(0, 5), X, match="dim|range",
      also=(IndexError,), note=LEAD + "transpose(0, 5) on a 2-D tensor raises IndexError 'list index out of range'"),
    R("tensor-unsqueeze-out-of-range", "range", (rnd(2, 3),), lambda S, x: x.unsqueeze(5), X, match="dim|range",
      also=(IndexError,), note=LEAD + "unsqueeze(5) on a 2-D tensor wraps the dim modulo 3 and returns a result"),
    R("tensor-squeeze-out-of-range", "range", (rnd(2, 1),), lambda S, x: x.squeeze(5), X, match="dim|range",
      also=(IndexError,), note=LEAD + "squeeze(5) on a 2-D tensor wraps the dim and returns a result"),
    R("tensor-flatten-out-of-range", "range", (rnd(2, 3),), lambda S, x: x.flatten(5), X, match="dim|range",
      also=(IndexError,), note=LEAD + "flatten(5) on a 2-D tensor returns shape (2, 3, 1) instead of raising"),
    R("tensor-sum-dim-out-of-range", "range", (rnd(2, 3),), lambda S, x: x.sum(dim=5), X, match="dim|axis|range",
      also=(IndexError,)),
    R("tensor-max-empty", "empty", (rnd(0, 3),), lambda S, x: x.max(), X, match="empty|numel|zero", also=(IndexError,), note=LEAD +
      "max() of an empty tensor raises NumPy's 'zero-size array to reduction operation maximum which has no identity'"),
    R("tensor-mean-empty", "empty", (rnd(0, 3),), lambda S, x: x.mean(), V),
    R("tensor-mean-int", "dtype", (ints(3),), lambda S, x: x.mean(), X, match="dtype|float", note=LEAD +
      "mean() of an int64 tensor returns a float64 mean (PyTorch: RuntimeError, mean needs a float dtype)"),
    R("tensor-pow-tensor", "type", (rnd(3), np.abs(rnd(3))), lambda S, x, y: x ** y, V, note=LEAD +
      "x ** tensor raises TypeError 'only a Python scalar exponent is supported' (PyTorch: elementwise power)"),
    R("tensor-rpow", "type", (np.abs(rnd(3)),), lambda S, x: 2.0 ** x, V, note=LEAD +
      "2.0 ** tensor raises TypeError (no __rpow__; PyTorch: elementwise power)"),
    R("tensor-flatten-reversed-dims", "range", (rnd(2, 3),), lambda S, x: x.flatten(1, 0), X, match="dim",
      note=LEAD + "flatten(1, 0) returns shape (2, 1, 3) (PyTorch: start_dim cannot come after end_dim)"),
    R("tensor-sum-dim-float", "type", (rnd(2, 3),), lambda S, x: x.sum(dim=1.5), X, match="dim", note=LEAD +
      "sum(dim=1.5) raises TypeError \"'float' object is not iterable\" (the argument is not named)"),
    R("tensor-add-broadcast-mismatch", "shape", (rnd(2, 3), rnd(4)), lambda S, x, y: x + y, X,
      match="broadcast|size|shape"),
    R("tensor-bool-multi", "type", (rnd(3),), lambda S, x: bool(x), X, match="ambiguous|one element", note=LEAD +
      "bool() of a 3-element tensor is True (falls back to len()) instead of raising"),
    R("tensor-reshape-mismatch", "shape", (rnd(2, 3),), lambda S, x: x.reshape(4), X, match="shape"),
    R("tensor-index-past", "range", (rnd(3),), lambda S, x: x[5], X, match="index|bounds", also=(IndexError,)),
    R("tensor-zeros-negative", "hyper", (), lambda S: S.lib.zeros(-1), X, match="negative|size|shape", note=LEAD +
      "engine.zeros(-1) raises NumPy's ValueError 'negative dimensions are not allowed' (no argument named)"),
    R("tensor-div-zero", "nonfinite", (arr(1.0, -1.0, 0.0), np.zeros(3)), lambda S, x, y: x / y, V),
    R("tensor-log-negative", "nonfinite", (arr(-1.0, 0.0, 1.0),), lambda S, x: x.log(), V),
    R("tensor-exp-huge", "extreme", (arr(1000.0, -1000.0, 0.0),), lambda S, x: x.exp(), V),
    R("tensor-noncontig-sum", "noncontig", (rnd(3, 4),), lambda S, x: x.transpose(0, 1)[::2].sum(dim=0), V),
    R("stack-shapes", "shape", (rnd(2), rnd(3)), lambda S, x, y: S.lib.stack([x, y]), X, match="shape|size"),
    R("cat-dim-out-of-range", "range", (rnd(2), rnd(3)), lambda S, x, y: S.lib.cat([x, y], dim=1), X,
      match="dim|range", also=(IndexError,)),
]

@pytest.mark.parametrize("case", [pytest.param(c, id=c.id, marks=c.marks + (
    [pytest.mark.xfail(strict=True, reason=c.xfail)] if c.xfail else [])) for c in CASES])
def test_catalog(case):
    check(case)


def test_catalog_covers_every_class_and_public_op():
    classes = {c.cls for c in CASES}
    assert {"type", "dtype", "rank", "shape", "range", "hyper", "0-d", "empty", "nonfinite", "extreme",
            "noncontig"} <= classes, classes
    named = " ".join(c.id for c in CASES)
    for name in engine.functional.__dict__:
        if callable(getattr(engine.functional, name)) and not name.startswith("_") and name.islower() \
                and getattr(engine.functional, name).__module__.startswith("engine.ops"):
            assert {"scaled_dot_product_attention": "sdpa"}.get(name, name) in named, f"no catalog row for F.{name}"
