"""Optimizers, PyTorch's names and update rules; each step is one fused kernel per parameter."""
import math
import numbers
from collections.abc import Mapping

import numpy as np

from ._capture import replayable
from .autograd import bump_version
from .backend import array_module, device_of, kernels_for, to_device
from .tensor import Tensor

__all__ = ["Optimizer", "SGD", "Adam", "AdamW"]


def check_hyper(name, v, lo=0.0, hi=math.inf, hi_open=False):
    """A real hyper-parameter in [lo, hi] ([lo, hi) with hi_open), finite: TypeError / ValueError naming it."""
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise TypeError(f"{name}: expected a real number, got {v!r}")
    if not (math.isfinite(v) and lo <= v and (v < hi if hi_open else v <= hi)):
        want = f"in [{lo}, {hi}{')' if hi_open else ']'}" if math.isfinite(hi) else f">= {lo}"
        raise ValueError(f"{name}: expected a finite number {want}, got {v!r}")
    return v


class Optimizer:
    """Holds parameter groups (lists of Parameters with their hyper-parameters) and per-parameter state.

    params: an iterable of Tensors, or of dicts (parameter groups, each with a 'params' entry and its own
    hyper-parameters), as in PyTorch; a bare Tensor is refused (iterating it would yield its rows). Each
    parameter must be a leaf tensor, in one group only and once (PyTorch only warns about a repeat within a
    group: it would be stepped twice). A parameter that does not require grad is kept and skipped while it
    has no gradient (freeze now, unfreeze later, as in PyTorch)."""

    def __init_subclass__(cls, **kwargs):
        # every optimizer's step (a user's subclass too) is one call that engine.compile records and replays
        super().__init_subclass__(**kwargs)
        if "step" in cls.__dict__:
            cls.step = replayable(cls.__dict__["step"])

    def __init__(self, params, defaults):
        if isinstance(params, (Tensor, dict)):
            raise TypeError(f"params: expected an iterable of Tensors or dicts, got a {type(params).__name__} "
                            f"(pass [tensor] for one tensor)")
        try:
            params = list(params)
        except TypeError:
            raise TypeError(f"params: expected an iterable of Tensors or dicts, got {type(params).__name__}") from None
        if not params:
            raise ValueError("params: the optimizer got an empty parameter list")
        groups = params if isinstance(params[0], dict) else [{"params": params}]
        self.defaults = defaults
        self.param_groups = []
        self.state = {}
        for g in groups:
            self.add_param_group(g)

    def add_param_group(self, group):
        if not isinstance(group, dict):
            raise TypeError(f"params: a parameter group must be a dict, got {type(group).__name__}")
        if "params" not in group:
            raise ValueError(f"params: a parameter group needs a 'params' entry, got keys {sorted(group)}")
        group = dict(group)
        ps = group["params"]
        if isinstance(ps, dict):
            raise TypeError("params: a group's 'params' must be a Tensor or an iterable of Tensors, got a dict")
        group["params"] = [ps] if isinstance(ps, Tensor) else list(ps)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        mine = set()
        for i, p in enumerate(group["params"]):
            if not isinstance(p, Tensor):
                raise TypeError(f"params[{i}]: the optimizer can only optimize Tensors, got {type(p).__name__}")
            if not p.is_leaf:
                raise ValueError(f"params[{i}]: can't optimize a non-leaf Tensor (one computed by an op); "
                                 f"optimize the leaf it came from, or .detach() it and set requires_grad")
            if p.dtype.kind != "f":
                raise TypeError(f"params[{i}]: only floating-point tensors can be optimized, got {p.dtype}")
            if id(p) in seen:
                raise ValueError(f"params[{i}]: some parameters appear in more than one parameter group")
            if id(p) in mine:
                raise ValueError(f"params[{i}]: the parameter appears twice in its group (it would be stepped "
                                 f"twice)")
            mine.add(id(p))
        for k, v in self.defaults.items():
            group.setdefault(k, v)
        self._check(group)
        self.param_groups.append(group)

    def _check(self, group):
        check_hyper("lr", group["lr"])
        check_hyper("weight_decay", group["weight_decay"])

    @replayable
    def zero_grad(self, set_to_none=True):
        for g in self.param_groups:
            for p in g["params"]:
                if set_to_none:
                    p.grad = None
                elif p.grad is not None:
                    p.grad._data[...] = 0
                    bump_version(p.grad._data)

    def _params_with_grad(self):
        for g in self.param_groups:
            for p in g["params"]:
                if p.grad is not None:
                    if p.grad.shape != p.shape:
                        raise ValueError(f"grad: shape {p.grad.shape} does not match its parameter's {p.shape}")
                    if not p._data.flags.c_contiguous:      # the fused kernels walk the flat array
                        p._data = p._data.copy(order="C")         # (keeps the array's type: its device)
                    yield g, p, self.state.setdefault(id(p), {})

    def state_dict(self):
        """{'state': {index: {name: array|number}}, 'param_groups': [hyper-parameters, params as indices]}."""
        index = {}
        groups = []
        for g in self.param_groups:
            ids = []
            for p in g["params"]:
                index.setdefault(id(p), len(index))
                ids.append(index[id(p)])
            groups.append({**{k: v for k, v in g.items() if k != "params"}, "params": ids})
        state = {index[k]: dict(v) for k, v in self.state.items() if k in index}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        """Restore state_dict() output (hyper-parameters and per-parameter state) onto this optimizer's
        parameters, matched by position."""
        if not isinstance(state_dict, Mapping) or "state" not in state_dict or "param_groups" not in state_dict:
            got = type(state_dict).__name__ if not isinstance(state_dict, Mapping) else f"keys {sorted(state_dict)}"
            raise TypeError(f"state_dict: expected a dict with 'state' and 'param_groups' (an optimizer's "
                            f"state_dict()), got {got}")
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups) or any(
                len(a["params"]) != len(b["params"]) for a, b in zip(groups, self.param_groups)):
            raise ValueError("state_dict: its parameter groups do not match this optimizer's")
        params = [p for g in self.param_groups for p in g["params"]]
        self.state = {}
        for k, v in state_dict["state"].items():
            p = params[int(k)]
            st = {}
            for name, val in v.items():
                val = val._data if isinstance(val, Tensor) else val
                st[name] = (to_device(val, device_of(p._data)).astype(p.dtype) if hasattr(val, "shape") and np.ndim(val)
                            else val)
            self.state[id(p)] = st
        for g, saved in zip(self.param_groups, groups):
            g.update({k: v for k, v in saved.items() if k != "params"})


