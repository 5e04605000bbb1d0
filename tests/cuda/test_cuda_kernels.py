"""kernels.cuda against the float64 references, forward and backward, on tiny shapes (the simulator runs
every CUDA thread as a Python thread), with the CPU tests' tolerance table. Edge cases as on the CPU:
huge logits, all -inf rows, rows with no valid key, ignored targets, label smoothing, empty arrays."""
import importlib
import pkgutil

import numpy as np
import pytest

from numba import config, cuda

import kernels.cuda
import kernels.reference as ref
from tests.conftest import DTYPES, assert_close

SIM = bool(config.ENABLE_CUDASIM)


def _gpu():
    if SIM:
        return False
    try:
        import cupy  # noqa: F401
        return cuda.is_available()
    except Exception:
        return False


GPU = _gpu()
pytestmark = [pytest.mark.timeout(300),
              pytest.mark.skipif(not (SIM or GPU), reason="needs NUMBA_ENABLE_CUDASIM=1 before numba is imported "
                                                          "(make test runs this file so) or a GPU with CuPy")]


@pytest.fixture
def to_dev():
    """Host array -> what the CUDA kernels take: CuPy on a GPU, the NumPy array itself under the simulator."""
    if GPU:
        import cupy
        return cupy.asarray
    return np.asarray


@pytest.fixture
def to_host():
    if GPU:
        import cupy
        return cupy.asnumpy
    return np.asarray


def test_cuda_modules_mirror_the_reference_name_for_name():
    for m in pkgutil.iter_modules(kernels.cuda.__path__):
        if m.name.startswith("_"):
            continue
        cu = importlib.import_module(f"kernels.cuda.{m.name}")
        rf = importlib.import_module(f"kernels.reference.{m.name}")
        assert set(cu.__all__) == set(rf.__all__), m.name
        assert set(cu.__all__) <= set(dir(kernels.cuda))


SHAPES = [(1, 1), (3, 7), (2, 130), (5, 33)]       # 130 > 128 threads: a row spans two block strides


def _rows(shape, dtype, rng, scale=3.0):
    return (rng.standard_normal(shape) * scale).astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_softmax_family(op, shape, dtype, to_dev, to_host):
    rng = np.random.default_rng(hash((op, shape)) % 2**32)
    x = _rows(shape, dtype, rng)
    fwd, bwd = getattr(kernels.cuda, f"{op}_fwd"), getattr(kernels.cuda, f"{op}_bwd")
    y = to_host(fwd(to_dev(x)))
    assert y.dtype == dtype
    assert_close(y, getattr(ref, f"{op}_fwd")(x), dtype)
    dout = rng.standard_normal(shape).astype(dtype)
    dx = to_host(bwd(to_dev(dout), to_dev(y)))
    assert_close(dx, getattr(ref, f"{op}_bwd")(dout, getattr(ref, f"{op}_fwd")(x)), dtype, scale=4)


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_hard_rows(dtype, to_dev, to_host):
    x = np.array([[1e4, -1e4, 0.0, 1e4], [-np.inf] * 4, [-np.inf, 2.0, -np.inf, 2.0]], dtype=dtype)
    y = to_host(kernels.cuda.softmax_fwd(to_dev(x)))
    np.testing.assert_array_equal(y, ref.softmax_fwd(x).astype(dtype))          # exact: 0.5, 0, ... zeros
    ly = to_host(kernels.cuda.log_softmax_fwd(to_dev(x)))
    expect = ref.log_softmax_fwd(x)
    assert np.isneginf(ly[1]).all() and np.isneginf(ly[2, [0, 2]]).all()
    assert_close(ly[0, [0, 2, 3]], expect[0, [0, 2, 3]], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(4, 5), (3, 130)])
def test_masked_softmax(shape, dtype, to_dev, to_host):
    rng = np.random.default_rng(1)
    x = _rows(shape, dtype, rng)
    lens = np.array([0, 1, shape[1], 2][:shape[0]], dtype=np.int64)
    y = to_host(kernels.cuda.masked_softmax_fwd(to_dev(x), to_dev(lens)))
    assert_close(y, ref.masked_softmax_fwd(x, lens), dtype)
    assert (y[0] == 0).all() and np.isfinite(y).all()                        # no valid key: zeros, not NaN
    dout = rng.standard_normal(shape).astype(dtype)
    dx = to_host(kernels.cuda.masked_softmax_bwd(to_dev(dout), to_dev(y), to_dev(lens)))
    assert_close(dx, ref.masked_softmax_bwd(dout, ref.masked_softmax_fwd(x, lens), lens), dtype, scale=4)
    assert (dx[0] == 0).all() and (dx[1, 1:] == 0).all()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("eps", [0.0, 0.1])
