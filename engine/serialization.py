"""engine.save / engine.load: state dicts (nested dicts and lists of Tensors, arrays and plain values)
in one .npz file, with no pickle: arrays are npz members, the structure is a JSON header.

save() writes a temporary file in the target's folder, flushes it to disk and renames it over the
target, so a crash never leaves a half-written checkpoint. load() raises ValueError for a corrupt file
or one that was not written by engine.save.
"""
import json
import os
import tempfile
import zipfile

import numpy as np

from .tensor import Tensor

__all__ = ["save", "load"]

FORMAT = "numba-engine-checkpoint"
VERSION = 1


def _encode(obj, arrays, path):
    if isinstance(obj, Tensor):
        arrays[f"a{len(arrays)}"] = obj.numpy()
        return {"__tensor__": f"a{len(arrays) - 1}"}
    if isinstance(obj, np.ndarray):
        arrays[f"a{len(arrays)}"] = obj
        return {"__array__": f"a{len(arrays) - 1}"}
    if isinstance(obj, np.generic):
        return obj.item()
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, dict):
        keys = list(obj.keys())
        return {"__dict__": [[_encode(k, arrays, path), _encode(obj[k], arrays, f"{path}[{k!r}]")] for k in keys]}
    if isinstance(obj, (list, tuple)):
        return {"__list__" if isinstance(obj, list) else "__tuple__":
                [_encode(v, arrays, f"{path}[{i}]") for i, v in enumerate(obj)]}
    raise TypeError(f"obj{path}: cannot save a {type(obj).__name__}; use Tensors, arrays, numbers, strings, "
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


def save(obj, path):
    """Write `obj` (a state dict, or any nesting of dicts/lists of Tensors, arrays and plain values)."""
    path = os.fspath(path)
    arrays = {}
    header = {"format": FORMAT, "version": VERSION, "root": _encode(obj, arrays, "")}
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npz", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, __header__=np.frombuffer(json.dumps(header).encode(), dtype=np.uint8), **arrays)
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
            if "__header__" not in npz.files:
                raise ValueError(f"path: {path!r} is not an engine checkpoint (no header)")
            header = json.loads(npz["__header__"].tobytes().decode())
            if header.get("format") != FORMAT:
                raise ValueError(f"path: {path!r} is not an engine checkpoint (format {header.get('format')!r})")
            if header.get("version") != VERSION:
                raise ValueError(f"path: {path!r} has checkpoint version {header.get('version')}, "
                                 f"this engine reads version {VERSION}")
            data = {k: npz[k] for k in npz.files if k != "__header__"}
    except (zipfile.BadZipFile, EOFError, OSError, json.JSONDecodeError, UnicodeDecodeError, KeyError) as e:
        if isinstance(e, FileNotFoundError):
            raise
        raise ValueError(f"path: {path!r} is corrupt or not an engine checkpoint ({type(e).__name__}: {e})") from e
    except ValueError as e:
        if str(e).startswith("path:"):
            raise
        raise ValueError(f"path: {path!r} is corrupt or not an engine checkpoint ({e})") from e
    return _decode(header["root"], data)
