"""Compile the CPU kernels ahead of time: `python -m engine.warmup [--dtype float32 float64] [--quiet]`.

Numba compiles each kernel on its first call with a new signature and caches the machine code on disk
(kernels.CACHE_DIR, keyed by the kernels' sources and by this CPU). A first training step on an empty cache
therefore waits for every kernel it uses. This command runs one small training step of each layer family in
the book (MLP with ReLU/sigmoid/tanh and dropout, LeNet-style conv and pooling, batch norm, a residual block,
layer norm and attention, RNN/GRU/LSTM language models, the losses, SGD/Adam/AdamW) so that later runs load
the kernels from the cache instead. Running it again on a warm cache takes a few seconds and compiles
nothing.

Numba compiles one kernel at a time in a process, on one core; `--jobs N` (default: one per core, at most one
per workload) runs the workloads in N processes at once, then once more in this process, which loads what
they cached and compiles whatever they missed (two processes that add signatures of one kernel to its cache
index at the same moment can drop one of them).
"""
import argparse
import os
import sys
import time

import numpy as np


def _step(model, loss_fn, x, y, opt_cls, **opt_kw):
    from engine import optim
    opt = getattr(optim, opt_cls)(model.parameters(), **opt_kw)
    loss = loss_fn(model(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    model.eval()
    from engine import no_grad
    with no_grad():
        model(x)
    model.train()
    return float(loss.item())


def _workloads(dtype):
    """(name, run) pairs; each run does a training step of small shapes in `dtype`."""
    import engine
    import engine.functional as F
    from engine import nn

    rng = np.random.default_rng(0)

    def t(*shape):
        return engine.tensor(rng.standard_normal(shape), dtype=dtype)

    def labels(n, k, *rest):
        return engine.tensor(rng.integers(0, k, (n,) + rest), dtype=engine.int64)

    def mlp():
        for act in (nn.ReLU(), nn.Sigmoid(), nn.Tanh(), nn.GELU()):
            m = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), act, nn.Dropout(0.5), nn.Linear(8, 4)).to(dtype)
            for fuse in (True, False):         # Sequential's fused linear + activation, and the two ops alone
                m.fuse = fuse
                _step(m, F.cross_entropy, t(6, 4, 4), labels(6, 4), "SGD", lr=0.1, momentum=0.9,
                      weight_decay=1e-4)
        m = nn.Sequential(nn.Linear(3, 1)).to(dtype)
        _step(m, F.mse_loss, t(6, 3), t(6, 1), "SGD", lr=0.1)

    def cnn():
        m = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(4, 4, 3, stride=2, padding=1), nn.BatchNorm2d(4), nn.Sigmoid(),
                          nn.AvgPool2d(2), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3)).to(dtype)
        for fuse in (True, False):             # conv + activation fused by Sequential, and each op alone
            m.fuse = fuse
            _step(m, F.cross_entropy, t(4, 1, 8, 8), labels(4, 3), "Adam", lr=1e-3)

    def resnet():
        class Residual(nn.Module):
            def __init__(self):
                super().__init__()
                self.c1, self.c2 = nn.Conv2d(4, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1)
                self.b1, self.b2 = nn.BatchNorm2d(4), nn.BatchNorm2d(4)
                self.c3 = nn.Conv2d(4, 4, 1)

            def forward(self, x):
                return F.relu(self.b2(self.c2(F.relu(self.b1(self.c1(x))))) + self.c3(x))
        m = nn.Sequential(Residual(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3)).to(dtype)
        _step(m, F.cross_entropy, t(2, 4, 6, 6), labels(2, 3), "SGD", lr=0.1, momentum=0.9)

    def attention():
        blk = nn.TransformerEncoderBlock(16, 32, 2, 0.1, causal=True).to(dtype)
        head = nn.Linear(16, 5).to(dtype)
        m = nn.Sequential(blk, head)
        x, y = t(2, 6, 16), labels(2, 5, 6)
        _step(m, lambda o, y: F.cross_entropy(o.reshape(-1, 5), y.reshape(-1)), x, y, "AdamW", lr=1e-3)
        q = t(2, 2, 6, 8)
        q.requires_grad_(True)
        F.scaled_dot_product_attention(q, q, q, is_causal=True).sum().backward()
        lens = engine.tensor([3, 6])
        F.masked_softmax(t(2, 4, 6), lens).sum()
        F.log_softmax(t(3, 5), -1)
        F.nll_loss(F.log_softmax(t(3, 5), -1), labels(3, 5))
        F.layer_norm(t(3, 8), (8,))
        nn.AdditiveAttention(8, 0.0, query_size=4, key_size=6).to(dtype)(t(2, 3, 4), t(2, 6, 6), t(2, 6, 6), lens)

    def recurrent():
        for cls in (nn.RNN, nn.GRU, nn.LSTM):
            emb, rnn, out = nn.Embedding(12, 8), cls(8, 16), nn.Linear(16, 12)

            class LM(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.emb, self.rnn, self.out = emb, rnn, out

                def forward(self, x):
                    h, _ = self.rnn(self.emb(x).transpose(0, 1))
                    return self.out(h.transpose(0, 1))
            m = LM().to(dtype)
            x, y = labels(3, 12, 5), labels(3, 12, 5)
            _step(m, lambda o, y: F.cross_entropy(o.reshape(-1, 12), y.reshape(-1)), x, y, "SGD", lr=0.5)
            nn.utils.clip_grad_norm_(m.parameters(), 1.0)

    return [("mlp", mlp), ("cnn", cnn), ("resnet", resnet), ("attention", attention), ("recurrent", recurrent)]


# the workloads, longest first on an empty cache (measured: attention 29 s, cnn 29, recurrent 12, mlp 8, resnet
# 0 after cnn), so that parallel jobs start the long ones first
LONGEST_FIRST = ("attention", "cnn", "recurrent", "mlp", "resnet")


def _run_one(workload, dtype_name, quiet_compiles=True):
    """One workload in this process (a --jobs worker); returns its seconds."""
    if quiet_compiles:
        from kernels import _notice
        _notice.ENABLED = False              # the parent says that kernels compile, once
    import engine
    run = dict(_workloads(getattr(engine, dtype_name)))[workload]
    t0 = time.perf_counter()
    run()
    return time.perf_counter() - t0


def _parallel(dtypes, jobs, quiet):
    """The workloads of every dtype in `jobs` fresh processes; returns the seconds each took there."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed
    todo = [(wl, name) for wl in LONGEST_FIRST for name in dtypes]
    times = {}
    if not quiet:
        print(f"warmup: {len(todo)} workloads in {min(jobs, len(todo))} processes", flush=True)
    # spawn, not fork: this process may already run Numba's and OpenBLAS's thread pools
    with ProcessPoolExecutor(min(jobs, len(todo)), mp_context=multiprocessing.get_context("spawn")) as ex:
        futures = {ex.submit(_run_one, wl, name): (wl, name) for wl, name in todo}
        for f in as_completed(futures):
            wl, name = futures[f]
            times[f"{wl}/{name}"] = f.result()
            if not quiet:
                print(f"warmup {wl:<10} {name:<8} {times[f'{wl}/{name}']:6.1f} s (in a worker)", flush=True)
    return times


def warmup(dtypes=("float32",), quiet=False, jobs=1):
    """Run the workloads for each dtype; returns the seconds each took (in this process: after parallel jobs,
    the time to load what they cached and compile what they missed)."""
    if jobs > 1:
        _parallel(dtypes, jobs, quiet)
    import engine
    times = {}
    for name in dtypes:
        dtype = getattr(engine, name)
        for wl, run in _workloads(dtype):
            t0 = time.perf_counter()
            run()
            times[f"{wl}/{name}"] = time.perf_counter() - t0
            if not quiet:
                print(f"warmup {wl:<10} {name:<8} {times[f'{wl}/{name}']:6.1f} s", flush=True)
    return times


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m engine.warmup", description=__doc__.split("\n\n")[0])
    ap.add_argument("--dtype", nargs="+", default=["float32"], choices=["float32", "float64"],
                    help="the dtypes to compile for (default: float32, the engine's default)")
    ap.add_argument("--quiet", action="store_true", help="print only the total")
    ap.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 1,
                    help="processes compiling at once (default: one per core, %(default)s here)")
    args = ap.parse_args(argv)
    if args.jobs < 1:
        ap.error(f"--jobs: expected a positive count, got {args.jobs}")
    t0 = time.perf_counter()
    warmup(tuple(args.dtype), args.quiet, args.jobs)
    import kernels
    print(f"warmup done in {time.perf_counter() - t0:.1f} s; kernels cached in {kernels.CACHE_DIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
