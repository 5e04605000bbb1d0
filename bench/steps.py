"""Training steps as a user's process runs them: each library alone in a fresh process, in the environment the
user started the bench with.

`python -m bench steps` (the parent, `run`) starts, for each model, `python -m bench.steps <lib> <model>`
six times: engine, engine-compiled, torch, then again (--runs 2). engine-compiled is the same engine step
wrapped in `engine.compile` (captured on the first warmup step, replayed after; its losses must equal the
eager engine's). A child builds the model from bench/models.py, runs --warmup steps (the first two losses are
the loss check), times --steps steps one by one, and prints one JSON line (RESULT_TAG + JSON) with the median,
the thread counts its libraries used and the environment it saw. The parent keeps each library's best
(lowest) median over its runs; ratio = torch time / engine time (eager), and ratio_compiled = torch time /
engine-compiled time.

The child's environment is the parent's at start-up (`user_env`, taken before the op suite adds its thread
settings), nothing added: what the engine sets for itself on import counts, as a user gets it too. The engine
child writes its initial weights to a file (.npz) that the PyTorch child loads: PyTorch's process never
imports the engine or Numba. Each child reports a digest of its whole environment so that the parent can
check it got exactly what was passed.
"""
import argparse
import hashlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIBS = ("engine", "engine-compiled", "torch")
RESULT_TAG = "BENCH_STEPS_RESULT "
# what a child reports of its environment (before and after its run): thread and wait policies, pinning
WATCHED = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OPENBLAS_THREAD_TIMEOUT", "OMP_NUM_THREADS", "OMP_PROC_BIND",
           "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS", "NUMBA_THREADING_LAYER",
           "NUMBA_CACHE_DIR", "NUMBA_ENABLE_CUDASIM", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "KMP_BLOCKTIME")
LOSS_TOL = {"float32": 1e-3, "float64": 1e-9}     # relative; measured agreement ~1e-7 in float32
DEFAULTS = {"steps": 20, "warmup": 3, "runs": 2}
QUICK = {"steps": 3, "warmup": 2, "runs": 1}


def env_digest(env):
    return hashlib.sha256(json.dumps(sorted(env.items())).encode()).hexdigest()[:16]


