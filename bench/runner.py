"""Benchmark: each selected case's passes timed for the engine and its peers, interleaved, in one process.

What is timed, per pass:
  fwd  engine: F.<op>(...); torch: torch.nn.functional.<op>; both timed with grad mode off (engine.no_grad()
       and torch.no_grad() entered once around the whole timing, not per call: entering them costs 2.7 and
       4.3 us here, more than a small op itself, and would hide the ops' own overhead);
       numpy: the float64 reference's <op>_fwd (kernels.reference), given the same dtype inputs.
  bwd  engine: y.backward(dout, retain_graph=True) on a graph built once, the inputs' .grad reset to None
       before each call: the tape walk plus the op's backward kernel plus the leaf gradients' bookkeeping.
       torch: the same (autograd's engine, same inputs requiring grad, same dout).
       numpy: the reference's <op>_bwd on the reference forward's saved values.
  step (models) one training step: zero_grad, forward, loss, backward, optimizer step.
Ratios are peer time / engine time of the medians: > 1 means the engine is faster.
"""
import time
import traceback

import numpy as np

from . import core


class Ctx:
    """What a case's build() gets: dtype, device, seeded inputs, and the wrappers that turn one function into
    timed fwd and bwd callables for the engine and for PyTorch."""

    def __init__(self, dtype, device="cpu", quick=False, seed=0):
        self.dtype, self.device, self.quick, self.seed = np.dtype(dtype), device, quick, seed
        self.rng = np.random.default_rng(seed)
        self.torch = core.optional("torch")
        if self.torch is not None and device == "cuda" and not self.torch.cuda.is_available():
            self.torch = None
        self.cupy = core.optional("cupy") if device == "cuda" else None
        self.tdtype = getattr(self.torch, self.dtype.name, None)

    # ---- inputs ----
    def randn(self, *shape, scale=1.0):
        return (self.rng.standard_normal(shape) * scale).astype(self.dtype)

    def dout(self, shape):
        """The upstream gradient for an output of this shape: the same values for every implementation."""
        if not len(shape):
            return np.ones((), self.dtype)
        return np.random.default_rng([self.seed, *shape]).standard_normal(shape).astype(self.dtype)

    def put(self, a):
        """An input array on the case's device (NumPy on cpu, CuPy on cuda)."""
        return self.cupy.asarray(a) if self.device == "cuda" else a

    def sync(self):
        if self.device == "cuda":
            if self.torch is not None:
                self.torch.cuda.synchronize()
            if self.cupy is not None:
                self.cupy.cuda.Device().synchronize()

    # ---- the engine ----
    def engine(self, fn, args, grads):
        """(fwd, bwd, y) for fn(*tensors): ndarray args become engine Tensors, requires_grad where `grads`
        says (a list parallel to the arrays among args); other args pass through."""
        import engine
        ts, gi = [], iter(grads)
        for a in args:
            ts.append(engine.Tensor(self.put(a), requires_grad=next(gi)) if isinstance(a, np.ndarray) else a)

        def fwd():                           # timed inside no_grad(), see run_case
            return fn(*ts)
        if not any(grads):
            return fwd, None, None
        y = fn(*ts)
        dout = engine.Tensor(self.put(self.dout(y.shape)))
        leaves = [t for t in ts if isinstance(t, engine.Tensor) and t.requires_grad]

        def bwd():
            for t in leaves:
                t.grad = None
            y.backward(dout, retain_graph=True)
        return fwd, bwd, y

    # ---- PyTorch ----
    def torch_fns(self, fn, args, grads):
        """The same for a torch function; (None, None, None) without torch."""
        torch = self.torch
        if torch is None:
            return None, None, None
        dev = "cuda" if self.device == "cuda" else "cpu"
        ts, gi = [], iter(grads)
        for a in args:
            ts.append(torch.from_numpy(np.ascontiguousarray(a)).to(dev).requires_grad_(next(gi))
                      if isinstance(a, np.ndarray) else a)

        def fwd():
            return fn(*ts)
        if not any(grads):
            return fwd, None, None
        y = fn(*ts)
        dout = torch.from_numpy(self.dout(tuple(y.shape))).to(dev)
        leaves = [t for t in ts if isinstance(t, torch.Tensor) and t.requires_grad]

        def bwd():
            for t in leaves:
                t.grad = None
            y.backward(dout, retain_graph=True)
        return fwd, bwd, y

    def grad_off(self, pname):
        """The context a pass is timed in: for "fwd", engine.no_grad() and torch.no_grad() together."""
        import contextlib
        stack = contextlib.ExitStack()
        if pname == "fwd":
            import engine
            stack.enter_context(engine.no_grad())
            if self.torch is not None:
                stack.enter_context(self.torch.no_grad())
        return stack

    def cupy_fwd(self, fn, args):
        """A forward written with CuPy on the same inputs (a GPU peer), or None off the GPU / without CuPy."""
        if self.cupy is None or self.device != "cuda":
            return None
        cargs = [self.cupy.asarray(a) if isinstance(a, np.ndarray) else a for a in args]
        return lambda: fn(self.cupy, *cargs)

    def pair(self, engine_fn, torch_fn, args, grads, torch_args=None):
        """{'fwd': {...}, 'bwd': {...}} for the engine and torch on the same inputs (torch_args: when torch
        needs other non-array args)."""
        ef, eb, _ = self.engine(engine_fn, args, grads)
        tf, tb, _ = self.torch_fns(torch_fn, torch_args if torch_args is not None else args, grads)
        return {"fwd": {"engine": ef, "torch": tf}, "bwd": {"engine": eb, "torch": tb}}


