"""The fused layers (kernels.cpu.fused's names) composed from a backend's own kernels: the layer, then the
activation's kernel; backward, the activation's backward, then the layer's. The float64 reference and the
CUDA backend serve them so (on the GPU the fusion is one engine op, not one kernel)."""
import types

from .common import ACTIVATIONS

_NAMES = {code: name for name, code in ACTIVATIONS.items()}


def fused_layers(mod):
    """The four fused-layer functions over the kernels of module `mod` (conv2d_*, linear_*, <act>_fwd/_bwd)."""
    def fwd(act):
        return getattr(mod, _NAMES[act] + "_fwd")

    def bwd(act):
        return getattr(mod, _NAMES[act] + "_bwd")

    def linear_act_fwd(x, w, b, act):
        return fwd(act)(mod.linear_fwd(x, w, b))

    def linear_act_bwd(dout, y, x, w, act, need_dx=True, need_dw=True, need_db=True):
        return mod.linear_bwd(bwd(act)(dout, y), x, w, need_dx, need_dw, need_db)

    def conv2d_act_fwd(x, w, b, stride, padding, dilation, groups, act):
        return fwd(act)(mod.conv2d_fwd(x, w, b, stride, padding, dilation, groups))

    def conv2d_act_bwd(dout, y, x, w, stride, padding, dilation, groups, act, need_dx=True, need_dw=True,
                       need_db=True):
        return mod.conv2d_bwd(bwd(act)(dout, y), x, w, stride, padding, dilation, groups, need_dx, need_dw,
                              need_db)

    return types.SimpleNamespace(linear_act_fwd=linear_act_fwd, linear_act_bwd=linear_act_bwd,
                                 conv2d_act_fwd=conv2d_act_fwd, conv2d_act_bwd=conv2d_act_bwd)
