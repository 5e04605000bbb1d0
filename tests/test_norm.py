"""Norm family: batch_norm (train / eval) and layer_norm. Reference vs finite differences, both backends'
kernels vs the reference, book vectors, bad input, and the engine ops (on each device) against the reference
and PyTorch. Determinism: tests/test_determinism.py."""
import numpy as np
import pytest

import engine
import engine.functional as F
import kernels.reference.norm as R
from conftest import DTYPES, assert_close, cases, check_backward_fd, kernels_on, noncontig, on_devices, to_dev, to_host
from engine.tensor import Tensor

EPS = 1e-5
f32, f64 = np.float32, np.float64


def _rand(rng, shape, dtype=np.float64, loc=0.0, scale=1.0):
    return (loc + scale * rng.standard_normal(shape)).astype(dtype)


# ---- (1) reference backward vs directional finite differences ---------------------------------------
@pytest.mark.parametrize("shape", [(5, 3), (4, 3, 6), (3, 2, 3, 4)])
def test_ref_batch_norm_train_backward_fd(shape):
    rng = np.random.default_rng(1)
    x, w, b = _rand(rng, shape), _rand(rng, shape[1]), _rand(rng, shape[1])
    fwd = lambda x, w, b: R.batch_norm_fwd_train(x, w, b, EPS)[0]
    def bwd(dout, x, w, b):
        _, mean, rstd, _ = R.batch_norm_fwd_train(x, w, b, EPS)
        return R.batch_norm_bwd_train(dout, x, w, mean, rstd)
    check_backward_fd(fwd, bwd, [x, w, b])


@pytest.mark.parametrize("shape", [(5, 3), (3, 2, 3, 4)])
def test_ref_batch_norm_eval_backward_fd(shape):
    rng = np.random.default_rng(2)
    x, w, b = _rand(rng, shape), _rand(rng, shape[1]), _rand(rng, shape[1])
    rm, rv = _rand(rng, shape[1]), rng.uniform(0.5, 2.0, shape[1])
    fwd = lambda x, w, b: R.batch_norm_fwd_eval(x, rm, rv, w, b, EPS)[0]
    def bwd(dout, x, w, b):
        _, mean, rstd = R.batch_norm_fwd_eval(x, rm, rv, w, b, EPS)
        return R.batch_norm_bwd_eval(dout, x, w, mean, rstd)
    check_backward_fd(fwd, bwd, [x, w, b])


@pytest.mark.parametrize("shape", [(4, 7), (3, 1), (2, 16)])
def test_ref_layer_norm_backward_fd(shape):
    rng = np.random.default_rng(3)
    x, w, b = _rand(rng, shape), _rand(rng, shape[1]), _rand(rng, shape[1])
    fwd = lambda x, w, b: R.layer_norm_fwd(x, w, b, EPS)[0]
    def bwd(dout, x, w, b):
        _, mean, rstd = R.layer_norm_fwd(x, w, b, EPS)
        return R.layer_norm_bwd(dout, x, w, mean, rstd)
    check_backward_fd(fwd, bwd, [x, w, b])


# ---- (2) kernels vs the reference (the cuda half: a subset with both dtypes, affine or not, both schedules) -
# (4,16,5,7), (2,9,4,4): per-channel schedule; the rest: per-task schedule (2-D, few channels, small L,
# L split across tasks for (1,2,9000)).
BN_SHAPES = [(4, 16, 5, 7), (2, 9, 4, 4), (3, 5, 9), (33, 12), (2, 3, 300), (6, 10, 3), (1, 2, 9000),
             (3, 8, 2, 3, 5)]


@pytest.mark.parametrize(*on_devices("shape,affine,dtype", cases(BN_SHAPES, [True, False], DTYPES),
                                     [((2, 9, 4, 4), True, f32), ((3, 5, 9), False, f64), ((33, 12), True, f64),
                                      ((2, 3, 300), False, f32)]))
