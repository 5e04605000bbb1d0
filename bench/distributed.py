"""`python -m bench.distributed [--quick] [--device cpu|cuda] [--out DIR]`: data-parallel benchmarks.

1. All-reduce latency and bandwidth on 2 ranks: engine.distributed.all_reduce against mpi4py's own buffer
   Allreduce on the same NumPy buffers (and mpi4py's pickled allreduce up to 256 KiB), float32 sums from 8 B
   to 64 MiB, interleaved; per size the median over repetitions of the slower rank's time. Bandwidth is the
   bus bandwidth, bytes * 2(W-1)/W / time (what each rank sends and receives in a ring).
2. A training step's scaling from 1 to 2 ranks: LeNet (ReLU, max pooling) on 28x28 digits, float32, SGD with
   momentum, the same global batch; 1 rank with 1 Numba + 1 BLAS thread, 1 rank with all the cores, 2 ranks
   with init_process_group's share (cores / 2 each), and 2 ranks each given all the cores (oversubscribed).
   Scaling efficiency = t(1 rank, 1 core) / (2 t(2 ranks, 1 core each)); and the speed-up of the 2 ranks over
   1 rank on all the cores (the same cores), t(1 rank, all cores) / t(2 ranks).
With --device cuda: NCCL all-reduce bandwidth through engine.distributed on the ranks' GPUs (mpiexec -n GPUs,
default 1) instead. Each configuration runs in a fresh process (thread pools are sized at start-up); results
print as tables and go to DIR/distributed_<time>.json.
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np

DEFAULT_OUT = "bench-results"          # under the current folder, as python -m bench writes
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# By default every run has the libraries' own idle-thread behaviour, as a user's process has (the engine sets
# nothing for its users); --sleep-idle tells idle OpenMP and OpenBLAS workers to sleep rather than spin, as the
# op suite does (bench/__main__.py's PASSIVE), to show what the thread pools' spinning costs
PASSIVE = {"OMP_WAIT_POLICY": "PASSIVE", "OPENBLAS_THREAD_TIMEOUT": "4"}
SIZES = [8, 64, 512, 4 << 10, 32 << 10, 256 << 10, 2 << 20, 16 << 20, 64 << 20]


# ---- workers (run under mpiexec, or alone as a world of one) ---------------------------------------------------
def _slowest(times):
    """Per repetition, the slowest rank's time (an elementwise MAX over ranks)."""
    import engine.distributed as dist
    t = np.asarray(times, np.float64)
    dist.all_reduce(t, op="max")
    return t


