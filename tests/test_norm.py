"""Norm family: batch_norm (train / eval) and layer_norm. Reference vs finite differences, CPU kernels vs the
reference, determinism, book vectors, bad input, and the engine ops against the reference and PyTorch."""
import numba
import numpy as np
import pytest

import engine
import engine.functional as F
import kernels.cpu.norm as K
import kernels.reference.norm as R
from conftest import assert_close, check_backward_fd, noncontig
from engine.tensor import Tensor

EPS = 1e-5


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


# ---- (2) CPU kernels vs the reference --------------------------------------------------------------
# (4,16,5,7), (2,9,4,4): per-channel schedule; the rest: per-task schedule (2-D, few channels, small L,
# L split across tasks for (1,2,9000)).
BN_SHAPES = [(4, 16, 5, 7), (2, 9, 4, 4), (3, 5, 9), (33, 12), (2, 3, 300), (6, 10, 3), (1, 2, 9000),
             (3, 8, 2, 3, 5)]


@pytest.mark.parametrize("affine", [True, False], ids=["affine", "plain"])
@pytest.mark.parametrize("shape", BN_SHAPES, ids=str)
def test_batch_norm_kernels(shape, affine, dtype):
    rng = np.random.default_rng(hash(shape) % 2**32)
    C = shape[1]
    x = _rand(rng, shape, dtype, loc=1.5, scale=2.0)
    dout = _rand(rng, shape, dtype)
    w = _rand(rng, C, dtype) if affine else None
    b = _rand(rng, C, dtype) if affine else None
    xs, gs = noncontig(x), noncontig(dout)

    y, mean, rstd, var = K.batch_norm_fwd_train(xs, w, b, EPS)
    ry, rmean, rrstd, rvar = R.batch_norm_fwd_train(x, w, b, EPS)
    assert y.dtype == dtype and y.shape == shape
    for a, e in ((y, ry), (mean, rmean), (rstd, rrstd), (var, rvar)):
        assert_close(a, e, dtype)
    got = K.batch_norm_bwd_train(gs, xs, w, rmean, rrstd)
    for a, e in zip(got, R.batch_norm_bwd_train(dout, x, w, rmean, rrstd)):
        assert a.dtype == dtype
        assert_close(a, e, dtype, scale=2)

    rm, rv = _rand(rng, C, dtype), rng.uniform(0.5, 2.0, C).astype(dtype)
    y, mean, rstd = K.batch_norm_fwd_eval(xs, rm, rv, w, b, EPS)
    ry, rmean, rrstd = R.batch_norm_fwd_eval(x, rm, rv, w, b, EPS)
    for a, e in ((y, ry), (mean, rmean), (rstd, rrstd)):
        assert_close(a, e, dtype)
    got = K.batch_norm_bwd_eval(gs, xs, w, rmean, rrstd)
    for a, e in zip(got, R.batch_norm_bwd_eval(dout, x, w, rmean, rrstd)):
        assert_close(a, e, dtype, scale=2)


LN_SHAPES = [((7, 33), EPS), ((5, 1000), EPS), ((130, 17), EPS), ((3, 257), EPS), ((40, 64), EPS),
             ((4, 1), 0.1), ((0, 5), EPS),
             ((301, 257), EPS)]          # past PARALLEL_MIN: the prange kernels, rows not a multiple of a block


@pytest.mark.parametrize("affine", [True, False], ids=["affine", "plain"])
@pytest.mark.parametrize("shape,eps", LN_SHAPES, ids=lambda v: str(v))
def test_layer_norm_kernels(shape, eps, affine, dtype):
    rng = np.random.default_rng(sum(shape))
    D = shape[1]
    x = _rand(rng, shape, dtype, loc=-0.7, scale=3.0)
    dout = _rand(rng, shape, dtype)
    w = _rand(rng, D, dtype) if affine else None
    b = _rand(rng, D, dtype) if affine else None
    nc = noncontig if x.size else (lambda a: a)        # conftest.noncontig rejects empty arrays
    y, mean, rstd = K.layer_norm_fwd(nc(x), w, b, eps)
    ref = R.layer_norm_fwd(x, w, b, eps)
    assert y.dtype == dtype
    for a, e in zip((y, mean, rstd), ref):
        assert_close(a, e, dtype)
    got = K.layer_norm_bwd(nc(dout), nc(x), w, ref[1], ref[2])
    for a, e in zip(got, R.layer_norm_bwd(dout, x, w, ref[1], ref[2])):
        assert a.dtype == dtype
        assert_close(a, e, dtype, scale=2)