def test_batch_norm_kernels(device, shape, affine, dtype):
    K = kernels_on(device)
    rng = np.random.default_rng(hash(shape) % 2**32)
    C = shape[1]
    x = _rand(rng, shape, dtype, loc=1.5, scale=2.0)
    dout = _rand(rng, shape, dtype)
    w = _rand(rng, C, dtype) if affine else None
    b = _rand(rng, C, dtype) if affine else None
    xs, gs = noncontig(x, device), noncontig(dout, device)
    dev = lambda a: None if a is None else to_dev(a, device)                    # noqa: E731

    y, mean, rstd, var = to_host(K.batch_norm_fwd_train(xs, dev(w), dev(b), EPS))
    ry, rmean, rrstd, rvar = R.batch_norm_fwd_train(x, w, b, EPS)
    assert y.dtype == dtype and y.shape == shape
    for a, e in ((y, ry), (mean, rmean), (rstd, rrstd), (var, rvar)):
        assert_close(a, e, dtype)
    got = to_host(K.batch_norm_bwd_train(gs, xs, dev(w), dev(rmean), dev(rrstd)))
    for a, e in zip(got, R.batch_norm_bwd_train(dout, x, w, rmean, rrstd)):
        assert a.dtype == dtype
        assert_close(a, e, dtype, scale=2)

    rm, rv = _rand(rng, C, dtype), rng.uniform(0.5, 2.0, C).astype(dtype)
    y, mean, rstd = to_host(K.batch_norm_fwd_eval(xs, dev(rm), dev(rv), dev(w), dev(b), EPS))
    ry, rmean, rrstd = R.batch_norm_fwd_eval(x, rm, rv, w, b, EPS)
    for a, e in ((y, ry), (mean, rmean), (rstd, rrstd)):
        assert_close(a, e, dtype)
    got = to_host(K.batch_norm_bwd_eval(gs, xs, dev(w), dev(rmean), dev(rrstd)))
    for a, e in zip(got, R.batch_norm_bwd_eval(dout, x, w, rmean, rrstd)):
        assert_close(a, e, dtype, scale=2)


LN_SHAPES = [((7, 33), EPS), ((5, 1000), EPS), ((130, 17), EPS), ((3, 257), EPS), ((40, 64), EPS),
             ((4, 1), 0.1), ((0, 5), EPS),
             ((301, 257), EPS)]          # past PARALLEL_MIN: the prange kernels, rows not a multiple of a block


@pytest.mark.parametrize(*on_devices("shape_eps,affine,dtype", cases(LN_SHAPES, [True, False], DTYPES),
                                     [(((7, 33), EPS), True, f32), (((4, 1), 0.1), False, f64),
                                      (((0, 5), EPS), True, f32), (((3, 257), EPS), False, f64)]))
def test_layer_norm_kernels(device, shape_eps, affine, dtype):
    K, (shape, eps) = kernels_on(device), shape_eps
    rng = np.random.default_rng(sum(shape))
    D = shape[1]
    x = _rand(rng, shape, dtype, loc=-0.7, scale=3.0)
    dout = _rand(rng, shape, dtype)
    w = _rand(rng, D, dtype) if affine else None
    b = _rand(rng, D, dtype) if affine else None
    dev = lambda a: None if a is None else to_dev(a, device)                    # noqa: E731
    nc = (lambda a: noncontig(a, device)) if x.size else dev     # conftest.noncontig rejects empty arrays
    y, mean, rstd = to_host(K.layer_norm_fwd(nc(x), dev(w), dev(b), eps))
    ref = R.layer_norm_fwd(x, w, b, eps)
    assert y.dtype == dtype
    for a, e in zip((y, mean, rstd), ref):
        assert_close(a, e, dtype)
    got = to_host(K.layer_norm_bwd(nc(dout), nc(x), dev(w), dev(ref[1]), dev(ref[2])))
    for a, e in zip(got, R.layer_norm_bwd(dout, x, w, ref[1], ref[2])):
        assert a.dtype == dtype
        assert_close(a, e, dtype, scale=2)


