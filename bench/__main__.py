"""`python -m bench [all|verify|run|steps|distributed] [options]`: check every kernel against its reference, then time it against PyTorch.

examples:
  python -m bench                       verify (float32 + float64), benchmark at the standard shapes, then
                                        the training steps, each library in a process of its own
  python -m bench verify                only the kernel checks; exit status 1 if any fails
  python -m bench steps --models lenet,gru_lm --steps 10 --runs 2
                                        only the training steps (lenet, resnet, transformer, gru_lm)
  python -m bench distributed           all-reduce against mpi4py and a training step on 1 and 2 ranks
                                        (python -m bench distributed --help for its options)
  python -m bench run --ops conv2d,softmax --dtype float32
  python -m bench --quick               small shapes, few repeats (what `make test` runs)
  python -m bench --list                the ops and families it knows

--ops takes op names (conv2d, max_pool2d, ...) or families (conv, pool, norm, softmax, loss, attention,
linear, optim, models, activation, embedding, rnn). The exit status is 1 when a check fails, a case raises,
or a family module does not import. Results go to ./bench-results/ (or --out): bench_<mode>_<time>.json
with every figure, and a .png of the speed ratios against each peer.

Threads: Numba, PyTorch and the BLAS under NumPy get the same count (--threads, default all cores), and
run one at a time. Idle OpenMP and OpenBLAS worker threads are told to sleep rather than spin, so that one
library's idle workers do not hold the cores the next one needs (--spin keeps the libraries' defaults).
At start-up a short probe reports how much each library slows down when run right after the others.

Training steps (the last section): for each model a fresh process per library and run, alternating engine,
PyTorch, engine, PyTorch, each started with the environment this command was started with (none of the
settings above), at the libraries' default thread counts; each library's best median step, and
PyTorch time / engine time.
"""
import argparse
import os
import sys
import tempfile
import time

DEFAULT_OUT = "bench-results"          # under the current folder, never inside the package


def parse(argv):
    head, _, rest = __doc__.partition("\n\n")
    what = head.split(": ", 1)[1]
    ap = argparse.ArgumentParser(prog="python -m bench", description=what[:1].upper() + what[1:],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=rest)
    ap.add_argument("command", nargs="?", default="all", choices=["all", "verify", "run", "steps", "distributed"],
                    help="all: verify, then benchmark, then the training steps (default); verify: only check the "
                         "kernels against their references; run: only the benchmark; steps: only the training "
                         "steps; distributed: the scale-out benchmark (MPI)")
    ap.add_argument("--ops", default="", help="comma-separated ops or families (default: all)")
    ap.add_argument("--quick", action="store_true", help="small shapes and few repeats")
    ap.add_argument("--gpu-set", action="store_true", help="with --device cuda: only the large GPU shapes "
                                                           "(see --list) and the per-op overhead cases")
    ap.add_argument("--dtype", default="", help="float32, float64 or both, comma-separated (default: benchmark "
                                                "float32; verify both, float32 only with --quick)")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda", "all"], help="where to benchmark")
    ap.add_argument("--out", default=DEFAULT_OUT, help=f"folder for the JSON and PNG (default ./{DEFAULT_OUT})")
    ap.add_argument("--threads", type=int, default=os.cpu_count(), help="threads for Numba, PyTorch and BLAS alike")
    ap.add_argument("--cuda-sim", action="store_true", help="also verify kernels.cuda under the CUDA simulator")
    ap.add_argument("--cold", action="store_true", help="a fresh NUMBA_CACHE_DIR, so first calls show true compile time")
    ap.add_argument("--gap", type=float, default=0.0, help="seconds to sleep between timed samples")
    ap.add_argument("--spin", action="store_true", help="keep OpenMP's and OpenBLAS's default spin-waiting threads")
    ap.add_argument("--seed", type=int, default=0, help="seed of the random inputs")
    ap.add_argument("--no-progress", action="store_true", help="no progress bars; print each result as it comes")
    ap.add_argument("--list", action="store_true", help="list the ops and cases, then exit")
    ap.add_argument("--models", default="", help="training steps: comma-separated models (default: all)")
    ap.add_argument("--steps", type=int, default=None, help="training steps: steps timed per run "
                                                            "(default 20; 3 with --quick)")
    ap.add_argument("--runs", type=int, default=None, help="training steps: runs per library, alternating "
                                                           "(default 2; 1 with --quick)")
    return ap.parse_args(argv)


