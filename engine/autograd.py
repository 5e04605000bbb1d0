"""The tape: `Function` records one op, `backward` walks the graph in reverse topological order.

A Function's `forward(ctx, *args, **kwargs)` receives raw arrays where the caller passed Tensors
and returns one array. Its `backward(ctx, dout)` returns one gradient per positional argument
(an array or None), in order. Backward functions return fresh gradients; only the tape adds them
into `.grad` (kernels overwrite, the engine accumulates).
"""
import contextlib

import numpy as np

from .backend import device_of, on_device_of

_grad_enabled = True


def is_grad_enabled():
    return _grad_enabled


@contextlib.contextmanager
def _set_grad(mode):
    global _grad_enabled
    prev, _grad_enabled = _grad_enabled, mode
    try:
        yield
    finally:
        _grad_enabled = prev


def no_grad():
    """Context manager: ops inside record nothing on the tape (`with engine.no_grad(): ...`)."""
    return _set_grad(False)


def enable_grad():
    return _set_grad(True)


class Function:
    """Base class of every differentiable op.

    Subclasses define `forward(ctx, *args, **kwargs) -> array` and `backward(ctx, dout) -> grads`.
    `ctx` is the Function instance: store what backward needs on it (`ctx.save_for_backward(...)`
    or plain attributes). `ctx.needs_input_grad[i]` tells whether argument i wants a gradient.
    """

    moves_device = False          # True only for the op that copies between devices

    def save_for_backward(self, *arrays):
        self.saved = arrays

    @classmethod
    def apply(cls, *args, **kwargs):
        # one pass over the arguments: this runs on every op call, so its cost is part of every op's overhead
        from .tensor import Tensor
        ctx = cls()
        raw, needs = [], []
        first = dev = None
        for a in args:
            if isinstance(a, Tensor):
                d = a.data
                raw.append(d)
                needs.append(a.requires_grad)
                dv = device_of(d)
                if first is None:
                    first, dev = d, dv
                elif dv != dev and not cls.moves_device:
                    raise RuntimeError(f"{cls.__name__.lstrip('_')}: expected all tensors on one device, got "
                                       f"{' and '.join(sorted((dev, dv)))}: move them with .to(device) first")
            else:
                raw.append(a)
                needs.append(False)
        ctx.needs_input_grad = tuple(needs)
        out = cls.forward(ctx, *raw, **kwargs)
        if isinstance(out, np.generic):       # NumPy reductions return scalars; keep 0-d arrays
            out = np.asarray(out)
        if dev == "cuda" and not cls.moves_device:
            out = on_device_of(out, first)
        track = _grad_enabled and any(needs)
        result = Tensor._wrap(out, requires_grad=track)
        if track:
            ctx.parents = args
            result._ctx = ctx
        return result

    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError

    @staticmethod
    def backward(ctx, dout):
        raise NotImplementedError


def _toposort(root):
    order, seen = [], set()
    stack = [(root, False)]
    while stack:                      # iterative DFS: deep graphs (long RNNs) must not hit the recursion limit
        node, done = stack.pop()
        if done:
            order.append(node)
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.append((node, True))
        if node._ctx is not None:
            for p in node._ctx.parents:
                if getattr(p, "requires_grad", False) and id(p) not in seen:
                    stack.append((p, False))
    return order


def backward(root, grad):
    """Run each recorded op's backward from `root`, seeded with `grad` (an array of root's shape)."""
    from .tensor import Tensor
    grads = {id(root): grad}
    with no_grad():
        for node in reversed(_toposort(root)):
            g = grads.pop(id(node), None)
            if g is None:
                continue
            if node._ctx is None:     # a leaf: accumulate into .grad
                if node.grad is None:
                    node.grad = Tensor._wrap(g.copy() if g is grad else g)
                else:
                    node.grad.data = node.grad.data + g
                continue
            ctx = node._ctx
            if node._retain_grad:
                node.grad = Tensor._wrap(g)
            in_grads = ctx.backward(ctx, g)
            if not isinstance(in_grads, tuple):
                in_grads = (in_grads,)
            for parent, pg, need in zip(ctx.parents, in_grads, ctx.needs_input_grad):
                if not need or pg is None:
                    continue
                pg = on_device_of(pg, parent.data)
                if pg.shape != parent.shape:
                    raise RuntimeError(f"{type(ctx).__name__}.backward returned a gradient of shape "
                                       f"{pg.shape} for an input of shape {parent.shape}")
                key = id(parent)
                grads[key] = pg if key not in grads else grads[key] + pg