class SGD(Optimizer):
    """Minibatch SGD with momentum, dampening, Nesterov and coupled (L2) weight decay, as PyTorch:
    with momentum 0, one step is the book's w <- (1 - lr*wd) w - lr*grad."""

    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0):
        check_hyper("momentum", momentum)
        check_hyper("dampening", dampening, lo=-math.inf)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("nesterov: Nesterov momentum needs momentum > 0 and dampening = 0")
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening, nesterov=nesterov,
                                      weight_decay=weight_decay))

    def step(self):
        for g, p, st in self._params_with_grad():
            first = "momentum_buffer" not in st
            buf = None
            if g["momentum"] != 0:
                if first:
                    st["momentum_buffer"] = array_module(p._data).empty_like(p._data)
                buf = st["momentum_buffer"]
            kernels_for(p._data).sgd_step(p._data, p.grad._data, buf, g["lr"], g["momentum"], g["dampening"],
                                         g["nesterov"], g["weight_decay"], first)
            bump_version(p._data)        # an in-place update: a graph that kept p raises at backward, as PyTorch


class Adam(Optimizer):
    """PyTorch's Adam: moments m, v with bias correction; weight_decay is coupled (L2: wd*param is added to
    the gradient before the moments), unlike AdamW's decoupled decay. decoupled_weight_decay=True makes it
    AdamW, as in PyTorch. One fused kernel per parameter (the AdamW kernel, with its coupled term).
    amsgrad and maximize are not supported (they raise); foreach, fused, capturable and differentiable are
    PyTorch's implementation choices and are accepted when left at their defaults."""
    _decoupled = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False, *,
                 foreach=None, maximize=False, capturable=False, differentiable=False, fused=None,
                 decoupled_weight_decay=None):
        if not (isinstance(betas, (tuple, list)) and len(betas) == 2):
            raise ValueError(f"betas: expected two numbers in [0, 1), got {betas!r}")
        for i, b in enumerate(betas):
            check_hyper(f"betas[{i}]", b, hi=1.0, hi_open=True)
        check_hyper("eps", eps)
        for name, v in (("amsgrad", amsgrad), ("maximize", maximize), ("capturable", capturable),
                        ("differentiable", differentiable)):
            if not isinstance(v, (bool, np.bool_)):
                raise TypeError(f"{name}: expected a bool, got {v!r}")
            if v:
                raise ValueError(f"{name}: not supported by the engine's {type(self).__name__} (only {name}=False)")
        for name, v in (("foreach", foreach), ("fused", fused)):
            if v not in (None, False, True):
                raise TypeError(f"{name}: expected None or a bool, got {v!r}")
        if decoupled_weight_decay is None:
            decoupled_weight_decay = self._decoupled
        if not isinstance(decoupled_weight_decay, (bool, np.bool_)):
            raise TypeError(f"decoupled_weight_decay: expected a bool, got {decoupled_weight_decay!r}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, amsgrad=False,
                                      maximize=False, decoupled_weight_decay=bool(decoupled_weight_decay)))

    def step(self):
        for g, p, st in self._params_with_grad():
            if "step" not in st:
                xp = array_module(p._data)
                st["step"], st["exp_avg"], st["exp_avg_sq"] = 0, xp.zeros_like(p._data), xp.zeros_like(p._data)
            st["step"] += 1
            b1, b2 = g["betas"]
            k = kernels_for(p._data)
            update = k.adamw_step if g.get("decoupled_weight_decay", self._decoupled) else k.adam_step
            update(p._data, p.grad._data, st["exp_avg"], st["exp_avg_sq"], g["lr"], b1, b2, g["eps"],
                   g["weight_decay"], st["step"])
            bump_version(p._data)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter), as PyTorch's AdamW: each step first multiplies
    the parameter by 1 - lr*wd."""
    _decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False, *,
                 foreach=None, maximize=False, capturable=False, differentiable=False, fused=None):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, foreach=foreach, maximize=maximize,
                         capturable=capturable, differentiable=differentiable, fused=fused,
                         decoupled_weight_decay=True)