def test_float32_statistics_large_offset_and_long_rows():
    """float32 data far from zero (mean 1e4, std 1) on long rows/channels: statistics and outputs stay accurate."""
    rng = np.random.default_rng(7)
    x = _rand(rng, (2, 1 << 17), np.float32, loc=1e4)
    y, mean, rstd = K.layer_norm_fwd(x, None, None, EPS)
    ry, rmean, rrstd = R.layer_norm_fwd(x, None, None, EPS)
    assert_close(y, ry, np.float32)
    np.testing.assert_allclose(rstd, rrstd, rtol=1e-5)
    np.testing.assert_allclose(mean, rmean, rtol=1e-9)
    xb = _rand(rng, (16, 8, 64, 64), np.float32, loc=1e4)
    xo = _rand(rng, (4, 5000), np.float32)
    xo[:, 0] = [500.0, -3.0, 2.5, 1e4]                  # first element far from / near the row mean
    y, mean, rstd = K.layer_norm_fwd(xo, None, None, EPS)
    ry, rmean, rrstd = R.layer_norm_fwd(xo, None, None, EPS)
    assert_close(y, ry, np.float32)
    np.testing.assert_allclose(rstd, rrstd, rtol=1e-5)
    x2d = _rand(rng, (5000, 12), np.float32, loc=1e4)
    for xx in (xb, xb[:, :3], x2d):                     # per-channel and per-task schedules
        y, mean, rstd, var = K.batch_norm_fwd_train(xx, None, None, EPS)
        ry, rmean, rrstd, rvar = R.batch_norm_fwd_train(xx, None, None, EPS)
        assert_close(y, ry, np.float32)
        np.testing.assert_allclose(var, rvar, rtol=1e-5)
        dout = _rand(rng, xx.shape, np.float32)
        for a, e in zip(K.batch_norm_bwd_train(dout, xx, None, rmean, rrstd),
                        R.batch_norm_bwd_train(dout, xx, None, rmean, rrstd)):
            assert_close(a, e, np.float32, scale=2)


def test_zero_variance_is_finite(dtype):
    """A constant channel / row: output 0 * rstd (+ bias), finite gradients."""
    x = np.full((4, 3, 5, 5), 2.5, dtype)
    y, mean, rstd, var = K.batch_norm_fwd_train(x, None, np.ones(3, dtype), EPS)
    assert np.all(y == 1) and np.all(var == 0)
    for g in K.batch_norm_bwd_train(np.ones_like(x), x, None, mean, rstd):
        assert np.all(np.isfinite(g))
    x2 = np.full((3, 16), -1.25, dtype)
    y, mean, rstd = K.layer_norm_fwd(x2, None, None, EPS)
    assert np.all(y == 0)
    for g in K.layer_norm_bwd(np.ones_like(x2), x2, None, mean, rstd):
        assert np.all(np.isfinite(g))


# ---- (3) determinism --------------------------------------------------------------------------------
def _all_outputs(x4, x2, dout4, dout2):
    out = []
    for x, g in ((x4, dout4), (x4[:, :3], dout4[:, :3]), (x2, dout2)):      # both batch-norm schedules
        y, mean, rstd, _ = K.batch_norm_fwd_train(x, None, None, EPS)
        out += [y, mean, rstd, *K.batch_norm_bwd_train(g, x, None, mean, rstd)]
    y, mean, rstd = K.layer_norm_fwd(x2, None, None, EPS)
    return out + [y, mean, rstd, *K.layer_norm_bwd(dout2, x2, None, mean, rstd)]


