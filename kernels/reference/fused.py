"""Fused layers (conv2d / linear + bias + relu, sigmoid or tanh), kernels.cpu.fused's names, composed from this
backend's own kernels (kernels/_composed.py)."""
import sys

from .._composed import fused_layers

_f = fused_layers(sys.modules[__package__])
linear_act_fwd, linear_act_bwd = _f.linear_act_fwd, _f.linear_act_bwd
conv2d_act_fwd, conv2d_act_bwd = _f.conv2d_act_fwd, _f.conv2d_act_bwd

__all__ = ["conv2d_act_fwd", "conv2d_act_bwd", "linear_act_fwd", "linear_act_bwd"]