def test_float32_statistics_large_offset_and_long_rows(device):
    """float32 data far from zero (mean 1e4, std 1) on long rows/channels: statistics and outputs stay accurate
    (on "cuda" rows and channels of about a hundred: still several block strides)."""
    K, small = kernels_on(device), device == "cuda"
    rng = np.random.default_rng(7)
    x = _rand(rng, (2, 100 if small else 1 << 17), np.float32, loc=1e4)
    y, mean, rstd = to_host(K.layer_norm_fwd(to_dev(x, device), None, None, EPS))
    ry, rmean, rrstd = R.layer_norm_fwd(x, None, None, EPS)
    assert_close(y, ry, np.float32)
    np.testing.assert_allclose(rstd, rrstd, rtol=1e-5)
    np.testing.assert_allclose(mean, rmean, rtol=1e-9)
    xb = _rand(rng, (3, 4, 5, 6) if small else (16, 8, 64, 64), np.float32, loc=1e4)
    xo = _rand(rng, (4, 100 if small else 5000), np.float32)
    xo[:, 0] = [500.0, -3.0, 2.5, 1e4]                  # first element far from / near the row mean
    y, mean, rstd = to_host(K.layer_norm_fwd(to_dev(xo, device), None, None, EPS))
    ry, rmean, rrstd = R.layer_norm_fwd(xo, None, None, EPS)
    assert_close(y, ry, np.float32)
    np.testing.assert_allclose(rstd, rrstd, rtol=1e-5)
    x2d = _rand(rng, (90 if small else 5000, 12), np.float32, loc=1e4)
    for xx in (xb, xb[:, :3], x2d):                     # per-channel and per-task schedules
        y, mean, rstd, var = to_host(K.batch_norm_fwd_train(to_dev(xx, device), None, None, EPS))
        ry, rmean, rrstd, rvar = R.batch_norm_fwd_train(xx, None, None, EPS)
        assert_close(y, ry, np.float32)
        np.testing.assert_allclose(var, rvar, rtol=1e-5)
        dout = _rand(rng, xx.shape, np.float32)
        for a, e in zip(to_host(K.batch_norm_bwd_train(to_dev(dout, device), to_dev(xx, device), None,
                                                       to_dev(rmean, device), to_dev(rrstd, device))),
                        R.batch_norm_bwd_train(dout, xx, None, rmean, rrstd)):
            assert_close(a, e, np.float32, scale=2)


def test_zero_variance_is_finite(device, dtype):
    """A constant channel / row: output 0 * rstd (+ bias), finite gradients."""
    K = kernels_on(device)
    x = to_dev(np.full((4, 3, 5, 5), 2.5, dtype), device)
    y, mean, rstd, var = K.batch_norm_fwd_train(x, None, to_dev(np.ones(3, dtype), device), EPS)
    assert np.all(to_host(y) == 1) and np.all(to_host(var) == 0)
    for g in K.batch_norm_bwd_train(to_dev(np.ones((4, 3, 5, 5), dtype), device), x, None, mean, rstd):
        assert np.all(np.isfinite(to_host(g)))
    x2 = to_dev(np.full((3, 16), -1.25, dtype), device)
    y, mean, rstd = K.layer_norm_fwd(x2, None, None, EPS)
    assert np.all(to_host(y) == 0)
    for g in K.layer_norm_bwd(to_dev(np.ones((3, 16), dtype), device), x2, None, mean, rstd):
        assert np.all(np.isfinite(to_host(g)))


