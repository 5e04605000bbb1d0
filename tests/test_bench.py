"""The bench cannot rot: `python -m bench --quick` runs end to end (every family verified and timed, JSON and
PNG written), and verify really fails on a wrong, a crashing or a non-deterministic kernel."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH_FAMILIES = ("conv", "pool", "norm", "softmax", "attention", "linear", "optim", "models")


@pytest.mark.timeout(900)
def test_quick_run_verifies_times_and_writes_json_and_png(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    proc = subprocess.run([sys.executable, "-m", "bench", "--quick", "--no-progress", "--out", str(tmp_path)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=850)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    js, png = list(tmp_path.glob("*.json")), list(tmp_path.glob("*.png"))
    assert len(js) == 1 and len(png) == 1, out[-3000:]
    assert str(js[0]) in proc.stdout and str(png[0]) in proc.stdout
    assert png[0].stat().st_size > 10_000
    data = json.loads(js[0].read_text())
    assert data["meta"]["git"]["commit"] and data["meta"]["threads"]["numba"] >= 1
    assert data["limits"]["peak_flops"]["float32"] > 0 and data["limits"]["bandwidth_Bps"] > 0

    from bench import core
    core.load_all()
    vrows = data["verify"]["rows"]
    assert {v.family for v in core.VERIFY.values()} <= {r["family"] for r in vrows}
    assert not [r for r in vrows if r["status"] == "FAIL"]

    import engine.functional as F
    rows = data["bench"]["rows"]
    for fam in BENCH_FAMILIES:
        assert any(r["family"] == fam for r in rows), f"no benchmark rows for {fam}"
    for r in rows:
        if r["status"] == "skipped":                    # only while the engine op is not written yet
            missing = r["why"].split(" has no ", 1)[1].split(", ")
            assert not all(hasattr(F, m) for m in missing), r
            continue
        assert r["status"] == "ok", r
        eng = r["timings"]["engine"]
        assert 0 < eng["min_s"] <= eng["median_s"]
        if "torch" in r["timings"]:
            assert r["ratio"]["torch"] > 0
    ok = {(r["op"], r["pass"]) for r in rows if r["status"] == "ok"}
    assert ("linear", "fwd") in ok and ("linear", "bwd") in ok and ("adamw_step", "step") in ok

    from bench.models import MODELS                    # the training steps, each library in its own process
    steps = data["steps"]
    assert [r["model"] for r in steps["rows"]] == list(MODELS)
    assert all(r["status"] == "ok" and r["median_s"]["engine"] > 0 for r in steps["rows"]), steps["rows"]
    assert "training steps: each library alone in a fresh process" in proc.stdout


@pytest.fixture
def verify_relu(monkeypatch, tmp_path):
    """verify_relu(fwd=None, bwd=None) -> (rows, exit status of `python -m bench verify --ops relu`),
    run in this process with kernels.cpu's relu swapped for the given functions."""
    import kernels.cpu as cpu
    from bench import __main__ as cli, core, verify
    core.load_all()

    def run(fwd=None, bwd=None):
        if fwd is not None:
            monkeypatch.setattr(cpu, "relu_fwd", fwd)
        if bwd is not None:
            monkeypatch.setattr(cpu, "relu_bwd", bwd)
        rows, _ = verify.run_verify(["relu"], ["float32"], quick=True, cuda=False, progress=False)
        rc = cli.main(["verify", "--ops", "relu", "--dtype", "float32", "--quick", "--no-progress",
                       "--out", str(tmp_path)])
        return {r["pass"]: r for r in rows}, rc
    return run


def test_verify_passes_the_real_kernel(verify_relu):
    rows, rc = verify_relu()
    assert rc == 0 and all(r["status"] == "ok" for r in rows.values()), rows


def test_verify_fails_a_wrong_forward(verify_relu):
    import kernels.reference as ref
    rows, rc = verify_relu(fwd=lambda x: (ref.relu_fwd(x) * 1.01).astype(x.dtype))
    assert rc == 1 and rows["fwd"]["status"] == "FAIL" and rows["fwd"]["worst"] > 1


def test_verify_fails_a_wrong_backward(verify_relu):
    rows, rc = verify_relu(bwd=lambda dout, y: np.asarray(dout).copy())      # ignores the mask
    assert rc == 1 and rows["bwd"]["status"] == "FAIL" and rows["fwd"]["status"] == "ok"


def test_verify_fails_a_crashing_kernel(verify_relu):
    def boom(x):
        raise RuntimeError("kernel exploded")
    rows, rc = verify_relu(fwd=boom)
    assert rc == 1 and rows["error"]["status"] == "FAIL" and "kernel exploded" in rows["error"]["where"]


