"""Pool family: max_pool2d, avg_pool2d, adaptive_avg_pool2d (reference, both backends' kernels, engine ops on
each device). Determinism: tests/test_determinism.py."""
import numpy as np
import pytest

import engine
import kernels.reference.pool as R
import engine.functional as F
from engine.tensor import Tensor
from conftest import DTYPES, assert_close, cases, check_backward_fd, kernels_on, noncontig, on_devices, to_dev, to_host

f32, f64 = np.float32, np.float64

# (H, W, kernel, stride, padding, ceil_mode): odd sizes, tiling / overlapping / gapped windows,
# padding, ceil overhang, windows larger than the input along one axis, the literal fast paths.
CONFIGS = [
    (6, 8, (2, 2), (2, 2), (0, 0), False),
    (7, 9, (2, 2), (2, 2), (0, 0), True),
    (7, 9, (2, 2), (2, 2), (1, 1), True),
    (9, 11, (3, 3), (2, 2), (1, 1), False),
    (8, 8, (3, 3), (2, 2), (1, 1), True),
    (7, 6, (3, 3), (1, 1), (1, 1), False),
    (5, 7, (3, 3), (1, 1), (0, 1), True),
    (10, 7, (3, 2), (2, 3), (1, 1), True),
    (5, 13, (1, 3), (1, 2), (0, 1), False),
    (11, 5, (4, 4), (3, 3), (2, 2), True),
    (3, 9, (5, 3), (1, 4), (2, 0), True),
    (4, 4, (1, 1), (1, 1), (0, 0), False),
    (9, 6, (2, 3), (3, 1), (1, 0), True),
]
IDS = [f"{h}x{w}-k{k[0]}{k[1]}-s{s[0]}{s[1]}-p{p[0]}{p[1]}{'-ceil' if c else ''}" for h, w, k, s, p, c in CONFIGS]
# a cuda subset where a test loops over configs: tiling, overlap with padding, ceil overhang, a wide window, gaps
CUDA_CONFIGS = [CONFIGS[i] for i in (0, 4, 7, 10, 12)]
ADAPTIVE = [((7, 9), (1, 1)), ((7, 9), (3, 4)), ((5, 5), (5, 5)), ((4, 6), (7, 2)), ((13, 8), (4, 3)), ((1, 1), (2, 2))]


def distinct(shape, rng, dtype=np.float64):
    """Values spaced >= 0.01 apart (a shuffled ramp): no max-pool ties, no kinks within FD steps."""
    n = int(np.prod(shape))
    return (rng.permutation(n).reshape(shape) * 0.01 - n * 0.005).astype(dtype)


def ties(shape, rng, dtype=np.float64):
    """Small integers: many equal values in each window (PyTorch: the first max wins)."""
    return rng.integers(-2, 3, shape).astype(dtype)


# ------------------------------------------------------------------- reference vs finite differences
@pytest.mark.parametrize("cfg", CONFIGS[:8], ids=IDS[:8])
def test_reference_max_backward_fd(cfg):
    H, W, k, s, p, c = cfg
    x = distinct((2, 2, H, W), np.random.default_rng(1))
    _, am = R.max_pool2d_fwd(x, k, s, p, c)
    check_backward_fd(lambda x: R.max_pool2d_fwd(x, k, s, p, c)[0],
                      lambda d, x: R.max_pool2d_bwd(d, am, x.shape, k, s, p, c), [x], eps=1e-4)


@pytest.mark.parametrize("cip", [True, False])
@pytest.mark.parametrize("cfg", CONFIGS, ids=IDS)
def test_reference_avg_backward_fd(cfg, cip):
    H, W, k, s, p, c = cfg
    x = np.random.default_rng(2).standard_normal((2, 2, H, W))
    check_backward_fd(lambda x: R.avg_pool2d_fwd(x, k, s, p, c, cip),
                      lambda d, x: R.avg_pool2d_bwd(d, x.shape, k, s, p, c, cip), [x])