# Idle worker threads sleep instead of spinning: OpenMP's (Numba's omp layer and PyTorch share libgomp) and
# OpenBLAS's (NumPy). Measured here on 2 busy cores (bench/machine.py's probe): with the libraries' default
# spin-waiting, an 8 MB Numba copy took 12 ms instead of 0.4 ms and a 256x256 GEMM 24 ms instead of 0.3 ms,
# because spinning workers hold the cores that the next call's threads need. A sleeping worker costs a wake-up
# (microseconds) per parallel region, the same for the engine and its peers. --spin keeps the defaults.
PASSIVE = {"OMP_WAIT_POLICY": "PASSIVE", "OPENBLAS_THREAD_TIMEOUT": "4"}
ENV_KEYS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OPENBLAS_THREAD_TIMEOUT", "OMP_NUM_THREADS", "NUMBA_NUM_THREADS",
            "NUMBA_THREADING_LAYER", "NUMBA_CACHE_DIR", "NUMBA_ENABLE_CUDASIM")


def _env(args):
    """Settings that must precede the first import of numpy, numba and torch."""
    if not args.spin:
        for k, v in PASSIVE.items():
            os.environ.setdefault(k, v)
    if args.cuda_sim:
        os.environ["NUMBA_ENABLE_CUDASIM"] = "1"
    if args.cold:
        os.environ["NUMBA_CACHE_DIR"] = tempfile.mkdtemp(prefix="bench_numba_cache_")
    late = [m for m in ("numpy", "numba", "torch") if m in sys.modules]
    if late and __name__ == "__main__":
        print(f"warning: {', '.join(late)} imported before the bench set its environment", file=sys.stderr)


def _model_names():
    from .models import MODELS
    return list(MODELS)


def _devices(want):
    """(devices to benchmark, {device: why skipped})."""
    from . import core
    out, skipped = ["cpu"] if want in ("cpu", "all") else [], {}
    if want in ("cuda", "all"):
        torch = core.optional("torch")
        try:
            import engine
            engine.zeros(1, device="cuda")
            if core.optional("cupy") is None:
                raise RuntimeError("CuPy is not installed")
            out.append("cuda")
        except Exception as e:
            skipped["cuda"] = f"{type(e).__name__}: {e}" + ("" if torch is None else
                                                           f" (torch.cuda available: {torch.cuda.is_available()})")
    return out, skipped


def _run_steps(args, user_env, progress):
    """The training-step section: (its data, whether it failed)."""
    from . import report, steps
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    try:
        dtypes = [d.strip() for d in args.dtype.split(",") if d.strip()]
        data = steps.run(models, args.steps, args.runs, quick=args.quick, user_env=user_env, progress=progress,
                         seed=args.seed, dtype=dtypes[0] if len(dtypes) == 1 else "float32")
    except ValueError as e:
        print(f"training steps: {e}", file=sys.stderr)
        return None, True
    print(report.steps_table(data), flush=True)
    for r in steps.failed(data):
        print(f"error in the {r['model']} step: {r['why']}\n{r.get('stderr', '')}", file=sys.stderr)
    return data, bool(steps.failed(data))


