"""An install that stays in its lane: the wheel holds the engine and its kernels (not bench/ or tests/), with
its dependencies declared and no build warning; Numba's cache lives in a user cache folder keyed by the
kernels' sources (or in NUMBA_CACHE_DIR when the user sets it), never inside the package."""
import os
import pathlib
import shutil
import subprocess
import sys
import time
import zipfile
from importlib import metadata

import pytest
from packaging.version import Version

import kernels

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
JUNK = ("wheel-build", ".git", ".venv", "__pycache__", "*.pyc", ".numba_cache", "build", "dist", "*.egg-info", "runs",
        "bench-results", ".benchmarks", ".pytest_cache")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """(names in the wheel, its METADATA, the build's output), built from a copy of the checkout."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(*JUNK))
    # the venv's setuptools when it can build the project (quick, offline); else pip's isolated build fetches one
    reuse = ["--no-build-isolation"] if Version(metadata.version("setuptools")) >= Version("77") else []
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "-v", "-w", str(tmp / "dist"),
                           *reuse], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    (whl,) = (tmp / "dist").glob("numba_engine-*.whl")
    with zipfile.ZipFile(whl) as zf:
        names = zf.namelist()
        meta = zf.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    return names, meta, proc.stdout + proc.stderr


def test_wheel_holds_engine_and_kernels_only(wheel):
    names, _, _ = wheel
    tops = {n.split("/")[0] for n in names}
    assert tops == {"engine", "kernels", "numba_engine-0.1.0.dist-info"}, tops
    for must in ("engine/train.py", "engine/datasets/digits.npz", "engine/datasets/timemachine.txt",
                 "kernels/cpu/softmax.py", "kernels/cuda/softmax.py", "kernels/reference/softmax.py"):
        assert must in names
    assert not [n for n in names if "__pycache__" in n or n.endswith((".nbi", ".nbc", ".pyc"))]


def test_wheel_declares_what_the_runner_and_kernels_need(wheel):
    _, meta, out = wheel
    req = [line.split(":", 1)[1].strip() for line in meta.splitlines() if line.startswith("Requires-Dist:")]
    core = [r for r in req if "extra ==" not in r]
    for dep in ("numba>=0.62", "matplotlib", "threadpoolctl", "tqdm", "numpy"):
        assert any(r.replace(" ", "").startswith(dep) for r in core), (dep, core)
    assert "License-Expression: MIT" in meta
    for major, cupy in (("13", "cupy-cuda13x"), ("12", "cupy-cuda12x")):     # one CUDA major per extra
        extra = [r for r in req if f'extra == "cuda{major}"' in r]
        assert any(r.startswith(f"numba-cuda[cu{major}]") for r in extra) and any(r.startswith(cupy) for r in extra)
    assert "deprecated" not in out.lower(), [line for line in out.splitlines() if "deprecat" in line.lower()]


def _run(code, env_changes, cwd=ROOT):
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env.update(env_changes)
    proc = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout.strip()


RELU = ("import numpy as np, kernels.cpu as k; k.relu_fwd(np.ones(5, np.float32)); "
        "import numba; print(numba.config.CACHE_DIR)")


@pytest.mark.timeout(600)
def test_kernels_cache_in_the_user_cache_folder_keyed_by_their_sources(tmp_path):
    started = time.time()
    used = _run(RELU, {"XDG_CACHE_HOME": str(tmp_path / "xdg")})
    folder = tmp_path / "xdg" / "numba-engine" / f"kernels-{kernels.source_key()}"
    assert used == str(folder)
    assert [p.name for p in folder.rglob("*.nbi") if "relu" in p.name], list(folder.rglob("*"))
    fresh_in_tree = [p for p in pathlib.Path(ROOT, "kernels").rglob("*.nbi")
                     if p.stat().st_mtime >= started]
    assert not fresh_in_tree, fresh_in_tree
    # numba imported before the kernels: the folder still takes effect
    used = _run("import numba; " + RELU, {"XDG_CACHE_HOME": str(tmp_path / "xdg2")})
    assert used.startswith(str(tmp_path / "xdg2" / "numba-engine" / "kernels-"))
    assert list((tmp_path / "xdg2").rglob("*relu*.nbi"))
    # a NUMBA_CACHE_DIR set by the user is kept as it is
    used = _run(RELU, {"NUMBA_CACHE_DIR": str(tmp_path / "mine"), "XDG_CACHE_HOME": str(tmp_path / "xdg3")})
    assert used == str(tmp_path / "mine") and list((tmp_path / "mine").rglob("*relu*.nbi"))
    assert not (tmp_path / "xdg3").exists()


def test_source_key_changes_with_any_kernel_source(tmp_path):
    tree = tmp_path / "kernels"
    shutil.copytree(os.path.dirname(kernels.__file__), tree, ignore=shutil.ignore_patterns("__pycache__"))
    key = kernels.source_key(str(tree))
    assert key == kernels.source_key(os.path.dirname(kernels.__file__)) and len(key) == 16
    (tree / "cpu" / "__pycache__").mkdir(exist_ok=True)
    (tree / "cpu" / "__pycache__" / "x.nbi").write_bytes(b"cache files do not count")
    assert kernels.source_key(str(tree)) == key
    helper = tree / "cpu" / "_math.py"
    helper.write_text(helper.read_text() + "\n# an edit in a helper module\n")
    edited = kernels.source_key(str(tree))
    assert edited != key
    helper.rename(tree / "cpu" / "_math2.py")
    assert kernels.source_key(str(tree)) not in (key, edited)


def test_unused_cache_folders_are_pruned(tmp_path):
    old, recent, keep = (tmp_path / f"kernels-{n}" for n in ("old", "recent", "keep"))
    for d in (old, recent, keep):
        d.mkdir()
    month_ago = time.time() - 30 * 86400
    os.utime(old, (month_ago, month_ago))
    os.utime(keep, (month_ago, month_ago))
    (tmp_path / "other").mkdir()
    os.utime(tmp_path / "other", (month_ago, month_ago))
    kernels._prune(str(tmp_path), str(keep))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kernels-keep", "kernels-recent", "other"]
