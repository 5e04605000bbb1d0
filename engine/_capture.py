"""engine.compile: capture a step once, replay it without the eager Python work.

    step = engine.compile(step)          # or @engine.compile
    for X, y in batches:
        loss = step(X, y)                # the first call runs eagerly and records; later calls replay

The first call with a given signature (the argument tensors' shapes, dtypes and devices, the other arguments'
values, grad mode) runs the function eagerly, as always, and records what it did, in order:

- every op (`Function.apply`): its class, where each argument came from (an argument of the step, the
  output of an earlier op, a parameter or another tensor the step reads, a parameter's `.grad`, a constant),
  its keyword constants;
- every `backward()`: the graph it walked, as a fixed schedule of the recorded ops' backward functions and
  the leaves whose `.grad` they feed;
- every optimizer `step()` / `zero_grad()`, gradient clipping, in-place update of a tensor off the tape, and
  the engine's non-differentiable functions (one_hot, comparisons, argmax, ...): called again on replay.

A replay runs that list: each op's forward on the recorded inputs, the backward schedule, the calls, with no
module calls, argument checks, tape nodes, topological sort or gradient dictionary. The kernels are the
eager ones, in the same order on the same values, so a replayed step computes what the eager step would,
to the bit (tests/test_compile.py checks losses and weights over several steps for the four benchmark
models). It is worth most where steps are many small ops: on the benchmark models it removes roughly the
per-op overhead of the eager engine (a few microseconds per op).

What a replay cannot see, a capture refuses with a CaptureError instead of freezing it:
reading a tensor's value into Python (`item()`, `if loss < x:`, `numpy()`, `tolist()`), drawing random
numbers outside an op (`engine.randn` in the step; dropout draws inside its op and is replayed fresh),
in-place ops on tensors that require grad, a backward through ops recorded before the capture, hooks on
non-leaf tensors, indexing with a boolean mask (a shape that depends on values), nll_loss, and engine
functions computed outside the recorded ops. Value checks inside the ops (class indices, embedding rows,
valid_lens) run on every replay; the functional wrappers' argument checks ran at the capture.

The contract otherwise is CUDA graphs': a replay sees the step's arguments (new values, same shapes) and the
current values of the tensors the capture read (parameters and buffers, updated in place by optimizers and
`load_state_dict`), but not other Python: a counter incremented in the step, a module attribute reassigned
to a new tensor, a closure variable rebound. Returned tensors are detached. A module switched between
train() and eval(), or a parameter's requires_grad changed, makes the next call capture again; so does a new
argument signature (up to `max_captures`, then it raises).
"""
import functools
import threading

import numpy as np

from . import autograd
from .autograd import Function, _accumulate, _local, _new, _root, _toposort, no_grad

__all__ = ["compile", "CaptureError", "CompiledStep"]


class CaptureError(RuntimeError):
    """The step does something a replay could not repeat (the message says what, and what to do instead)."""


_SLOT, _LEAF, _GRAD, _CONST, _TUPLE = 0, 1, 2, 3, 4
_ndarray = np.ndarray


def _is_array(v):
    return isinstance(v, np.ndarray) or hasattr(v, "__cuda_array_interface__")