def isa():
    """The widest x86 vector extension the CPU reports (/proc/cpuinfo flags): AVX-512 (avx512f), AVX2, else
    the flags' best or the machine name (non-x86, or no /proc)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith(("flags", "Features"))), [])
    except OSError:
        flags = []
    for flag, name in (("avx512f", "AVX-512"), ("avx2", "AVX2"), ("avx", "AVX"), ("sse4_2", "SSE4.2")):
        if flag in flags:
            return name
    return platform.machine()


# ---- the child: one library, one model, one run -------------------------------------------------------------
def _threads(lib):
    """Thread counts the child's libraries report after the run (threadpoolctl: every BLAS and OpenMP
    runtime loaded into the process)."""
    out = {}
    if lib.startswith("engine"):
        import numba
        out["numba"] = numba.get_num_threads()
        try:
            out["numba_layer"] = numba.threading_layer()
        except ValueError:
            out["numba_layer"] = "not initialized"
    else:
        import torch
        out["torch"] = torch.get_num_threads()
        out["torch_interop"] = torch.get_num_interop_threads()
    try:
        import threadpoolctl
        out["pools"] = [{"api": p["internal_api"], "threads": p["num_threads"],
                         "lib": os.path.basename(p["filepath"])} for p in threadpoolctl.threadpool_info()]
    except ImportError:
        pass
    return out


def _target(lib):
    """What each library compiled or dispatched for: LLVM's host CPU (Numba) or PyTorch's CPU capability."""
    if lib.startswith("engine"):
        from numba.core import config
        from numba.core.codegen import get_host_cpu_features
        import llvmlite.binding as llvm
        feats = (config.CPU_FEATURES if config.CPU_FEATURES is not None else get_host_cpu_features()).split(",")
        return {"llvm_cpu": config.CPU_NAME or llvm.get_host_cpu_name(), "avx512f": "+avx512f" in feats,
                "avx2": "+avx2" in feats}         # what Numba compiles for (NUMBA_CPU_NAME/FEATURES when set)
    import torch
    return {"torch_cpu_capability": torch.backends.cpu.get_cpu_capability()}


def child(argv):
    env0 = dict(os.environ)                              # before any import of numpy, numba or torch
    t_start, started = time.perf_counter(), time.time()
    ap = argparse.ArgumentParser(prog="python -m bench.steps", description="One library's training step, "
                                 "timed alone in this process; prints one JSON line (see bench/steps.py).")
    ap.add_argument("lib", choices=LIBS)
    ap.add_argument("model")
    ap.add_argument("--steps", type=int, default=DEFAULTS["steps"])
    ap.add_argument("--warmup", type=int, default=DEFAULTS["warmup"], help="untimed steps first (at least 2)")
    ap.add_argument("--quick", action="store_true", help="the models' small shapes")
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--init", required=True, help="the engine's initial weights (.npz): the engine writes them "
                                                  "with --save-init, PyTorch reads them")
    ap.add_argument("--save-init", action="store_true")
    args = ap.parse_args(argv)
    if args.warmup < 2 or args.steps < 1:
        ap.error("--warmup must be at least 2 (the loss check) and --steps at least 1")
    from . import models
    if args.model not in models.MODELS:
        ap.error(f"model: unknown {args.model!r}; known: {', '.join(models.MODELS)}")
    m = models.MODELS[args.model]
    p = m.quick if args.quick else m.params
    if args.lib.startswith("engine"):
        net, step = models.engine_step(m, p, args.dtype, args.seed)
        if args.lib == "engine-compiled":
            import engine
            step = engine.compile(step)
        if args.save_init:
            models.save_state(args.init, models.init_state(net))
    else:
        import torch
        net, step = models.torch_step(torch, m, p, args.dtype, models.read_state(args.init), args.seed)
    t_built = time.perf_counter()
    losses, warm = [], []
    for _ in range(args.warmup):
        t0 = time.perf_counter()
        losses.append(float(step().item()))
        warm.append(time.perf_counter() - t0)
    times = []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        loss = step()
        times.append(time.perf_counter() - t0)
    last = float(loss.item())
    s = sorted(times)
    q = statistics.quantiles(s, n=4) if len(s) >= 2 else [s[0]] * 3
    env1 = dict(os.environ)
    out = {"lib": args.lib, "model": args.model, "params": p, "dtype": args.dtype, "pid": os.getpid(),
           "steps": args.steps, "warmup": args.warmup, "median_s": statistics.median(s), "min_s": s[0],
           "q1_s": q[0], "q3_s": q[2], "times_s": times, "warmup_s": warm, "losses": losses[:2], "last_loss": last,
           "setup_s": t_built - t_start, "threads": _threads(args.lib), "target": _target(args.lib),
           "env": {k: env0[k] for k in WATCHED if k in env0}, "env_digest": env_digest(env0),
           "env_set_by_library": {k: env1.get(k) for k in set(env0) | set(env1) if env0.get(k) != env1.get(k)},
           "python": sys.executable, "started": started,
           "imported": {name: name in sys.modules for name in ("engine", "numba", "torch")}}
    print(RESULT_TAG + json.dumps(out), flush=True)
    return 0


# ---- the parent -------------------------------------------------------------------------------------------
def _run_child(lib, model, init, save_init, settings, env, timeout):
    cmd = [sys.executable, "-m", "bench.steps", lib, model, "--steps", str(settings["steps"]),
           "--warmup", str(settings["warmup"]), "--dtype", settings["dtype"], "--seed", str(settings["seed"]),
           "--init", init] + (["--save-init"] if save_init else []) + (["--quick"] if settings["quick"] else [])
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        return {"status": "error", "why": f"timed out after {timeout} s", "stderr": str(e.stderr or "")[-3000:]}
    wall = time.perf_counter() - t0
    found = [line for line in proc.stdout.splitlines() if line.startswith(RESULT_TAG)]
    if proc.returncode != 0 or not found:
        tail = (proc.stderr or proc.stdout).strip().splitlines()
        return {"status": "error", "why": f"exit status {proc.returncode}: {tail[-1] if tail else 'no output'}",
                "stderr": "\n".join(tail[-40:])}
    out = json.loads(found[-1][len(RESULT_TAG):])
    out.update(status="ok", wall_s=wall, env_as_given=out["env_digest"] == env_digest(env))
    return out


def _model_row(model, label, params, runs, tol):
    """One model's row from its children's results: best medians, ratio, loss check, threads."""
    row = {"model": model, "label": label, "params": params, "runs": runs}
    bad = [r for rs in runs.values() for r in rs if r["status"] != "ok"]
    if bad:
        row.update(status="error", why=bad[0]["why"], stderr=bad[0].get("stderr", ""))
        return row
    best = {lib: min(rs, key=lambda r: r["median_s"]) for lib, rs in runs.items()}
    row.update(status="ok", median_s={lib: r["median_s"] for lib, r in best.items()},
               min_s={lib: min(x["min_s"] for x in runs[lib]) for lib in runs},
               threads={lib: r["threads"] for lib, r in best.items()},
               target={lib: r["target"] for lib, r in best.items()},
               env_as_given=all(r["env_as_given"] for rs in runs.values() for r in rs))
    if "torch" in best:
        row["ratio"] = best["torch"]["median_s"] / best["engine"]["median_s"]
        if "engine-compiled" in best:
            row["ratio_compiled"] = best["torch"]["median_s"] / best["engine-compiled"]["median_s"]
        from .models import loss_check
        row["loss_check"] = loss_check(runs["engine"][0]["losses"], runs["torch"][0]["losses"])
        if not row["loss_check"]["max_rel_diff"] <= tol:
            row.update(status="FAIL", why=f"the first two losses differ by {row['loss_check']['max_rel_diff']:.1e} "
                                          f"(tolerance {tol:.0e}): the two models do not compute the same thing")
    if "engine-compiled" in best:
        # the replay computes what the eager step computes: the same losses, from the same seed and weights
        eager, replayed = runs["engine"][0]["losses"], runs["engine-compiled"][0]["losses"]
        row["compiled_losses"] = replayed
        if eager != replayed and row["status"] == "ok":
            row.update(status="FAIL", why=f"engine.compile's losses {replayed} differ from the eager step's {eager}")
    return row


def have_torch():
    import importlib.util
    return importlib.util.find_spec("torch") is not None


def run(models=None, steps=None, runs=None, warmup=None, quick=False, user_env=None, dtype="float32", seed=0,
        progress=False, timeout=900, libs=None):
    """The step benchmark: {"cpu", "isa", "settings", "env", "rows", "seconds"}. user_env: the environment the
    children get (default: this process's). Children run in the order engine, torch, engine, torch per model."""
    from . import core, machine
    from .models import MODELS
    base = QUICK if quick else DEFAULTS
    settings = {"steps": base["steps"] if steps is None else steps, "runs": base["runs"] if runs is None else runs,
                "warmup": base["warmup"] if warmup is None else warmup, "quick": quick, "dtype": dtype, "seed": seed}
    if settings["steps"] < 1 or settings["runs"] < 1 or settings["warmup"] < 2:
        raise ValueError(f"steps and runs must be at least 1 and warmup at least 2, got {settings}")
    if dtype not in LOSS_TOL:
        raise ValueError(f"dtype: expected one of {', '.join(LOSS_TOL)}, got {dtype!r}")
    models = list(models or MODELS)
    unknown = [m for m in models if m not in MODELS]
    if unknown:
        raise ValueError(f"models: unknown {', '.join(unknown)}; known: {', '.join(MODELS)}")
    libs = list(libs or (LIBS if have_torch() else LIBS[:2]))
    env = dict(os.environ if user_env is None else user_env)
    t0 = time.perf_counter()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_steps_") as tmp:
        jobs = [(m, r, lib) for m in models for r in range(settings["runs"]) for lib in libs]
        results = {m: {lib: [] for lib in libs} for m in models}
        for m, r, lib in core.progress_bar(jobs, "steps", progress):
            init = os.path.join(tmp, f"{m}.npz")
            if lib != "engine" and not os.path.exists(init):
                res = {"status": "error", "why": "no initial weights: the engine's run failed"}
            else:
                res = _run_child(lib, m, init, lib == "engine" and r == 0, settings, env, timeout)
            results[m][lib].append(res)
            if not progress:
                what = f"{1e3 * res['median_s']:.2f} ms (setup {res['setup_s']:.1f} s)" if res["status"] == "ok" \
                    else f"{res['status']} {res['why']}"
                print(f"  step {m} {lib} run {r + 1}/{settings['runs']}: {what}", flush=True)
        for m in models:
            spec = MODELS[m]
            rows.append(_model_row(m, spec.quick_label if quick else spec.label, spec.quick if quick else spec.params,
                                   results[m], LOSS_TOL[dtype]))
    added = {k: os.environ.get(k) for k in set(os.environ) | set(env) if os.environ.get(k) != env.get(k)}
    return {"cpu": machine._cpu_model(), "isa": isa(), "cores": os.cpu_count(), "libs": libs, "settings": settings,
            "env": {"given": {k: env[k] for k in WATCHED if k in env}, "digest": env_digest(env),
                    "not_passed_on": added},
            "rows": rows, "seconds": time.perf_counter() - t0}


def failed(data):
    return [r for r in data["rows"] if r["status"] != "ok"]


if __name__ == "__main__":
    sys.exit(child(sys.argv[1:]))
