"""Run PyTorch code on the engine: `import torch` (and torch.nn, torch.nn.functional, torch.utils.data,
torch.optim, ...) resolves to the engine's modules of the same names.

    from engine.utils import as_torch
    with as_torch():                    # inside: `import torch` gives engine, `from torch import nn` engine.nn
        import torch
        ...

    python -m engine.utils.torch_alias script.py [args]     # a whole script, with `torch` resolved to the engine

`torch.X` becomes `engine.X` (torch.nn.functional is engine.functional); a name the engine lacks raises
ModuleNotFoundError naming the engine module. On leaving the block, the `torch` modules seen before (a real
PyTorch, or none) are back.
"""
import contextlib
import importlib
import importlib.abc
import importlib.util
import runpy
import sys

_NAMES = {"torch": "engine", "torch.nn.functional": "engine.functional"}


class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            return importlib.util.spec_from_loader(name, self)
        return None

    def create_module(self, spec):
        return importlib.import_module(_NAMES.get(spec.name, "engine" + spec.name[len("torch"):]))

    def exec_module(self, module):
        pass


@contextlib.contextmanager
def as_torch():
    """A block in which `import torch...` imports the engine (see the module's docstring)."""
    saved = {k: sys.modules.pop(k) for k in [k for k in sys.modules if k == "torch" or k.startswith("torch.")]}
    finder = _Finder()
    sys.meta_path.insert(0, finder)
    try:
        yield importlib.import_module("torch")
    finally:
        sys.meta_path.remove(finder)
        for k in [k for k in sys.modules if k == "torch" or k.startswith("torch.")]:
            del sys.modules[k]
        sys.modules.update(saved)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        print("usage: python -m engine.utils.torch_alias script.py [args...]", file=sys.stderr)
        return 2
    sys.argv = list(argv)
    with as_torch():
        runpy.run_path(argv[0], run_name="__main__")
    return 0


if __name__ == "__main__":
    sys.exit(main())