class _Recorder:
    """What one capture records. Only the capturing thread's calls at depth 0 (not inside an op, a backward
    or a recorded call) are recorded."""

    def __init__(self):
        self.thread = threading.get_ident()
        self.depth = 0
        self.events = []            # ("op", ...), ("backward", ...), ("call", ...)
        self.slot = {}              # id(Tensor) -> slot
        self.array_slot = {}        # id(array) -> slot (detach() and .data wrap a slot's array in a new Tensor)
        self.root_slot = {}         # id(root array of a slot's memory) -> slot: a view made outside an op
        self.leaf_roots = set()     # ids of the root arrays of the leaves read (an op's view of one is no news)
        self.nslots = 0
        self.alive = []             # every tensor and array seen, kept alive so that ids stay unique
        self.grad_of = {}           # id(a .grad tensor made during the capture) -> its leaf
        self.ctx_op = {}            # id(ctx) -> index of the op that made it
        self.nops = 0
        self.modules = {}           # id -> module called during the capture (guard: its training flag)
        self.leaves = {}            # id -> leaf tensor read (guard: its requires_grad)
        self.walked = set()         # ids of the nodes a recorded backward went through
        self.input_where = {}       # id(argument tensor) -> its position or keyword

    def recording(self):
        return self.depth == 0 and threading.get_ident() == self.thread

    # ---- where a value comes from ----------------------------------------------------------------------
    def new_slot(self, t):
        s = self.nslots
        self.nslots += 1
        self.slot[id(t)] = s
        self.array_slot.setdefault(id(t._data), s)
        root = id(_root(t._data))
        if root not in self.leaf_roots:                 # w.t() of a parameter w: w stays a plain leaf
            self.root_slot.setdefault(root, s)
        self.alive += (t, t._data)          # the array too: ids stay unique even if t._data is rebound
        return s

    def spec(self, t, what):
        s = self.slot.get(id(t))
        if s is None:
            s = self.array_slot.get(id(t._data))
        if s is not None:
            return (_SLOT, s)
        leaf = self.grad_of.get(id(t))
        if leaf is not None:
            return (_GRAD, leaf)
        if t._ctx is not None:
            raise CaptureError(f"engine.compile: {what} reads a tensor computed before the capture began (it has a "
                               f"graph); pass it to the step as an argument, or detach() it")
        if id(_root(t._data)) in self.root_slot:
            raise CaptureError(f"engine.compile: {what} reads a tensor that shares memory with one the step "
                               f"computed but was not made by an op the capture can replay")
        self.leaves[id(t)] = t
        self.leaf_roots.add(id(_root(t._data)))
        self.alive.append(t)
        return (_LEAF, t)

    def raw_spec(self, v, what):
        """An op's raw argument: a Tensor, the array of a value the step computed (a wrapper passed `t._data`:
        SLOT, read anew on replay), or a constant. An array that views the step's values without being one
        of them (sliced or broadcast outside an op) could not be replayed: refused."""
        if isinstance(v, autograd.Tensor):
            return self.spec(v, what)
        if _is_array(v):
            s = self.array_slot.get(id(v))
            if s is not None:
                return (_SLOT, s)
            if id(_root(v)) in self.root_slot:
                raise CaptureError(f"engine.compile: {what} gets an array made from the step's values outside "
                                   f"the recorded ops, which a replay could not remake")
        elif isinstance(v, tuple) and any(_is_array(e) or isinstance(e, autograd.Tensor) for e in v):
            specs = [self.raw_spec(e, what) for e in v]
            if any(k != _CONST for k, _ in specs):
                return (_TUPLE, specs)
        return (_CONST, v)

    def tree(self, v, what):
        """A call's argument as a spec tree: Tensors anywhere in tuples, lists and dicts resolved."""
        if isinstance(v, autograd.Tensor):
            return self.spec(v, what)
        if isinstance(v, (tuple, list)):
            return (type(v), [self.tree(e, what) for e in v])
        if isinstance(v, dict):
            return (dict, {k: self.tree(e, what) for k, e in v.items()})
        return (_CONST, v)

    def refuse(self, what, instead):
        if self.recording():
            raise CaptureError(f"engine.compile: the step {what}, which a replay could not repeat; {instead}")

    # ---- events ---------------------------------------------------------------------------------------
    def op(self, cls, args, kwargs):
        what = f"{cls.__name__.lstrip('_')}"
        specs = tuple(self.raw_spec(a, what) for a in args)
        kw = {k: self.raw_spec(v, f"{what}({k}=)") for k, v in kwargs.items()}
        kw = kwargs if all(k == _CONST for k, _ in kw.values()) else kw     # most ops: constants only
        self.depth += 1
        try:
            out = _eager_apply(cls, *args, **kwargs)
        finally:
            self.depth -= 1
        needs = tuple(a._requires_grad if isinstance(a, autograd.Tensor) else False for a in args)
        track = out._ctx is not None
        index = self.nops
        self.nops += 1
        if track:
            self.ctx_op[id(out._ctx)] = index
        self.events.append(("op", cls, specs, kw is not kwargs, kw, needs, track, self.new_slot(out), index))
        return out

    def call(self, fn, args, kwargs):
        args = tuple(tuple(a) if _is_iterator(a) else a for a in args)   # net.parameters() is used up once
        what = getattr(fn, "__qualname__", repr(fn))
        targs = self.tree(list(args), what)
        tkw = self.tree(dict(kwargs), what)
        self.depth += 1
        try:
            out = fn(*args, **kwargs)
        finally:
            self.depth -= 1
        slot = self.new_slot(out) if isinstance(out, autograd.Tensor) else None
        self.events.append(("call", fn, targs, tkw, slot))
        return out

    def backward(self, root, grad, retain_graph):
        start = root._ctx if root._ctx is not None else root
        order = list(reversed(_toposort(start)))
        index = {id(n): i for i, n in enumerate(order)}
        self.walked.update(index)
        plan = []
        for node in order:
            if isinstance(node, Function):
                op = self.ctx_op.get(id(node))
                if op is None:
                    raise CaptureError("engine.compile: backward() reaches ops recorded before the capture began; "
                                       "compute everything the loss depends on inside the step")
                if node.__dict__.get("_hooks") is not None or node.__dict__.get("_retain") is not None:
                    raise CaptureError("engine.compile: a hook or retain_grad() on a non-leaf tensor is not "
                                       "replayed; register hooks on leaves (parameters) instead")
                plan.append((op, tuple(None if n is None else index[id(n)] for n in node.next)))
            else:
                where = self.input_where.get(id(node))
                if where is None:                   # a parameter or another tensor the step read
                    plan.append((None, node))
                    self.leaves[id(node)] = node
                else:                               # an argument of the step: the replay's own argument
                    plan.append((None, _Arg(where)))
                self.alive.append(node)
        seed = self.array_slot.get(id(grad))
        seed = (_SLOT, seed) if seed is not None else (_CONST, grad.copy())
        self.depth += 1
        try:
            autograd._backward(root, grad, retain_graph)
        finally:
            self.depth -= 1
        for leaf in order:
            if not isinstance(leaf, Function) and leaf.grad is not None and id(leaf.grad) not in self.grad_of:
                self.grad_of[id(leaf.grad)] = leaf
                self.alive.append(leaf.grad)
        self.events.append(("backward", seed, plan))


