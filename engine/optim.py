"""Optimizers, PyTorch's names and update rules; each step is one fused kernel per parameter."""
import math
import numbers

import numpy as np

from .backend import array_module, device_of, kernels_for, to_device
from .tensor import Tensor

__all__ = ["Optimizer", "SGD", "AdamW"]


class Optimizer:
    """Holds parameter groups (lists of Parameters with their hyper-parameters) and per-parameter state."""

    def __init__(self, params, defaults):
        params = list(params)
        if not params:
            raise ValueError("params: the optimizer got an empty parameter list")
        groups = params if isinstance(params[0], dict) else [{"params": params}]
        self.defaults = defaults
        self.param_groups = []
        self.state = {}
        for g in groups:
            self.add_param_group(g)

    def add_param_group(self, group):
        group = dict(group)
        ps = group["params"]
        group["params"] = [ps] if isinstance(ps, Tensor) else list(ps)
        for i, p in enumerate(group["params"]):
            if not isinstance(p, Tensor):
                raise TypeError(f"params[{i}]: expected a Tensor, got {type(p).__name__}")
            if not p.requires_grad:
                raise ValueError(f"params[{i}]: the tensor does not require grad")
        for k, v in self.defaults.items():
            group.setdefault(k, v)
        self._check(group)
        self.param_groups.append(group)

    def _check(self, group):
        for k in ("lr", "weight_decay"):
            v = group[k]
            if isinstance(v, bool) or not isinstance(v, numbers.Real) or v < 0 or not math.isfinite(v):
                raise ValueError(f"{k}: expected a finite non-negative number, got {v!r}")

    def zero_grad(self, set_to_none=True):
        for g in self.param_groups:
            for p in g["params"]:
                if set_to_none:
                    p.grad = None
                elif p.grad is not None:
                    p.grad.data[...] = 0

    def _params_with_grad(self):
        for g in self.param_groups:
            for p in g["params"]:
                if p.grad is not None:
                    if p.grad.shape != p.shape:
                        raise ValueError(f"grad: shape {p.grad.shape} does not match its parameter's {p.shape}")
                    if not p.data.flags.c_contiguous:      # the fused kernels walk the flat array
                        p.data = p.data.copy(order="C")         # (keeps the array's type: its device)
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
                val = val.data if isinstance(val, Tensor) else val
                st[name] = (to_device(val, device_of(p.data)).astype(p.dtype) if hasattr(val, "shape") and np.ndim(val)
                            else val)
            self.state[id(p)] = st
        for g, saved in zip(self.param_groups, groups):
            g.update({k: v for k, v in saved.items() if k != "params"})


class SGD(Optimizer):
    """Minibatch SGD with momentum, dampening, Nesterov and coupled (L2) weight decay, as PyTorch:
    with momentum 0, one step is the book's w <- (1 - lr*wd) w - lr*grad."""

    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0):
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("nesterov: Nesterov momentum needs momentum > 0 and dampening = 0")
        if momentum < 0:
            raise ValueError(f"momentum: expected a non-negative number, got {momentum!r}")
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening, nesterov=nesterov,
                                      weight_decay=weight_decay))

    def step(self):
        for g, p, st in self._params_with_grad():
            first = "momentum_buffer" not in st
            buf = None
            if g["momentum"] != 0:
                if first:
                    st["momentum_buffer"] = array_module(p.data).empty_like(p.data)
                buf = st["momentum_buffer"]
            kernels_for(p.data).sgd_step(p.data, p.grad.data, buf, g["lr"], g["momentum"], g["dampening"],
                                         g["nesterov"], g["weight_decay"], first)


class AdamW(Optimizer):
    """Adam with decoupled weight decay (Loshchilov & Hutter), as PyTorch's AdamW."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        if not (isinstance(betas, (tuple, list)) and len(betas) == 2 and all(0 <= b < 1 for b in betas)):
            raise ValueError(f"betas: expected two numbers in [0, 1), got {betas!r}")
        if not eps >= 0:
            raise ValueError(f"eps: expected a non-negative number, got {eps!r}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay))

    def step(self):
        for g, p, st in self._params_with_grad():
            if "step" not in st:
                xp = array_module(p.data)
                st["step"], st["exp_avg"], st["exp_avg_sq"] = 0, xp.zeros_like(p.data), xp.zeros_like(p.data)
            st["step"] += 1
            b1, b2 = g["betas"]
            kernels_for(p.data).adamw_step(p.data, p.grad.data, st["exp_avg"], st["exp_avg_sq"], g["lr"], b1, b2,
                                           g["eps"], g["weight_decay"], st["step"])