def test_bitwise_repeat_and_thread_count():
    rng = np.random.default_rng(11)
    x4, dout4 = _rand(rng, (8, 16, 9, 9), np.float32), _rand(rng, (8, 16, 9, 9), np.float32)
    x2, dout2 = _rand(rng, (300, 70), np.float32), _rand(rng, (300, 70), np.float32)
    first = _all_outputs(x4, x2, dout4, dout2)
    again = _all_outputs(x4, x2, dout4, dout2)
    prev = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        serial = _all_outputs(x4, x2, dout4, dout2)
    finally:
        numba.set_num_threads(prev)
    for a, b, c in zip(first, again, serial):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)


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
def _leaf(a):
    return Tensor(a.copy(), requires_grad=True)


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("shape", [(6, 5), (4, 3, 7), (3, 10, 5, 6)], ids=str)
def test_batch_norm_engine_vs_reference(shape, training):
    rng = np.random.default_rng(5)
    C = shape[1]
    x, w, b, dout = _rand(rng, shape), _rand(rng, C), _rand(rng, C), _rand(rng, shape)
    rm0, rv0 = _rand(rng, C), rng.uniform(0.5, 2.0, C)
    tx, tw, tb = _leaf(x), _leaf(w), _leaf(b)
    rm, rv = Tensor(rm0.copy()), Tensor(rv0.copy())
    y = F.batch_norm(tx, rm, rv, tw, tb, training=training, momentum=0.3, eps=EPS)
    y.backward(dout)
    if training:
        ry, mean, rstd, var = R.batch_norm_fwd_train(x, w, b, EPS)
        grads = R.batch_norm_bwd_train(dout, x, w, mean, rstd)
        n = x.size // C
        assert_close(rm._data, 0.7 * rm0 + 0.3 * mean, np.float64)
        assert_close(rv._data, 0.7 * rv0 + 0.3 * var * n / (n - 1), np.float64)
    else:
        ry, mean, rstd = R.batch_norm_fwd_eval(x, rm0, rv0, w, b, EPS)
        grads = R.batch_norm_bwd_eval(dout, x, w, mean, rstd)
        np.testing.assert_array_equal(rm._data, rm0)
    assert_close(y._data, ry, np.float64)
    for t, g in zip((tx, tw, tb), grads):
        assert_close(t.grad._data, g, np.float64)
    assert rm.grad is None and not rm.requires_grad


def test_layer_norm_engine_vs_reference():
    rng = np.random.default_rng(6)
    x, w, b, dout = _rand(rng, (2, 3, 4, 5)), _rand(rng, (4, 5)), _rand(rng, (4, 5)), _rand(rng, (2, 3, 4, 5))
    tx, tw, tb = _leaf(x), _leaf(w), _leaf(b)
    y = F.layer_norm(tx, (4, 5), tw, tb)
    y.backward(dout)
    ry, mean, rstd = R.layer_norm_fwd(x.reshape(6, 20), w.reshape(20), b.reshape(20), EPS)
    dx, dw, db = R.layer_norm_bwd(dout.reshape(6, 20), x.reshape(6, 20), w.reshape(20), mean, rstd)
    assert_close(y._data, ry.reshape(x.shape), np.float64)
    assert_close(tx.grad._data, dx.reshape(x.shape), np.float64)
    assert_close(tw.grad._data, dw.reshape(4, 5), np.float64)
    assert_close(tb.grad._data, db.reshape(4, 5), np.float64)


def test_no_grad_still_updates_running_stats_and_optional_parts():
    rng = np.random.default_rng(8)
    x = Tensor(_rand(rng, (8, 4, 3, 3), np.float32))
    rm, rv = Tensor(np.zeros(4, np.float32)), Tensor(np.ones(4, np.float32))
    with engine.no_grad():
        y = F.batch_norm(x, rm, rv, training=True)
    assert y.dtype == np.float32 and not y.requires_grad and np.any(rm._data != 0)
    y = F.batch_norm(_leaf(x._data), None, None, training=True)      # batch stats only
    y.backward(np.ones(y.shape, np.float32))
    tw = _leaf(np.ones(4, np.float32))                                # weight only, x without grad
    F.batch_norm(x, rm, rv, tw, None, training=False).sum().backward()
    assert tw.grad.shape == (4,)
    one = F.batch_norm(Tensor(x._data[:1, :, :1, :1]), rm, rv, training=False)   # 1 value per channel: fine in eval
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
