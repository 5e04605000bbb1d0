"""Layers, PyTorch's names, signatures and default initialization."""
import math
import numbers

import numpy as np

from .. import functional as F
from .._capture import refuse
from .._checks import as_pair, check_positive_int
from ..autograd import is_grad_enabled
from ..tensor import Tensor, float32
from . import init
from .module import Module, Parameter

__all__ = ["Identity", "Linear", "Conv2d", "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "BatchNorm1d",
           "BatchNorm2d", "LayerNorm", "Dropout", "ReLU", "Sigmoid", "Tanh", "GELU", "Softmax", "LogSoftmax",
           "Flatten", "Sequential", "ModuleList", "Embedding", "CrossEntropyLoss", "MSELoss"]


def _empty(*shape, dtype=None):
    return Parameter(np.empty(shape, dtype=np.dtype(dtype or float32)))


def _init_fan_in_uniform(weight, bias):
    """PyTorch's default for Linear and Conv: kaiming_uniform_(a=sqrt(5)) on the weight, so
    U(-1/sqrt(fan_in), 1/sqrt(fan_in)), and the same bound for the bias."""
    init.kaiming_uniform_(weight, a=math.sqrt(5))
    if bias is not None:
        fan_in = weight.shape[1] * int(np.prod(weight.shape[2:]))
        bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
        init.uniform_(bias, -bound, bound)


class Identity(Module):
    def forward(self, x):
        return x


class Linear(Module):
    def __init__(self, in_features, out_features, bias=True, dtype=None):
        super().__init__()
        self.in_features = check_positive_int("in_features", in_features)
        self.out_features = check_positive_int("out_features", out_features)
        self.weight = _empty(out_features, in_features, dtype=dtype)
        self.register_parameter("bias", _empty(out_features, dtype=dtype) if bias else None)
        self.reset_parameters()

    def reset_parameters(self):
        _init_fan_in_uniform(self.weight, self.bias)

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Conv2d(Module):
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 bias=True, dtype=None):
        super().__init__()
        self.in_channels = check_positive_int("in_channels", in_channels)
        self.out_channels = check_positive_int("out_channels", out_channels)
        self.groups = check_positive_int("groups", groups)
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"groups: {groups} must divide in_channels ({in_channels}) and out_channels ({out_channels})")
        self.kernel_size = as_pair("kernel_size", kernel_size, minimum=1)
        self.stride, self.dilation = stride, dilation
        if isinstance(padding, str):              # PyTorch checks the padding string when the layer is built
            if padding not in ("same", "valid"):
                raise ValueError(f"padding: expected 'same', 'valid', an int or a pair of ints, got {padding!r}")
            if padding == "same" and as_pair("stride", stride, minimum=1) != (1, 1):
                raise ValueError(f"padding: 'same' is not supported for strided convolutions (stride={stride})")
        self.padding = padding
        self.weight = _empty(out_channels, in_channels // groups, *self.kernel_size, dtype=dtype)
        self.register_parameter("bias", _empty(out_channels, dtype=dtype) if bias else None)
        self.reset_parameters()

    def reset_parameters(self):
        _init_fan_in_uniform(self.weight, self.bias)

    def forward(self, x):
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)

    def extra_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}")


class MaxPool2d(Module):
    """PyTorch's signature; dilation 1 and return_indices False only (see F.max_pool2d)."""

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False, ceil_mode=False):
        super().__init__()
        self.kernel_size, self.stride, self.padding, self.ceil_mode = kernel_size, stride, padding, ceil_mode
        self.dilation, self.return_indices = dilation, return_indices

    def forward(self, x):
        return F.max_pool2d(x, self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode,
                            self.return_indices)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AvgPool2d(Module):
    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.ceil_mode, self.count_include_pad = ceil_mode, count_include_pad

    def forward(self, x):
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode, self.count_include_pad)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AdaptiveAvgPool2d(Module):
    def __init__(self, output_size):
        super().__init__()
        self.output_size = output_size

    def forward(self, x):
        return F.adaptive_avg_pool2d(x, self.output_size)

    def extra_repr(self):
        return f"output_size={self.output_size}"