@pytest.mark.parametrize("shape", [(4, 3), (3, 150)])
def test_cross_entropy(shape, eps, dtype, to_dev, to_host):
    rng = np.random.default_rng(2)
    N, C = shape
    x = _rows(shape, dtype, rng, scale=5.0)
    x[0, 0] = 1e4                                                                # huge logit: finite loss
    t = rng.integers(0, C, N)
    t[-1] = -100                                                                 # ignored row
    loss, lse = (to_host(a) for a in kernels.cuda.cross_entropy_fwd(to_dev(x), to_dev(t), eps, -100))
    rl, rlse = ref.cross_entropy_fwd(x, t, eps, -100)
    assert loss.dtype == np.float64 and np.isfinite(loss).all()
    assert_close(loss, rl, dtype, scale=4)
    assert_close(lse, rlse, dtype)
    assert loss[-1] == 0
    dloss = rng.standard_normal(N)
    dx = to_host(kernels.cuda.cross_entropy_bwd(to_dev(dloss), to_dev(x), to_dev(t), to_dev(lse), eps, -100))
    assert dx.dtype == dtype
    assert_close(dx, ref.cross_entropy_bwd(dloss, x, t, rlse, eps, -100), dtype)
    assert (dx[-1] == 0).all()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_mse_loss(reduction, dtype, to_dev, to_host):
    rng = np.random.default_rng(3)
    x, t = rng.standard_normal((3, 70)).astype(dtype), rng.standard_normal((3, 70)).astype(dtype)
    out = to_host(kernels.cuda.mse_loss_fwd(to_dev(x), to_dev(t), reduction))
    assert out.dtype == dtype and out.shape == (x.shape if reduction == "none" else ())
    assert_close(out, ref.mse_loss_fwd(x, t, reduction), dtype, scale=4)
    dout = rng.standard_normal(out.shape).astype(dtype)
    dx = to_host(kernels.cuda.mse_loss_bwd(to_dev(dout), to_dev(x), to_dev(t), reduction))
    assert_close(dx, ref.mse_loss_bwd(dout, x, t, reduction), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op", ["relu", "sigmoid", "tanh"])
def test_activations(op, dtype, to_dev, to_host):
    rng = np.random.default_rng(4)
    x = (rng.standard_normal((3, 5, 7)) * 4).astype(dtype)
    x.flat[0] = 800.0 if dtype == np.float64 else 80.0                          # sigmoid must not overflow
    x.flat[1] = -x.flat[0]
    y = to_host(getattr(kernels.cuda, f"{op}_fwd")(to_dev(x)))
    assert y.shape == x.shape and y.dtype == dtype
    assert_close(y, getattr(ref, f"{op}_fwd")(x), dtype)
    dout = rng.standard_normal(x.shape).astype(dtype)
    dx = to_host(getattr(kernels.cuda, f"{op}_bwd")(to_dev(dout), to_dev(y)))
    assert_close(dx, getattr(ref, f"{op}_bwd")(dout, getattr(ref, f"{op}_fwd")(x)), dtype)


@pytest.mark.parametrize("p", [0.0, 0.3, 1.0])
def test_dropout(p, to_dev, to_host):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((4, 50)).astype(np.float32)
    y, mask = (to_host(a) for a in kernels.cuda.dropout_fwd(to_dev(x), 2**62 + 7, p))
    ry, rmask = ref.dropout_fwd(x, 2**62 + 7, p)
    np.testing.assert_array_equal(mask, rmask)
    assert_close(y, ry, np.float32)
    dout = rng.standard_normal(x.shape).astype(np.float32)
    dx = to_host(kernels.cuda.dropout_bwd(to_dev(dout), to_dev(mask), p))
    assert_close(dx, ref.dropout_bwd(dout, rmask, p), np.float32)


def test_empty_inputs(to_dev, to_host):
    for shape in [(0, 5), (3, 0)]:
        x = np.zeros(shape, np.float32)
        assert to_host(kernels.cuda.softmax_fwd(to_dev(x))).shape == shape
        assert to_host(kernels.cuda.relu_fwd(to_dev(x))).shape == shape
    loss, lse = kernels.cuda.cross_entropy_fwd(to_dev(np.zeros((0, 4), np.float32)), to_dev(np.zeros(0, np.int64)),
                                               0.0, -100)
    assert to_host(loss).shape == (0,)
    assert np.isnan(to_host(kernels.cuda.mse_loss_fwd(to_dev(np.zeros(0, np.float32)),
                                                      to_dev(np.zeros(0, np.float32)), "mean")))


def test_same_input_same_bits(to_dev, to_host):
    """No atomics in these kernels: a second run gives identical bits."""
    rng = np.random.default_rng(6)
    x = rng.standard_normal((3, 140)).astype(np.float32)
    t = np.array([0, 5, 139])
    for f in (lambda: kernels.cuda.softmax_fwd(to_dev(x)),
              lambda: kernels.cuda.cross_entropy_fwd(to_dev(x), to_dev(t), 0.1, -100)[0],
              lambda: kernels.cuda.mse_loss_fwd(to_dev(x), to_dev(x * 0.5), "sum")):
        a, b = to_host(f()), to_host(f())
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (6, 3), (1, 2, 1, 1)])
@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm(shape, affine, dtype, to_dev, to_host):
    rng = np.random.default_rng(7)
    x = (rng.standard_normal(shape) * 2 + 3).astype(dtype)
    x[:, 0] = 5.0                                                                # a zero-variance channel
    C = shape[1]
    w, b = (rng.standard_normal(C).astype(dtype), rng.standard_normal(C).astype(dtype)) if affine else (None, None)
    dv = (lambda a: None if a is None else to_dev(a))
    y, mean, rstd, var = (to_host(a) for a in kernels.cuda.batch_norm_fwd_train(to_dev(x), dv(w), dv(b), 1e-5))
    ry, rmean, rrstd, rvar = ref.batch_norm_fwd_train(x, w, b, 1e-5)
    assert y.dtype == dtype and mean.dtype == np.float64 and np.isfinite(y).all()
    assert_close(y, ry, dtype, scale=4)
    assert_close(mean, rmean, dtype)
    assert_close(var, rvar, dtype, scale=4)
    dout = rng.standard_normal(shape).astype(dtype)
    dx, dw, db = (to_host(a) for a in kernels.cuda.batch_norm_bwd_train(to_dev(dout), to_dev(x), dv(w), to_dev(mean),
                                                                         to_dev(rstd)))
    rdx, rdw, rdb = ref.batch_norm_bwd_train(dout, x, w, rmean, rrstd)
    assert_close(dx, rdx, dtype, scale=8)
    assert_close(dw, rdw, dtype, scale=8)
    assert_close(db, rdb, dtype, scale=8)
    rm, rv = rng.standard_normal(C), rng.random(C) + 0.5
    y, mean, rstd = (to_host(a) for a in kernels.cuda.batch_norm_fwd_eval(to_dev(x), to_dev(rm), to_dev(rv), dv(w),
                                                                           dv(b), 1e-5))
    ry, _, rrstd = ref.batch_norm_fwd_eval(x, rm, rv, w, b, 1e-5)
    assert_close(y, ry, dtype, scale=4)
    dx, dw, db = (to_host(a) for a in kernels.cuda.batch_norm_bwd_eval(to_dev(dout), to_dev(x), dv(w), to_dev(rm),
                                                                        to_dev(rrstd)))
    for a, e in zip((dx, dw, db), ref.batch_norm_bwd_eval(dout, x, w, rm, rrstd)):
        assert_close(a, e, dtype, scale=8)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(3, 7), (2, 130), (1, 1)])
