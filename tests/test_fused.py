"""Fused layers (conv2d / linear + bias + relu, sigmoid or tanh): the kernels against the float64 reference on
each device, the CPU forward bit for bit against the unfused ops, the tape's gradients against finite
differences, nn.Sequential's fusion against the same network unfused, and bad arguments."""
import numpy as np
import pytest

import engine
import engine.functional as F
import kernels.reference as ref
from conftest import (assert_close, cases, check_backward_fd, check_engine_grad, kernels_on, noncontig, on_devices,
                      to_dev, to_host)
from engine import nn
from kernels.common import ACTIVATIONS

f32, f64 = np.float32, np.float64
ACTS = list(ACTIVATIONS)
rng = np.random.default_rng(5)

# (x shape, weight shape, stride, padding (t, b, l, r), dilation, groups): one case per conv kernel path
# (outer product, direct, implicit GEMM for strides, a dilated one, groups) and an unbatched-size input
CONV = [((2, 3, 9, 9), (4, 3, 3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1),
        ((2, 16, 12, 12), (32, 16, 3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1),
        ((2, 8, 20, 20), (8, 8, 5, 5), (1, 1), (2, 2, 2, 2), (1, 1), 1),
        ((2, 3, 9, 9), (4, 3, 3, 3), (2, 2), (0, 0, 0, 0), (1, 1), 1),
        ((1, 4, 10, 10), (6, 2, 3, 3), (1, 2), (1, 1, 1, 1), (2, 1), 2)]
LINEAR = [((4, 5), 3), ((300, 256), 48), ((2, 3, 64), 16)]


def _x(shape, dtype):
    x = rng.standard_normal(shape)
    return np.where(np.abs(x) < 0.05, 0.5, x).astype(dtype)     # off relu's kink


@pytest.mark.parametrize("act", ACTS)
def test_reference_backward_matches_finite_differences(act):
    code = ACTIVATIONS[act]
    xs, ws, s, p, d, g = CONV[0]
    x, w, b = _x(xs, f64), _x(ws, f64) * 0.3, _x(ws[:1], f64)
    conf = (s, p, d, g)
    check_backward_fd(lambda x, w, b: ref.conv2d_act_fwd(x, w, b, *conf, code),
                      lambda dout, x, w, b: ref.conv2d_act_bwd(dout, ref.conv2d_act_fwd(x, w, b, *conf, code), x, w,
                                                               *conf, code), [x, w, b])
    x, w, b = _x((6, 5), f64), _x((3, 5), f64), _x((3,), f64)
    check_backward_fd(lambda x, w, b: ref.linear_act_fwd(x, w, b, code),
                      lambda dout, x, w, b: ref.linear_act_bwd(dout, ref.linear_act_fwd(x, w, b, code), x, w, code),
                      [x, w, b])


@pytest.mark.parametrize(*on_devices("act,case,dtype", cases(ACTS, range(len(CONV)), [f32, f64]),
                                     [("relu", 3, f32), ("tanh", 4, f64)]))
def test_conv2d_act_kernels_match_reference(device, act, case, dtype):
    K, code = kernels_on(device), ACTIVATIONS[act]
    xs, ws, s, p, d, g = CONV[case]
    x, w, b = _x(xs, dtype), (_x(ws, dtype) * 0.3).astype(dtype), _x(ws[:1], dtype)
    conf = (s, p, d, g)
    y = K.conv2d_act_fwd(to_dev(x, device), to_dev(w, device), to_dev(b, device), *conf, code)
    yr = ref.conv2d_act_fwd(x.astype(f64), w.astype(f64), b.astype(f64), *conf, code)
    assert_close(to_host(y), yr, dtype, scale=10)
    dout = _x(yr.shape, dtype)
    got = K.conv2d_act_bwd(to_dev(dout, device), y, to_dev(x, device), to_dev(w, device), *conf, code)
    want = ref.conv2d_act_bwd(dout.astype(f64), to_host(y).astype(f64), x.astype(f64), w.astype(f64), *conf, code)
    for name, a, e in zip(("dx", "dw", "db"), got, want):
        assert_close(to_host(a), e, dtype, scale=30, err_msg=name)
    # a strided input gives the same output
    assert_close(to_host(K.conv2d_act_fwd(noncontig(x, device), to_dev(w, device), to_dev(b, device), *conf, code)),
                 to_host(y), dtype)


@pytest.mark.parametrize(*on_devices("act,case,dtype", cases(ACTS, range(len(LINEAR)), [f32, f64]),
                                     [("relu", 0, f32), ("sigmoid", 2, f64), ("tanh", 0, f64)]))
def test_linear_act_kernels_match_reference(device, act, case, dtype):
    K, code = kernels_on(device), ACTIVATIONS[act]
    xs, n = LINEAR[case]
    x, w, b = _x(xs, dtype), (_x((n, xs[-1]), dtype) * 0.2).astype(dtype), _x((n,), dtype)
    y = K.linear_act_fwd(to_dev(x, device), to_dev(w, device), to_dev(b, device), code)
    yr = ref.linear_act_fwd(x.astype(f64), w.astype(f64), b.astype(f64), code)
    assert_close(to_host(y), yr, dtype, scale=10)
    dout = _x(yr.shape, dtype)
    for need in [(True, True, True), (False, True, False), (True, False, True), (False, False, True)]:
        got = K.linear_act_bwd(to_dev(dout, device), y, to_dev(x, device), to_dev(w, device), code, *need)
        want = ref.linear_act_bwd(dout.astype(f64), to_host(y).astype(f64), x.astype(f64), w.astype(f64), code)
        for name, a, e, nd in zip(("dx", "dw", "db"), got, want, need):
            if nd:
                assert_close(to_host(a), e, dtype, scale=30, err_msg=name)
            else:
                assert a is None, f"{name} computed though not needed"
    yn = K.linear_act_fwd(to_dev(x, device), to_dev(w, device), None, code)
    assert_close(to_host(yn), ref.linear_act_fwd(x.astype(f64), w.astype(f64), None, code), dtype, scale=10)


@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("case", range(len(CONV)))
def test_cpu_conv2d_act_is_bitwise_the_unfused_ops(act, case):
    """The activation runs in the conv kernels' epilogue with the activation kernels' own loops: the same bits."""
    xs, ws, s, p, d, g = CONV[case]
    x, w, b = _x(xs, f32), _x(ws, f32), _x(ws[:1], f32)
    K = kernels_on("cpu")
    fused = K.conv2d_act_fwd(x, w, b, s, p, d, g, ACTIVATIONS[act])
    unfused = getattr(K, f"{act}_fwd")(K.conv2d_fwd(x, w, b, s, p, d, g))
    assert np.array_equal(fused, unfused)


@pytest.mark.parametrize(*on_devices("act,dtype", cases(ACTS, [f32, f64]), [("relu", f32), ("tanh", f64)]))
def test_engine_ops_match_unfused(device, act, dtype):
    """F.conv2d_act / F.linear_act: the unfused ops' output (bit for bit on the CPU) and gradients."""
    for fused, unfused, inputs in [
            (lambda x, w, b: F.conv2d_act(x, w, b, padding=1, activation=act),
             lambda x, w, b: getattr(F, act)(F.conv2d(x, w, b, padding=1)),
             [_x((2, 2, 6, 6), dtype), _x((3, 2, 3, 3), dtype), _x((3,), dtype)]),
            (lambda x, w, b: F.conv2d_act(x, w, b, stride=2, activation=act),      # unbatched (C, H, W) input
             lambda x, w, b: getattr(F, act)(F.conv2d(x, w, b, stride=2)),
             [_x((2, 5, 5), dtype), _x((3, 2, 3, 3), dtype), _x((3,), dtype)]),
            (lambda x, w, b: F.linear_act(x, w, b, activation=act),
             lambda x, w, b: getattr(F, act)(F.linear(x, w, b)),
             [_x((2, 5, 6), dtype), _x((3, 6), dtype), _x((3,), dtype)])]:
        outs, grads = [], []
        for fn in (fused, unfused):
            ts = [engine.tensor(a, requires_grad=True, device=device) for a in inputs]
            y = fn(*ts)
            y.backward(engine.tensor(np.cos(np.arange(y.numel()).reshape(y.shape)).astype(dtype), device=device))
            outs.append(y.numpy())
            grads.append([t.grad.numpy() for t in ts])
        assert outs[0].dtype == dtype and outs[0].shape == outs[1].shape
        if device == "cpu":
            assert np.array_equal(outs[0], outs[1])
        else:
            assert_close(outs[0], outs[1], dtype)
        for a, e in zip(*grads):
            assert_close(a, e, dtype, scale=10)


@pytest.mark.parametrize("act", ACTS)
def test_engine_grads_match_finite_differences(act):
    check_engine_grad(lambda x, w, b: F.conv2d_act(x, w, b, padding=1, activation=act),
                      [_x((2, 2, 5, 5), f64), _x((3, 2, 3, 3), f64), _x((3,), f64)])
    check_engine_grad(lambda x, w, b: F.linear_act(x, w, b, activation=act),
                      [_x((4, 6), f64), _x((5, 6), f64), _x((5,), f64)])
    check_engine_grad(lambda x, w: F.linear_act(x, w, activation=act), [_x((4, 6), f64), _x((5, 6), f64)])


def test_gradient_only_for_what_requires_it():
    x = engine.tensor(_x((3, 2, 6, 6), f32))
    w = engine.tensor(_x((4, 2, 3, 3), f32), requires_grad=True)
    F.conv2d_act(x, w, None, activation="relu").sum().backward()
    assert x.grad is None and w.grad is not None and w.grad.shape == (4, 2, 3, 3)


def _lenet_like():
    return nn.Sequential(nn.Conv2d(1, 4, 5, padding=2), nn.Sigmoid(), nn.AvgPool2d(2, 2),
                         nn.LazyConv2d(6, 3), nn.ReLU(), nn.Flatten(),
                         nn.LazyLinear(20), nn.Tanh(), nn.Linear(20, 16), nn.ReLU(), nn.Linear(16, 10))


def test_sequential_fuses_and_matches_unfused():
    """A Sequential runs Conv2d/Linear + activation pairs fused: the same loss and gradients as unfused,
    step after step (lazy layers fuse once materialized)."""
    engine.manual_seed(0)
    net = _lenet_like()
    x = engine.tensor(_x((8, 1, 12, 12), f32))
    target = engine.tensor(rng.integers(0, 10, 8))
    net(x)                                                   # materialize the lazy layers
    state = {k: v.numpy().copy() for k, v in net.state_dict().items()}
    runs = []
    for fuse in (True, False):
        net.load_state_dict(state)
        net.fuse = fuse
        opt = engine.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
        losses = []
        for _ in range(3):
            y = net(x)
            loss = F.cross_entropy(y, target)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        runs.append((losses, y, [p.grad.numpy().copy() for p in net.parameters()]))
    (l1, y1, g1), (l2, y2, g2) = runs
    np.testing.assert_allclose(l1, l2, rtol=1e-5)
    for a, e in zip(g1, g2):
        assert_close(a, e, f32, scale=100)


def test_sequential_fusion_is_recorded_on_the_tape():
    net = nn.Sequential(nn.Linear(4, 3), nn.ReLU())
    x = engine.tensor(_x((2, 4), f32))
    assert type(net(x)._ctx).__name__ == "LinearAct"
    net.fuse = False
    assert type(net(x)._ctx).__name__ == "Relu"
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Tanh())
    assert type(net(engine.tensor(_x((1, 1, 5, 5), f32)))._ctx).__name__ == "Conv2dAct"


def test_sequential_does_not_fuse_subclasses_or_replaced_forward():
    class Doubled(nn.ReLU):
        def forward(self, x):
            return F.relu(x) * 2

    x = engine.tensor(_x((2, 4), f32))
    lin = nn.Linear(4, 3)
    y = nn.Sequential(lin, Doubled())(x)
    np.testing.assert_array_equal(y.numpy(), 2 * np.maximum(F.linear(x, lin.weight, lin.bias).numpy(), 0))
    act = nn.ReLU()
    act.forward = lambda t: F.sigmoid(t)
    y = nn.Sequential(lin, act)(x)
    np.testing.assert_array_equal(y.numpy(), F.sigmoid(F.linear(x, lin.weight, lin.bias)).numpy())


def test_bad_arguments_name_the_argument():
    x, w = engine.tensor(_x((2, 3, 5, 5), f32)), engine.tensor(_x((4, 3, 3, 3), f32))
    with pytest.raises(ValueError, match="activation"):
        F.conv2d_act(x, w, activation="gelu")
    with pytest.raises(ValueError, match="activation"):
        F.linear_act(engine.tensor(_x((2, 3), f32)), engine.tensor(_x((4, 3), f32)), activation=None)
    with pytest.raises(ValueError, match="input"):
        F.conv2d_act(engine.tensor(_x((2, 2, 5, 5), f32)), w)
    with pytest.raises(ValueError, match="input"):
        F.linear_act(engine.tensor(_x((2, 5), f32)), engine.tensor(_x((4, 3), f32)))
    with pytest.raises(TypeError, match="weight"):
        F.linear_act(engine.tensor(_x((2, 3), f32)), engine.tensor(_x((4, 3), f64)))
    with pytest.raises(ValueError, match="bias"):
        F.conv2d_act(x, w, engine.tensor(_x((3,), f32)))


def test_nonfinite_and_empty():
    """Huge pre-activations stay finite through sigmoid and tanh; NaN propagates as in the unfused ops; a
    batch of zero rows gives zero rows."""
    x = engine.tensor(np.array([[1e30, -1e30, np.nan]], f32))
    w = engine.tensor(np.eye(3, dtype=f32))
    for act in ACTS:
        got, want = F.linear_act(x, w, activation=act).numpy(), getattr(F, act)(F.linear(x, w)).numpy()
        np.testing.assert_array_equal(got, want)
    y = F.linear_act(engine.tensor(np.zeros((0, 3), f32), requires_grad=True), w, activation="tanh")
    assert y.shape == (0, 3)


# ---- batch norm folded into the layer before it, for inference (nn.utils.fusion) ---------------------------
def _trained_bn(bn, x):
    """bn with running statistics away from (0, 1) and a non-trivial affine map; then eval mode."""
    for _ in range(3):
        bn(x)
    if bn.weight is not None:
        bn.weight._data[...] = rng.uniform(0.5, 2.0, bn.weight.shape)
        bn.bias._data[...] = rng.standard_normal(bn.bias.shape)
    return bn.eval()


@pytest.mark.parametrize("conv_bias,affine", [(True, True), (False, True), (True, False)])
def test_fuse_conv_bn_eval_matches_conv_then_bn(dtype, conv_bias, affine):
    from engine.nn.utils.fusion import fuse_conv_bn_eval
    conv = nn.Conv2d(3, 5, 3, stride=2, padding=1, bias=conv_bias, dtype=dtype).eval()
    x = engine.tensor(_x((4, 3, 9, 9), dtype) * 3 + 1)
    bn = _trained_bn(nn.BatchNorm2d(5, affine=affine, dtype=dtype), conv(x))
    fused = fuse_conv_bn_eval(conv, bn)
    assert type(fused) is nn.Conv2d and not fused.training and fused.bias is not None
    assert fused.weight.dtype == dtype and fused is not conv
    with engine.no_grad():
        assert_close(fused(x).numpy(), bn(conv(x)).numpy(), dtype, scale=10)
    assert conv.bias is None or conv.bias.shape == (5,)          # the originals are left as they were
    assert (conv.bias is not None) == conv_bias


def test_fuse_linear_bn_eval_matches_linear_then_bn(dtype):
    from engine.nn.utils.fusion import fuse_linear_bn_eval
    lin = nn.Linear(6, 4, dtype=dtype).eval()
    x = engine.tensor(_x((16, 6), dtype) * 2 - 1)
    bn = _trained_bn(nn.BatchNorm1d(4, dtype=dtype), lin(x))
    with engine.no_grad():
        assert_close(fuse_linear_bn_eval(lin, bn)(x).numpy(), bn(lin(x)).numpy(), dtype, scale=10)


def test_fusion_refuses_what_it_cannot_fold():
    from engine.nn.utils.fusion import fuse_conv_bn_eval, fuse_conv_bn_weights
    conv, bn = nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3)
    with pytest.raises(ValueError, match="eval"):
        fuse_conv_bn_eval(conv, bn)                              # training mode: batch statistics
    with pytest.raises(TypeError, match="bn"):
        fuse_conv_bn_eval(conv.eval(), nn.BatchNorm1d(3).eval())
    with pytest.raises(ValueError, match="running"):
        fuse_conv_bn_eval(conv.eval(), nn.BatchNorm2d(3, track_running_stats=False).eval())
    with pytest.raises(ValueError, match="bn_rm"):
        fuse_conv_bn_weights(conv.weight, conv.bias, engine.zeros(4), engine.ones(3), 1e-5, None, None)
    with pytest.raises(ValueError, match="transpose"):
        fuse_conv_bn_weights(conv.weight, conv.bias, engine.zeros(3), engine.ones(3), 1e-5, None, None, True)


def test_sequential_folds_batch_norm_for_inference_only():
    engine.manual_seed(1)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                        nn.Conv2d(8, 4, 3, bias=False), nn.BatchNorm2d(4), nn.MaxPool2d(2))
    x = engine.tensor(_x((4, 3, 10, 10), f32))
    for _ in range(3):
        net(x)                                                   # training steps move the running statistics
    net.eval()
    with engine.no_grad():
        folded = net(x).numpy()
        net.fuse = False
        unfused = net(x).numpy()
        net.fuse = True
    assert_close(folded, unfused, f32, scale=10)
    y = net(x)                                                   # recording for backward: no folding
    np.testing.assert_array_equal(y.numpy(), unfused)
    y.sum().backward()
    assert net[0].weight.grad is not None and net[1].weight.grad is not None