def test_verify_fails_a_non_deterministic_kernel(verify_relu):
    rng = np.random.default_rng()
    import kernels.reference as ref
    noisy = lambda x: (ref.relu_fwd(x) * (1 + 1e-6 * rng.standard_normal(x.shape))).astype(x.dtype)   # ~10 ulp
    rows, rc = verify_relu(fwd=noisy)
    assert rc == 1 and rows["fwd"]["status"] == "ok" and rows["repeat"]["status"] == "FAIL"


def test_compare_handles_nonfinite_and_integer_outputs():
    from bench.verify import compare
    f32 = np.float32
    assert compare(np.array([1.0, np.inf]), np.array([1.0, np.inf]), f32) == 0
    assert compare(np.array([1.0, np.nan]), np.array([1.0, 2.0]), f32) == np.inf
    assert compare(np.array([1.0, -np.inf]), np.array([1.0, np.inf]), f32) == np.inf
    assert compare(np.array([1, 2], np.int32), np.array([1, 3], np.int32), f32) == np.inf
    assert compare(np.ones(3), np.ones(4), f32) == np.inf
    assert 0.4 < compare(np.array([1.0 + 1e-4]), np.array([1.0]), f32) < 0.6     # tolerance 2e-4 + 2e-5


def test_help_says_each_thing_once_and_documents_the_command():
    proc = subprocess.run([sys.executable, "-m", "bench", "--help"], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    out = " ".join(proc.stdout.split())                                   # argparse wraps to the terminal
    assert out.count("then time it against PyTorch") == 1                 # the description, once
    assert "PASSIVE" not in out and "issue" not in out.lower()            # no internal jargon
    assert "verify: only check the kernels" in out and "run: only the benchmark" in out


def test_results_default_to_a_folder_under_the_current_one(tmp_path, monkeypatch):
    from bench.__main__ import parse
    monkeypatch.chdir(tmp_path)
    out = os.path.abspath(parse([]).out)
    assert out.startswith(str(tmp_path) + os.sep) and "site-packages" not in out


SLOWED_SOFTMAX = """
import time

def pytest_configure(config):          # the engine's softmax kernel made 20 ms slower, in this process only
    import kernels.cpu as k
    real = k.softmax_fwd
    def slowed(*args, **kw):
        time.sleep(0.02)
        return real(*args, **kw)
    k.softmax_fwd = slowed
"""


@pytest.mark.timeout(600)
def test_bench_compare_fails_on_a_slowed_kernel(tmp_path):
    """What `make bench-save` then `make bench-compare` do, on one quick case: a run saved, then the same case
    with the kernel slowed ~100x compared against it must fail and name the case."""
    (tmp_path / "slowed_softmax.py").write_text(SLOWED_SOFTMAX)
    store = tmp_path / "store"
    node = "bench/test_benchmarks.py::test_case[softmax-64x100-fwd-engine]"
    base = [sys.executable, "-m", "pytest", node, "--bench-quick", "--benchmark-only", "-p", "no:cacheprovider",
            f"--benchmark-storage={store}", "--benchmark-max-time=0.05", "--benchmark-min-rounds=5"]
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    saved = subprocess.run(base + ["--benchmark-autosave"], cwd=ROOT, env=env, capture_output=True, text=True,
                           timeout=280)
    assert saved.returncode == 0, (saved.stdout + saved.stderr)[-4000:]
    runs = list(store.rglob("*.json"))
    assert len(runs) == 1 and "softmax-64x100-fwd-engine" in runs[0].read_text()
    env["PYTHONPATH"] = str(tmp_path) + os.pathsep + env.get("PYTHONPATH", "")
    compared = subprocess.run(base + ["-p", "slowed_softmax", "--benchmark-compare",
                                      "--benchmark-compare-fail=min:25%"],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=280)
    out = compared.stdout + compared.stderr
    assert compared.returncode != 0, out[-4000:]
    assert "Performance has regressed" in out and "softmax-64x100-fwd-engine" in out, out[-4000:]


@pytest.mark.timeout(600)
def test_steps_run_each_library_alone_in_the_environment_the_user_had(tmp_path):
    """`python -m bench steps`: a fresh process per library and run, alternating engine, engine-compiled, torch;
    each gets the environment the command was started with: not the op suite's OMP_WAIT_POLICY, but the user's
    own OPENBLAS_THREAD_TIMEOUT (a value the suite would not set)."""
    import importlib.util
    from bench import steps
    env = {k: v for k, v in os.environ.items()
           if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OMP_WAIT_POLICY", "OPENBLAS_THREAD_TIMEOUT")}
    env["OPENBLAS_THREAD_TIMEOUT"] = "2"
    proc = subprocess.run([sys.executable, "-m", "bench", "steps", "--quick", "--models", "gru_lm", "--steps", "3",
                           "--runs", "2", "--no-progress", "--out", str(tmp_path)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=550)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    js = list(tmp_path.glob("bench_steps_quick_*.json"))
    assert len(js) == 1 and str(js[0]) in proc.stdout, out[-3000:]
    data = json.loads(js[0].read_text())
    assert data["meta"]["env"]["OMP_WAIT_POLICY"] == "PASSIVE"          # the parent did set it for itself...
    st = data["steps"]
    assert st["env"]["not_passed_on"] == {"OMP_WAIT_POLICY": "PASSIVE"}  # ...and passed on nothing of it
    assert st["cpu"] and st["isa"] and "x torch" in proc.stdout
    libs = ["engine", "engine-compiled"] + (["torch"] if importlib.util.find_spec("torch") else [])
    assert st["libs"] == libs
    (row,) = st["rows"]
    assert row["model"] == "gru_lm" and row["status"] == "ok", row
    children = sorted((r for lib in libs for r in row["runs"][lib]), key=lambda r: r["started"])
    assert [r["lib"] for r in children] == libs * 2                     # alternating, in that order
    assert len({r["pid"] for r in children}) == len(children)           # a fresh process each
    for r in children:
        assert "OMP_WAIT_POLICY" not in r["env"] and r["env"]["OPENBLAS_THREAD_TIMEOUT"] == "2", r["env"]
        assert r["env_as_given"] and r["steps"] == 3 and len(r["times_s"]) == 3
        assert 0 < r["min_s"] <= r["median_s"] and np.isfinite(r["last_loss"])
        other = {"engine": "torch", "engine-compiled": "torch", "torch": "numba"}[r["lib"]]
        assert not r["imported"][other], r["imported"]                  # the library alone in its process
    for lib in libs:
        assert row["median_s"][lib] == min(r["median_s"] for r in row["runs"][lib])
    if "torch" in libs:
        assert row["ratio"] == pytest.approx(row["median_s"]["torch"] / row["median_s"]["engine"]) and row["ratio"] > 0
        lc = row["loss_check"]
        assert lc["engine"] == row["runs"]["engine"][0]["losses"] and len(lc["torch"]) == 2
        assert lc["max_rel_diff"] <= steps.LOSS_TOL["float32"], lc
        assert row["threads"]["torch"]["torch"] >= 1
    assert row["threads"]["engine"]["numba"] >= 1
    assert row["compiled_losses"] == row["runs"]["engine"][0]["losses"]   # the replay computes the eager step
    if "torch" in libs:
        assert row["ratio_compiled"] == pytest.approx(row["median_s"]["torch"] / row["median_s"]["engine-compiled"])


def test_steps_fail_when_the_two_models_disagree_and_reject_unknown_models():
    from bench import steps
    run = lambda lib, med, losses: {"status": "ok", "lib": lib, "median_s": med, "min_s": med, "losses": losses,
                                    "threads": {}, "target": {}, "env_as_given": True}
    good = {"engine": [run("engine", 2.0, [2.3, 2.2]), run("engine", 1.0, [2.3, 2.2])],
            "torch": [run("torch", 3.0, [2.3, 2.2]), run("torch", 4.0, [2.3, 2.2])]}
    row = steps._model_row("m", "shape", {}, good, 1e-3)
    assert row["status"] == "ok" and row["ratio"] == 3.0               # best median each: 3.0 / 1.0
    compiled = lambda losses: dict(good, **{"engine-compiled": [run("engine-compiled", 0.5, losses)]})  # noqa: E731
    row = steps._model_row("m", "shape", {}, compiled([2.3, 2.2]), 1e-3)
    assert row["status"] == "ok" and row["ratio_compiled"] == 6.0
    row = steps._model_row("m", "shape", {}, compiled([2.3, 2.1]), 1e-3)
    assert row["status"] == "FAIL" and "engine.compile" in row["why"]
    bad = dict(good, torch=[run("torch", 3.0, [2.3, 2.3]), run("torch", 4.0, [2.3, 2.3])])
    row = steps._model_row("m", "shape", {}, bad, 1e-3)
    assert row["status"] == "FAIL" and "losses differ" in row["why"]
    proc = subprocess.run([sys.executable, "-m", "bench", "steps", "--models", "lenet,nope"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "unknown nope" in proc.stderr and "gru_lm" in proc.stderr
