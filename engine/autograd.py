"""The tape: `Function` records one op as a graph node, `backward` walks the nodes in reverse topological order.

A Function's `forward(ctx, *args, **kwargs)` receives raw arrays where the caller passed Tensors and returns
one array. Its `backward(ctx, dout)` returns one gradient per positional argument (an array or None), in
order. Backward functions return fresh gradients; only the tape adds them into `.grad` (kernels overwrite,
the engine accumulates).

The graph is made of nodes, not tensors: each recorded op (the `ctx`) keeps, per input, the node that made
that input *when the op was recorded* (or the leaf tensor itself). So an in-place op that gives a tensor a
new history later never rewires the ops recorded before it, as in PyTorch.

PyTorch's rules, kept here:
- Grad mode (`no_grad`, `enable_grad`, `set_grad_enabled`) is per thread; a new thread starts enabled.
- Every array an op keeps for backward is checked against its memory's version counter: if it was modified
  in place after the op was recorded, backward raises instead of computing a wrong gradient.
- Backward frees what the ops kept (unless `retain_graph=True`); going through them again raises.
"""
import contextlib
import functools
import threading
import weakref

import numpy as np

class _Local(threading.local):
    """Per-thread grad mode and end-of-backward callbacks. The class attributes are every new thread's
    defaults, so reading them is a plain attribute read (getattr with a default on an unset thread-local
    raises and catches an AttributeError: 0.3 us on every op)."""
    grad = True
    callbacks = None


_local = _Local()


def is_grad_enabled():
    return _local.grad


class set_grad_enabled:
    """Set grad mode for this thread: as a call (`set_grad_enabled(False)`), a context manager or a decorator."""

    def __init__(self, mode):
        self.prev = is_grad_enabled()
        self.mode = bool(mode)
        _local.grad = self.mode

    def __enter__(self):
        return None

    def __exit__(self, *exc):
        _local.grad = self.prev
        return False


class _GradMode(contextlib.ContextDecorator):
    mode = True

    def __enter__(self):
        self.prev = _local.grad
        _local.grad = self.mode

    def __exit__(self, *exc):
        _local.grad = self.prev
        return False

    def __call__(self, fn):                   # also a decorator, with or without parentheses
        @functools.wraps(fn)
        def wrapped(*args, **kwargs):
            with type(self)():
                return fn(*args, **kwargs)
        return wrapped


class no_grad(_GradMode):
    """Ops inside record nothing on the tape: `with engine.no_grad(): ...` or `@engine.no_grad()`. Per thread."""
    mode = False


class enable_grad(_GradMode):
    """Record ops again inside a no_grad region (per thread)."""
    mode = True


inference_mode = no_grad


# ---- version counters ------------------------------------------------------------------------------
# One counter per memory buffer (the array at the root of a view chain), so views and detached tensors share
# it, as PyTorch's views share their base's. In-place ops bump it; ops record it for what they keep.
_VERSIONS = {}


def _root(a):
    b = getattr(a, "base", None)
    while b is not None and hasattr(b, "dtype") and hasattr(b, "shape"):
        a, b = b, getattr(b, "base", None)
    return a


def version(array):
    e = _VERSIONS.get(id(_root(array)))
    return e[0] if e is not None else 0


def bump_version(array):
    """Record that `array`'s memory was modified in place (in-place tensor ops and optimizer steps call it)."""
    if _CAPTURE is not None:
        _CAPTURE.refuse("modified an array in place outside an op", "use the tensor's in-place methods "
                        "(add_, copy_, t[idx] = v) or an optimizer")
    r = _root(array)
    k = id(r)
    e = _VERSIONS.get(k)
    if e is not None:
        e[0] += 1
        return
    try:
        ref = weakref.ref(r, lambda _, k=k: _VERSIONS.pop(k, None))
    except TypeError:                         # an array type without weak references: keep it alive instead
        ref = r
    _VERSIONS[k] = [1, ref]


def _is_array(v):
    return isinstance(v, np.ndarray) or hasattr(v, "__cuda_array_interface__")


_new = object.__new__
_ndarray = np.ndarray

_CTX_OWN = frozenset(("needs_input_grad", "parents", "next", "_saved", "_freed", "_retain", "_hooks"))