def test_layer_norm(shape, dtype, to_dev, to_host):
    rng = np.random.default_rng(8)
    x = (rng.standard_normal(shape) * 3 + 100).astype(dtype)                    # a large mean: no cancellation
    x[0] = 7.0                                                                   # a constant row: rstd = 1/sqrt(eps)
    D = shape[1]
    w, b = rng.standard_normal(D).astype(dtype), rng.standard_normal(D).astype(dtype)
    y, mean, rstd = (to_host(a) for a in kernels.cuda.layer_norm_fwd(to_dev(x), to_dev(w), to_dev(b), 1e-5))
    ry, rmean, rrstd = ref.layer_norm_fwd(x, w, b, 1e-5)
    assert np.isfinite(y).all()
    assert_close(y, ry, dtype, scale=8)
    assert_close(mean, rmean, dtype)
    dout = rng.standard_normal(shape).astype(dtype)
    dx, dw, db = (to_host(a) for a in kernels.cuda.layer_norm_bwd(to_dev(dout), to_dev(x), to_dev(w), to_dev(mean),
                                                                   to_dev(rstd)))
    rdx, rdw, rdb = ref.layer_norm_bwd(dout, x, w, rmean, rrstd)
    assert dx.dtype == dw.dtype == dtype
    assert_close(dx, rdx, dtype, scale=8)
    assert_close(dw, rdw, dtype, scale=8)
    assert_close(db, rdb, dtype, scale=8)