def settings(quick):
    """Timer settings (core.measure's arguments). Quick mode only proves that everything runs: 3 samples of
    one call each."""
    if quick:
        return dict(repeat=3, warmup=1, budget_s=0.1, min_sample_s=0.0)
    return dict(repeat=25, warmup=3, budget_s=3.0, min_sample_s=2e-3)


def _compile_estimate(keys, first_call_s, median_s):
    """Seconds of compilation behind a pass: the first-call times of the kernels it reaches; a first call
    made by the benchmark itself (not by verify's tiny shapes) also ran once at full size, so the median
    is taken off."""
    total, source = 0.0, set()
    for k in keys:
        sec, phase = core.FIRST_CALLS.get(k, (0.0, "bench"))
        total += sec
        source.add(phase)
    if not keys:
        return max(0.0, first_call_s - median_s), "first call - median"
    if "bench" in source:
        total = max(0.0, total - median_s)
    return total, "+".join(sorted(source))


def run_case(case, dtype, device, quick, limits, seed=0, gap_s=0.0):
    """Rows (one per pass) for one case."""
    import engine.functional as F
    params = case.quick if quick else case.params
    label = case.label_for(quick)
    base = dict(op=case.op, family=case.family, label=label, params=params, dtype=str(np.dtype(dtype)),
                device=device)
    need = (case.engine_op,) if isinstance(case.engine_op, str) else (case.engine_op or ())
    missing = [n for n in need if not hasattr(F, n)]
    if missing:
        return [dict(base, **{"pass": "-", "status": "skipped", "why": f"engine.functional has no {', '.join(missing)}"})]
    ctx = Ctx(dtype, device, quick, seed)
    try:
        impls = case.build(ctx, params)
    except Exception as e:
        return [dict(base, **{"pass": "-", "status": "error", "why": f"{type(e).__name__}: {e}",
                              "traceback": traceback.format_exc(limit=-4)})]
    rows = []
    for pname, fns in impls.passes.items():
        # on a GPU the NumPy reference would time the host, not a peer on the device: leave it out there
        fns = {k: v for k, v in fns.items() if v is not None and not (k == "numpy" and device != "cpu")}
        row = dict(base, **{"pass": pname, "bound": impls.bound, "flops": impls.flops.get(pname, 0),
                            "bytes": impls.bytes.get(pname, 0), **impls.extra})
        try:
            with ctx.grad_off(pname):
                first, keys = core.traced(fns["engine"])
                ctx.sync()
                t = core.measure(fns, sync=ctx.sync, gap_s=gap_s, **settings(quick))
        except Exception as e:
            rows.append(dict(row, status="error", why=f"{type(e).__name__}: {e}",
                             traceback=traceback.format_exc(limit=-4)))
            continue
        eng = t["engine"]
        comp, source = _compile_estimate(keys, first, eng.min_s)
        row.update(status="ok", first_call_s=first, compile_s=comp, compile_source=source,
                   kernels=[k[1] for k in keys], timings={k: v.asdict() for k, v in t.items()},
                   ratio={k: v.median_s / eng.median_s for k, v in t.items() if k != "engine"},
                   ratio_min={k: v.min_s / eng.min_s for k, v in t.items() if k != "engine"})
        if row.get("items"):
            row["items_per_s"] = row["items"] / eng.median_s
        work = row["flops"] if impls.bound == "flops" else row["bytes"]
        if work:
            row.update(rate=work / eng.median_s, rate_unit="GFLOP/s" if impls.bound == "flops" else "GB/s")
        rows.append(row)
    apply_limits(rows, limits)
    return rows


def apply_limits(rows, limits):
    """frac_of_limit = achieved rate (from the median) / the machine's peak FLOP/s for the dtype or bandwidth."""
    for row in rows:
        if row.get("rate"):
            limit = limits.get("peak_flops", {}).get(row["dtype"]) if row["bound"] == "flops" \
                else limits.get("bandwidth_Bps")
            row["frac_of_limit"] = row["rate"] / limit if limit else None


def run_bench(cases, dtype="float32", device="cpu", quick=False, limits=None, progress=True, seed=0, gap_s=0.0):
    core.PHASE[0] = "bench"
    rows = []
    bar = core.progress_bar([c for c in cases if device in c.devices], f"bench {device} {dtype}", progress)
    for case in bar:
        if hasattr(bar, "set_postfix_str"):
            bar.set_postfix_str(case.name)
        t0 = time.perf_counter()
        for r in run_case(case, dtype, device, quick, limits or {}, seed, gap_s):
            r["case_seconds"] = round(time.perf_counter() - t0, 3)
            rows.append(r)
            if not progress:          # a line per result as it comes: a run cut short still shows what it had
                print(_row_line(r), flush=True)
    return rows


def _row_line(r):
    if r.get("status") != "ok":
        return f"  {r['op']} {r['label']} {r['pass']} {r['device']}/{r['dtype']}: {r['status']} {r.get('why', '')}"
    ratios = " ".join(f"x{k} {v:.2f}" for k, v in sorted(r.get("ratio", {}).items()))
    return (f"  {r['op']} {r['label']} {r['pass']} {r['device']}/{r['dtype']}: engine "
            f"{1e3 * r['timings']['engine']['median_s']:.3f} ms {ratios}")