def _is_iterator(v):
    return hasattr(v, "__next__") and iter(v) is v


_eager_apply = Function.__dict__["apply"].__func__


def _capturing_apply(cls, *args, **kwargs):
    rec = autograd._CAPTURE
    if rec is None or not rec.recording():
        return _eager_apply(cls, *args, **kwargs)
    return rec.op(cls, args, kwargs)


def replayable(fn):
    """A function a capture records as one call and a replay calls again (optimizer steps, gradient clipping,
    in-place updates off the tape, non-differentiable functions). Outside a capture it is `fn`, one check
    slower."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        rec = autograd._CAPTURE
        if rec is None or not rec.recording():
            return fn(*args, **kwargs)
        return rec.call(fn, args, kwargs)
    return wrapper


def refuse(what, instead):
    """Called where the engine does something a replay could not repeat: raises during a capture."""
    rec = autograd._CAPTURE
    if rec is not None:
        rec.refuse(what, instead)


# ---- the replay ---------------------------------------------------------------------------------------
def _raw(spec, vals):
    kind, v = spec
    if kind == _SLOT:
        return vals[v]
    if kind == _LEAF:
        return v._data
    if kind == _CONST:
        return v
    if kind == _TUPLE:
        return tuple(_raw(e, vals) for e in v)
    g = v.grad
    if g is None:
        raise RuntimeError("engine.compile: the step reads a parameter's .grad, which is None in this replay "
                           "(it was set when the step was captured)")
    return g._data


def _tensor(spec, vals):
    kind, v = spec
    if kind == _SLOT:
        return autograd.Tensor._wrap(vals[v])
    if kind == _LEAF:
        return v
    if kind == _GRAD:
        return v.grad
    if kind in (tuple, list):
        return kind(_tensor(e, vals) for e in v)
    if kind is dict:
        return {k: _tensor(e, vals) for k, e in v.items()}
    return v


class _Plan:
    def __init__(self, rec, inputs, result, guards):
        self.inputs = inputs            # [(slot, where the argument is: index or keyword)]
        self.guards = guards
        self.nslots = rec.nslots
        self.nops = rec.nops
        self.result = result
        # free each slot after its last use (a replay keeps no more activations alive than the eager step)
        last = {}
        for i, ev in enumerate(rec.events):
            for s in _slots_read(ev):
                last[s] = i
        kept = set(_result_slots(result))
        frees = [[] for _ in rec.events]
        for s, i in last.items():
            if s not in kept:
                frees[i].append(s)
        for i, ev in enumerate(rec.events):        # made and never read: dropped at once
            made = ev[7] if ev[0] == "op" else ev[4] if ev[0] == "call" else None
            if made is not None and made not in last and made not in kept:
                frees[i].append(made)
        self.events = [ev + (tuple(f),) for ev, f in zip(rec.events, frees)]

    def ok(self):
        return all(getattr(obj, attr) == v for obj, attr, v in self.guards)

    def replay(self, args, kwargs):
        vals = [None] * self.nslots
        for s, where in self.inputs:
            vals[s] = (args[where] if isinstance(where, int) else kwargs[where])._data
        ctxs = [None] * self.nops
        for ev in self.events:
            kind = ev[0]
            if kind == "op":
                _, cls, specs, kw_specs, kw, needs, track, slot, index, frees = ev
                if kw_specs:
                    kw = {k: _raw(s, vals) for k, s in kw.items()}
                ctx = _new(cls)
                ctx.needs_input_grad = needs
                out = cls.forward(ctx, *[_raw(s, vals) for s in specs], **kw)
                if type(out) is not _ndarray and isinstance(out, np.generic):
                    out = np.asarray(out)
                vals[slot] = out
                if track:
                    ctxs[index] = ctx
            elif kind == "backward":
                _, seed, plan, frees = ev
                _replay_backward(plan, ctxs, _raw(seed, vals).copy(), args, kwargs)
            else:
                _, fn, targs, tkw, slot, frees = ev
                out = fn(*_tensor(targs, vals), **_tensor(tkw, vals))
                if slot is not None:
                    vals[slot] = out._data
            for s in frees:
                vals[s] = None
        return _tensor(self.result, vals)


def _slots_read(ev):
    kind = ev[0]
    if kind == "op":
        specs = list(ev[2]) + (list(ev[4].values()) if ev[3] else [])
        return [s for spec in specs for s in _result_slots(spec)]
    if kind == "backward":
        return [ev[1][1]] if ev[1][0] == _SLOT else []
    return list(_result_slots(ev[2])) + list(_result_slots(ev[3]))


def _result_slots(spec):
    kind, v = spec
    if kind == _SLOT:
        yield v
    elif kind == _TUPLE:
        for e in v:
            yield from _result_slots(e)
    elif kind in (tuple, list):
        for e in v:
            yield from _result_slots(e)
    elif kind is dict:
        for e in v.values():
            yield from _result_slots(e)


class _Arg:
    """A leaf of the backward schedule that is an argument of the step: the replay's argument gets the grad."""
    __slots__ = ("where",)

    def __init__(self, where):
        self.where = where

    def get(self, args, kwargs):
        return args[self.where] if isinstance(self.where, int) else kwargs[self.where]