@pytest.mark.parametrize("hw,out", ADAPTIVE)
def test_reference_adaptive_backward_fd(hw, out):
    x = np.random.default_rng(3).standard_normal((2, 2) + hw)
    check_backward_fd(lambda x: R.adaptive_avg_pool2d_fwd(x, out),
                      lambda d, x: R.adaptive_avg_pool2d_bwd(d, x.shape), [x])


# ------------------------------------------------------------------------------ kernels vs reference
@pytest.mark.parametrize(*on_devices("cfg,dtype", cases(CONFIGS, DTYPES),
                                     [(c, DTYPES[i % 2]) for i, c in enumerate(CONFIGS)]))
def test_max_pool_kernels(device, cfg, dtype):
    K = kernels_on(device)
    H, W, k, s, p, c = cfg
    rng = np.random.default_rng(4)
    for x in (distinct((2, 3, H, W), rng, dtype), ties((2, 3, H, W), rng, dtype)):
        out, am = K.max_pool2d_fwd(noncontig(x, device), k, s, p, c)
        rout, ram = R.max_pool2d_fwd(x, k, s, p, c)
        assert out.dtype == dtype and am.dtype == np.int32
        np.testing.assert_array_equal(to_host(out), rout)        # max is exact
        np.testing.assert_array_equal(to_host(am), ram)          # same tie rule as the reference (PyTorch's)
        d = rng.standard_normal(out.shape).astype(dtype)
        dx = to_host(K.max_pool2d_bwd(noncontig(d, device), am, x.shape, k, s, p, c))
        assert dx.dtype == dtype
        assert_close(dx, R.max_pool2d_bwd(d, ram, x.shape, k, s, p, c), dtype)