POOLS = [  # kernel, stride, padding, ceil_mode, shape (N, C, H, W)
    ((2, 2), (2, 2), (0, 0), False, (2, 3, 6, 6)),
    ((3, 3), (1, 1), (1, 1), False, (1, 2, 5, 4)),           # overlapping windows, padding
    ((3, 2), (2, 1), (1, 0), True, (1, 2, 7, 5)),            # ceil_mode: a last partial window
    ((2, 3), (3, 2), (1, 1), True, (2, 1, 5, 6)),            # stride larger than the kernel
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("k,s,p,ceil,shape", POOLS)
def test_max_pool2d(k, s, p, ceil, shape, dtype, to_dev, to_host):
    rng = np.random.default_rng(9)
    x = rng.permutation(np.prod(shape)).reshape(shape).astype(dtype) / 7     # distinct values: one argmax
    x.flat[3] = -np.inf
    out, am = (to_host(a) for a in kernels.cuda.max_pool2d_fwd(to_dev(x), k, s, p, ceil))
    rout, ram = ref.max_pool2d_fwd(x, k, s, p, ceil)
    assert out.dtype == dtype and am.dtype == np.int32
    np.testing.assert_array_equal(out, rout.astype(dtype))
    np.testing.assert_array_equal(am, ram)
    dout = rng.standard_normal(out.shape).astype(dtype)
    dx = to_host(kernels.cuda.max_pool2d_bwd(to_dev(dout), to_dev(am), shape, k, s, p, ceil))
    assert_close(dx, ref.max_pool2d_bwd(dout, ram, shape, k, s, p, ceil), dtype)


def test_max_pool2d_nan_wins(to_dev, to_host):
    x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    x[0, 0, 0, 1] = np.nan
    out, am = (to_host(a) for a in kernels.cuda.max_pool2d_fwd(to_dev(x), (2, 2), (2, 2), (0, 0), False))
    assert np.isnan(out[0, 0, 0, 0]) and am[0, 0, 0, 0] == 1 and out[0, 0, 1, 1] == 15


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("include_pad", [True, False])
@pytest.mark.parametrize("k,s,p,ceil,shape", POOLS)
def test_avg_pool2d(k, s, p, ceil, shape, include_pad, dtype, to_dev, to_host):
    rng = np.random.default_rng(10)
    x = rng.standard_normal(shape).astype(dtype)
    out = to_host(kernels.cuda.avg_pool2d_fwd(to_dev(x), k, s, p, ceil, include_pad))
    assert_close(out, ref.avg_pool2d_fwd(x, k, s, p, ceil, include_pad), dtype)
    dout = rng.standard_normal(out.shape).astype(dtype)
    dx = to_host(kernels.cuda.avg_pool2d_bwd(to_dev(dout), shape, k, s, p, ceil, include_pad))
    assert_close(dx, ref.avg_pool2d_bwd(dout, shape, k, s, p, ceil, include_pad), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,osize", [((2, 3, 5, 7), (1, 1)), ((1, 2, 7, 5), (3, 2)), ((1, 1, 4, 4), (4, 4)),
                                         ((1, 1, 3, 3), (5, 4))])