def _replay_backward(plan, ctxs, seed, args, kwargs):
    """autograd.backward's walk on a fixed schedule: same order, same sums, same leaf accumulation (hooks
    and end-of-backward callbacks included)."""
    grads = [None] * len(plan)
    grads[0] = seed
    prev_cbs = _local.callbacks
    _local.callbacks = []
    try:
        with no_grad():
            for i, (op, target) in enumerate(plan):
                g = grads[i]
                if g is None:
                    continue
                grads[i] = None
                if op is None:
                    _accumulate(target.get(args, kwargs) if type(target) is _Arg else target, g)
                    continue
                ctx = ctxs[op]
                ctxs[op] = None                    # what it saved is freed once its backward has run
                in_grads = ctx.backward(ctx, g)
                if not isinstance(in_grads, tuple):
                    in_grads = (in_grads,)
                for k, pg in zip(target, in_grads):
                    if k is None or pg is None:
                        continue
                    grads[k] = pg if grads[k] is None else grads[k] + pg
        for fn in _local.callbacks:
            fn()
    finally:
        _local.callbacks = prev_cbs


# ---- the user's object ----------------------------------------------------------------------------------
_CAPTURE_LOCK = threading.Lock()


def _signature(v):
    if isinstance(v, autograd.Tensor):
        d = v._data
        return ("T", d.shape, d.dtype.str, type(d), v._requires_grad)
    try:
        hash(v)
    except TypeError:
        return ("id", id(v))
    return ("C", type(v), v)