def test_empty_batch_in_eval(device):
    """batch norm (eval) with N = 0: empty results and zero parameter gradients (PyTorch's behaviour)."""
    K = kernels_on(device)
    x = to_dev(np.zeros((0, 3, 2), np.float64), device)
    y, mean, rstd = K.batch_norm_fwd_eval(x, to_dev(np.zeros(3), device), to_dev(np.ones(3), device), None, None,
                                          1e-5)
    assert to_host(y).shape == (0, 3, 2)
    dx, dw, db = to_host(K.batch_norm_bwd_eval(x, x, None, mean, rstd))
    assert dx.shape == (0, 3, 2) and dw.shape == db.shape == (3,) and not dw.any() and not db.any()


# ---- (4) book vectors ------------------------------------------------------------------------------
def test_book_vectors():
    x = Tensor(np.array([[1.0, 2.0], [2.0, 3.0]]))
    np.testing.assert_allclose(F.layer_norm(x, 2, eps=0.0)._data, [[-1, 1], [-1, 1]], atol=1e-12)
    np.testing.assert_allclose(F.batch_norm(x, None, None, training=True, eps=1e-20)._data, [[-1, -1], [1, 1]],
                               atol=1e-12)        # training needs eps > 0, as in PyTorch
    np.testing.assert_allclose(F.layer_norm(x, (2,))._data, [[-1, 1], [-1, 1]], atol=1e-4)


# ---- (5) bad input -----------------------------------------------------------------------------------
def _t(shape, dtype=np.float32):
    return Tensor(np.ones(shape, dtype) + np.arange(int(np.prod(shape))).reshape(shape).astype(dtype))


BN_BAD = [
    (dict(input=_t((4,))), ValueError, "input"),
    (dict(input=_t((2, 3, 1, 1, 1, 1))), ValueError, "input"),
    (dict(input=Tensor(np.ones((4, 3), np.int64))), TypeError, "input"),
    (dict(input=np.ones((4, 3), np.float32)), TypeError, "input"),
    (dict(running_mean=_t((4,))), ValueError, "running_mean"),
    (dict(running_var=_t((3, 1))), ValueError, "running_var"),
    (dict(running_mean=_t((3,), np.float64)), TypeError, "running_mean"),
    (dict(weight=_t((2,))), ValueError, "weight"),
    (dict(bias=_t((3, 3))), ValueError, "bias"),
    (dict(weight=_t((3,), np.float64)), TypeError, "weight"),
    (dict(eps=-1e-5), ValueError, "eps"),
    (dict(eps=0.0), ValueError, "eps"),                       # in training, as in PyTorch
    (dict(eps="small"), TypeError, "eps"),
    (dict(momentum=1.5), ValueError, "momentum"),
    (dict(momentum=-0.1), ValueError, "momentum"),
    (dict(training="yes"), TypeError, "training"),
    (dict(running_mean=None, running_var=None, training=False), ValueError, "running_mean"),
    (dict(running_var=None, training=True), ValueError, "running_var"),
    (dict(input=_t((1, 3)), training=True), ValueError, "input.*more than 1 value per channel"),
    (dict(input=_t((1, 3, 1, 1)), running_mean=None, running_var=None, training=True), ValueError,
     "more than 1 value"),
]


@pytest.mark.parametrize("kw,exc,match", BN_BAD, ids=lambda v: "")
def test_batch_norm_bad_input(kw, exc, match):
    args = dict(input=_t((4, 3, 2, 2)), running_mean=_t((3,)), running_var=_t((3,)), weight=_t((3,)),
                bias=_t((3,)), training=True)
    args.update(kw)
    with pytest.raises(exc, match=match):
        F.batch_norm(**args)


