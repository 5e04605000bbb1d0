"""conv2d: reference against finite differences, the three CPU paths (outer product, direct, implicit GEMM) and the CUDA kernels
against the reference, the book's vectors, argument checks, and the engine op (on each device) against the
tape and PyTorch. Determinism: tests/test_determinism.py."""
import warnings

import numpy as np
import pytest

import engine
import engine.functional as F
import kernels.cpu.conv as cpu_conv
import kernels.reference as ref
from conftest import (DTYPES, assert_close, cases, check_backward_fd, check_engine_grad, kernels_on, noncontig,
                      on_devices, to_dev, to_host)

rng = np.random.default_rng(0)

# (N, C, H, W, K, kh, kw, stride, padding (t, b, l, r), dilation, groups)
CONFIGS = [
    (2, 3, 7, 9, 4, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), 1),       # 'same'-like, odd sizes
    (3, 1, 11, 13, 6, 5, 5, (1, 1), (2, 2, 2, 2), (1, 1), 1),     # LeNet-like, one input channel
    (2, 4, 7, 9, 6, 3, 2, (2, 1), (1, 0, 2, 1), (1, 2), 2),       # asymmetric padding, groups, dilation
    (2, 2, 8, 8, 4, 3, 5, (3, 2), (0, 0, 1, 1), (2, 1), 1),
    (1, 20, 5, 6, 9, 1, 1, (1, 1), (0, 0, 0, 0), (1, 1), 1),      # 1x1
    (2, 12, 10, 9, 16, 3, 3, (1, 1), (3, 3, 3, 3), (1, 2), 1),    # padding larger than the dilated reach
    (2, 8, 6, 6, 8, 3, 3, (1, 1), (0, 1, 1, 0), (2, 2), 8),       # depthwise
    (2, 16, 9, 7, 10, 3, 3, (2, 2), (1, 2, 0, 1), (1, 1), 2),
    (1, 3, 4, 5, 5, 4, 5, (1, 1), (0, 0, 0, 0), (1, 1), 1),       # kernel as large as the input
    (5, 7, 3, 3, 7, 2, 2, (1, 1), (1, 1, 1, 1), (1, 1), 1),
]
IDS = [f"cfg{i}" for i in range(len(CONFIGS))]