class CompiledStep:
    """A function captured on its first call per signature and replayed after (see engine._capture).
    `reset()` forgets the captures (after replacing a module's tensors, say)."""

    def __init__(self, fn, max_captures=8):
        if not callable(fn):
            raise TypeError(f"fn: expected a function to compile, got {type(fn).__name__}")
        if isinstance(max_captures, bool) or not isinstance(max_captures, int) or max_captures < 1:
            raise ValueError(f"max_captures: expected a positive int, got {max_captures!r}")
        self.fn = fn
        self.max_captures = max_captures
        self._plans = {}
        functools.update_wrapper(self, fn)

    def reset(self):
        self._plans = {}

    @property
    def captures(self):
        """How many captures this step holds (one per argument signature and guard state)."""
        return sum(len(v) for v in self._plans.values())

    def __call__(self, *args, **kwargs):
        rec = autograd._CAPTURE
        if rec is not None and rec.recording():     # inside another step's capture: its ops are recorded there
            return self.fn(*args, **kwargs)
        key = (tuple(_signature(a) for a in args), tuple(sorted((k, _signature(v)) for k, v in kwargs.items())),
               _local.grad)
        for plan in self._plans.get(key, ()):
            if plan.ok():
                return plan.replay(args, kwargs)
        if self.captures >= self.max_captures:
            raise RuntimeError(f"engine.compile: {self.fn.__name__} was captured {self.captures} times (each new "
                               f"argument shape, dtype or constant, or a changed train/eval mode, captures again); "
                               f"raise max_captures, or call it with fixed shapes")
        plan, out = self._capture(args, kwargs)
        self._plans.setdefault(key, []).append(plan)
        return out

    def _capture(self, args, kwargs):
        from .nn.module import Module
        with _CAPTURE_LOCK:
            if autograd._CAPTURE is not None:
                raise RuntimeError("engine.compile: a compiled step called while another is being captured")
            rec = _Recorder()
            inputs = []
            for where, a in list(enumerate(args)) + list(kwargs.items()):
                if isinstance(a, autograd.Tensor):
                    if a._ctx is not None:
                        raise CaptureError(f"engine.compile: argument {where} has a graph (it was computed with "
                                           f"grad); pass a leaf, or detach() it")
                    if id(a) in rec.slot:
                        raise CaptureError(f"engine.compile: argument {where} is the same tensor as an earlier "
                                           "argument; pass it once")
                    inputs.append((rec.new_slot(a), where))
                    rec.input_where[id(a)] = where
            module_call = Module.__dict__["__call__"]

            def recording_call(module, *a, **kw):
                r = autograd._CAPTURE
                if r is not None and r.recording():
                    r.modules[id(module)] = module
                return module_call(module, *a, **kw)

            autograd._CAPTURE = rec
            Function.apply = classmethod(_capturing_apply)
            Module.__call__ = recording_call
            try:
                out = self.fn(*args, **kwargs)
            finally:
                autograd._CAPTURE = None
                Function.apply = classmethod(_eager_apply)
                Module.__call__ = module_call
        result = rec.tree(out, "the step's result") if out is not None else (_CONST, None)
        for t in _tensors_in(out):
            if t._ctx is not None and id(t._ctx) not in rec.walked:
                raise CaptureError("engine.compile: the step returns a tensor whose graph was not backpropagated "
                                   "inside it; call backward() in the step, or return t.detach()")
        mods = {id(s): s for m in rec.modules.values() for s in m.modules()}   # a child run by its parent too
        guards = [(m, "training", m.training) for m in mods.values()]
        guards += [(t, "_requires_grad", t._requires_grad) for t in rec.leaves.values()]
        plan = _Plan(rec, inputs, result, guards)
        return plan, _detached(out)


def _tensors_in(v):
    if isinstance(v, autograd.Tensor):
        yield v
    elif isinstance(v, (tuple, list)):
        for e in v:
            yield from _tensors_in(e)
    elif isinstance(v, dict):
        for e in v.values():
            yield from _tensors_in(e)


def _detached(v):
    if isinstance(v, autograd.Tensor):
        return autograd.Tensor._wrap(v._data)
    if isinstance(v, (tuple, list)):
        return type(v)(_detached(e) for e in v)
    if isinstance(v, dict):
        return {k: _detached(e) for k, e in v.items()}
    return v


def compile(fn=None, *, max_captures=8):
    """Capture `fn` (a training or inference step taking tensors) on its first call and replay it after,
    without the eager engine's Python work: `step = engine.compile(step)` or `@engine.compile`. See
    engine._capture for what is replayed and what a capture refuses."""
    if fn is None:
        return lambda f: CompiledStep(f, max_captures)
    return CompiledStep(fn, max_captures)

