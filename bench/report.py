"""Output: the terminal tables, the JSON with every figure, and the PNG of the ratios against each peer."""
import json
import math
import os

import numpy as np

from .core import PEERS


def _fmt(x, nd=2):
    if x is None:
        return "-"
    if isinstance(x, float) and math.isinf(x):
        return "inf"
    if 0 < abs(x) < 10 ** -nd:
        return f"{x:.0e}"
    return f"{x:.{nd}f}" if abs(x) < 1000 else f"{x:.0f}"


def _table(header, rows, left=3):
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)] if rows else [len(h) for h in header]
    last = len(widths) - 1        # the first columns and the last (a note) align left, numbers right

    def line(r):
        return "  ".join(str(c).ljust(w) if i < left or i == last else str(c).rjust(w)
                         for i, (c, w) in enumerate(zip(r, widths))).rstrip()
    return "\n".join([line(header), line(["-" * w for w in widths])] + [line(r) for r in rows])


def verify_table(rows, skipped_backends=None):
    """One line per op x backend x dtype; a column per pass with the worst error / tolerance (<= 1 passes)."""
    passes = [p for p in ("fwd", "bwd", "step", "repeat") if any(r["pass"] == p for r in rows)]
    groups = {}
    for r in rows:
        groups.setdefault((r["family"], r["op"], r["backend"], r["dtype"]), []).append(r)
    out = []
    for (fam, op, be, dt), rs in groups.items():
        by = {r["pass"]: r for r in rs}
        cells = []
        for p in passes:
            r = by.get(p)
            if r is None:
                cells.append("-")
            elif p == "repeat":
                cells.append("same" if r["worst"] == 0 else "DIFF")
            else:
                cells.append(_fmt(r["worst"], 3))
        bad = [r for r in rs if r["status"] == "FAIL"]
        status = rs[0]["status"] if all(r["status"] in ("skipped", "unchecked") for r in rs) else \
            ("FAIL" if bad else "ok")
        note = "; ".join(r["where"] for r in bad) or \
            ("; ".join(r["where"] for r in rs if r["status"] in ("skipped", "unchecked")))
        out.append([op, be, dt, *cells, status, (note.splitlines() or [""])[0][:100]])
    text = "verify: worst |kernel - reference| / tolerance over all configurations (<= 1 passes)\n"
    text += _table(["op", "backend", "dtype", *passes, "status", "worst at / note"], out)
    for name, why in (skipped_backends or {}).items():
        text += f"\n(backend {name} skipped: {why})"
    return text


def _rate(x):
    return f"{x:.3g}" if x < 1000 else f"{x:.0f}"


def bench_table(rows, threads=None):
    peers = [p for p in PEERS if any(p in r.get("ratio", {}) for r in rows)]
    out = []
    for r in rows:
        on = f"{r['device']}/{r['dtype'].replace('float', 'f')}"
        if r["status"] != "ok":
            out.append([r["op"], r["label"], r["pass"], on, r["status"].upper(), "", "", "", *[""] * len(peers),
                        r.get("why", "")[:80]])
            continue
        e = r["timings"]["engine"]
        rate = f"{_rate(r['rate'] / 1e9)} {r['rate_unit']}" if r.get("rate") else \
            (f"{_rate(r['items_per_s'])} items/s" if r.get("items_per_s") else "-")
        frac = f"{100 * r['frac_of_limit']:.0f}%" if r.get("frac_of_limit") is not None else "-"
        note = ""
        if r.get("loss_check"):
            note = f"loss engine vs torch: rel diff {r['loss_check']['max_rel_diff']:.1e}"
        out.append([r["op"], r["label"], r["pass"], on, f"{1e3 * e['median_s']:.3f} ({1e3 * e['min_s']:.3f})",
                    _fmt(r.get("compile_s")), rate, frac,
                    *[f"{_fmt(r['ratio'][p])} ({_fmt(r['ratio_min'][p])})" if p in r["ratio"] else "-" for p in peers],
                    note])
    head = "benchmark: engine time in ms, median (min) over repeats; compile = first-call seconds of the kernels " \
           "reached\nratios = peer time / engine time, of the medians (of the minima): > 1 means the engine is faster"
    if threads:
        head += f"\nthreads: {threads}"
    return head + "\n" + _table(["op", "shape", "pass", "on", "engine ms", "compile s", "rate", "of limit",
                                 *[f"x {p}" for p in peers], "note"], out, left=4)


def _threads_text(threads):
    """'numba 2 (omp), OpenMP 2, OpenBLAS 2' from a step child's thread report."""
    parts = [f"numba {threads['numba']} ({threads.get('numba_layer')})"] if "numba" in threads else []
    if "torch" in threads:
        parts.append(f"torch {threads['torch']} (interop {threads.get('torch_interop')})")
    parts += [f"{p['api']} {p['threads']}" for p in threads.get("pools", [])]
    return ", ".join(parts)


