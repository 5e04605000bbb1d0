"""Verify: every kernel of every available backend, forward and backward, against the float64 reference.

For each VerifyOp, backend and dtype: the fixed configurations and a few seeded random ones. Inputs are drawn
in float64 and cast to the dtype; the reference gets the float64 values of the same cast inputs (so it checks
the kernel, not the cast). The reference's backward runs on the reference's own forward outputs, the
kernel's on the kernel's (the engine's path). Per output, the error is measured against
    allowed = scale * (atol * max(1, max|ref|) + rtol * |ref|)            (elementwise)
(widened to 2x the error of a same-dtype naive forward where the op gives one), and the row reports the
worst err / allowed: a pass is <= 1. Integer outputs (argmax) must match exactly, and non-finite reference
values must be matched in kind. A last pass, "repeat", reruns the kernels on the same inputs and demands
identical bits (every configuration runs twice).
"""
import time
import traceback
import zlib

import numpy as np

from . import core

TOL = {np.dtype(np.float32): (2e-4, 2e-5), np.dtype(np.float64): (1e-9, 1e-11)}     # (rtol, atol), as tests/
N_RANDOM = {False: 4, True: 1}                                                       # random configs (quick?)


def _cast(inp, dtype, be, noncontig=()):
    out = {}
    for k, v in inp.items():
        if isinstance(v, np.ndarray) and v.dtype.kind == "f":
            v = v.astype(dtype)
            if k in noncontig and v.ndim:
                buf = np.empty(v.shape[:-1] + (2 * v.shape[-1],), dtype)
                buf[..., ::2] = v
                v = buf[..., ::2]
        out[k] = be.put(v) if isinstance(v, np.ndarray) else v
    return out


def _ref_inputs(inp, dtype):
    """The reference's inputs: float arrays rounded to the dtype under test, then back to float64."""
    return {k: v.astype(dtype).astype(np.float64) if isinstance(v, np.ndarray) and v.dtype.kind == "f" else v
            for k, v in inp.items()}


def _dout_maker(seed, dtype, be):
    """dout_like(y): seeded N(0, 1) of y's shape, rounded to the dtype under test; on the backend's device,
    or (be None, for the reference) back in float64."""
    def dout_like(y):
        a = np.random.default_rng([seed, *np.shape(y)]).standard_normal(np.shape(y)).astype(dtype)
        return be.put(a) if be is not None else a.astype(np.float64)
    return dout_like


def compare(actual, ref, dtype, scale=1.0, naive=None):
    """Worst err / allowed over the elements (0 = exact, <= 1 passes, inf = wrong shape or non-finite mismatch)."""
    a, r = np.asarray(actual), np.asarray(ref)
    if a.shape != r.shape:
        return float("inf")
    if r.dtype.kind in "iub":
        return 0.0 if np.array_equal(a, r) else float("inf")
    a, r = a.astype(np.float64), r.astype(np.float64)
    if r.size == 0:
        return 0.0
    fin = np.isfinite(r)
    if not np.array_equal(np.isnan(a), np.isnan(r)) or not np.array_equal(a[np.isinf(r)], r[np.isinf(r)]):
        return float("inf")
    if not fin.any():
        return 0.0
    rtol, atol = TOL[np.dtype(dtype)]
    mag = max(1.0, float(np.max(np.abs(r[fin]))))
    allowed = scale * (atol * mag + rtol * np.abs(r[fin]))
    err = np.abs(a[fin] - r[fin])
    if naive is not None:
        n = np.asarray(naive, np.float64)[fin]
        allowed = np.maximum(allowed, 2 * float(np.max(np.abs(n - r[fin]))))
    with np.errstate(invalid="ignore"):
        worst = float(np.max(err / allowed))
    return float("inf") if np.isnan(worst) else worst


def _flat(outs):
    return list(outs) if isinstance(outs, (list, tuple)) else [outs]


def _configs(vop, quick, tiny, seed):
    if tiny:
        return [dict(vop.fixed[0])]
    rng = np.random.default_rng(seed)
    cfgs = [dict(p) for p in vop.fixed]
    if vop.noncontig:
        cfgs[-1]["_noncontig"] = True
    return cfgs + [vop.sample(rng) for _ in range(N_RANDOM[quick])]