def _record_saved(ctx):
    """What the op kept for backward: (attribute name, [(root buffer, its version)]), for the version check
    and for freeing. Arrays are found among ctx's attributes and inside tuples/lists one level down."""
    names, seen, roots = [], set(), []
    for name, v in ctx.__dict__.items():
        if name in _CTX_OWN:
            continue
        if _is_array(v):
            items = (v,)
        elif isinstance(v, (tuple, list)):
            items = [e for e in v if _is_array(e)]
            if not items:
                continue
        else:
            continue
        names.append(name)
        for a in items:
            r = _root(a)
            if id(r) not in seen:
                seen.add(id(r))
                e = _VERSIONS.get(id(r))
                roots.append((r, e[0] if e is not None else 0))
    return (names, roots) if names else None


class Function:
    """Base class of every differentiable op.

    Subclasses define `forward(ctx, *args, **kwargs) -> array` and `backward(ctx, dout) -> grads`.
    `ctx` is the Function instance (the graph node): store what backward needs on it
    (`ctx.save_for_backward(...)` or plain attributes). `ctx.needs_input_grad[i]` tells whether argument i
    wants a gradient. Set `is_view = True` on ops whose output may share the input's memory.
    """

    moves_device = False          # True only for the op that copies between devices
    is_view = False

    def save_for_backward(self, *arrays):
        self.saved = arrays

    @classmethod
    def apply(cls, *args, **kwargs):
        # one pass over the arguments: this runs on every op call, so its cost is part of every op's overhead
        # (about a microsecond: plain loops and attribute reads, no helper calls on the common path)
        ctx = _new(cls)
        raw, needs = [], []
        dev = None
        for a in args:
            if isinstance(a, Tensor):
                d = a._data
                raw.append(d)
                needs.append(a._requires_grad)
                dv = "cpu" if type(d) is _ndarray else device_of(d)
                if dev is None:
                    dev = dv
                elif dv != dev and not cls.moves_device:
                    raise RuntimeError(f"{cls.__name__.lstrip('_')}: expected all tensors on one device, got "
                                       f"{' and '.join(sorted((dev, dv)))}: move them with .to(device) first")
            else:
                raw.append(a)
                needs.append(False)
        ctx.needs_input_grad = needs = tuple(needs)
        out = cls.forward(ctx, *raw, **kwargs)
        if type(out) is not _ndarray and isinstance(out, np.generic):   # NumPy reductions return scalars
            out = np.asarray(out)                                          # keep 0-d arrays
        if dev == "cuda" and not cls.moves_device and device_of(out) != "cuda":
            raise RuntimeError(f"{cls.__name__}.forward returned {type(out).__name__} for cuda inputs: an op must "
                               "keep device data on the device")
        track = True in needs and _local.grad
        result = _new(Tensor)
        result._data, result._grad, result._ctx, result._requires_grad = out, None, None, track
        if cls.is_view and isinstance(args[0], Tensor) and _root(out) is _root(raw[0]):
            base = args[0]
            result._base = base._base if base._base is not None else base
            result._view_fns = base._view_fns + ((cls, kwargs),)
        if track:
            ctx.parents = args
            ctx.next = tuple((a._ctx if a._ctx is not None else a) if need else None
                             for a, need in zip(args, needs))
            ctx._saved = _record_saved(ctx)
            result._ctx = ctx
        return result

    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError

    @staticmethod
    def backward(ctx, dout):
        raise NotImplementedError


class RemovableHandle:
    def __init__(self, hooks, hook):
        self._hooks, self._hook = hooks, hook

    def remove(self):
        if self._hook in self._hooks:
            self._hooks.remove(self._hook)


def queue_callback(fn):
    """Run `fn()` once the backward pass now running in this thread has finished (from a hook)."""
    cbs = _local.callbacks
    if cbs is None:
        raise RuntimeError("queue_callback: no backward pass is running in this thread")
    cbs.append(fn)


def _toposort(root):
    """Nodes (Function instances and leaf Tensors) reachable from `root`, each after everything it feeds."""
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
        if isinstance(node, Function):
            # any child order gives a topological order; pushing leaves first puts each leaf right after the
            # last op that feeds it, so its gradient is accumulated (and its post-accumulate hooks run: DDP
            # starts a bucket's all-reduce there) as soon as it is complete, not at the end of backward
            nxt = [p for p in node.next if p is not None and id(p) not in seen]
            stack.extend((p, False) for p in nxt if not isinstance(p, Function))
            stack.extend((p, False) for p in nxt if isinstance(p, Function))
    return order