def steps_table(data):
    """The training-step section: per model each library's best median step and PyTorch / engine."""
    st = data["settings"]
    out = []
    for r in data["rows"]:
        if r["status"] == "error":
            out.append([r["model"], r["label"], "ERROR", "", "", "", "", "", r["why"][:100]])
            continue
        med = r["median_s"]
        lc = r.get("loss_check")
        note = r["why"][:100] if r["status"] != "ok" else \
            ("" if r["env_as_given"] else "a child's environment differs from the one given")
        ms = lambda lib: f"{1e3 * med[lib]:.2f} ({1e3 * r['min_s'][lib]:.2f})" if lib in med else "-"  # noqa: E731
        out.append([r["model"], r["label"], ms("engine"), ms("engine-compiled"), ms("torch"),
                    _fmt(r.get("ratio")), _fmt(r.get("ratio_compiled")), f"{lc['max_rel_diff']:.1e}" if lc else "-",
                    note])
    head = (f"training steps: each library alone in a fresh process, in the environment this command was started "
            f"with; {st['warmup']} untimed steps, then the median (min) of {st['steps']} steps, ms; best median of "
            f"{st['runs']} alternating run{'s' if st['runs'] > 1 else ''} per library\n"
            f"x torch = PyTorch time / engine time: > 1 means the engine is faster; compiled: the same step under "
            f"engine.compile (captured once, replayed)\n"
            f"CPU: {data['cpu']}, {data['isa']}, {data['cores']} cores")
    ok = [r for r in data["rows"] if r.get("threads")]
    if ok:
        tg = ok[0].get("target", {})
        if "engine" in tg:
            e = tg["engine"]
            head += (f"\ncode: engine compiled for {e['llvm_cpu']} "
                     f"({'AVX-512' if e['avx512f'] else 'AVX2' if e['avx2'] else 'no AVX2'})")
            if "torch" in tg:
                head += f", PyTorch dispatching {tg['torch']['torch_cpu_capability']}"
        for lib, th in ok[0]["threads"].items():
            head += f"\nthreads, {lib} process: {_threads_text(th)}"
    given = data["env"]["given"]
    head += "\nenvironment of the processes: " + (", ".join(f"{k}={v}" for k, v in sorted(given.items())) or
                                                   "none of the thread or wait settings set")
    if data["env"]["not_passed_on"]:
        head += f" (not passed on from this process: {', '.join(sorted(data['env']['not_passed_on']))})"
    return head + "\n" + _table(["model", "shape", "engine ms", "compiled ms", "torch ms", "x torch",
                                  "x torch, compiled", "loss rel diff", "note"], out, left=2)


def steps_png_rows(data):
    """The training-step rows in bench_table's row format, for write_png's PyTorch panel."""
    if not data:
        return []
    return [{"status": "ok", "op": r["model"], "pass": "step, own process", "label": r["label"], "device": "cpu",
             "dtype": data["settings"]["dtype"], "ratio": {"torch": r["ratio"]}}
            for r in data["rows"] if r["status"] == "ok" and r.get("ratio")]


def limits_line(limits):
    pf = ", ".join(f"{k} {v / 1e9:.1f} GFLOP/s" for k, v in limits["peak_flops"].items())
    return f"machine limits: GEMM peak {pf}; copy bandwidth {limits['bandwidth_Bps'] / 1e9:.1f} GB/s"


def _clean(x):
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.floating, float)):
        x = float(x)
        return x if math.isfinite(x) else str(x)
    if isinstance(x, np.ndarray):
        return _clean(x.tolist())
    return x


def write_json(path, data):
    with open(path, "w") as f:
        json.dump(_clean(data), f, indent=1)
    return path


def write_png(path, rows, title=""):
    """One panel per peer: a horizontal bar per (op, shape, pass) with peer / engine time on a log axis;
    green where the engine leads (> 1), red where it trails."""
    try:
        import matplotlib
    except ImportError:
        print("(no PNG: matplotlib is not installed)")
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import ticker
    ok = [r for r in rows if r["status"] == "ok" and r.get("ratio")]
    peers = [p for p in PEERS if any(p in r["ratio"] for r in ok)]
    if not ok or not peers:
        return None
    labels = [f"{r['op']} {r['pass']}  [{r['label']}] {r['device']}/{r['dtype'].replace('float', 'f')}" for r in ok]
    y = np.arange(len(ok))
    fig, axes = plt.subplots(1, len(peers), figsize=(5.5 * len(peers) + 3, 0.32 * len(ok) + 1.8), sharey=True,
                             squeeze=False)
    for ax, peer in zip(axes[0], peers):
        vals = np.array([r["ratio"].get(peer, np.nan) for r in ok], dtype=float)
        colors = ["#2e7d32" if v >= 1 else "#c62828" for v in vals]
        v = np.where(np.isfinite(vals), vals, 1.0)
        ax.barh(y, v - 1.0, left=1.0, color=colors, height=0.7)          # from 1 to the ratio, either way
        ax.set_xscale("log")
        ax.axvline(1.0, color="black", lw=1)
        ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(ticker.NullFormatter())
        name = {"numpy": "NumPy reference (float64)", "torch": "PyTorch", "cupy": "CuPy"}.get(peer, peer)
        ax.set_title(f"{name} time / engine time (> 1: engine faster)", fontsize=10)
        for yi, v in zip(y, vals):
            if np.isfinite(v):
                ax.text(v, yi, f" {v:.2g}", va="center", ha="left" if v >= 1 else "right", fontsize=7)
        finite = vals[np.isfinite(vals)]
        if finite.size:
            lo, hi = min(finite.min(), 1.0), max(finite.max(), 1.0)
            ax.set_xlim(lo / 2.5, hi * 2.5)
        ax.grid(axis="x", which="both", alpha=0.3)
    axes[0][0].set_yticks(y)
    axes[0][0].set_yticklabels(labels, fontsize=8)
    axes[0][0].invert_yaxis()
    fig.suptitle(title + "\nratios of median times; green: the engine leads, red: it trails", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def out_paths(out_dir, stamp, mode):
    os.makedirs(out_dir, exist_ok=True)
    base = os.path.join(out_dir, f"bench_{mode}_{stamp}")
    return base + ".json", base + ".png"