def make(cfg, dtype=np.float64, bias=True):
    N, C, H, W, K, kh, kw, s, p, d, g = cfg
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    w = rng.standard_normal((K, C // g, kh, kw)).astype(dtype)
    b = rng.standard_normal(K).astype(dtype) if bias else None
    return x, w, b, (s, p, d, g)


def kernels_on_path(device, path, monkeypatch):
    """The device's conv kernels; on the CPU forced onto one path ("outer" and "direct" exist for stride 1 only,
    forward and dx; "gemm"); the CUDA kernels have one path ("any")."""
    if path in ("gemm", "direct"):
        monkeypatch.setattr(cpu_conv, "_use_outer", lambda *a: False)
    if path == "gemm":
        monkeypatch.setattr(cpu_conv, "_use_direct", lambda *a: False)
        monkeypatch.setattr(cpu_conv, "_use_phase_dx", lambda *a: False)
    elif path == "direct":
        monkeypatch.setattr(cpu_conv, "_use_direct", lambda stride, *a: tuple(stride) == (1, 1))
    elif path == "outer":
        monkeypatch.setattr(cpu_conv, "_use_outer", lambda stride, *a: tuple(stride) == (1, 1))
    return kernels_on(device)


# the cuda half, small (the simulator runs each GPU thread in Python): 'same'-like, groups with asymmetric
# padding and dilation, a kernel as large as the input, 1x1 with stride (gaps in dx), reductions past one
# 16-wide tile (C*kh*kw and K), LeNet's first layer; both dtypes
CUDA_CONFIGS = [CONFIGS[0], CONFIGS[2], CONFIGS[8], (1, 2, 6, 7, 5, 1, 1, (2, 3), (0, 0, 0, 0), (1, 1), 1),
                (1, 17, 4, 4, 18, 2, 2, (1, 1), (0, 0, 0, 0), (1, 1), 1),
                (2, 1, 5, 5, 3, 5, 5, (1, 1), (2, 2, 2, 2), (1, 1), 1)]
CUDA_CASES = [("any", c, DTYPES[n % 2]) for n, c in enumerate(CUDA_CONFIGS)]


@pytest.mark.parametrize("cfg", CONFIGS[:4] + CONFIGS[6:8], ids=IDS[:4] + IDS[6:8])
def test_reference_backward_matches_finite_differences(cfg):
    x, w, b, conf = make(cfg)
    check_backward_fd(lambda x, w, b: ref.conv2d_fwd(x, w, b, *conf),
                      lambda dout, x, w, b: ref.conv2d_bwd(dout, x, w, *conf), [x, w, b])


def test_reference_matches_torch():
    torch = pytest.importorskip("torch")
    for cfg in CONFIGS:
        x, w, b, (s, p, d, g) = make(cfg)
        xp = np.pad(x, ((0, 0), (0, 0), p[:2], p[2:]))
        want = torch.nn.functional.conv2d(torch.tensor(xp), torch.tensor(w), torch.tensor(b), s, 0, d, g).numpy()
        np.testing.assert_allclose(ref.conv2d_fwd(x, w, b, s, p, d, g), want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(*on_devices("path,cfg,dtype", cases(["outer", "direct", "gemm"], CONFIGS, DTYPES), CUDA_CASES))
def test_kernels_match_reference(device, path, cfg, dtype, monkeypatch):
    K = kernels_on_path(device, path, monkeypatch)
    x, w, b, conf = make(cfg, dtype)
    want = ref.conv2d_fwd(x, w, b, *conf)
    y = to_host(K.conv2d_fwd(to_dev(x, device), to_dev(w, device), to_dev(b, device), *conf))
    assert y.dtype == dtype
    assert_close(y, want, dtype, scale=4)
    dout = rng.standard_normal(want.shape).astype(dtype)
    grads = to_host(K.conv2d_bwd(to_dev(dout, device), to_dev(x, device), to_dev(w, device), *conf))
    for got, exp, name in zip(grads, ref.conv2d_bwd(dout, x, w, *conf), ("dx", "dw", "db")):
        assert got.dtype == dtype
        assert_close(got, exp, dtype, scale=4, err_msg=name)


@pytest.mark.parametrize(*on_devices("path,dtype", cases(["outer", "direct", "gemm"], DTYPES), [("any", np.float32)]))
def test_kernels_noncontiguous_and_partial_grads(device, path, dtype, monkeypatch):
    K = kernels_on_path(device, path, monkeypatch)
    x, w, b, conf = make(CONFIGS[0] if path in ("direct", "outer") else CONFIGS[2], dtype)
    dev = lambda a: to_dev(a, device)                                           # noqa: E731
    nc = lambda a: noncontig(a, device)                                         # noqa: E731
    y = to_host(K.conv2d_fwd(dev(x), dev(w), dev(b), *conf))
    assert_close(to_host(K.conv2d_fwd(nc(x), nc(w), nc(b), *conf)), y, dtype)
    assert_close(to_host(K.conv2d_fwd(dev(x), dev(w), None, *conf)), ref.conv2d_fwd(x, w, None, *conf), dtype, scale=4)
    dout = rng.standard_normal(y.shape).astype(dtype)
    full = to_host(K.conv2d_bwd(dev(dout), dev(x), dev(w), *conf))
    for need in [(True, False, False), (False, True, False), (False, False, True), (False, True, True)]:
        got = to_host(K.conv2d_bwd(nc(dout), nc(x), nc(w), *conf, *need))
        for g, f, n in zip(got, full, need):
            assert (g is None) != n
            if n:
                assert_close(g, f, dtype)


@pytest.mark.parametrize("xs, ws, conf", [
    ((0, 3, 5, 5), (4, 3, 3, 3), ((1, 1), (1, 1, 1, 1), (1, 1), 1)),     # empty batch
    ((2, 0, 5, 5), (4, 0, 3, 3), ((2, 2), (1, 1, 1, 1), (1, 1), 1)),     # no input channels: y is the bias
    ((2, 3, 0, 5), (4, 3, 1, 1), ((1, 1), (1, 1, 0, 0), (1, 1), 1)),     # zero-height input, padding only
])
def test_kernels_empty_inputs(device, xs, ws, conf):
    K = kernels_on(device)
    x, w, b = np.zeros(xs, np.float32), np.ones(ws, np.float32), np.arange(ws[0], dtype=np.float32)
    y = to_host(K.conv2d_fwd(to_dev(x, device), to_dev(w, device), to_dev(b, device), *conf))
    np.testing.assert_array_equal(y, ref.conv2d_fwd(x, w, b, *conf))
    dout = np.ones_like(y)
    got = to_host(K.conv2d_bwd(to_dev(dout, device), to_dev(x, device), to_dev(w, device), *conf))
    for g, want in zip(got, ref.conv2d_bwd(dout, x, w, *conf)):
        np.testing.assert_array_equal(g, want)


def test_book_vectors():
    X = np.arange(9, dtype=np.float32).reshape(1, 1, 3, 3)
    K = np.array([[0, 1], [2, 3]], dtype=np.float32).reshape(1, 1, 2, 2)
    want = [[19, 25], [37, 43]]
    np.testing.assert_array_equal(F.conv2d(engine.tensor(X), engine.tensor(K)).numpy()[0, 0], want)
    X2 = np.stack([np.arange(9), np.arange(1, 10)]).reshape(1, 2, 3, 3).astype(np.float32)
    K2 = np.stack([np.arange(4), np.arange(1, 5)]).reshape(1, 2, 2, 2).astype(np.float32)
    np.testing.assert_array_equal(F.conv2d(engine.tensor(X2), engine.tensor(K2)).numpy()[0, 0],
                                  [[56, 72], [104, 120]])
    x8 = engine.tensor(np.zeros((1, 1, 8, 8)))
    for k, kw, want in [((3, 3), dict(padding=1), (8, 8)), ((5, 3), dict(padding=(2, 1)), (8, 8)),
                        ((3, 3), dict(padding=1, stride=2), (4, 4)),
                        ((3, 5), dict(padding=(0, 1), stride=(3, 4)), (2, 2))]:
        assert F.conv2d(x8, engine.tensor(np.zeros((1, 1) + k)), **kw).shape[2:] == want


def _t(*shape, dtype=np.float32):
    return engine.tensor(np.zeros(shape), dtype=dtype)


@pytest.mark.parametrize("kwargs, exc, name", [
    (dict(input=_t(3, 5)), ValueError, "input"),                            # 2-D input
    (dict(input=_t(1, 2, 3, 5, 5)), ValueError, "input"),                   # 5-D input
    (dict(weight=_t(4, 3, 3)), ValueError, "weight"),
    (dict(weight=_t(4, 2, 3, 3)), ValueError, "input"),                     # C_in mismatch
    (dict(weight=_t(4, 2, 3, 3), input=_t(2, 4, 6, 6), groups=3), ValueError, "groups"),   # 3 does not divide 4
    (dict(weight=_t(5, 2, 3, 3), input=_t(2, 4, 6, 6), groups=2), ValueError, "groups"),   # nor 5
    (dict(groups=0), ValueError, "groups"),
    (dict(groups=1.5), TypeError, "groups"),
    (dict(weight=_t(4, 3, 7, 3)), ValueError, "weight"),                    # kernel larger than padded input
    (dict(weight=_t(4, 3, 3, 3), dilation=4), ValueError, "weight"),        # dilated kernel too large
    (dict(padding=-1), ValueError, "padding"),
    (dict(padding=(1, 2, 3)), TypeError, "padding"),
    (dict(padding="full"), ValueError, "padding"),
    (dict(padding="same", stride=2), ValueError, "padding"),
    (dict(stride=0), ValueError, "stride"),
    (dict(stride=(1, -1)), ValueError, "stride"),
    (dict(dilation=0), ValueError, "dilation"),
    (dict(bias=_t(5)), ValueError, "bias"),
    (dict(bias=_t(4, 1)), ValueError, "bias"),
    (dict(input=engine.tensor(np.zeros((2, 3, 6, 6), np.int64))), TypeError, "input"),
    (dict(weight=_t(4, 3, 3, 3, dtype=np.float64)), TypeError, "weight"),   # dtype mismatch
    (dict(bias=_t(4, dtype=np.float64)), TypeError, "bias"),
    (dict(input=np.zeros((2, 3, 6, 6), np.float32)), TypeError, "input"),   # not a Tensor
])
def test_bad_arguments_are_rejected(kwargs, exc, name):
    args = dict(input=_t(2, 3, 6, 6), weight=_t(4, 3, 3, 3), bias=None)
    args.update(kwargs)
    with pytest.raises(exc, match=f"^{name}"):          # the message starts with the argument's name
        F.conv2d(**args)


TAPE_KW = [dict(), dict(stride=2, padding=1), dict(padding="same", dilation=(1, 2), groups=2),
           dict(padding="valid", stride=(1, 2), groups=2)]


@pytest.mark.parametrize(*on_devices("kw", TAPE_KW, TAPE_KW[1:3]))
def test_engine_conv2d_against_tape(device, kw):
    x = rng.standard_normal((2, 4, 6, 7))
    w = rng.standard_normal((4, 4 // kw.get("groups", 1), 3, 2))
    check_engine_grad(lambda x, w, b: F.conv2d(x, w, b, **kw), [x, w, rng.standard_normal(4)], device=device)


@pytest.mark.parametrize("kw", [dict(padding=1), dict(stride=(2, 1), padding=(0, 2), dilation=2, groups=3),
                                dict(padding="same", dilation=(2, 1)), dict(padding="same"), dict(padding="valid")])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("batched", [True, False])
def test_engine_conv2d_against_torch(kw, bias, batched):
    torch = pytest.importorskip("torch")
    shape = (2, 6, 9, 8) if batched else (6, 9, 8)
    x = rng.standard_normal(shape)
    w = rng.standard_normal((9, 6 // kw.get("groups", 1), 4, 3))    # even kernel height: 'same' pads unevenly
    b = rng.standard_normal(9) if bias else None
    ts = [engine.tensor(a, dtype=np.float64, requires_grad=True) if a is not None else None for a in (x, w, b)]
    qs = [torch.tensor(a, requires_grad=True) if a is not None else None for a in (x, w, b)]
    y = F.conv2d(*ts, **kw)
    with warnings.catch_warnings():              # PyTorch warns that 'same' with an even kernel copies the input
        warnings.simplefilter("ignore")
        qy = torch.nn.functional.conv2d(*qs, **kw)
    np.testing.assert_allclose(y.numpy(), qy.detach().numpy(), rtol=1e-10, atol=1e-10)
    dout = rng.standard_normal(y.shape)
    y.backward(engine.tensor(dout, dtype=np.float64))
    qy.backward(torch.tensor(dout))
    for t, q in zip(ts, qs):
        if t is not None:
            np.testing.assert_allclose(t.grad.numpy(), q.grad.numpy(), rtol=1e-10, atol=1e-10)


def test_engine_empty_batch(device):
    x = engine.tensor(np.zeros((0, 3, 5, 5)), requires_grad=True, device=device)
    w = engine.tensor(rng.standard_normal((4, 3, 3, 3)), requires_grad=True, device=device)
    y = F.conv2d(x, w, engine.tensor(np.ones(4), requires_grad=True, device=device), padding=1)
    assert y.shape == (0, 4, 5, 5)
    y.sum().backward()
    assert x.grad.shape == (0, 3, 5, 5) and not w.grad.numpy().any()


def test_engine_grads_only_where_needed(device):
    x = engine.tensor(rng.standard_normal((2, 3, 5, 5)), device=device)
    w = engine.tensor(rng.standard_normal((4, 3, 3, 3)), requires_grad=True, device=device)
    b = engine.tensor(rng.standard_normal(4), device=device)
    F.conv2d(x, w, b, padding=1).sum().backward()
    assert x.grad is None and b.grad is None and w.grad.shape == (4, 3, 3, 3)
    with engine.no_grad():
        assert not F.conv2d(x, w).requires_grad