@pytest.mark.parametrize(*on_devices("dtype", DTYPES, [f32]))
def test_max_pool_nan_and_inf(device, dtype):
    """NaN propagates (PyTorch: the last NaN in the window is the argmax); an all -inf window
    points at its first in-image element, never at padding."""
    K = kernels_on(device)
    rng = np.random.default_rng(5)
    for H, W, k, s, p, c in (CONFIGS if device == "cpu" else CUDA_CONFIGS):
        x = ties((2, 2, H, W), rng, dtype)
        x[0, 0] = -np.inf
        x[0, 1, ::2, 1::3] = np.nan
        x[1, 0, H // 2, :] = np.nan
        x[1, 1, :, 0] = -np.inf
        out, am = to_host(K.max_pool2d_fwd(to_dev(x, device), k, s, p, c))
        rout, ram = R.max_pool2d_fwd(x, k, s, p, c)
        np.testing.assert_array_equal(out, rout)
        np.testing.assert_array_equal(am, ram)


@pytest.mark.parametrize(*on_devices("cfg,cip,dtype", cases(CONFIGS, [True, False], DTYPES),
                                     [(c, i % 2 == 0, DTYPES[i // 2 % 2]) for i, c in enumerate(CONFIGS)]))
def test_avg_pool_kernels(device, cfg, cip, dtype):
    K = kernels_on(device)
    H, W, k, s, p, c = cfg
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 3, H, W)).astype(dtype)
    out = K.avg_pool2d_fwd(noncontig(x, device), k, s, p, c, cip)
    assert out.dtype == dtype
    assert_close(to_host(out), R.avg_pool2d_fwd(x, k, s, p, c, cip), dtype)
    d = rng.standard_normal(out.shape).astype(dtype)
    dx = to_host(K.avg_pool2d_bwd(noncontig(d, device), x.shape, k, s, p, c, cip))
    assert dx.dtype == dtype
    assert_close(dx, R.avg_pool2d_bwd(d, x.shape, k, s, p, c, cip), dtype)


@pytest.mark.parametrize(*on_devices("hw,out,dtype", [(hw, o, d) for (hw, o), d in
                                           cases(ADAPTIVE + [((16, 16), (1, 1)), ((33, 31), (1, 1))], DTYPES)],
                                     [(hw, o, DTYPES[i % 2]) for i, (hw, o) in enumerate(ADAPTIVE)]))
def test_adaptive_avg_pool_kernels(device, hw, out, dtype):
    K = kernels_on(device)
    rng = np.random.default_rng(7)
    x = (rng.standard_normal((2, 3) + hw) + 3.0).astype(dtype)      # a mean far from 0
    y = K.adaptive_avg_pool2d_fwd(noncontig(x, device), out)
    assert y.dtype == dtype
    assert_close(to_host(y), R.adaptive_avg_pool2d_fwd(x, out), dtype)
    d = rng.standard_normal(y.shape).astype(dtype)
    dx = to_host(K.adaptive_avg_pool2d_bwd(noncontig(d, device), x.shape))
    assert dx.dtype == dtype
    assert_close(dx, R.adaptive_avg_pool2d_bwd(d, x.shape), dtype)


def test_cpu_global_average_long_plane():
    """Output size 1 on a 300x300 float32 plane of mean 1000: block sums keep the error tiny."""
    x = (np.random.default_rng(8).standard_normal((1, 2, 300, 300)) + 1000.0).astype(np.float32)
    y = kernels_on("cpu").adaptive_avg_pool2d_fwd(x, (1, 1))
    np.testing.assert_allclose(y[..., 0, 0], x.astype(np.float64).mean(axis=(2, 3)), rtol=1e-6)


def test_empty_batch(device):
    K = kernels_on(device)
    x = to_dev(np.zeros((0, 3, 6, 6), np.float32), device)
    out, am = K.max_pool2d_fwd(x, (2, 2), (2, 2), (0, 0), False)
    assert out.shape == am.shape == (0, 3, 3, 3)
    assert to_host(K.max_pool2d_bwd(out, am, x.shape, (2, 2), (2, 2), (0, 0), False)).shape == x.shape
    assert to_host(K.avg_pool2d_fwd(x, (3, 3), (1, 1), (1, 1), False, True)).shape == x.shape
    assert to_host(K.adaptive_avg_pool2d_fwd(x, (1, 1))).shape == (0, 3, 1, 1)


# ---------------------------------------------------------------------------------- book vectors
def test_book_vectors():
    x = Tensor(np.arange(9, dtype=np.float32).reshape(1, 1, 3, 3))
    np.testing.assert_array_equal(F.max_pool2d(x, 2, stride=1).numpy()[0, 0], [[4, 5], [7, 8]])
    np.testing.assert_array_equal(F.avg_pool2d(x, 2, stride=1).numpy()[0, 0], [[2, 3], [5, 6]])
    x = Tensor(np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4))
    np.testing.assert_array_equal(F.max_pool2d(x, 3, padding=1, stride=2).numpy()[0, 0], [[5, 7], [13, 15]])


# ----------------------------------------------------------------------------------- bad inputs
def _x(shape=(1, 2, 6, 6), dtype=np.float32):
    return Tensor(np.zeros(shape, dtype))


BAD = [
    (lambda: F.max_pool2d(np.zeros((1, 1, 4, 4)), 2), TypeError, "input"),
    (lambda: F.max_pool2d(_x(dtype=np.int32), 2), TypeError, "input"),
    (lambda: F.avg_pool2d(_x(dtype=np.float16), 2), TypeError, "input"),
    (lambda: F.max_pool2d(_x((6, 6)), 2), ValueError, "input"),
    (lambda: F.avg_pool2d(_x((1, 1, 1, 6, 6)), 2), ValueError, "input"),
    (lambda: F.max_pool2d(_x((1, 0, 6, 6)), 2), ValueError, "input"),
    (lambda: F.adaptive_avg_pool2d(_x((2, 6)), 1), ValueError, "input"),
    (lambda: F.max_pool2d(_x(), 0), ValueError, "kernel_size"),
    (lambda: F.avg_pool2d(_x(), (2, -1)), ValueError, "kernel_size"),
    (lambda: F.max_pool2d(_x(), 2.0), TypeError, "kernel_size"),
    (lambda: F.max_pool2d(_x(), (2, 2, 2)), TypeError, "kernel_size"),
    (lambda: F.max_pool2d(_x(), "2"), TypeError, "kernel_size"),
    (lambda: F.max_pool2d(_x(), True), TypeError, "kernel_size"),
    (lambda: F.max_pool2d(_x(), 2, stride=0), ValueError, "stride"),
    (lambda: F.avg_pool2d(_x(), 2, stride=(1, -2)), ValueError, "stride"),
    (lambda: F.max_pool2d(_x(), 2, stride=1.5), TypeError, "stride"),
    (lambda: F.max_pool2d(_x(), 3, padding=-1), ValueError, "padding"),
    (lambda: F.max_pool2d(_x(), 3, padding=2), ValueError, "padding"),
    (lambda: F.avg_pool2d(_x(), (3, 2), padding=(1, 2)), ValueError, "padding"),
    (lambda: F.avg_pool2d(_x(), 2, padding=None), TypeError, "padding"),
    (lambda: F.max_pool2d(_x(), 7), ValueError, "kernel_size"),                      # output size 0
    (lambda: F.avg_pool2d(_x((1, 1, 2, 9)), 5, padding=1, stride=5), ValueError, "kernel_size"),
    (lambda: F.max_pool2d(_x(), 2, ceil_mode="yes"), TypeError, "ceil_mode"),
    (lambda: F.max_pool2d(_x(), 2, 2, 0, 2), ValueError, "dilation"),             # PyTorch's positional order
    (lambda: F.max_pool2d(_x(), 2, return_indices=True), ValueError, "return_indices"),
    (lambda: F.avg_pool2d(_x(), 2, count_include_pad=1), TypeError, "count_include_pad"),
    (lambda: F.adaptive_avg_pool2d(_x(), 0), ValueError, "output_size"),
    (lambda: F.adaptive_avg_pool2d(_x(), (2, -1)), ValueError, "output_size"),
    (lambda: F.adaptive_avg_pool2d(_x(), 1.5), TypeError, "output_size"),
    (lambda: F.adaptive_avg_pool2d(_x(), (2, 2.0)), TypeError, "output_size"),
    (lambda: F.adaptive_avg_pool2d(_x(), None), TypeError, "output_size"),
    (lambda: F.adaptive_avg_pool2d(_x(), (1, 2, 3)), TypeError, "output_size"),
]


@pytest.mark.parametrize("case", range(len(BAD)))
def test_bad_inputs(case):
    fn, exc, name = BAD[case]
    with pytest.raises(exc, match=name):
        fn()


# ------------------------------------------------------------------------------------- engine level
@pytest.mark.parametrize(*on_devices("cfg", CONFIGS[:7], [CONFIGS[2], CONFIGS[5]]))
def test_engine_matches_reference(device, cfg):
    H, W, k, s, p, c = cfg
    rng = np.random.default_rng(11)
    x = distinct((2, 3, H, W), rng)
    for op, ref_f, ref_b in [
        (lambda t: F.max_pool2d(t, k, s, p, ceil_mode=c), lambda a: R.max_pool2d_fwd(a, k, s, p, c)[0],
         lambda d, a: R.max_pool2d_bwd(d, R.max_pool2d_fwd(a, k, s, p, c)[1], a.shape, k, s, p, c)),
        (lambda t: F.avg_pool2d(t, k, s, p, c, False), lambda a: R.avg_pool2d_fwd(a, k, s, p, c, False),
         lambda d, a: R.avg_pool2d_bwd(d, a.shape, k, s, p, c, False)),
        (lambda t: F.adaptive_avg_pool2d(t, (2, 3)), lambda a: R.adaptive_avg_pool2d_fwd(a, (2, 3)),
         lambda d, a: R.adaptive_avg_pool2d_bwd(d, a.shape)),
    ]:
        t = engine.tensor(x, requires_grad=True, device=device)
        y = op(t)
        assert y.device == device
        assert_close(y.numpy(), ref_f(x), np.float64)
        d = rng.standard_normal(y.shape)
        y.backward(engine.tensor(d, device=device))
        assert_close(t.grad.numpy(), ref_b(d, x), np.float64)


def test_engine_unbatched_and_no_grad(device):
    x = np.random.default_rng(12).standard_normal((3, 7, 5))
    t = engine.tensor(x, requires_grad=True, device=device)
    y = F.max_pool2d(t, 3, 2, 1, ceil_mode=True)
    assert y.shape == (3, 4, 3)
    y.backward(engine.ones(*y.shape, dtype=np.float64, device=device))
    assert t.grad.shape == x.shape and t.grad.device == device
    t = engine.tensor(x, device=device)
    assert F.avg_pool2d(t, (2, 3)).shape == (3, 3, 1)
    assert F.adaptive_avg_pool2d(t, (None, 2)).shape == (3, 7, 2)
    assert not F.max_pool2d(t, 2).requires_grad


def _torch_cases():
    cases = []
    for H, W, k, s, p, c in CONFIGS:
        cases.append(("max", (H, W), dict(kernel_size=k, stride=s, padding=p, ceil_mode=c)))
        for cip in (True, False):
            cases.append(("avg", (H, W), dict(kernel_size=k, stride=s, padding=p, ceil_mode=c, count_include_pad=cip)))
    cases.append(("max", (6, 6), dict(kernel_size=2)))                       # stride defaults to kernel
    cases.append(("avg", (7, 5), dict(kernel_size=(3, 2), ceil_mode=True)))
    for hw, o in ADAPTIVE + [((7, 9), 3), ((7, 9), (None, 4)), ((7, 9), (2, None))]:
        cases.append(("adaptive", hw, dict(output_size=o)))
    return cases


@pytest.mark.parametrize("unbatched", [False, True])
def test_engine_matches_torch(unbatched):
    torch = pytest.importorskip("torch")
    tf = torch.nn.functional
    rng = np.random.default_rng(13)
    for kind, hw, kw in _torch_cases():
        shape = ((3,) if unbatched else (2, 3)) + hw
        x = ties(shape, rng) + 0.25 * rng.integers(0, 2, shape)       # ties: the index rule matters
        ours = {"max": F.max_pool2d, "avg": F.avg_pool2d, "adaptive": F.adaptive_avg_pool2d}[kind]
        theirs = {"max": tf.max_pool2d, "avg": tf.avg_pool2d, "adaptive": tf.adaptive_avg_pool2d}[kind]
        t = Tensor(x.copy(), requires_grad=True)
        tt = torch.tensor(x, requires_grad=True)
        y, yt = ours(t, **kw), theirs(tt, **kw)
        assert y.shape == tuple(yt.shape), (kind, hw, kw)
        np.testing.assert_allclose(y.numpy(), yt.detach().numpy(), rtol=1e-12, atol=1e-12, err_msg=f"{kind} {hw} {kw}")
        d = rng.standard_normal(y.shape)
        y.backward(d)
        yt.backward(torch.tensor(d))
        np.testing.assert_allclose(t.grad.numpy(), tt.grad.numpy(), rtol=1e-12, atol=1e-12, err_msg=f"{kind} {hw} {kw}")


def test_max_pool_indices_match_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(14)
    for H, W, k, s, p, c in CONFIGS:
        x = ties((2, 3, H, W), rng, np.float32)
        x[0, 0, 1, :] = np.nan
        _, am = kernels_on("cpu").max_pool2d_fwd(x, k, s, p, c)
        _, idx = torch.nn.functional.max_pool2d(torch.tensor(x), k, s, p, ceil_mode=c, return_indices=True)
        np.testing.assert_array_equal(am, idx.numpy(), err_msg=f"{(H, W, k, s, p, c)}")