def _steps_only(args, user_env):
    """`python -m bench steps`: the parent imports no library it times."""
    from . import machine, report
    progress = not args.no_progress and sys.stderr.isatty()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    data, bad = _run_steps(args, user_env, progress)
    if data is None:
        return 2
    rc = 1 if bad else 0
    json_path, png_path = report.out_paths(args.out, stamp, "steps_quick" if args.quick else "steps")
    report.write_json(json_path, {"meta": {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "cpu": data["cpu"],
                                           "git": {"commit": machine._git("rev-parse", "HEAD")}, "argv": sys.argv,
                                           "env": {k: os.environ.get(k) for k in ENV_KEYS if k in os.environ}},
                                  "quick": args.quick, "steps": data, "exit_status": rc})
    print(f"\nJSON: {json_path}")
    if report.write_png(png_path, report.steps_png_rows(data), f"{data['cpu']} ({data['isa']}), training steps"):
        print(f"PNG:  {png_path}")
    print("status:", "ok" if rc == 0 else "FAILED")
    return rc


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["distributed"]:
        from . import distributed
        return distributed.main(argv[1:])
    user_env = dict(os.environ)            # what the training-step processes get: before _env adds anything
    args = parse(argv)
    _env(args)
    bad_models = [m for m in args.models.split(",") if m.strip() and m.strip() not in _model_names()]
    if bad_models:
        print(f"--models: unknown {', '.join(bad_models)}; known: {', '.join(_model_names())}", file=sys.stderr)
        return 2
    if args.command == "steps":
        return _steps_only(args, user_env)
    import warnings
    from numba.core.errors import NumbaIRAssumptionWarning
    # Numba's internal pedantic check (numba asks for a report, the kernels are fine): pages of it would bury
    # the tables. `make test` still shows it.
    warnings.filterwarnings("ignore", category=NumbaIRAssumptionWarning)
    from . import core, report, verify as verify_mod
    core.load_peers_first()
    import_errors = core.load_all()
    ops = [o.strip() for o in args.ops.split(",") if o.strip()]
    if args.list:
        print("verify ops:", ", ".join(f"{v.op} ({v.family})" for v in core.VERIFY.values()))
        print("cases:", "\n  ".join([""] + [
            f"{c.family:10s} {c.name}" + ("  [cuda only]" if c.devices == ("cuda",) else "")
            + ("  [--gpu-set]" if c.gpu_set else "") for c in core.CASES]))
        return 0
    known = {v.op for v in core.VERIFY.values()} | {v.family for v in core.VERIFY.values()} | \
        {c.op for c in core.CASES} | {c.family for c in core.CASES}
    unknown = [o for o in ops if o not in known and o not in import_errors]
    if unknown:
        print(f"--ops: unknown {', '.join(unknown)}; known: {', '.join(sorted(known))}", file=sys.stderr)
        return 2
    dtypes = [d.strip() for d in args.dtype.split(",") if d.strip()]
    vdtypes = dtypes or (["float32"] if args.quick else ["float32", "float64"])
    bdtypes = dtypes or ["float32"]
    progress = not args.no_progress and sys.stderr.isatty()
    threads = core.set_threads(args.threads)
    from . import machine
    data = {"meta": None, "quick": args.quick, "import_errors": import_errors}
    stamp = time.strftime("%Y%m%d-%H%M%S")
    rc = 0
    for mod, err in import_errors.items():
        print(f"bench.{mod} did not import: {err}", file=sys.stderr)
        rc = 1

    if args.command in ("all", "verify"):
        t0 = time.perf_counter()
        rows, skipped = verify_mod.run_verify(ops, vdtypes, args.quick, cuda=True, cuda_sim=args.cuda_sim,
                                              progress=progress, seed=args.seed)
        data["verify"] = {"rows": rows, "skipped_backends": skipped, "dtypes": vdtypes,
                          "seconds": time.perf_counter() - t0}
        print(report.verify_table(rows, skipped), flush=True)
        bad = verify_mod.failed(rows)
        for r in bad:
            if r.get("traceback"):
                print(f"error in {r['op']} ({r['backend']}, {r['dtype']}) at {r['where'].splitlines()[0]}:\n"
                      f"{r['traceback']}", file=sys.stderr)
        print(f"verify: {len(bad)} failing of {len(rows)} checks ({time.perf_counter() - t0:.1f} s)\n", flush=True)
        if bad:
            rc = 1

    devices, dskip = _devices(args.device) if args.command in ("all", "run") else ([], {})
    for dev, why in dskip.items():
        print(f"(device {dev} skipped: {why})")
    data["skipped_devices"] = dskip
    if devices:
        from . import runner
        t0 = time.perf_counter()
        data["limits"] = machine.limits(args.quick, tuple(bdtypes))
        data["thread_probe"] = machine.thread_probe(args.quick)
        print(report.limits_line(data["limits"]))
        tp = data["thread_probe"]
        print("thread probe, time interleaved / alone: " + ", ".join(
            f"{k} {v:.2f} ({tp['slowdown_with_gap'][k]:.2f} with a {1e3 * tp['gap_s']:.0f} ms gap)"
            for k, v in tp["slowdown"].items()), flush=True)
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0
        if load > 0.5 * (os.cpu_count() or 1):
            print(f"warning: load average {load:.1f} on {os.cpu_count()} cores: other processes compete for the "
                  f"cores, medians will be noisy; the minima are the steadier figures", flush=True)
        cases = core.select(core.CASES, ops)
        if args.gpu_set:
            cases = [c for c in cases if c.gpu_set]
        rows = []
        for dev in devices:
            for dt in bdtypes:
                rows += runner.run_bench(cases, dt, dev, args.quick, data["limits"], progress, args.seed, args.gap)
        # the limits again at the end, keeping the higher figures: a busy moment at start-up must not make
        # the kernels look faster than the machine
        data["limits"] = machine.merge_limits(data["limits"], machine.limits(args.quick, tuple(bdtypes)))
        runner.apply_limits(rows, data["limits"])
        print(report.limits_line(data["limits"]) + " (the higher of start and end)")
        data["bench"] = {"rows": rows, "seconds": time.perf_counter() - t0,
                         "settings": dict(runner.settings(args.quick), gap_s=args.gap)}
        print(report.bench_table(rows, threads), flush=True)
        errors = [r for r in rows if r["status"] == "error"]
        for r in errors:
            print(f"error in {r['op']} {r['label']} {r['pass']}: {r['why']}\n{r.get('traceback', '')}", file=sys.stderr)
        if errors:
            rc = 1

    if args.command == "all" and args.device in ("cpu", "all") and (not ops or "models" in ops or any(
            o in ops for o in _model_names())):
        print()
        data["steps"], bad = _run_steps(args, user_env, progress)
        if bad:
            rc = 1

    data["meta"] = machine.describe(threads)
    data["meta"]["env"] = {k: os.environ.get(k) for k in ENV_KEYS if os.environ.get(k) is not None}
    data["first_calls"] = [{"backend": k[0], "kernel": k[1], "dtypes": k[2], "seconds": v[0], "phase": v[1]}
                           for k, v in core.FIRST_CALLS.items()]
    data["exit_status"] = rc
    json_path, png_path = report.out_paths(args.out, stamp, "quick" if args.quick else args.command)
    report.write_json(json_path, data)
    print(f"\nJSON: {json_path}")
    if data.get("bench") or data.get("steps"):
        png_rows = data.get("bench", {}).get("rows", []) + report.steps_png_rows(data.get("steps"))
        title = f"{data['meta']['cpu']}, {args.threads} threads, git {str(data['meta']['git']['commit'])[:10]}" \
                f"{' (dirty)' if data['meta']['git']['dirty'] else ''}{' quick' if args.quick else ''}"
        if report.write_png(png_path, png_rows, title):
            print(f"PNG:  {png_path}")
    print("status:", "ok" if rc == 0 else "FAILED")
    return rc


if __name__ == "__main__":
    sys.exit(main())