def check_op(vop, be, dtype, quick=False, seed=0):
    """Rows {op, backend, dtype, pass, worst, n, status, where} for one op on one backend and dtype."""
    dtype = np.dtype(dtype)
    base = dict(op=vop.op, family=vop.family, backend=be.name, dtype=str(dtype))
    missing = [k for k in vop.kernels if not hasattr(be.module, k)]
    if missing:
        return [dict(base, **{"pass": "-", "worst": None, "n": 0, "status": "skipped",
                              "where": f"{be.name} lacks {', '.join(missing)}"})]
    import kernels.reference as ref
    worst = {}                      # pass -> (ratio, config label)
    error = None
    cfgs = _configs(vop, quick, be.tiny, seed)
    t0 = time.perf_counter()
    for i, params in enumerate(cfgs):
        label = vop.describe(params)
        try:
            inp = vop.inputs(params, np.random.default_rng([seed, i, zlib.crc32(vop.op.encode())]))
            nc = vop.noncontig if params.get("_noncontig") else ()
            out = vop.run(be.module, _cast(inp, dtype, be, nc), _dout_maker(i, dtype, be))
            be.sync()
            want = vop.run(ref, _ref_inputs(inp, dtype), _dout_maker(i, dtype, None))
            naive = vop.naive(_cast(inp, dtype, core.Backend("host", None))) if vop.naive else None
            for pname in out:
                got, exp = _flat(out[pname]), _flat(want[pname])
                nv = _flat(naive) if (naive is not None and pname == "fwd") else [None] * len(got)
                if len(got) != len(exp):
                    worst[pname] = (float("inf"), f"{label}: {len(got)} outputs, the reference has {len(exp)}")
                    continue
                for j, (g, e) in enumerate(zip(got, exp)):
                    if e is None:
                        continue
                    r = float("inf") if g is None else \
                        compare(be.get(g), e, dtype, vop.scale, nv[j] if j < len(nv) else None)
                    if r > worst.get(pname, (-1.0, ""))[0]:
                        worst[pname] = (r, f"{label} out{j}")
            again = vop.run(be.module, _cast(inp, dtype, be, nc), _dout_maker(i, dtype, be))   # same bits?
            same = all(np.array_equal(np.asarray(be.get(a)), np.asarray(be.get(b)), equal_nan=True)
                       for p in out for a, b in zip(_flat(out[p]), _flat(again[p])) if a is not None)
            if not same and worst.get("repeat", (0.0, ""))[0] == 0.0:
                worst["repeat"] = (float("inf"), label)
            worst.setdefault("repeat", (0.0, "every configuration"))
        except Exception as e:
            error = (label, f"{type(e).__name__}: {e}", traceback.format_exc(limit=-3))
            break
    rows = []
    for pname, (r, where) in worst.items():
        rows.append(dict(base, **{"pass": pname, "worst": r, "n": len(cfgs),
                                  "status": "ok" if r <= 1.0 else "FAIL", "where": where}))
    if error is not None:
        rows.append(dict(base, **{"pass": "error", "worst": None, "n": len(cfgs), "status": "FAIL",
                                  "where": f"{error[0]}: {error[1]}", "traceback": error[2]}))
    for row in rows:
        row["seconds"] = round(time.perf_counter() - t0, 3)
    return rows


def backends(cuda=True, cuda_sim=False):
    """(list of Backend, {name: reason skipped})."""
    out, skipped = [core.cpu_backend()], {}
    if cuda or cuda_sim:
        be, why = core.cuda_backend(simulator=cuda_sim)
        if be is not None:
            out.append(be)
        else:
            skipped["cudasim" if cuda_sim else "cuda"] = why
    for be in out:
        core.instrument(be.module, be.name)
    return out, skipped


def run_verify(ops=None, dtypes=("float32", "float64"), quick=False, cuda=True, cuda_sim=False, progress=True,
               seed=0):
    """Check every selected op on every backend and dtype. Returns (rows, skipped_backends)."""
    bes, skipped = backends(cuda, cuda_sim)
    vops = core.select(core.VERIFY.values(), ops)
    jobs = [(v, be, d) for be in bes for v in vops for d in dtypes]
    rows = [] if ops else unchecked(bes)
    bar = core.progress_bar(jobs, "verify", progress)
    with core.instrumenting():
        for v, be, d in bar:
            if hasattr(bar, "set_postfix_str"):
                bar.set_postfix_str(f"{v.op} {be.name} {d}")
            rows.extend(check_op(v, be, d, quick, seed))
    return rows, skipped


def kernel_names(module):
    """The public kernels of a backend module: <op>_fwd, <op>_bwd, <op>_fwd_<variant>, ..., <optimizer>_step."""
    return sorted(n for n in getattr(module, "__all__", dir(module))
                  if n.endswith(("_fwd", "_bwd", "_step")) or "_fwd_" in n or "_bwd_" in n)


def unchecked(bes):
    """Rows (status 'unchecked') for kernels that no VerifyOp calls: a new kernel needs a check in bench/."""
    covered = {k for v in core.VERIFY.values() for k in v.kernels}
    return [{"op": n, "family": "?", "backend": be.name, "dtype": "-", "pass": "-", "worst": None, "n": 0,
             "status": "unchecked", "where": "no check in bench/ calls this kernel"}
            for be in bes for n in kernel_names(be.module) if n not in covered]


def failed(rows):
    return [r for r in rows if r["status"] == "FAIL"]