class _BatchNorm(Module):
    _dims = ()

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True, dtype=None):
        super().__init__()
        self.num_features = check_positive_int("num_features", num_features)
        self.eps, self.momentum = eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        dt = np.dtype(dtype or float32)
        self.register_parameter("weight", Parameter(np.ones(num_features, dt)) if affine else None)
        self.register_parameter("bias", Parameter(np.zeros(num_features, dt)) if affine else None)
        if track_running_stats:
            self.register_buffer("running_mean", Tensor(np.zeros(num_features, dt)))
            self.register_buffer("running_var", Tensor(np.ones(num_features, dt)))
            self.register_buffer("num_batches_tracked", Tensor(np.zeros((), np.int64)))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    def forward(self, x):
        if x.ndim not in self._dims:
            raise ValueError(f"input: {type(self).__name__} expects {' or '.join(map(str, self._dims))}-D input, "
                             f"got shape {x.shape}")
        momentum = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked.add_(1)      # an in-place op: a step replayed by engine.compile counts too
            if self.momentum is None:        # cumulative moving average, as in PyTorch
                refuse("used BatchNorm with momentum=None (its momentum is read from the batch count)",
                       "give the BatchNorm a momentum")
                momentum = 1.0 / float(self.num_batches_tracked._data)
        use_batch_stats = self.training or not self.track_running_stats
        return F.batch_norm(x, self.running_mean if not self.training or self.track_running_stats else None,
                            self.running_var if not self.training or self.track_running_stats else None,
                            self.weight, self.bias, use_batch_stats, momentum, self.eps)

    def extra_repr(self):
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}"


class BatchNorm1d(_BatchNorm):
    """Per-feature batch norm on (N, C) or (N, C, L) input."""
    _dims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Per-channel batch norm on (N, C, H, W) input."""
    _dims = (4,)


class LayerNorm(Module):
    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True, dtype=None):
        super().__init__()
        if isinstance(normalized_shape, numbers.Integral):
            normalized_shape = (normalized_shape,)
        if (not isinstance(normalized_shape, (tuple, list)) or not all(
                isinstance(n, numbers.Integral) and not isinstance(n, bool) for n in normalized_shape)):
            raise TypeError(f"normalized_shape: expected an int or a tuple of ints, got {normalized_shape!r}")
        if not normalized_shape or min(normalized_shape) < 1:
            raise ValueError(f"normalized_shape: sizes must be at least 1, got {tuple(normalized_shape)}")
        self.normalized_shape = tuple(int(n) for n in normalized_shape)
        self.eps = eps
        dt = np.dtype(dtype or float32)
        affine = elementwise_affine
        self.register_parameter("weight", Parameter(np.ones(self.normalized_shape, dt)) if affine else None)
        self.register_parameter("bias", Parameter(np.zeros(self.normalized_shape, dt)) if affine and bias else None)

    def forward(self, x):
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return f"{self.normalized_shape}, eps={self.eps}"


class Dropout(Module):
    def __init__(self, p=0.5):
        super().__init__()
        if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0 <= p <= 1:
            raise ValueError(f"p: dropout probability has to be between 0 and 1, got {p!r}")
        self.p = float(p)

    def forward(self, x):
        return F.dropout(x, self.p, self.training)

    def extra_repr(self):
        return f"p={self.p}"


class ReLU(Module):
    def forward(self, x):
        return F.relu(x)


class Sigmoid(Module):
    def forward(self, x):
        return F.sigmoid(x)


class Tanh(Module):
    def forward(self, x):
        return F.tanh(x)


class GELU(Module):
    """F.gelu as a layer: approximate 'none' (exact, erf) or 'tanh', as PyTorch's nn.GELU."""

    def __init__(self, approximate="none"):
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"approximate: expected 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, x):
        return F.gelu(x, self.approximate)

    def extra_repr(self):
        return f"approximate={self.approximate!r}"


class Softmax(Module):
    def __init__(self, dim=-1):
        super().__init__()
        self.dim = dim

    def forward(self, x):
        return F.softmax(x, self.dim)


class LogSoftmax(Softmax):
    def forward(self, x):
        return F.log_softmax(x, self.dim)


class Flatten(Module):
    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x):
        return x.flatten(self.start_dim, self.end_dim)


def _item(mods, i, kind):
    """mods[i] with PyTorch's IndexError message."""
    if not isinstance(i, numbers.Integral) or isinstance(i, bool):
        raise TypeError(f"index: expected an int or a slice, got {i!r}")
    if not -len(mods) <= i < len(mods):
        raise IndexError(f"index {i} is out of range for a {kind} of {len(mods)} modules")
    return mods[i]