_FREED = ("backward: trying to backward through the graph a second time (or to use what an op saved after "
          "it was freed): what the graph saved is freed by .backward(); pass retain_graph=True to the first "
          "backward if you need a second one")


def _check_saved(ctx):
    if ctx._saved is None:
        return
    for r, v in ctx._saved[1]:
        now = _VERSIONS.get(id(r))
        now = now[0] if now is not None else 0
        if now != v:
            raise RuntimeError(
                f"backward: one of the arrays {type(ctx).__name__.lstrip('_')} saved for its gradient (shape "
                f"{tuple(r.shape)}, {r.dtype}) was modified by an in-place operation after the op ran: it is at "
                f"version {now}, expected {v}. Use out-of-place ops, or clone() before modifying it in place")


def backward(root, grad, retain_graph=False):
    """Run each recorded op's backward from tensor `root`, seeded with `grad` (an array of root's shape)."""
    if _CAPTURE is not None and _CAPTURE.recording():        # engine.compile records the schedule
        return _CAPTURE.backward(root, grad, retain_graph)
    return _backward(root, grad, retain_graph)


def _backward(root, grad, retain_graph):
    start = root._ctx if root._ctx is not None else root
    grads = {id(start): grad}
    prev_cbs = _local.callbacks
    _local.callbacks = []
    try:
        with no_grad():
            for node in reversed(_toposort(start)):
                g = grads.pop(id(node), None)
                if g is None:
                    continue
                if not isinstance(node, Function):    # a leaf: hooks, then accumulate into .grad
                    _accumulate(node, g if g is not grad else g.copy())
                    continue
                ctx = node
                if ctx.__dict__.get("_hooks") is not None or ctx.__dict__.get("_retain") is not None:
                    g = _run_tensor_hooks(ctx, g)
                if ctx.__dict__.get("_freed"):
                    raise RuntimeError(_FREED)
                _check_saved(ctx)
                in_grads = ctx.backward(ctx, g)
                if not isinstance(in_grads, tuple):
                    in_grads = (in_grads,)
                if not retain_graph and ctx._saved is not None:
                    for name in ctx._saved[0]:
                        ctx.__dict__.pop(name, None)
                    ctx._saved, ctx._freed = None, True
                for parent, nxt, pg in zip(ctx.parents, ctx.next, in_grads):
                    if nxt is None or pg is None:
                        continue
                    if type(pg) is not type(parent._data) and device_of(pg) != device_of(parent._data):
                        raise RuntimeError(f"{type(ctx).__name__}.backward returned a gradient on "
                                           f"{device_of(pg)} for an input on {device_of(parent._data)}")
                    if pg.shape != parent.shape:
                        raise RuntimeError(f"{type(ctx).__name__}.backward returned a gradient of shape "
                                           f"{pg.shape} for an input of shape {parent.shape}")
                    key = id(nxt)
                    grads[key] = pg if key not in grads else grads[key] + pg
        for fn in _local.callbacks:
            fn()
    finally:
        _local.callbacks = prev_cbs


def _run_tensor_hooks(ctx, g):
    """Hooks registered on a non-leaf tensor (register_hook) and retain_grad, kept on the node that made it."""
    for h in ctx.__dict__.get("_hooks") or ():
        r = h(Tensor._wrap(g))
        if r is not None:
            g = r._data if isinstance(r, Tensor) else r
    ref = ctx.__dict__.get("_retain")
    t = ref() if ref is not None else None
    if t is not None and t._ctx is ctx:
        t.grad = Tensor._wrap(g)
    return g


def _accumulate(leaf, g):
    for h in leaf._hooks or ():
        r = h(Tensor._wrap(g))
        if r is not None:
            g = r._data if isinstance(r, Tensor) else r
    if leaf.grad is None:
        leaf.grad = Tensor._wrap(g)
    else:
        leaf.grad._data = leaf.grad._data + g
    for h in leaf._post_acc_hooks or ():
        h(leaf)


from .backend import device_of  # noqa: E402  (backend imports nothing from here)

_CAPTURE = None        # the engine.compile recorder while a step is being captured (engine._capture)
Tensor = None          # engine.tensor sets it once the class exists (it imports this module first)
