"""Lazy layers (PyTorch's nn.LazyLinear, LazyConv2d, LazyBatchNorm1d/2d): the input size is inferred at the
first call, as the book's models do (`nn.LazyLinear(10)`, then a dry run with a batch).

Before the first call the parameters are `UninitializedParameter`s: registered (so `parameters()` lists them
and an optimizer built then keeps working, as in PyTorch), of shape (0,), and refused by `shape`-dependent
initializers. The first call gives them their shapes and values in place (the same Parameter objects, on the
device and dtype `.to()` set), with PyTorch's initialization for the materialized layer, and the module then
becomes that layer: `type(m) is nn.Linear` afterwards, as PyTorch's `cls_to_become`.
"""
import numpy as np

from ..backend import array_module
from ..tensor import Tensor, float32
from .layers import BatchNorm1d, BatchNorm2d, Conv2d, Linear
from .module import Module, Parameter

__all__ = ["LazyLinear", "LazyConv2d", "LazyBatchNorm1d", "LazyBatchNorm2d", "UninitializedParameter"]


def _filled(like, shape, fill):
    """An array of `shape` filled with `fill`, with the placeholder's dtype, on its device."""
    return array_module(like).full(tuple(shape), fill, dtype=like.dtype)


class UninitializedParameter(Parameter):
    """A parameter whose shape is not known yet; `materialize(shape)` gives it one (zeros until initialized)."""

    def __init__(self, requires_grad=True, dtype=None):
        super().__init__(np.empty((0,), dtype=np.dtype(dtype or float32)), requires_grad=requires_grad)

    def materialize(self, shape, fill=0):
        self._data = _filled(self._data, shape, fill)
        self.__class__ = Parameter

    def __repr__(self):
        return "<UninitializedParameter>"


class _UninitializedBuffer(Tensor):
    def materialize(self, shape, fill=0):
        self._data = _filled(self._data, shape, fill)
        self.__class__ = Tensor

    def __repr__(self):
        return "<UninitializedBuffer>"


def _buffer(dtype):
    return _UninitializedBuffer(np.empty((0,), dtype=np.dtype(dtype or float32)))


class _Lazy:
    """Mixin: the first forward materializes the parameters from the input, then runs the real layer. Parameters
    that load_state_dict already materialized are kept (the sizes are then read from them)."""
    cls_to_become = None

    def has_uninitialized_params(self):
        return any(isinstance(p, (UninitializedParameter, _UninitializedBuffer))
                   for p in list(self._parameters.values()) + list(self._buffers.values()))

    def forward(self, x):
        if not isinstance(x, Tensor):
            raise TypeError(f"input: expected a Tensor, got {type(x).__name__}")
        if self.has_uninitialized_params():
            self.initialize_parameters(x)
        else:
            self.sizes_from_parameters(x)
        self.__class__ = self.cls_to_become
        return self.forward(x)

    def __repr__(self):
        if self.has_uninitialized_params():
            return f"{type(self).__name__}({self.extra_repr()})"
        return super().__repr__()


class LazyLinear(_Lazy, Linear):
    """Linear(in_features inferred from the input's last dim, out_features)."""
    cls_to_become = Linear

    def __init__(self, out_features, bias=True, dtype=None):
        Module.__init__(self)                       # not Linear's: its checks need in_features
        from .._checks import check_positive_int
        self.in_features, self.out_features = 0, check_positive_int("out_features", out_features)
        self.weight = UninitializedParameter(dtype=dtype)
        self.register_parameter("bias", UninitializedParameter(dtype=dtype) if bias else None)

    def initialize_parameters(self, x):
        if x.ndim == 0:
            raise ValueError("input: LazyLinear needs at least 1 dim to infer in_features, got a 0-d tensor")
        self.in_features = x.shape[-1]
        self.weight.materialize((self.out_features, self.in_features))
        if self.bias is not None:
            self.bias.materialize((self.out_features,))
        self.reset_parameters()

    def sizes_from_parameters(self, x):
        self.in_features = self.weight.shape[1]


class LazyConv2d(_Lazy, Conv2d):
    """Conv2d(in_channels inferred from the input's dim 1, out_channels, kernel_size, ...)."""
    cls_to_become = Conv2d

    def __init__(self, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1, bias=True, dtype=None):
        # Conv2d's own checks, with a stand-in in_channels (groups, so that it divides); the weight is replaced
        Conv2d.__init__(self, groups if isinstance(groups, int) and groups > 0 else 1, out_channels, kernel_size,
                        stride, padding, dilation, groups, bias, dtype)
        self.in_channels = 0
        self.weight = UninitializedParameter(dtype=dtype)
        self.register_parameter("bias", UninitializedParameter(dtype=dtype) if bias else None)

    def initialize_parameters(self, x):
        if x.ndim not in (3, 4):
            raise ValueError(f"input: LazyConv2d expects (N, C, H, W) or (C, H, W) input, got shape {x.shape}")
        c = x.shape[-3]
        if c % self.groups:
            raise ValueError(f"input: {c} channels are not divisible by groups={self.groups}")
        self.in_channels = c
        self.weight.materialize((self.out_channels, c // self.groups) + tuple(self.kernel_size))
        if self.bias is not None:
            self.bias.materialize((self.out_channels,))
        self.reset_parameters()

    def sizes_from_parameters(self, x):
        self.in_channels = self.weight.shape[1] * self.groups


class _LazyBatchNorm(_Lazy):
    def __init__(self, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True, dtype=None):
        self.cls_to_become.__init__(self, 1, eps, momentum, affine, track_running_stats, dtype)
        self.num_features = 0
        if affine:
            self.weight = UninitializedParameter(dtype=dtype)
            self.bias = UninitializedParameter(dtype=dtype)
        if track_running_stats:
            self.running_mean = _buffer(dtype)
            self.running_var = _buffer(dtype)

    def initialize_parameters(self, x):
        if x.ndim not in self.cls_to_become._dims:
            raise ValueError(f"input: {type(self).__name__} expects "
                             f"{' or '.join(map(str, self.cls_to_become._dims))}-D input, got shape {x.shape}")
        c = self.num_features = x.shape[1]
        if self.affine:
            self.weight.materialize((c,), 1)
            self.bias.materialize((c,), 0)
        if self.track_running_stats:
            self.running_mean.materialize((c,), 0)
            self.running_var.materialize((c,), 1)

    def sizes_from_parameters(self, x):
        held = self.weight if self.affine else self.running_mean if self.track_running_stats else None
        self.num_features = held.shape[0] if held is not None else x.shape[1]


class LazyBatchNorm1d(_LazyBatchNorm, BatchNorm1d):
    """BatchNorm1d(num_features inferred from the input's dim 1)."""
    cls_to_become = BatchNorm1d


class LazyBatchNorm2d(_LazyBatchNorm, BatchNorm2d):
    """BatchNorm2d(num_features inferred from the input's dim 1)."""
    cls_to_become = BatchNorm2d