class Sequential(Module):
    """PyTorch's Sequential, with fusion unless `fuse` is False (a class attribute: set it on one instance or
    on the class):
      - a Linear or Conv2d followed by ReLU, Sigmoid or Tanh runs as one fused op (F.linear_act,
        F.conv2d_act: the same output bit for bit, one array and one tape node fewer; engine/ops/fused.py);
      - under no_grad, a Conv2d followed by an eval-mode BatchNorm2d (and maybe one of those activations) runs
        as one conv with the batch norm folded into its weights (nn.utils.fusion; equal to rounding).
    Layers of a subclass, or with their forward replaced on the instance, are never fused."""

    fuse = True

    def __init__(self, *modules):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], dict):
            modules = modules[0].items()
        else:
            modules = ((str(i), m) for i, m in enumerate(modules))
        for name, m in modules:
            if not isinstance(m, Module):
                raise TypeError(f"modules: {name} is a {type(m).__name__}, not a Module")
            self.add_module(name, m)

    def __getitem__(self, i):
        mods = list(self._modules.values())
        return Sequential(*mods[i]) if isinstance(i, slice) else _item(mods, i, "Sequential")

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def append(self, module):
        self.add_module(str(len(self)), module)
        return self

    def forward(self, x):
        if not self.fuse:
            for m in self._modules.values():
                x = m(x)
            return x
        mods = tuple(self._modules.values())
        i, n = 0, len(mods)
        while i < n:
            m = mods[i]
            if type(m) is Conv2d and i + 1 < n and _folds(m, mods[i + 1]):
                act = _act_of(mods[i + 2]) if i + 2 < n else None
                x = _conv_bn_eval(x, m, mods[i + 1], act)
                i += 3 if act else 2
                continue
            act = _act_of(mods[i + 1]) if i + 1 < n else None
            if act is not None and "forward" not in m.__dict__:
                if type(m) is Linear:
                    x = F.linear_act(x, m.weight, m.bias, act)
                    i += 2
                    continue
                if type(m) is Conv2d:
                    x = F.conv2d_act(x, m.weight, m.bias, m.stride, m.padding, m.dilation, m.groups, act)
                    i += 2
                    continue
            x = m(x)
            i += 1
        return x


_FUSED_ACT = {ReLU: "relu", Sigmoid: "sigmoid", Tanh: "tanh"}


def _act_of(m):
    """The activation Sequential fuses into the layer before m ('relu', 'sigmoid', 'tanh'), or None."""
    act = _FUSED_ACT.get(type(m))
    return act if act is not None and "forward" not in m.__dict__ else None


def _conv_bn_eval(x, conv, bn, act):
    """conv + eval-mode BatchNorm2d (+ act) as one conv with the folded weights (nn.utils.fusion)."""
    from .utils.fusion import fold_bn
    opt = lambda t: None if t is None else t._data      # noqa: E731
    w, b = fold_bn(conv.weight._data, opt(conv.bias), bn.running_mean._data, bn.running_var._data, bn.eps,
                   opt(bn.weight), opt(bn.bias))
    w, b = Tensor(w), Tensor(b)
    if act is None:
        return F.conv2d(x, w, b, conv.stride, conv.padding, conv.dilation, conv.groups)
    return F.conv2d_act(x, w, b, conv.stride, conv.padding, conv.dilation, conv.groups, act)


def _folds(conv, bn):
    """Sequential folds conv + bn: an eval-mode BatchNorm2d with running statistics, nothing recorded for
    backward, neither layer's forward replaced."""
    return (type(bn) is BatchNorm2d and not bn.training and bn.running_mean is not None and not is_grad_enabled()
            and "forward" not in conv.__dict__ and "forward" not in bn.__dict__)


class ModuleList(Module):
    def __init__(self, modules=()):
        super().__init__()
        for m in modules:
            self.append(m)

    def append(self, module):
        self.add_module(str(len(self._modules)), module)
        return self

    def __getitem__(self, i):
        return _item(list(self._modules.values()), i, "ModuleList")

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())


class Embedding(Module):
    def __init__(self, num_embeddings, embedding_dim, padding_idx=None, dtype=None):
        super().__init__()
        self.num_embeddings = check_positive_int("num_embeddings", num_embeddings)
        self.embedding_dim = check_positive_int("embedding_dim", embedding_dim)
        if padding_idx is not None:                # PyTorch's rule: in [-num_embeddings, num_embeddings)
            if not isinstance(padding_idx, numbers.Integral) or isinstance(padding_idx, bool):
                raise TypeError(f"padding_idx: expected an int or None, got {padding_idx!r}")
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise ValueError(f"padding_idx: must be in [-{num_embeddings}, {num_embeddings}), got {padding_idx}")
            padding_idx = int(padding_idx) % num_embeddings
        self.padding_idx = padding_idx
        self.weight = _empty(num_embeddings, embedding_dim, dtype=dtype)
        init.normal_(self.weight)
        if padding_idx is not None:
            self.weight._data[padding_idx] = 0

    def forward(self, idx):
        return F.embedding(idx, self.weight, self.padding_idx)

    def extra_repr(self):
        return f"{self.num_embeddings}, {self.embedding_dim}"


class CrossEntropyLoss(Module):
    def __init__(self, reduction="mean", label_smoothing=0.0, ignore_index=-100):
        super().__init__()
        self.reduction, self.label_smoothing, self.ignore_index = reduction, label_smoothing, ignore_index

    def forward(self, input, target):
        return F.cross_entropy(input, target, reduction=self.reduction, label_smoothing=self.label_smoothing,
                               ignore_index=self.ignore_index)


class MSELoss(Module):
    def __init__(self, reduction="mean"):
        super().__init__()
        self.reduction = reduction

    def forward(self, input, target):
        return F.mse_loss(input, target, reduction=self.reduction)