def test_adaptive_avg_pool2d(shape, osize, dtype, to_dev, to_host):
    rng = np.random.default_rng(11)
    x = rng.standard_normal(shape).astype(dtype)
    out = to_host(kernels.cuda.adaptive_avg_pool2d_fwd(to_dev(x), osize))
    assert_close(out, ref.adaptive_avg_pool2d_fwd(x, osize), dtype)
    dout = rng.standard_normal(out.shape).astype(dtype)
    dx = to_host(kernels.cuda.adaptive_avg_pool2d_bwd(to_dev(dout), shape))
    assert_close(dx, ref.adaptive_avg_pool2d_bwd(dout, shape), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("pad", [-1, 2])
def test_embedding(pad, dtype, to_dev, to_host):
    rng = np.random.default_rng(12)
    w = rng.standard_normal((5, 6)).astype(dtype)
    idx = np.array([[0, 2, 2], [4, 2, 1]])                                       # repeated rows sum
    out = to_host(kernels.cuda.embedding_fwd(to_dev(idx), to_dev(w)))
    np.testing.assert_array_equal(out, ref.embedding_fwd(idx, w))
    dout = rng.standard_normal(out.shape).astype(dtype)
    dw = to_host(kernels.cuda.embedding_bwd(to_dev(dout), to_dev(idx), 5, pad))
    assert_close(dw, ref.embedding_bwd(dout.astype(np.float64), idx, 5, pad), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_linear(dtype, to_dev, to_host):
    rng = np.random.default_rng(13)
    x, w, b = (rng.standard_normal(s).astype(dtype) for s in ((2, 3, 4), (5, 4), (5,)))
    y = to_host(kernels.cuda.linear_fwd(to_dev(x), to_dev(w), to_dev(b)))
    assert_close(y, ref.linear_fwd(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64)), dtype)
    dout = rng.standard_normal(y.shape).astype(dtype)
    grads = kernels.cuda.linear_bwd(to_dev(dout), to_dev(x), to_dev(w))
    for g, e in zip(grads, ref.linear_bwd(*(a.astype(np.float64) for a in (dout, x, w)))):
        assert_close(to_host(g), e, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("momentum,dampening,nesterov,wd", [(0.0, 0.0, False, 0.1), (0.9, 0.1, False, 0.0),
                                                           (0.9, 0.0, True, 1e-2)])
def test_sgd_step(momentum, dampening, nesterov, wd, dtype, to_dev, to_host):
    rng = np.random.default_rng(14)
    p0 = rng.standard_normal(300).astype(dtype)
    p, buf = to_dev(p0.copy()), to_dev(np.zeros(300, dtype))
    pr, br = p0.astype(np.float64), np.zeros(300)
    for step in range(3):
        g = rng.standard_normal(300).astype(dtype)
        kernels.cuda.sgd_step(p, to_dev(g), buf if momentum else None, 0.05, momentum, dampening, nesterov, wd,
                              step == 0)
        ref.sgd_step(pr, g.astype(np.float64), br, 0.05, momentum, dampening, nesterov, wd, step == 0)
    assert_close(to_host(p), pr, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_adamw_step(dtype, to_dev, to_host):
    rng = np.random.default_rng(15)
    p0 = rng.standard_normal(300).astype(dtype)
    p, m, v = to_dev(p0.copy()), to_dev(np.zeros(300, dtype)), to_dev(np.zeros(300, dtype))
    pr, mr, vr = p0.astype(np.float64), np.zeros(300), np.zeros(300)
    for step in range(1, 4):
        g = rng.standard_normal(300).astype(dtype)
        kernels.cuda.adamw_step(p, to_dev(g), m, v, 1e-2, 0.9, 0.999, 1e-8, 0.01, step)
        ref.adamw_step(pr, g.astype(np.float64), mr, vr, 1e-2, 0.9, 0.999, 1e-8, 0.01, step)
    assert_close(to_host(p), pr, dtype, scale=4)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cell", ["rnn_tanh", "gru"])
@pytest.mark.parametrize("T,B,H,bias", [(1, 1, 1, True), (4, 3, 5, False), (3, 2, 130, True)])
def test_recurrences(cell, T, B, H, bias, dtype, to_dev, to_host):
    rng = np.random.default_rng(16)
    G = 3 if cell == "gru" else 1
    xw = rng.standard_normal((T, B, G * H)).astype(dtype)
    h0 = (rng.standard_normal((B, H)) * 0.5).astype(dtype)
    w = (rng.standard_normal((G * H, H)) / np.sqrt(H)).astype(dtype)
    b = rng.standard_normal(G * H).astype(dtype) if bias else None
    fwd, bwd = getattr(kernels.cuda, f"{cell}_fwd"), getattr(kernels.cuda, f"{cell}_bwd")
    rfwd, rbwd = getattr(ref, f"{cell}_fwd"), getattr(ref, f"{cell}_bwd")
    f64 = lambda a: None if a is None else a.astype(np.float64)                 # noqa: E731
    out = fwd(to_dev(xw), to_dev(h0), to_dev(w), None if b is None else to_dev(b))
    rout = rfwd(f64(xw), f64(h0), f64(w), f64(b))
    if cell == "gru":
        hs, gates = (to_host(a) for a in out)
        assert_close(gates, rout[1], dtype, scale=4)
        rhs = rout[0]
    else:
        hs, rhs = to_host(out), rout
    assert hs.dtype == dtype
    assert_close(hs, rhs, dtype, scale=4)
    dhs = rng.standard_normal(hs.shape).astype(dtype)
    if cell == "gru":
        grads = bwd(to_dev(dhs), to_dev(hs), to_dev(gates), to_dev(h0), to_dev(w))
        rgrads = rbwd(f64(dhs), rhs, rout[1], f64(h0), f64(w))
    else:
        grads = bwd(to_dev(dhs), to_dev(hs), to_dev(h0), to_dev(w))
        rgrads = rbwd(f64(dhs), rhs, f64(h0), f64(w))
    for name, g, e in zip(("dxw", "dh0", "dw", "db"), grads, rgrads):
        assert_close(to_host(g), e, dtype, scale=16, err_msg=name)


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")     # the hash wraps (the simulator's NumPy)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["plain", "causal_L<S", "causal_L>S", "tiny", "2d", "valid_lens_1d", "valid_lens_2d",
                                  "bool_mask", "bool_mask_keys", "float_mask", "causal_valid_lens_2d", "dropout",
                                  "dropout_causal_vl"])
def test_sdpa(name, dtype, to_dev, to_host):
    from tests.test_attention import _config, _kw, _qkv
    rng = np.random.default_rng(17)
    lead, L, S, d, dv, kw = _config(name, rng, dtype, small=True)
    q, k, v = _qkv(rng, lead, L, S, d, dv, dtype)
    (mask, causal, scale), extra = _kw(kw, d)
    ro, rlse = ref.sdpa_fwd(q, k, v, mask, causal, scale, **extra)
    dext = {key: (to_dev(val) if isinstance(val, np.ndarray) else val) for key, val in extra.items()}
    dmask = None if mask is None else to_dev(mask)
    o, lse = kernels.cuda.sdpa_fwd(to_dev(q), to_dev(k), to_dev(v), dmask, causal, scale, **dext)
    assert to_host(o).dtype == dtype
    assert_close(to_host(o), ro, dtype, scale=4)
    hl = to_host(lse)
    assert np.array_equal(np.isneginf(hl), np.isneginf(rlse))                  # fully masked rows: -inf
    fin = np.isfinite(rlse)
    assert_close(hl[fin], rlse[fin], dtype, scale=4)
    dout = rng.standard_normal(ro.shape).astype(dtype)
    grads = kernels.cuda.sdpa_bwd(to_dev(dout), to_dev(q), to_dev(k), to_dev(v), o, lse, dmask, causal, scale, **dext)
    for nm, g, e in zip(("dq", "dk", "dv"), grads, ref.sdpa_bwd(dout, q, k, v, ro, rlse, mask, causal, scale, **extra)):
        g = to_host(g)
        assert np.isfinite(g).all(), nm
        assert_close(g, e, dtype, scale=8, err_msg=nm)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("d, dv", [(20, 30), (100, 128), (128, 7)])      # the kernels built for D = 32 and 128
def test_sdpa_head_dims(d, dv, dtype, to_dev, to_host):
    rng = np.random.default_rng(d)
    q, k, v = (rng.standard_normal(s).astype(dtype) for s in [(2, 5, d), (2, 9, d), (2, 9, dv)])
    scale = 1 / np.sqrt(d)
    ro, rlse = ref.sdpa_fwd(q, k, v, None, True, scale)
    o, lse = kernels.cuda.sdpa_fwd(to_dev(q), to_dev(k), to_dev(v), None, True, scale)
    assert_close(to_host(o), ro, dtype, scale=4)
    assert_close(to_host(lse), rlse, dtype, scale=4)
    dout = rng.standard_normal(ro.shape).astype(dtype)
    grads = kernels.cuda.sdpa_bwd(to_dev(dout), to_dev(q), to_dev(k), to_dev(v), o, lse, None, True, scale)
    for nm, g, e in zip(("dq", "dk", "dv"), grads, ref.sdpa_bwd(dout, q, k, v, ro, rlse, None, True, scale)):
        assert_close(to_host(g), e, dtype, scale=8, err_msg=nm)


def test_sdpa_rejects_head_dims_it_cannot_hold(to_dev):
    q = to_dev(np.zeros((1, 2, 200), np.float32))
    with pytest.raises(ValueError, match="head dims up to"):
        kernels.cuda.sdpa_fwd(q, q, q, None, False, 0.1)


CONVS = [  # x shape, w shape, stride, padding (t, b, l, r), dilation, groups
    ((2, 3, 7, 6), (4, 3, 3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1),
    ((1, 4, 9, 8), (6, 2, 3, 2), (2, 1), (0, 2, 1, 0), (1, 2), 2),           # groups, asymmetric padding, dilation
    ((2, 1, 5, 5), (3, 1, 5, 5), (1, 1), (2, 2, 2, 2), (1, 1), 1),           # LeNet's first layer, small
    ((1, 2, 6, 7), (5, 2, 1, 1), (2, 3), (0, 0, 0, 0), (1, 1), 1),           # 1x1 with stride: gaps in dx
    ((1, 17, 4, 4), (18, 17, 2, 2), (1, 1), (0, 0, 0, 0), (1, 1), 1),        # R and K beyond one 16-tile
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("xs,ws,stride,padding,dilation,groups", CONVS)
def test_conv2d(xs, ws, stride, padding, dilation, groups, dtype, to_dev, to_host):
    rng = np.random.default_rng(18)
    x, w, b = (rng.standard_normal(s).astype(dtype) for s in (xs, ws, (ws[0],)))
    args = (stride, padding, dilation, groups)
    y = to_host(kernels.cuda.conv2d_fwd(to_dev(x), to_dev(w), to_dev(b), *args))
    ry = ref.conv2d_fwd(x, w, b, *args)
    assert y.dtype == dtype
    assert_close(y, ry, dtype, scale=4)
    assert_close(to_host(kernels.cuda.conv2d_fwd(to_dev(x), to_dev(w), None, *args)), ref.conv2d_fwd(x, w, None, *args),
                 dtype, scale=4)
    dout = rng.standard_normal(ry.shape).astype(dtype)
    grads = kernels.cuda.conv2d_bwd(to_dev(dout), to_dev(x), to_dev(w), *args)
    for name, g, e in zip(("dx", "dw", "db"), grads, ref.conv2d_bwd(dout, x, w, *args)):
        assert to_host(g).dtype == dtype
        assert_close(to_host(g), e, dtype, scale=8, err_msg=name)
    dx, dw, db = kernels.cuda.conv2d_bwd(to_dev(dout), to_dev(x), to_dev(w), *args, need_dx=False, need_db=False)
    assert dx is None and db is None and dw is not None


def test_out_of_range_indices_read_nothing_and_give_nan(to_dev, to_host):
    """The engine checks class and embedding indices without waiting for the GPU (the error comes at the next
    host read), so the kernels meet bad indices: they must not read past their arrays, and give NaN."""
    x = np.zeros((3, 4), np.float32)
    loss, lse = kernels.cuda.cross_entropy_fwd(to_dev(x), to_dev(np.array([1, 9, -3])), 0.0, -100)
    loss = to_host(loss)
    assert np.isfinite(loss[0]) and np.isnan(loss[1:]).all()
    out = to_host(kernels.cuda.embedding_fwd(to_dev(np.array([0, 4, -1])), to_dev(np.ones((4, 2), np.float32))))
    assert (out[0] == 1).all() and np.isnan(out[1:]).all()
    dw = to_host(kernels.cuda.embedding_bwd(to_dev(np.ones((3, 2), np.float32)), to_dev(np.array([0, 4, -1])), 4))
    np.testing.assert_array_equal(dw, [[1, 1], [0, 0], [0, 0], [0, 0]])
    y = to_host(kernels.cuda.masked_softmax_fwd(to_dev(np.zeros((2, 3), np.float32)), to_dev(np.array([5, -2]))))
    np.testing.assert_allclose(y, [[1 / 3] * 3, [0, 0, 0]], rtol=1e-6)


# ---- issue 9: bad input and numerics, the same as on the CPU ---------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_entropy_huge_logits(dtype, to_dev, to_host):
    """lse is kept as (max, log sum exp(x - max)): four equal logits of 3e38 give log 4, two tied maxima half
    the gradient each (m + log s in float64 loses log s past |m| ~ 1e16)."""
    big = 3e38 if dtype == np.float32 else 1e300
    x = np.array([[big] * 4, [big, big, -big, 0.0]], dtype)
    t = np.array([0, 0])
    loss, lse = kernels.cuda.cross_entropy_fwd(to_dev(x), to_dev(t), 0.0, -100)
    np.testing.assert_allclose(to_host(loss), [np.log(4), np.log(2)], rtol=1e-6)
    np.testing.assert_allclose(to_host(lse), ref.cross_entropy_fwd(x, t, 0.0, -100)[1], rtol=1e-12)
    dx = to_host(kernels.cuda.cross_entropy_bwd(to_dev(np.ones(2)), to_dev(x), to_dev(t), lse, 0.0, -100))
    np.testing.assert_allclose(dx, [[-0.75, 0.25, 0.25, 0.25], [-0.5, 0.5, 0.0, 0.0]], rtol=1e-6, atol=1e-7)


def test_activations_nan_and_zero_dim(to_dev, to_host):
    """relu(NaN) = NaN with the gradient passing; 0-d inputs keep shape (); a dropped NaN is 0."""
    x = np.array([np.nan, -1.0, 2.0, -0.0], np.float32)
    y = to_host(kernels.cuda.relu_fwd(to_dev(x)))
    np.testing.assert_array_equal(y, ref.relu_fwd(x))
    dx = to_host(kernels.cuda.relu_bwd(to_dev(np.ones(4, np.float32)), to_dev(y)))
    np.testing.assert_array_equal(dx, [1, 0, 1, 0])
    for op in ("relu", "sigmoid", "tanh"):
        assert to_host(getattr(kernels.cuda, f"{op}_fwd")(to_dev(np.array(1.5, np.float32)))).shape == ()
    y, mask = (to_host(a) for a in kernels.cuda.dropout_fwd(to_dev(np.full(64, np.nan, np.float32)), 5, 0.5))
    assert 0 < mask.sum() < 64 and np.all(y[~mask] == 0) and np.isnan(y[mask]).all()


def test_sdpa_nan_empty_lengths_and_any_scale(to_dev, to_host):
    """A NaN query row gives a NaN output row (not a zeroed one); S = 0 gives zeros, L = 0 an empty output;
    scale 0 and negative scales match the reference."""
    rng = np.random.default_rng(21)
    q, k, v = (rng.standard_normal(s).astype(np.float64) for s in [(1, 3, 4), (1, 5, 4), (1, 5, 2)])
    qn = q.copy()
    qn[0, 1, 0] = np.nan
    o, lse = (to_host(a) for a in kernels.cuda.sdpa_fwd(to_dev(qn), to_dev(k), to_dev(v), None, False, 0.5))
    assert np.isnan(o[0, 1]).all() and np.isnan(lse[0, 1]) and np.isfinite(o[0, [0, 2]]).all()
    o, lse = kernels.cuda.sdpa_fwd(to_dev(q), to_dev(k[:, :0]), to_dev(v[:, :0]), None, False, 0.5)
    assert to_host(o).shape == (1, 3, 2) and not to_host(o).any() and np.isneginf(to_host(lse)).all()
    o, lse = kernels.cuda.sdpa_fwd(to_dev(q[:, :0]), to_dev(k), to_dev(v), None, False, 0.5)
    assert to_host(o).shape == (1, 0, 2)
    for scale in (0.0, -0.7):
        ro, rlse = ref.sdpa_fwd(q, k, v, None, True, scale)
        o, lse = kernels.cuda.sdpa_fwd(to_dev(q), to_dev(k), to_dev(v), None, True, scale)
        assert_close(to_host(o), ro, np.float64)
        dout = rng.standard_normal(ro.shape)
        grads = kernels.cuda.sdpa_bwd(to_dev(dout), to_dev(q), to_dev(k), to_dev(v), o, lse, None, True, scale)
        for g, e in zip(grads, ref.sdpa_bwd(dout, q, k, v, ro, rlse, None, True, scale)):
            assert_close(to_host(g), e, np.float64)


def test_empty_batches(to_dev, to_host):
    """batch norm (eval) with N = 0 and a linear layer with no input features: empty results, no reshape
    error (PyTorch's behaviour)."""
    x = np.zeros((0, 3, 2), np.float64)
    y, mean, rstd = kernels.cuda.batch_norm_fwd_eval(to_dev(x), to_dev(np.zeros(3)), to_dev(np.ones(3)), None, None,
                                                     1e-5)
    assert to_host(y).shape == (0, 3, 2)
    dx, dw, db = kernels.cuda.batch_norm_bwd_eval(to_dev(x), to_dev(x), None, mean, rstd)
    assert to_host(dx).shape == (0, 3, 2) and not to_host(dw).any() and not to_host(db).any()
    xl, w = np.zeros((2, 0)), np.zeros((4, 0))
    dx, dw, db = kernels.cuda.linear_bwd(to_dev(np.ones((2, 4))), to_dev(xl), to_dev(w))
    assert to_host(dx).shape == (2, 0) and to_host(dw).shape == (4, 0) and (to_host(db) == 2).all()


@pytest.mark.filterwarnings("ignore::RuntimeWarning")     # the simulator's NumPy scalars warn at inf * 0
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu(approximate, dtype, to_dev, to_host):
    """Both forms against the reference on random values and the hard ones (+-inf, NaN, huge |x|, +-0)."""
    rng = np.random.default_rng(17)
    x = (rng.standard_normal((3, 47)) * 4).astype(dtype)
    x.flat[:10] = [-np.inf, np.inf, np.nan, -3e38, 3e38, -1e30, 1e30, -40.0, -0.0, 0.0]
    y = to_host(kernels.cuda.gelu_fwd(to_dev(x), approximate))
    assert y.shape == x.shape and y.dtype == dtype
    x64 = x.astype(np.float64)
    ry = ref.gelu_fwd(x64, approximate)
    np.testing.assert_array_equal(np.isnan(y), np.isnan(ry))
    assert_close(y, ry, dtype)
    dout = rng.standard_normal(x.shape).astype(dtype)
    dx = to_host(kernels.cuda.gelu_bwd(to_dev(dout), to_dev(x), approximate))
    rdx = ref.gelu_bwd(dout.astype(np.float64), x64, approximate)
    np.testing.assert_array_equal(np.isnan(dx), np.isnan(rdx))
    assert_close(dx, rdx, dtype)
    assert to_host(kernels.cuda.gelu_fwd(to_dev(np.array(1.5, dtype)), approximate)).shape == ()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("wd", [0.0, 0.1])
def test_adam_step(wd, dtype, to_dev, to_host):
    """Adam (coupled weight decay) through the shared Adam/AdamW kernel, against the reference over 3 steps."""
    rng = np.random.default_rng(18)
    p0 = rng.standard_normal(300).astype(dtype)
    p, m, v = to_dev(p0.copy()), to_dev(np.zeros(300, dtype)), to_dev(np.zeros(300, dtype))
    pr, mr, vr = p0.astype(np.float64), np.zeros(300), np.zeros(300)
    for step in range(1, 4):
        g = rng.standard_normal(300).astype(dtype)
        kernels.cuda.adam_step(p, to_dev(g), m, v, 1e-2, 0.9, 0.999, 1e-8, wd, step)
        ref.adam_step(pr, g.astype(np.float64), mr, vr, 1e-2, 0.9, 0.999, 1e-8, wd, step)
    assert_close(to_host(p), pr, dtype, scale=4)
    assert_close(to_host(v), vr, dtype, scale=4)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("T,B,H,bias", [(1, 1, 1, True), (4, 3, 5, False), (3, 2, 40, True)])
def test_lstm(T, B, H, bias, dtype, to_dev, to_host):
    """The LSTM recurrence: hc, gates and every gradient (dxw, dh0, dc0, dW_hh, db_hh) against the reference;
    H = 40 > the simulator's 32 threads: a row spans two block strides."""
    rng = np.random.default_rng(19)
    f64 = lambda a: None if a is None else a.astype(np.float64)                 # noqa: E731
    xw = rng.standard_normal((T, B, 4 * H)).astype(dtype)
    h0, c0 = (rng.standard_normal((2, B, H)) * 0.5).astype(dtype)
    w = (rng.standard_normal((4 * H, H)) / np.sqrt(H)).astype(dtype)
    b = rng.standard_normal(4 * H).astype(dtype) if bias else None
    hc, gates = (to_host(a) for a in kernels.cuda.lstm_fwd(to_dev(xw), to_dev(h0), to_dev(c0), to_dev(w),
                                                           None if b is None else to_dev(b)))
    rhc, rgates = ref.lstm_fwd(f64(xw), f64(h0), f64(c0), f64(w), f64(b))
    assert hc.dtype == dtype and hc.shape == (T, B, 2 * H)
    assert_close(hc, rhc, dtype, scale=4)
    assert_close(gates, rgates, dtype, scale=4)
    dhc = rng.standard_normal(hc.shape).astype(dtype)
    grads = kernels.cuda.lstm_bwd(to_dev(dhc), to_dev(hc), to_dev(gates), to_dev(h0), to_dev(c0), to_dev(w))
    rgrads = ref.lstm_bwd(f64(dhc), rhc, rgates, f64(h0), f64(c0), f64(w))
    for name, g, e in zip(("dxw", "dh0", "dc0", "dw", "db"), grads, rgrads):
        assert_close(to_host(g), e, dtype, scale=16, err_msg=name)