LN_BAD = [
    (dict(normalized_shape=(4, 4)), ValueError, "normalized_shape"),
    (dict(normalized_shape=5), ValueError, "normalized_shape"),
    (dict(normalized_shape=(2, 3, 4, 5)), ValueError, "normalized_shape"),
    (dict(normalized_shape=()), ValueError, "normalized_shape"),
    (dict(normalized_shape=(0,)), ValueError, "normalized_shape"),
    (dict(normalized_shape=2.0), TypeError, "normalized_shape"),
    (dict(normalized_shape=("a",)), TypeError, "normalized_shape"),
    (dict(weight=_t((3,))), ValueError, "weight"),
    (dict(bias=_t((3, 4))), ValueError, "bias"),
    (dict(weight=_t((4,), np.float64)), TypeError, "weight"),
    (dict(input=Tensor(np.ones((2, 4), np.int32)), weight=None, bias=None), TypeError, "input"),
    (dict(eps=-1.0), ValueError, "eps"),
    (dict(eps=None), TypeError, "eps"),
]


@pytest.mark.parametrize("kw,exc,match", LN_BAD, ids=lambda v: "")
def test_layer_norm_bad_input(kw, exc, match):
    args = dict(input=_t((2, 3, 4)), normalized_shape=4, weight=_t((4,)), bias=_t((4,)))
    args.update(kw)
    with pytest.raises(exc, match=match):
        F.layer_norm(**args)


# ---- (6) engine ops vs the reference and PyTorch ------------------------------------------------------
def _leaf(a, device="cpu"):
    return engine.tensor(a, dtype=a.dtype, requires_grad=True, device=device)


@pytest.mark.parametrize(*on_devices("shape,training", cases([(6, 5), (4, 3, 7), (3, 10, 5, 6)], [True, False]),
                                     [((6, 5), False), ((4, 3, 7), True), ((3, 10, 5, 6), True)]))
def test_batch_norm_engine_vs_reference(device, shape, training):
    rng = np.random.default_rng(5)
    C = shape[1]
    x, w, b, dout = _rand(rng, shape), _rand(rng, C), _rand(rng, C), _rand(rng, shape)
    rm0, rv0 = _rand(rng, C), rng.uniform(0.5, 2.0, C)
    tx, tw, tb = _leaf(x, device), _leaf(w, device), _leaf(b, device)
    rm, rv = engine.tensor(rm0, device=device), engine.tensor(rv0, device=device)
    y = F.batch_norm(tx, rm, rv, tw, tb, training=training, momentum=0.3, eps=EPS)
    y.backward(engine.tensor(dout, device=device))
    assert y.device == rm.device == tx.grad.device == device
    if training:
        ry, mean, rstd, var = R.batch_norm_fwd_train(x, w, b, EPS)
        grads = R.batch_norm_bwd_train(dout, x, w, mean, rstd)
        n = x.size // C
        assert_close(rm.numpy(), 0.7 * rm0 + 0.3 * mean, np.float64)
        assert_close(rv.numpy(), 0.7 * rv0 + 0.3 * var * n / (n - 1), np.float64)
    else:
        ry, mean, rstd = R.batch_norm_fwd_eval(x, rm0, rv0, w, b, EPS)
        grads = R.batch_norm_bwd_eval(dout, x, w, mean, rstd)
        np.testing.assert_array_equal(rm.numpy(), rm0)
    assert_close(y.numpy(), ry, np.float64)
    for t, g in zip((tx, tw, tb), grads):
        assert_close(t.grad.numpy(), g, np.float64)
    assert rm.grad is None and not rm.requires_grad


def test_layer_norm_engine_vs_reference(device):
    rng = np.random.default_rng(6)
    x, w, b, dout = _rand(rng, (2, 3, 4, 5)), _rand(rng, (4, 5)), _rand(rng, (4, 5)), _rand(rng, (2, 3, 4, 5))
    tx, tw, tb = _leaf(x, device), _leaf(w, device), _leaf(b, device)
    y = F.layer_norm(tx, (4, 5), tw, tb)
    y.backward(engine.tensor(dout, device=device))
    assert y.device == tw.grad.device == device
    ry, mean, rstd = R.layer_norm_fwd(x.reshape(6, 20), w.reshape(20), b.reshape(20), EPS)
    dx, dw, db = R.layer_norm_bwd(dout.reshape(6, 20), x.reshape(6, 20), w.reshape(20), mean, rstd)
    assert_close(y.numpy(), ry.reshape(x.shape), np.float64)
    assert_close(tx.grad.numpy(), dx.reshape(x.shape), np.float64)
    assert_close(tw.grad.numpy(), dw.reshape(4, 5), np.float64)
    assert_close(tb.grad.numpy(), db.reshape(4, 5), np.float64)


