"""Data-parallel training: engine.distributed, DistributedDataParallel, SyncBatchNorm, DistributedSampler.

The multi-rank tests start the rank scripts of tests/distributed/ under `mpiexec -n 2` (skipped, with the
reason, where mpi4py or mpiexec is missing), then compare what the ranks wrote with the same training in
this process: 2 ranks on half batches must end with the parameters of one process on whole batches, in
float64 to 1e-9. Every launch has a timeout, so a hang fails its test instead of stalling the suite. This
process itself never initializes MPI.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import engine
from engine import nn
from engine.datasets import DataLoader, DistributedSampler

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPTS = os.path.join(HERE, "distributed")
ROOT = os.path.dirname(HERE)
sys.path.insert(0, SCRIPTS)
import common  # noqa: E402


def _mpiexec():
    local = os.path.join(os.path.dirname(sys.executable), "mpiexec")     # the venv's (pip install mpich)
    return local if os.access(local, os.X_OK) else shutil.which("mpiexec")


def _why_no_mpi():
    try:
        import importlib.util
        if importlib.util.find_spec("mpi4py") is None:
            return "mpi4py is not installed (pip install '.[distributed]')"
    except ImportError:
        return "mpi4py is not installed"
    if _mpiexec() is None:
        return "no mpiexec next to this Python or on PATH (pip install mpich, or the cluster's MPI)"
    return None


WHY = _why_no_mpi()
needs_mpi = pytest.mark.skipif(WHY is not None, reason=WHY or "")


def launch(script, *args, n=2, timeout=180, mpi4py_main=True, env=None):
    """Run a rank script under mpiexec -n n (n=0: plain python, no launcher). Returns (result, seconds)."""
    py = [sys.executable] + (["-m", "mpi4py"] if mpi4py_main else [])
    cmd = ([_mpiexec(), "-n", str(n)] if n else []) + py + [os.path.join(SCRIPTS, script), *map(str, args)]
    full_env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
                    OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", **(env or {}))
    t0 = time.perf_counter()
    # its own process group, so that a timeout ends the launcher and every rank it started
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=full_env, cwd=ROOT,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"{' '.join(cmd)} did not finish within {timeout} s:\n{out}\n{err}")
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err), time.perf_counter() - t0


def _load_run(out, ranks):
    checks = [json.load(open(os.path.join(out, f"checks.rank{r}.json"))) for r in range(ranks)]
    return {"out": str(out), "checks": checks}


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    if WHY:
        pytest.skip(WHY)
    out = tmp_path_factory.mktemp("ddp2")
    res, _ = launch("ddp_checks.py", out, timeout=420)
    assert res.returncode == 0, res.stdout + res.stderr
    return _load_run(out, 2)


@pytest.fixture(scope="module")
def world_of_one(tmp_path_factory):
    if WHY:
        pytest.skip(WHY)
    out = tmp_path_factory.mktemp("ddp1")
    res, _ = launch("ddp_checks.py", out, "--experiments-only", n=0, mpi4py_main=False, timeout=420)
    assert res.returncode == 0, res.stdout + res.stderr
    return _load_run(out, 1)


def _reference(name):
    """The experiment `name` of ddp_checks.py trained by one process on whole batches."""
    if name in ("sgd", "adamw"):
        model = common.mlp()
        return common.state(common.train(model, common.optimizer(name, model.parameters())))
    if name == "cnn_syncbn":
        model = common.cnn()
        return common.state(common.train(model, common.optimizer("sgd", model.parameters())))
    if name.startswith("buckets_"):
        return _reference("sgd")
    if name == "no_sync":
        model = common.mlp()
        return common.state(common.train_no_sync(model, common.optimizer("sgd", model.parameters())))
    if name == "unused":
        model = common.TwoBranch()
        return common.state(common.train(model, common.optimizer("sgd", model.parameters())))
    raise KeyError(name)


EXPERIMENTS = ["sgd", "adamw", "cnn_syncbn", "buckets_1e-05", "buckets_0.003", "buckets_25", "no_sync", "unused"]


def _assert_same_state(got, ref, atol=1e-9, what=""):
    assert sorted(got) == sorted(ref), what
    for k in ref:
        a, b = np.asarray(got[k], np.float64), np.asarray(ref[k], np.float64)
        err = float(np.abs(a - b).max()) if a.size else 0.0
        assert err <= atol * max(1.0, float(np.abs(b).max())), f"{what} {k}: max error {err:.3g}"


@needs_mpi
@pytest.mark.parametrize("name", EXPERIMENTS)
def test_two_ranks_on_half_batches_match_one_process_on_whole_batches(two_ranks, name):
    ref = _reference(name)
    start = common.state(common.TwoBranch() if name == "unused" else common.cnn() if name == "cnn_syncbn"
                         else common.mlp())
    moved = max(float(np.abs(ref[k] - start[k]).max()) for k in ref if ref[k].dtype.kind == "f")
    assert moved > 1e-2, "the reference did not train: the comparison would prove nothing"
    for r in range(2):
        got = dict(np.load(os.path.join(two_ranks["out"], f"{name}.rank{r}.npz")))
        _assert_same_state(got, ref, what=f"{name} rank {r}")
    if name == "unused":        # no rank used `spare`: it keeps rank 0's initial weights, untouched
        _assert_same_state({k: v for k, v in got.items() if k.startswith("spare")},
                           {k: v for k, v in start.items() if k.startswith("spare")}, atol=0)


@needs_mpi
@pytest.mark.parametrize("name", ["sgd", "adamw", "cnn_syncbn"])
def test_a_world_of_one_without_mpiexec_trains_as_one_process(world_of_one, name):
    assert world_of_one["checks"][0]["info"]["world"] == 1
    got = dict(np.load(os.path.join(world_of_one["out"], f"{name}.rank0.npz")))
    _assert_same_state(got, _reference(name), what=name)


def _check(run, name, rank=0):
    c = run["checks"][rank]["checks"][name]
    assert c["ok"], c.get("trace", c)
    return c["value"]


@needs_mpi
def test_each_rank_gets_its_share_of_the_cores(two_ranks):
    for r in range(2):
        info = two_ranks["checks"][r]["info"]
        assert info["world"] == 2 and info["rank"] == r and info["local_world"] == 2 and info["local_rank"] == r
        from engine.distributed._threads import allowed_cores, core_share
        share = core_share(len(allowed_cores()), 2)          # MPICH does not pin: both ranks share these cores
        user = {k for k in ("NUMBA_NUM_THREADS",) if os.environ.get(k)}
        assert info["threads"]["cores"] == share
        if not user:
            assert info["threads"]["numba"] == share


@needs_mpi
def test_buckets_follow_the_cap_in_reverse_parameter_order(two_ranks):
    layouts = _check(two_ranks, "bucket_layouts")
    sizes = [p.numel() * 8 for p in reversed(list(common.mlp().parameters()))]     # float64, reverse order
    assert layouts["1e-05"] == [[1, s] for s in sizes]                             # each its own bucket
    assert layouts["0.003"] == [[3, sum(sizes[:3])], [1, sizes[3]]]               # 2896 B <= 3145 B, then w1
    assert layouts["25"] == [[4, sum(sizes)]]


@needs_mpi
def test_buckets_start_in_order_while_backward_still_runs(two_ranks):
    """Events of one backward with a bucket per parameter (DDP's hook runs before the logging one)."""
    events = _check(two_ranks, "buckets_start_during_backward")
    starts = [e for e in events if e.startswith("all_reduce")]
    assert starts == ["all_reduce 10", "all_reduce 320", "all_reduce 32", "all_reduce 2048"], events   # bucket order
    assert sorted(e for e in events if e.startswith("grad")) == ["grad 1.bias", "grad 1.weight", "grad 3.bias",
                                                                 "grad 3.weight"]
    later = [e for e in events[events.index(starts[0]):] if e.startswith("grad")]
    assert len(later) >= 2, f"the first all-reduce started only once every gradient was in: {events}"


@needs_mpi
def test_buckets_hold_one_dtype_each(two_ranks):
    v = _check(two_ranks, "mixed_dtype_buckets")
    assert [dt for _, dt in v["buckets"]] == ["float32", "float64"], v        # reverse order: the float32 layer first
    assert [n for (n, _), _ in v["buckets"]] == [2, 2]
    errs = v["errors"]                                                         # float64 layer, then float32 layer
    assert max(errs[:2]) < 1e-6 and max(errs[2:]) < 1e-5, errs                 # float32 data reaches both


@needs_mpi
def test_no_sync_keeps_gradients_local_until_a_synchronized_backward(two_ranks):
    v = _check(two_ranks, "no_sync_keeps_local_gradients")
    assert v == {"local_grads_differ": True, "synced_grads_agree": True}


@needs_mpi
def test_a_checkpoint_from_rank_0_loads_into_a_plain_model(two_ranks):
    model = common.mlp(seed=5)
    model.load_state_dict(engine.load(os.path.join(two_ranks["out"], "ckpt.npz")))
    _assert_same_state(common.state(model), _reference("sgd"), what="checkpoint")
    assert _check(two_ranks, "load_prefixed_state_dict") is True


@needs_mpi
def test_collectives(two_ranks):
    for r in range(2):
        v = _check(two_ranks, "collectives", r)
        base = np.arange(6).reshape(2, 3)
        a, b = base + 1, base + 2
        for dt in ("float64", "float32", "int64"):
            np.testing.assert_array_equal(v[f"sum_{dt}"], a + b)
            np.testing.assert_array_equal(v[f"max_{dt}"], b)
            np.testing.assert_array_equal(v[f"min_{dt}"], a)
            np.testing.assert_array_equal(v[f"product_{dt}"], a * b)
            if dt != "int64":
                np.testing.assert_array_equal(v[f"avg_{dt}"], (a + b) / 2)
        assert v["noncontiguous"] == [np.full((4, 3), 3.0).tolist(), 0.0]      # the gaps stay untouched
        assert v["async"] == [[1.0] * 5, True]
        assert v["broadcast"] == [10.0] * 3
        assert v["all_gather"] == [[0.0, 0.0], [1.0, -1.0]]
        assert v["all_gather_object"] == [{"rank": 0, "tag": "x"}, {"rank": 1, "tag": "xx"}]
        assert v["broadcast_object_list"] == [1, "from 1"]


@needs_mpi
def test_the_sampler_covers_each_example_once_per_epoch_across_ranks(two_ranks):
    v = _check(two_ranks, "sampler_coverage")
    for key, epochs in v.items():
        n, drop = int(key.split("_")[0]), key.endswith("True")
        for e, (r0, r1) in enumerate(epochs):
            assert len(r0) == len(r1)
            both = r0 + r1
            if n % 2 == 0:
                assert sorted(both) == list(range(n))                       # exactly once
            elif drop:
                assert len(both) == n - 1 and len(set(both)) == n - 1       # one dropped, none repeated
            else:
                assert len(both) == n + 1 and set(both) == set(range(n))    # every one, one repeated (padding)
            for r, got in enumerate((r0, r1)):                              # the ranks used the group's defaults
                s = DistributedSampler(n, num_replicas=2, rank=r, seed=5, drop_last=drop)
                s.set_epoch(e)
                assert got == list(s)
        assert epochs[0][0] != epochs[1][0]                                 # set_epoch reshuffles


@needs_mpi
def test_sync_batchnorm_on_half_batches_matches_batchnorm_on_the_whole(two_ranks):
    for r in range(2):
        for key, errs in _check(two_ranks, "syncbn_matches_batchnorm", r).items():
            tol = 2e-6 if key.startswith("float32") else 1e-12
            assert max(errs) <= tol, (key, errs)


@needs_mpi
def test_bad_set_ups_fail_on_every_rank_before_training(two_ranks):
    for r in range(2):
        msg = _check(two_ranks, "different_models_raise", r)
        assert msg and "rank 1" in msg and "1.weight" in msg and "(33, 64)" in msg
        msg = _check(two_ranks, "unused_parameters_raise", r)
        assert msg and "spare.weight" in msg and "find_unused_parameters=True" in msg
        msg, share = _check(two_ranks, "batch_not_divisible_raises", r)
        assert "33" in msg and "2 ranks" in msg and share == 16


@needs_mpi
def test_bad_arguments_raise_clear_errors(world_of_one):
    v = _check(world_of_one, "api_errors")
    expect = {"bad_op": ("ValueError", "op"), "avg_of_ints": ("TypeError", "AVG"), "bool_sum": ("TypeError", "bool"),
              "src_out_of_range": ("ValueError", "src"), "gather_list_length": ("ValueError", "tensor_list"),
              "not_a_tensor": ("TypeError", "tensor"), "init_twice": ("RuntimeError", "already initialized"),
              "bad_backend": ("ValueError", "backend"), "ddp_not_a_module": ("TypeError", "module"),
              "ddp_bad_cap": ("ValueError", "bucket_cap_mb")}
    for name, (kind, word) in expect.items():
        assert v[name] is not None, f"{name} raised nothing"
        assert v[name][0] == kind and word in v[name][1], (name, v[name])


# ---- faults: the job ends promptly and says which rank failed ----------------------------------------------------
@needs_mpi
@pytest.mark.parametrize("mode,mpi4py_main", [("exception", False), ("exception", True), ("kill", False),
                                              ("timeout", False)])
def test_a_failed_rank_ends_the_job_promptly(mode, mpi4py_main):
    res, seconds = launch("faults.py", mode, timeout=60, mpi4py_main=mpi4py_main)
    assert res.returncode != 0, res.stdout + res.stderr
    assert "completed, which it must not" not in res.stdout
    assert seconds < 30, f"the job took {seconds:.1f} s to end"
    if mode == "exception":
        assert "rank 1 of 2 failed with ValueError: injected failure on rank 1" in res.stderr, res.stderr
    if mode == "timeout":
        assert "rank 0 of 2: barrier did not complete within 2 s" in res.stderr, res.stderr


@needs_mpi
def test_the_nccl_group_under_the_simulator(tmp_path):
    """Everything of backend="nccl" but NCCL's own calls (replaced by MPI ones), on the simulator's arrays."""
    res, _ = launch("nccl_sim.py", tmp_path, timeout=420, env={"NUMBA_ENABLE_CUDASIM": "1"})
    assert res.returncode == 0, res.stdout + res.stderr
    for r in range(2):
        got = json.load(open(tmp_path / f"nccl_sim.rank{r}.json"))
        assert got["ok"], got.get("trace")
        v = got["value"]
        assert v["backend"] == "nccl" and len(v["ids"]) == 1
        assert v["avg_cuda"] == ["cuda", [0.5, 1.5, 2.5, 3.5]]
        assert v["max_cuda"] == [0.0, 2.0, 4.0] and v["broadcast_cuda"] == [2.0, 2.0]
        assert v["all_gather_cuda"] == [[0.0, 0.5], [1.0, 1.5]]
        assert v["host_through_mpi"] == [[1.0, 1.0, 1.0], True]          # host arrays never reach NCCL
        assert v["mpi_cuda_aware_False"] == v["mpi_cuda_aware_True"] == ["cuda", [1.5, 1.5, 1.5]]
        assert v["ddp_cuda_err"] < 1e-9 and v["syncbn_cuda_err"] < 1e-9
        assert v["calls"] == ["all_gather", "all_reduce", "broadcast"]
        assert "nccl" in v["errors"]["cpu_module"] and "more than one device" in v["errors"]["mixed_devices"]
    ids = [json.load(open(tmp_path / f"nccl_sim.rank{r}.json"))["value"]["ids"][0] for r in range(2)]
    assert ids[0] == ids[1], "the ranks joined different NCCL communicators"


@needs_mpi
def test_the_scale_out_benchmark_runs(tmp_path):
    """python -m bench distributed --quick: all-reduce rows for the engine and mpi4py, a step time for each of the
    four thread set-ups, the 2-rank runs on half batches with one thread each by init_process_group's share."""
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    proc = subprocess.run([sys.executable, "-m", "bench", "distributed", "--quick", "--out", str(tmp_path)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    (js,) = tmp_path.glob("distributed_*.json")
    data = json.loads(js.read_text())
    rows = data["allreduce"]["rows"]
    assert rows and all(r["engine_us"] > 0 and r["mpi4py_us"] > 0 for r in rows)
    step = data["step"]
    assert len(step) == 4 and all(v["step_ms"] > 0 for v in step.values())
    auto = step["2 ranks, automatic share"]
    assert auto["world"] == 2 and auto["local_batch"] == auto["batch"] // 2
    from engine.distributed._threads import allowed_cores, core_share
    assert auto["share"]["cores"] == core_share(len(allowed_cores()), 2)
    assert data["efficiency"]["vs_1_rank_1_core"] > 0
    assert "the libraries' defaults" in data["idle_threads"]          # nothing set that users do not have


# ---- in this process (no MPI) -----------------------------------------------------------------------------------
@pytest.mark.parametrize("n,world,drop,shuffle", [(10, 2, False, True), (11, 2, False, True), (11, 2, True, True),
                                                  (7, 3, False, False), (7, 3, True, False), (2, 4, False, True)])
def test_distributed_sampler_partition_is_pytorchs(n, world, drop, shuffle):
    parts = [list(DistributedSampler(n, num_replicas=world, rank=r, shuffle=shuffle, seed=1, drop_last=drop))
             for r in range(world)]
    order = list(np.random.default_rng(1).permutation(n)) if shuffle else list(range(n))
    per = (n - world) // world + ((n - world) % world > 0) if drop and n % world else -(-n // world)
    total = per * world
    padded = order[:total] if drop else (order * (total // n + 1))[:total]
    for r in range(world):
        assert parts[r] == padded[r:total:world]
        assert len(DistributedSampler(n, num_replicas=world, rank=r, drop_last=drop)) == per


def test_distributed_sampler_and_dataloader_checks():
    x, y = common.data(12)
    with pytest.raises(ValueError, match="Invalid rank 2"):
        DistributedSampler((x, y), num_replicas=2, rank=2)
    with pytest.raises(ValueError, match="not been initialized"):
        DistributedSampler((x, y))
    s = DistributedSampler((x, y), num_replicas=3, rank=1, seed=2)
    assert len(s) == 4
    with pytest.raises(ValueError, match="mutually exclusive"):
        DataLoader((x, y), batch_size=2, shuffle=True, sampler=s)
    batches = list(DataLoader((x, y), batch_size=3, sampler=s))
    assert [len(b[1]) for b in batches] == [3, 1] and len(DataLoader((x, y), batch_size=3, sampler=s)) == 2
    np.testing.assert_array_equal(np.concatenate([b[1].numpy() for b in batches]), y[s.indices()])
    with pytest.raises(ValueError, match="index 12 is out of range"):
        list(DataLoader((x, y), batch_size=2, sampler=[0, 12]))


def test_sync_batchnorm_without_a_process_group_is_batchnorm():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 3, 4, 4))
    outs = []
    for layer in (nn.SyncBatchNorm(3, dtype=np.float64), nn.BatchNorm2d(3, dtype=np.float64)):
        xt = engine.tensor(x, dtype=engine.float64, requires_grad=True)
        (layer(xt) ** 2).sum().backward()
        outs.append([xt.grad.numpy(), layer.weight.grad.numpy(), layer.running_var.numpy()])
    for a, b in zip(*outs):
        np.testing.assert_array_equal(a, b)


def test_convert_sync_batchnorm_keeps_order_parameters_and_buffers():
    model = common.cnn()
    before = common.state(model)
    bn = model[1]
    converted = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    assert converted is model
    assert [type(m).__name__ for m in model] == ["Conv2d", "SyncBatchNorm", "ReLU", "MaxPool2d", "Flatten", "Linear",
                                                 "SyncBatchNorm", "ReLU", "Linear"]
    assert model[1].weight is bn.weight and model[1].running_mean is bn.running_mean
    _assert_same_state(common.state(model), before, atol=0)


def test_distributed_data_parallel_needs_a_process_group():
    from engine.nn.parallel import DistributedDataParallel
    with pytest.raises(ValueError, match="init_process_group"):
        DistributedDataParallel(common.mlp())


@needs_mpi
def test_the_runner_trains_data_parallel_and_only_rank_0_writes(tmp_path):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
               OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    base = [_mpiexec(), "-n", "2", sys.executable, "-m", "mpi4py", "-m", "engine.train"]
    out = subprocess.run(base + ["softmax-regression", "--epochs", "2", "--quiet", "--out", str(tmp_path)],
                         capture_output=True, text=True, env=env, cwd=str(tmp_path), timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.count("softmax-regression: train_acc") == 1            # rank 0 alone reports
    record = json.load(open(tmp_path / "softmax-regression.json"))
    assert record["config"]["world_size"] == 2 and record["summary"]["val_acc"] > 0.5
    bad = subprocess.run(base + ["softmax-regression", "--batch-size", "63", "--quiet", "--out", str(tmp_path)],
                         capture_output=True, text=True, env=env, cwd=str(tmp_path), timeout=300)
    assert bad.returncode != 0 and "--batch-size" in bad.stderr
    other = subprocess.run(base + ["ngram", "--quiet", "--out", str(tmp_path)], capture_output=True, text=True,
                           env=env, cwd=str(tmp_path), timeout=300)
    assert other.returncode != 0 and "does not train data-parallel" in other.stderr
