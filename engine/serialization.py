"""engine.save / engine.load: state dicts (nested dicts and lists of Tensors, arrays and plain values)
in one .npz file, with no pickle: arrays are npz members, the structure is a JSON header.

Members are named by their keys, so other tools can read a checkpoint with `np.load`: a model's state
dict saved alone gives members "0.weight", "0.bias", ...; nested containers join keys with "/"
("model/0.weight", "optim/state/0/momentum_buffer"). Characters outside [A-Za-z0-9_.+~-] are
percent-escaped, and a name already taken gets "~2", "~3"; the header maps every value to its member.

save() writes a temporary file in the target's folder, flushes it to disk and renames it over the
target, so a crash never leaves a half-written checkpoint. The file gets the mode the process's umask
gives a new file. Temporaries are named `.<name>.<host>.<pid>.<token>.engine-tmp`: a writer killed
midway (SIGKILL, power loss) cannot remove its own, so each save first removes those of this host whose
process is gone. load() raises ValueError for a corrupt file or one that was not written by engine.save.
"""
import json
import os
import re
import secrets
import socket
import zipfile

import numpy as np

from .tensor import Tensor

__all__ = ["save", "load"]

FORMAT = "numba-engine-checkpoint"
VERSION = 2                      # 2: members named by key; 1 (members a0, a1, ...) still loads
READS = (1, 2)
HEADER = "__header__"
TMP_SUFFIX = ".engine-tmp"
_SAFE = re.compile(r"[^A-Za-z0-9_.+~-]")


def _escape(key):
    return _SAFE.sub(lambda m: "".join(f"%{b:02X}" for b in m.group().encode()), str(key)) or "%"


class _Members:
    """Unique npz member names from key paths, and the arrays under them."""

    def __init__(self):
        self.arrays = {}

    def add(self, path, array):
        base = "/".join(_escape(k) for k in path) or "root"
        name, n = base, 1
        while name in self.arrays or name == HEADER:
            n += 1
            name = f"{base}~{n}"
        self.arrays[name] = array
        return name


def _encode(obj, members, path):
    where = "".join(f"[{k!r}]" for k in path)
    if isinstance(obj, Tensor):
        return {"__tensor__": members.add(path, obj.numpy())}
    if isinstance(obj, np.ndarray):
        if obj.dtype.hasobject:
            raise TypeError(f"obj{where}: cannot save an array of dtype object (it would need pickle)")
        return {"__array__": members.add(path, obj)}
    if isinstance(obj, np.generic):
        return obj.item()
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, dict):
        return {"__dict__": [[_encode(k, members, path + (k,)), _encode(v, members, path + (k,))]
                             for k, v in obj.items()]}
    if isinstance(obj, (list, tuple)):
        return {"__list__" if isinstance(obj, list) else "__tuple__":
                [_encode(v, members, path + (i,)) for i, v in enumerate(obj)]}
    raise TypeError(f"obj{where}: cannot save a {type(obj).__name__}; use Tensors, arrays, numbers, strings, "
                    "None, lists, tuples and dicts")


def _decode(node, npz):
    if isinstance(node, dict):
        if "__tensor__" in node:
            return Tensor(npz[node["__tensor__"]])
        if "__array__" in node:
            return npz[node["__array__"]]
        if "__dict__" in node:
            return {_decode(k, npz): _decode(v, npz) for k, v in node["__dict__"]}
        if "__list__" in node:
            return [_decode(v, npz) for v in node["__list__"]]
        if "__tuple__" in node:
            return tuple(_decode(v, npz) for v in node["__tuple__"])
        raise ValueError(f"checkpoint: unknown node {sorted(node)}")
    return node


def _host():
    return re.sub(r"[^A-Za-z0-9-]", "_", socket.gethostname()) or "host"


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:                      # EPERM: alive, another user's
        return True
    return True


def remove_stale_temporaries(folder):
    """Remove the temporaries that save() writers on this host left in `folder` when they died before
    renaming them. Returns the paths removed."""
    pattern = re.compile(rf"^\..+\.{re.escape(_host())}\.(\d+)\.[0-9a-f]+{re.escape(TMP_SUFFIX)}$")
    removed = []
    try:
        with os.scandir(folder) as it:
            names = [e.name for e in it if e.name.endswith(TMP_SUFFIX)]
    except OSError:
        return removed
    for name in names:
        m = pattern.match(name)
        if m and int(m.group(1)) != os.getpid() and not _alive(int(m.group(1))):
            try:
                os.unlink(os.path.join(folder, name))
                removed.append(os.path.join(folder, name))
            except FileNotFoundError:
                pass
    return removed


def _write_npz(f, arrays):
    """np.savez's layout (uncompressed zip of .npy members), without pickle and without savez's keyword
    arguments, which a key like "file" would collide with."""
    with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for name, arr in arrays.items():
            with zf.open(name + ".npy", "w", force_zip64=True) as m:
                np.lib.format.write_array(m, np.asanyarray(arr), allow_pickle=False)


def save(obj, path):
    """Write `obj` (a state dict, or any nesting of dicts/lists of Tensors, arrays and plain values)."""
    path = os.fspath(path)
    members = _Members()
    header = {"format": FORMAT, "version": VERSION, "root": _encode(obj, members, ())}
    arrays = {HEADER: np.frombuffer(json.dumps(header).encode(), dtype=np.uint8), **members.arrays}
    folder = os.path.dirname(os.path.abspath(path))
    remove_stale_temporaries(folder)
    tmp = os.path.join(folder, f".{os.path.basename(path)}.{_host()}.{os.getpid()}.{secrets.token_hex(4)}{TMP_SUFFIX}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)        # the umask applies, as to open()
    try:
        with os.fdopen(fd, "wb") as f:
            _write_npz(f, arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load(path):
    """Read what `save` wrote. Tensors come back as CPU Tensors, arrays as arrays."""
    path = os.fspath(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            if HEADER not in npz.files:
                raise ValueError(f"path: {path!r} is not an engine checkpoint (no header)")
            header = json.loads(npz[HEADER].tobytes().decode())
            if header.get("format") != FORMAT:
                raise ValueError(f"path: {path!r} is not an engine checkpoint (format {header.get('format')!r})")
            if header.get("version") not in READS:
                raise ValueError(f"path: {path!r} has checkpoint version {header.get('version')}, "
                                 f"this engine reads versions {', '.join(map(str, READS))}")
            data = {k: npz[k] for k in npz.files if k != HEADER}
    except (zipfile.BadZipFile, EOFError, OSError, json.JSONDecodeError, UnicodeDecodeError, KeyError) as e:
        if isinstance(e, FileNotFoundError):
            raise
        raise ValueError(f"path: {path!r} is corrupt or not an engine checkpoint ({type(e).__name__}: {e})") from e
    except ValueError as e:
        if str(e).startswith("path:"):
            raise
        raise ValueError(f"path: {path!r} is corrupt or not an engine checkpoint ({e})") from e
    try:
        return _decode(header["root"], data)
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"path: {path!r} is corrupt: its header does not match its arrays ({e})") from e