def test_no_grad_still_updates_running_stats_and_optional_parts(device):
    rng = np.random.default_rng(8)
    xh = _rand(rng, (8, 4, 3, 3), np.float32)
    x = engine.tensor(xh, device=device)
    rm, rv = engine.zeros(4, device=device), engine.ones(4, device=device)
    with engine.no_grad():
        y = F.batch_norm(x, rm, rv, training=True)
    assert y.dtype == np.float32 and not y.requires_grad and np.any(rm.numpy() != 0)
    y = F.batch_norm(_leaf(xh, device), None, None, training=True)   # batch stats only
    y.backward(engine.ones(*y.shape, device=device))
    tw = _leaf(np.ones(4, np.float32), device)                       # weight only, x without grad
    F.batch_norm(x, rm, rv, tw, None, training=False).sum().backward()
    assert tw.grad.shape == (4,) and tw.grad.device == device
    one = F.batch_norm(x[:1, :, :1, :1], rm, rv, training=False)     # 1 value per channel: fine in eval
    assert one.shape == (1, 4, 1, 1)


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("shape", [(16, 6), (5, 4, 9), (4, 10, 6, 7), (2, 3, 5, 5)], ids=str)
def test_batch_norm_vs_torch(shape, training, dtype):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(9)
    C = shape[1]
    x, w, b, dout = (_rand(rng, s, dtype, loc=0.5) for s in (shape, C, C, shape))
    rm0, rv0 = _rand(rng, C, dtype), rng.uniform(0.5, 2.0, C).astype(dtype)
    tx, tw, tb, rm, rv = _leaf(x), _leaf(w), _leaf(b), Tensor(rm0.copy()), Tensor(rv0.copy())
    y = F.batch_norm(tx, rm, rv, tw, tb, training=training, momentum=0.2, eps=1e-3)
    y.backward(dout)
    px, pw, pb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    prm, prv = torch.tensor(rm0), torch.tensor(rv0)
    py = torch.nn.functional.batch_norm(px, prm, prv, pw, pb, training=training, momentum=0.2, eps=1e-3)
    py.backward(torch.tensor(dout))
    for ours, theirs in ((y._data, py), (rm._data, prm), (rv._data, prv), (tx.grad._data, px.grad),
                         (tw.grad._data, pw.grad), (tb.grad._data, pb.grad)):
        assert ours.dtype == dtype
        assert_close(ours, theirs.detach().numpy(), dtype, scale=4)


@pytest.mark.parametrize("shape,nshape", [((6, 10), 10), ((2, 3, 4, 5), (4, 5)), ((3, 7), (3, 7))], ids=str)
def test_layer_norm_vs_torch(shape, nshape, dtype):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(10)
    ns = (nshape,) if isinstance(nshape, int) else nshape
    x, w, b, dout = (_rand(rng, s, dtype, loc=0.5) for s in (shape, ns, ns, shape))
    tx, tw, tb = _leaf(x), _leaf(w), _leaf(b)
    y = F.layer_norm(tx, nshape, tw, tb, eps=1e-4)
    y.backward(dout)
    px, pw, pb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    py = torch.nn.functional.layer_norm(px, ns, pw, pb, eps=1e-4)
    py.backward(torch.tensor(dout))
    for ours, theirs in ((y._data, py), (tx.grad._data, px.grad), (tw.grad._data, pw.grad), (tb.grad._data, pb.grad)):
        assert ours.dtype == dtype
        assert_close(ours, theirs.detach().numpy(), dtype, scale=4)