def worker_allreduce(quick):
    import engine.distributed as dist
    from mpi4py import MPI
    dist.init_process_group("mpi", timeout=600)
    comm, w = MPI.COMM_WORLD, dist.get_world_size()
    rows = []
    for nbytes in SIZES[:-2] if quick else SIZES:
        a = np.ones(max(2, nbytes // 4), np.float32)
        reps = max(5, min(200, int((0.05 if quick else 0.2) / (2e-6 + nbytes / 2e9))))
        times = {"engine": [], "mpi4py": [], "pickled": []}
        ways = {"engine": lambda: dist.all_reduce(a), "mpi4py": lambda: comm.Allreduce(MPI.IN_PLACE, a),
                "pickled": lambda: comm.allreduce(a)}
        if nbytes > (256 << 10):
            del ways["pickled"]
        for _ in range(2):                       # warm-up
            for fn in ways.values():
                fn()
        for _ in range(reps):
            for name, fn in ways.items():
                a[...] = 1
                comm.Barrier()
                t0 = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t0)
        row = {"bytes": a.nbytes, "reps": reps}
        for name in ways:
            t = float(np.median(_slowest(times[name])))
            row[f"{name}_us"] = t * 1e6
            row[f"{name}_GBps"] = a.nbytes * 2 * (w - 1) / w / t / 1e9 if w > 1 else None
        rows.append(row)
    return {"world": w, "rows": rows}


def worker_nccl(quick):
    import cupy
    import engine.distributed as dist
    dist.init_process_group("nccl", timeout=600)
    w = dist.get_world_size()
    rows = []
    for nbytes in SIZES[3::2] if quick else SIZES[3:] + [256 << 20]:
        a = cupy.ones(nbytes // 4, np.float32)
        for _ in range(3):
            dist.all_reduce(a, op="max")
        reps = 20 if nbytes < (64 << 20) else 5
        start, end = cupy.cuda.Event(), cupy.cuda.Event()
        start.record()
        for _ in range(reps):
            dist.all_reduce(a, op="max")
        end.record()
        end.synchronize()
        t = cupy.cuda.get_elapsed_time(start, end) / 1e3 / reps
        rows.append({"bytes": nbytes, "engine_us": t * 1e6, "algbw_GBps": nbytes / t / 1e9,
                     "busbw_GBps": nbytes * 2 * (w - 1) / w / t / 1e9})
    return {"world": w, "rows": rows}


def worker_step(quick, batch):
    import engine
    import engine.distributed as dist
    import engine.functional as F
    from engine import optim
    from engine.models.classification import digits, lenet
    from engine.nn.parallel import DistributedDataParallel
    dist.init_process_group("mpi", timeout=600)
    import numba
    r, w = dist.get_rank(), dist.get_world_size()
    local = dist.per_rank_batch_size(batch)
    engine.manual_seed(0)
    model = lenet(activation="relu", pool="max")
    if w > 1:
        model = DistributedDataParallel(model)
    opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x, _, y, _ = digits(28)
    steps = 6 if quick else 20
    times = []
    for s in range(3 + steps):
        lo = (s * batch) % (len(x) - batch) + r * local
        xb, yb = engine.tensor(x[lo:lo + local]), engine.tensor(y[lo:lo + local])
        dist.barrier()
        t0 = time.perf_counter()
        opt.zero_grad()
        F.cross_entropy(model(xb), yb).backward()
        opt.step()
        if s >= 3:
            times.append(time.perf_counter() - t0)
    t = _slowest(times)
    return {"world": w, "batch": batch, "local_batch": local, "step_ms": float(np.median(t)) * 1e3,
            "numba_threads": numba.get_num_threads(), "share": dist.thread_share(),
            "env": {k: os.environ.get(k) for k in ("NUMBA_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")}}


def worker(argv):
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["allreduce", "nccl", "step"])
    ap.add_argument("--out", required=True)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--batch", type=int, default=256)
    a = ap.parse_args(argv)
    res = {"allreduce": lambda: worker_allreduce(a.quick), "nccl": lambda: worker_nccl(a.quick),
           "step": lambda: worker_step(a.quick, a.batch)}[a.what]()
    import engine.distributed as dist
    if dist.get_rank() == 0:
        with open(a.out, "w") as f:
            json.dump(res, f)
    return 0


# ---- the driver ---------------------------------------------------------------------------------------------------
def _mpiexec():
    import shutil
    local = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    return local if os.access(local, os.X_OK) else shutil.which("mpiexec")


def _run(n, args, env_threads=None, sleep_idle=False, timeout=600):
    """Run a worker (n ranks under mpiexec; n=0: plain python, a world of one); return its JSON."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "r.json")
        py = [sys.executable, "-m", "mpi4py"] if n else [sys.executable]
        cmd = ([_mpiexec(), "-n", str(n)] if n else []) + py + ["-m", "bench.distributed", "--worker", *args,
                                                               "--out", out]
        env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
        for k in ("NUMBA_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            env.pop(k, None)
        if env_threads:
            env.update(NUMBA_NUM_THREADS=str(env_threads), OPENBLAS_NUM_THREADS=str(env_threads))
        if sleep_idle:
            env.update(PASSIVE)
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)      # a timeout ends the launcher and all its ranks
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            stdout, stderr = proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{stdout[-2000:]}\n{stderr[-4000:]}")
        with open(out) as f:
            return json.load(f)


def idle_fraction(seconds=1.0):
    """The fraction of the machine's CPU time that was idle over `seconds` (Linux /proc/stat), or None: other
    processes (even ones in other containers on this machine) show up here, and in every figure measured."""
    def sample():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return v[3] + v[4], sum(v)              # idle + iowait, total
    try:
        i0, t0 = sample()
        time.sleep(seconds)
        i1, t1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    return (i1 - i0) / max(1, t1 - t0)


def _pct(x):
    return "?" if x is None else f"{100 * x:.0f}%"


def _fmt_size(n):
    return f"{n >> 20} MiB" if n >= 1 << 20 else f"{n >> 10} KiB" if n >= 1 << 10 else f"{n} B"


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["--worker"]:
        return worker(argv[1:])
    ap = argparse.ArgumentParser(prog="python -m bench distributed",
                                 description="Data-parallel benchmarks: all-reduce on 2 ranks against mpi4py, and "
                                             "a training step's scaling from 1 to 2 ranks.",
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n", 1)[1].strip())
    ap.add_argument("--quick", action="store_true", help="fewer sizes and steps")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"],
                    help="cpu: MPI on host arrays (default); cuda: NCCL all-reduce on the GPUs")
    ap.add_argument("--ranks", type=int, default=None, help="ranks (GPUs) for --device cuda (default 1)")
    ap.add_argument("--batch", type=int, default=256, help="global batch of the training step")
    ap.add_argument("--sleep-idle", action="store_true",
                    help="idle OpenMP and OpenBLAS threads sleep (OMP_WAIT_POLICY=PASSIVE); default: the libraries' "
                         "own spin-waiting, as in a user's process")
    ap.add_argument("--out", default=DEFAULT_OUT, help=f"folder for the JSON (default ./{DEFAULT_OUT})")
    a = ap.parse_args(argv)
    ranks = a.ranks or (1 if a.device == "cuda" else 2)
    if ranks > 1:                                   # a world of one needs neither (engine.distributed's fallback)
        try:
            import mpi4py  # noqa: F401
        except ImportError:
            print("bench.distributed: mpi4py is not installed (pip install '.[distributed]')")
            return 2
        if _mpiexec() is None:
            print("bench.distributed: no mpiexec next to this Python or on PATH (pip install mpich)")
            return 2
    result = {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "cores": os.cpu_count(), "device": a.device,
              "load_average_before": os.getloadavg(), "idle_before": idle_fraction(),
              "idle_threads": PASSIVE if a.sleep_idle else "the libraries' defaults"}
    if a.device == "cuda":
        result["nccl"] = _run(ranks if ranks > 1 else 0, ["nccl"] + (["--quick"] if a.quick else []))
        print(f"NCCL all-reduce (float32) on {result['nccl']['world']} GPU(s):")
        for row in result["nccl"]["rows"]:
            print(f"  {_fmt_size(row['bytes']):>8}  {row['engine_us']:9.1f} us  algbw {row['algbw_GBps']:7.2f} GB/s  "
                  f"busbw {row['busbw_GBps']:7.2f} GB/s")
    else:
        q = ["--quick"] if a.quick else []
        ar = result["allreduce"] = _run(2, ["allreduce"] + q, sleep_idle=a.sleep_idle)
        print("All-reduce (float32 sum) on 2 ranks: median of the slower rank, us (bus bandwidth GB/s)")
        print(f"  {'size':>8}  {'engine':>18}  {'mpi4py buffer':>18}  {'mpi4py pickled':>15}  engine/mpi4py")
        for row in ar["rows"]:
            pick = f"{row['pickled_us']:9.1f}" if "pickled_us" in row else ""
            print(f"  {_fmt_size(row['bytes']):>8}  {row['engine_us']:9.1f} ({row['engine_GBps']:5.2f})  "
                  f"{row['mpi4py_us']:9.1f} ({row['mpi4py_GBps']:5.2f})  {pick:>15}  "
                  f"{row['engine_us'] / row['mpi4py_us']:6.2f}x")
        step = ["step", "--batch", str(a.batch)] + q
        cores = os.cpu_count() or 1
        runs = {"1 rank, 1+1 threads": _run(0, step, 1, a.sleep_idle),
                f"1 rank, {cores}+{cores} threads": _run(0, step, cores, a.sleep_idle),
                "2 ranks, automatic share": _run(2, step, None, a.sleep_idle),
                f"2 ranks, {cores}+{cores} threads each": _run(2, step, cores, a.sleep_idle)}
        result["step"] = runs
        one, full, two = (runs["1 rank, 1+1 threads"]["step_ms"], runs[f"1 rank, {cores}+{cores} threads"]["step_ms"],
                          runs["2 ranks, automatic share"]["step_ms"])
        # 2 ranks of 1 core each against 1 rank on 1 core (twice the cores: efficiency = speed-up / 2), and
        # against 1 rank on all the cores (the same cores: the speed-up itself)
        result["efficiency"] = {"vs_1_rank_1_core": one / two / 2, "speedup_vs_1_rank_all_cores": full / two}
        print(f"\nTraining step, LeNet on 28x28, float32, global batch {a.batch} (median of the slower rank):")
        for name, r in runs.items():
            share = r["share"] or {}
            print(f"  {name:32s} {r['step_ms']:8.1f} ms   (Numba threads {r['numba_threads']}, BLAS "
                  f"{share.get('blas')}, local batch {r['local_batch']})")
        eff = result["efficiency"]
        print(f"  scaling efficiency of 2 ranks (1 core each) over 1 rank on 1 core: {eff['vs_1_rank_1_core']:.2f}; "
              f"speed-up over 1 rank on all {cores} cores: {eff['speedup_vs_1_rank_all_cores']:.2f}x")
    result["load_average_after"], result["idle_after"] = os.getloadavg(), idle_fraction()
    idle = "sleep (OMP_WAIT_POLICY=PASSIVE)" if a.sleep_idle else "the libraries' defaults (spin-waiting)"
    print(f"load average before / after: {result['load_average_before'][0]:.2f} / "
          f"{result['load_average_after'][0]:.2f} on {os.cpu_count()} cores; the CPUs were "
          f"{_pct(result['idle_before'])} / {_pct(result['idle_after'])} idle just before / after (other processes' "
          f"work slows every figure); idle threads: {idle}")
    os.makedirs(a.out, exist_ok=True)
    path = os.path.join(a.out, f"distributed_{time.strftime('%Y%m%d-%H%M%S')}.json")
    with open(path, "w") as f:
        json.dump(result, f, indent=1)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
