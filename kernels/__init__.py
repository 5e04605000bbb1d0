"""Kernels: `kernels.reference` (float64 NumPy references: the oracle for tests and benchmarks, nothing else),
`kernels.cpu` (Numba @njit) and `kernels.cuda` (numba.cuda on CuPy arrays; under `NUMBA_ENABLE_CUDASIM=1` on
the CuPy stand-in `kernels._simcupy`), plus `kernels.common`: the output sizes, key limits, dropout threshold
and contiguity check that the references, both backends and the engine share.

Every backend module exports the same names as the reference, module for module (`<op>_fwd` / `<op>_bwd`),
so the module is the switch. Backward kernels overwrite their outputs; only the engine accumulates into
`.grad`.

Numba's cache (`cache=True`): importing this package points NUMBA_CACHE_DIR at a user cache folder,
`$XDG_CACHE_HOME/numba-engine/kernels-<key>` (default `~/.cache/numba-engine/...`), where `<key>` hashes
the sources of every kernels/**/*.py. Numba keys its cache by each file alone (numba#8851), so an edited
helper in another module would leave stale kernels in use; a new key per source state cannot. The cache
stays out of the installed package (an uninstall or a read-only install does not trip over it), folders
unused for PRUNE_DAYS are removed, and a NUMBA_CACHE_DIR set by the user is kept as it is. It must run
before Numba builds any kernel's cache locator, which every kernel module's import does: this package's
`__init__` runs first. Cost: reading ~250 kB of sources, about a millisecond; no Numba import.
"""
import os
import sys
import time
import zlib

CACHE_ENV = "NUMBA_CACHE_DIR"
PRUNE_DAYS = 14


def source_key(root=os.path.dirname(os.path.abspath(__file__))):
    """16 hex digits: CRC-32 and Adler-32 of the relative path and bytes of every .py file under `root`, in
    sorted order (zlib, which NumPy loads anyway: hashlib's import alone would cost ~10 ms)."""
    crc, adler = 0, 1
    stack = [root]
    files = []
    while stack:
        with os.scandir(stack.pop()) as it:
            for e in it:
                if e.is_dir(follow_symlinks=False) and e.name != "__pycache__":
                    stack.append(e.path)
                elif e.name.endswith(".py") and e.is_file():
                    files.append(e.path)
    for path in sorted(files):
        with open(path, "rb") as f:
            data = os.path.relpath(path, root).encode() + b"\0" + f.read() + b"\0"
        crc, adler = zlib.crc32(data, crc), zlib.adler32(data, adler)
    return f"{crc:08x}{adler:08x}"


def user_cache_root():
    """The platform's per-user cache folder for this project (platformdirs' convention)."""
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or os.path.expanduser(r"~\AppData\Local")
        return os.path.join(base, "numba-engine", "Cache")
    if sys.platform == "darwin":
        return os.path.expanduser("~/Library/Caches/numba-engine")
    return os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "numba-engine")


def _prune(root, keep):
    """Remove sibling kernels-* folders not used (mtime) for PRUNE_DAYS; never `keep`."""
    cutoff = time.time() - PRUNE_DAYS * 86400
    try:
        with os.scandir(root) as it:
            old = [e.path for e in it if e.name.startswith("kernels-") and e.path != keep and e.is_dir()
                   and e.stat().st_mtime < cutoff]
    except OSError:
        return
    import shutil
    for path in old:
        shutil.rmtree(path, ignore_errors=True)


def _use_user_cache():
    """Point Numba's cache at the source-keyed user folder unless the user chose one; returns the folder."""
    if os.environ.get(CACHE_ENV):
        return os.environ[CACHE_ENV]
    root = user_cache_root()
    path = os.path.join(root, f"kernels-{source_key()}")
    try:
        if os.path.isdir(path):
            os.utime(path)                       # "last used", for pruning
        else:
            os.makedirs(path, exist_ok=True)
            _prune(root, path)                   # a new source state: a good moment to drop old ones
    except OSError:
        pass                                     # unwritable: Numba falls back to its own locations
    os.environ[CACHE_ENV] = path                 # read by numba.config at import and at each compile
    config = sys.modules.get("numba.core.config")
    if config is not None:                       # numba already imported: it re-reads only changed env
        config.CACHE_DIR = path
    return path


CACHE_DIR = _use_user_cache()
