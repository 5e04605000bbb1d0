"""engine.save / engine.load: members named by state-dict keys, the umask kept, no temporary left behind
even by a writer killed midway, old (version 1) checkpoints still readable."""
import json
import os
import signal
import subprocess
import sys
import time
import zipfile

import numpy as np
import pytest

import engine
import engine.serialization as ser
from engine import nn

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_members_are_named_by_state_dict_keys(tmp_path):
    m = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    sd = m.state_dict()
    engine.save(sd, tmp_path / "model.npz")
    with np.load(tmp_path / "model.npz", allow_pickle=False) as npz:      # what another tool sees
        assert set(npz.files) == set(sd) | {"__header__"}
        for k, v in sd.items():
            np.testing.assert_array_equal(npz[k], v.numpy())
    engine.save({"model": sd, "epoch": 3, "opt": [{"step": np.arange(2)}]}, tmp_path / "ck.npz")
    with np.load(tmp_path / "ck.npz", allow_pickle=False) as npz:
        assert set(npz.files) == {f"model/{k}" for k in sd} | {"opt/0/step", "__header__"}


def test_odd_keys_are_escaped_and_round_trip(tmp_path):
    state = {"a/b": np.ones(2), "file": np.zeros(1), "__header__": np.arange(3), "x y%": np.full(1, 7.0),
             1: {"w": engine.tensor(np.ones((2, 2)))}, "1": np.full(1, 5.0), "root": np.ones(1)}
    path = tmp_path / "odd.npz"
    engine.save(state, path)
    with np.load(path, allow_pickle=False) as npz:
        assert {"a%2Fb", "file", "__header__~2", "x%20y%25", "1/w", "1", "root"} <= set(npz.files)
    back = engine.load(path)
    assert set(back) == set(state)
    for k in ("a/b", "file", "__header__", "x y%", "1", "root"):
        np.testing.assert_array_equal(back[k], state[k])
    np.testing.assert_array_equal(back[1]["w"].numpy(), np.ones((2, 2)))
    engine.save(engine.tensor(np.arange(3.0)), tmp_path / "t.npz")                  # a bare tensor
    with np.load(tmp_path / "t.npz") as npz:
        assert set(npz.files) == {"root", "__header__"}
    np.testing.assert_array_equal(engine.load(tmp_path / "t.npz").numpy(), np.arange(3.0))


def test_object_arrays_are_refused_before_any_file_is_written(tmp_path):
    with pytest.raises(TypeError, match=r"obj\['bad'\].*dtype object"):
        engine.save({"bad": np.array([{}, None], dtype=object)}, tmp_path / "x.npz")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_saved_file_gets_the_mode_the_umask_gives(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        engine.save({"w": np.ones(3)}, tmp_path / "ck.npz")
    finally:
        os.umask(old)
    assert (tmp_path / "ck.npz").stat().st_mode & 0o777 == mode


def test_version_1_checkpoints_still_load(tmp_path):
    header = {"format": ser.FORMAT, "version": 1,
              "root": {"__dict__": [["w", {"__tensor__": "a0"}], ["epoch", 4]]}}
    path = tmp_path / "v1.npz"
    np.savez(path, __header__=np.frombuffer(json.dumps(header).encode(), dtype=np.uint8), a0=np.arange(4.0))
    back = engine.load(path)
    assert back["epoch"] == 4
    np.testing.assert_array_equal(back["w"].numpy(), np.arange(4.0))
    header["version"] = 99
    np.savez(path, __header__=np.frombuffer(json.dumps(header).encode(), dtype=np.uint8), a0=np.arange(4.0))
    with pytest.raises(ValueError, match="version 99"):
        engine.load(path)


def test_header_naming_a_missing_member_is_a_clear_error(tmp_path):
    path = tmp_path / "bad.npz"
    header = {"format": ser.FORMAT, "version": 2, "root": {"__tensor__": "gone"}}
    np.savez(path, __header__=np.frombuffer(json.dumps(header).encode(), dtype=np.uint8))
    with pytest.raises(ValueError, match="does not match its arrays"):
        engine.load(path)


KILLED_WRITER = """
import os, sys, time
import numpy as np
import engine
real = np.lib.format.write_array
calls = []
def stuck(f, a, **kw):                 # hangs on the third member: the temporary is half written
    calls.append(1)
    if len(calls) == 3:
        open(sys.argv[2], "w").close()
        time.sleep(600)
    return real(f, a, **kw)
np.lib.format.write_array = stuck
engine.save({f"w{i}": np.full(100_000, float(i)) for i in range(6)}, sys.argv[1])
"""


def test_a_save_killed_midway_leaves_the_old_file_and_its_temporary_is_removed_next_time(tmp_path):
    target, marker = tmp_path / "ck.npz", tmp_path / "stuck"
    engine.save({"w0": np.zeros(3)}, target)
    before = target.read_bytes()
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(target), str(marker)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert proc.poll() is None, proc.stdout.read().decode()[-3000:]
            assert time.monotonic() < deadline, "the writer never reached its third member"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    stale = [p for p in tmp_path.iterdir() if p.name.endswith(ser.TMP_SUFFIX)]
    assert len(stale) == 1 and stale[0].name.startswith(".ck.npz.") and stale[0].stat().st_size > 0
    assert target.read_bytes() == before                     # the checkpoint on disk is the old, whole one
    assert engine.load(target)["w0"].shape == (3,)
    alive = tmp_path / f".other.npz.{ser._host()}.{os.getpid()}.abcd{ser.TMP_SUFFIX}"
    alive.write_bytes(b"a live writer's")                    # this process is alive: its file must stay
    engine.save({"w": np.ones(2)}, tmp_path / "next.npz")    # any save in the folder cleans up
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted(["ck.npz", "next.npz", "stuck", alive.name]), names


def test_members_are_plain_npy_in_an_uncompressed_zip(tmp_path):
    engine.save({"w": np.ones(3, np.float32)}, tmp_path / "ck.npz")
    with zipfile.ZipFile(tmp_path / "ck.npz") as zf:
        assert sorted(zf.namelist()) == ["__header__.npy", "w.npy"]
        assert all(i.compress_type == zipfile.ZIP_STORED for i in zf.infolist())
