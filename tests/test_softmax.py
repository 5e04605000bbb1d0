"""softmax, log_softmax, masked_softmax: reference vs finite differences, both backends' kernels vs the
reference, engine ops (on each device) vs the reference and torch. Determinism: tests/test_determinism.py."""
import numpy as np
import pytest

import engine
import engine.functional as F
import kernels.reference as ref
from conftest import DTYPES, assert_close, cases, check_backward_fd, kernels_on, noncontig, on_devices, to_dev, to_host

SHAPES = [(1, 1), (3, 1), (4, 7), (5, 97), (3, 1029), (2, 2000)]   # length-1 rows, odd lengths, > BLOCK
KINDS = ["normal", "spiky", "huge", "neginf"]
f32, f64 = np.float32, np.float64


def logits(shape, kind, seed=0):
    """Meaningful rows: 'normal', 'spiky' (a few dominant logits), 'huge' (+-1e4), 'neginf' (-inf entries
    and, with 3+ rows, a whole -inf row)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape) * 2
    if kind == "spiky":
        idx = rng.integers(0, shape[-1], size=(shape[0], 2))
        for r in range(shape[0]):
            x[r, idx[r]] += rng.uniform(8, 15, size=2)
    elif kind == "huge":
        x = x * 5e3
        x[:, 0] = 1e4
        x[-1, -1] = -1e4
    elif kind == "neginf":
        x[rng.random(shape) < 0.3] = -np.inf
        x[0, 0] = 1.0                          # row 0 keeps a finite entry
        if shape[0] >= 3:
            x[1] = -np.inf
    return x


def assert_close_inf(actual, expected, dtype, **kw):
    """assert_close on the finite entries, and the same -inf pattern."""
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    np.testing.assert_array_equal(np.isneginf(actual), np.isneginf(expected))
    fin = np.isfinite(expected)
    assert np.isfinite(actual[fin]).all()
    assert_close(actual[fin], expected[fin], dtype, **kw)


# ---- (1) reference backward vs finite differences ------------------------------------------------------
@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
@pytest.mark.parametrize("shape", [(1, 1), (3, 5), (2, 17)])
def test_reference_backward_fd(op, shape):
    x = logits(shape, "spiky", seed=1)
    fwd, bwd = getattr(ref, op + "_fwd"), getattr(ref, op + "_bwd")
    check_backward_fd(fwd, lambda d, x: (bwd(d, fwd(x)),), [x])


def test_reference_masked_backward_fd():
    x = logits((4, 9), "normal", seed=2)
    lens = np.array([0, 1, 5, 9])
    check_backward_fd(lambda x: ref.masked_softmax_fwd(x, lens),
                      lambda d, x: (ref.masked_softmax_bwd(d, ref.masked_softmax_fwd(x, lens), lens),), [x])


# ---- (2) kernels vs reference (the cuda half: a subset covering every kind, both dtypes, rows past a block) ----
@pytest.mark.parametrize(*on_devices("shape,kind,dtype", cases(SHAPES, KINDS, DTYPES),
                                     [((1, 1), "normal", f64), ((4, 7), "neginf", f32), ((5, 97), "spiky", f64),
                                      ((3, 1029), "huge", f32)]))
def test_softmax_kernels_vs_reference(device, shape, kind, dtype):
    K = kernels_on(device)
    x = logits(shape, kind).astype(dtype)
    d = np.random.default_rng(3).standard_normal(shape).astype(dtype)
    y = K.softmax_fwd(noncontig(x, device))
    y_ref = ref.softmax_fwd(x)
    assert y.dtype == dtype and y.shape == shape
    assert_close(to_host(y), y_ref, dtype)
    assert_close(to_host(K.softmax_bwd(noncontig(d, device), y)), ref.softmax_bwd(d, y_ref), dtype, scale=4)
    yl = K.log_softmax_fwd(to_dev(x, device))
    yl_ref = ref.log_softmax_fwd(x)
    assert yl.dtype == dtype
    assert_close_inf(to_host(yl), yl_ref, dtype)
    assert_close_inf(to_host(K.log_softmax_bwd(to_dev(d, device), yl)), ref.log_softmax_bwd(d, yl_ref), dtype,
                     scale=4)


def test_all_neginf_rows(device, dtype):
    K = kernels_on(device)
    x = np.full((3, 5), -np.inf, dtype)
    x[1, 2] = 0.0
    y = to_host(K.softmax_fwd(to_dev(x, device)))
    np.testing.assert_array_equal(y, [[0] * 5, [0, 0, 1, 0, 0], [0] * 5])
    yl = to_host(K.log_softmax_fwd(to_dev(x, device)))
    assert np.isneginf(yl[[0, 2]]).all() and yl[1, 2] == 0 and np.isneginf(yl[1, [0, 1, 3, 4]]).all()
    d = np.ones_like(x)
    np.testing.assert_array_equal(to_host(K.softmax_bwd(to_dev(d, device), to_dev(y, device))), np.zeros_like(x))
    np.testing.assert_array_equal(ref.softmax_fwd(x), y)
    np.testing.assert_array_equal(ref.log_softmax_fwd(x), yl)


def test_nan_propagates(device):
    K = kernels_on(device)
    x = np.zeros((2, 6), np.float32)
    x[0, 3] = np.nan
    y, yl = to_host(K.softmax_fwd(to_dev(x, device))), to_host(K.log_softmax_fwd(to_dev(x, device)))
    assert np.isnan(y[0]).all() and np.isnan(yl[0]).all()
    np.testing.assert_allclose(y[1], 1 / 6, rtol=1e-6)


def test_empty_inputs(device):
    K = kernels_on(device)
    for shape in [(0, 5), (3, 0)]:
        x = to_dev(np.zeros(shape, np.float32), device)
        y = K.softmax_fwd(x)
        assert to_host(y).shape == to_host(K.log_softmax_fwd(x)).shape == shape
        assert to_host(K.softmax_bwd(x, y)).shape == shape


@pytest.mark.parametrize(*on_devices("shape,kind,dtype", cases([(4, 1), (6, 9), (5, 1029)], KINDS[1:], DTYPES),
                                     [((4, 1), "neginf", f32), ((6, 9), "spiky", f64), ((5, 1029), "huge", f32)]))
def test_masked_softmax_kernels_vs_reference(device, shape, kind, dtype):
    K = kernels_on(device)
    rng = np.random.default_rng(4)
    x = logits(shape, kind).astype(dtype)
    lens = rng.integers(0, shape[1] + 1, size=shape[0])
    lens[0], lens[-1] = 0, shape[1]                                          # no valid key: zeros, not NaN
    d = rng.standard_normal(shape).astype(dtype)
    y = K.masked_softmax_fwd(noncontig(x, device), to_dev(lens, device))
    y_ref = ref.masked_softmax_fwd(x, lens)
    yh = to_host(y)
    assert yh.dtype == dtype
    assert_close(yh, y_ref, dtype)
    keep = np.arange(shape[1]) < lens[:, None]
    assert (yh[~keep] == 0).all() and (yh[0] == 0).all()
    dx = to_host(K.masked_softmax_bwd(noncontig(d, device), y, to_dev(lens, device)))
    assert_close(dx, ref.masked_softmax_bwd(d, y_ref, lens), dtype, scale=4)
    assert (dx[~keep] == 0).all()


# ---- (4) book facts ------------------------------------------------------------------------------------
def test_book_softmax_rows_sum_to_one():
    X = engine.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    p = F.softmax(X, dim=1).numpy()
    np.testing.assert_allclose(p.sum(1), [1, 1], rtol=1e-6)
    e = np.exp([1.0, 2.0, 3.0])
    np.testing.assert_allclose(p[0], e / e.sum(), rtol=1e-6)
    np.testing.assert_allclose(p[1], p[0], rtol=1e-6)             # shift invariance


def test_book_masked_softmax_examples():
    rng = np.random.default_rng(8)
    X = engine.tensor(rng.random((2, 2, 4)))
    p = F.masked_softmax(X, engine.tensor([2, 3])).numpy()
    assert (p[0, :, 2:] == 0).all() and (p[1, :, 3:] == 0).all()
    np.testing.assert_allclose(p.sum(-1), 1, rtol=1e-6)
    p = F.masked_softmax(X, engine.tensor([[1, 3], [2, 4]])).numpy()
    np.testing.assert_array_equal(p[0, 0], [1, 0, 0, 0])
    assert (p[0, 1, 3:] == 0).all() and (p[1, 0, 2:] == 0).all()
    np.testing.assert_allclose(p.sum(-1), 1, rtol=1e-6)


# ---- (5) bad inputs ------------------------------------------------------------------------------------
def test_bad_inputs():
    x = engine.randn(2, 3, 4)
    with pytest.raises(TypeError, match="input"):
        F.softmax(np.zeros((2, 3)))
    with pytest.raises(TypeError, match="input"):
        F.log_softmax(engine.tensor([[1, 2]]))
    with pytest.raises(ValueError, match="dim"):
        F.softmax(x, dim=3)
    with pytest.raises(ValueError, match="dim"):
        F.log_softmax(x, dim=-4)
    with pytest.raises(TypeError, match="dim"):
        F.softmax(x, dim=1.0)
    with pytest.raises(TypeError, match="X"):
        F.masked_softmax(engine.tensor([[1, 2]]), None)
    with pytest.raises(ValueError, match="valid_lens"):
        F.masked_softmax(x, engine.tensor([1, -1]))
    with pytest.raises(ValueError, match="valid_lens"):
        F.masked_softmax(x, engine.tensor([1, 5]))
    with pytest.raises(ValueError, match="valid_lens"):
        F.masked_softmax(x, engine.tensor([1, 2, 3]))
    with pytest.raises(ValueError, match="valid_lens"):
        F.masked_softmax(x, engine.tensor([[1, 2], [3, 4], [1, 1]]))
    with pytest.raises(ValueError, match="valid_lens"):
        F.masked_softmax(x, engine.tensor(np.ones((2, 3, 4), np.int64)))
    with pytest.raises(TypeError, match="valid_lens"):
        F.masked_softmax(x, engine.tensor([1.0, 2.0]))
    with pytest.raises(TypeError, match="valid_lens"):
        F.masked_softmax(x, [1, 2])
    with pytest.raises(ValueError, match="X"):
        F.masked_softmax(engine.randn(4), engine.tensor([1]))


# ---- (6) engine level ----------------------------------------------------------------------------------
@pytest.mark.parametrize(*on_devices("op,dim,dtype", cases(["softmax", "log_softmax"], [0, 1, -1], DTYPES),
                                     [("softmax", 0, f32), ("log_softmax", 1, f64), ("softmax", -1, f64)]))
def test_engine_vs_reference_any_dim(device, op, dim, dtype):
    x = np.moveaxis(logits((3 * 5, 7), "spiky", seed=9).reshape(3, 5, 7), -1, dim).copy()
    g = np.random.default_rng(10).standard_normal(x.shape)
    a = engine.tensor(x, dtype=dtype, requires_grad=True, device=device)
    y = getattr(F, op)(a, dim=dim)
    y.backward(engine.tensor(g, dtype=dtype, device=device))
    fwd, bwd = getattr(ref, op + "_fwd"), getattr(ref, op + "_bwd")
    xm = np.moveaxis(x, dim, -1).reshape(-1, x.shape[dim])
    y_ref = fwd(xm)
    dx_ref = bwd(np.moveaxis(g, dim, -1).reshape(xm.shape), y_ref)
    back = lambda a2: np.moveaxis(a2.reshape(np.moveaxis(x, dim, -1).shape), -1, dim)   # noqa: E731
    assert y.dtype == dtype and y.shape == x.shape and a.grad.shape == x.shape
    assert y.device == a.grad.device == device
    assert_close(y.numpy(), back(y_ref), dtype)
    assert_close(a.grad.numpy(), back(dx_ref), dtype, scale=4)


def test_engine_transposed_input_and_method(device):
    x = logits((6, 5), "spiky", seed=11)
    a = engine.tensor(x, dtype=np.float64, device=device).transpose()          # non-contiguous storage
    assert not a._data.flags.c_contiguous
    assert_close(F.softmax(a, dim=0).numpy(), ref.softmax_fwd(x).T, np.float64)
    assert_close(a.softmax(-1).numpy(), ref.softmax_fwd(x.T), np.float64)
    assert_close(a.log_softmax(0).numpy(), ref.log_softmax_fwd(x).T, np.float64)
    s = F.softmax(engine.tensor(3.0, device=device))
    assert s.shape == () and s.item() == 1.0


@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
@pytest.mark.parametrize("dim", [0, 2, -1])
def test_engine_vs_torch(op, dim):
    torch = pytest.importorskip("torch")
    x = logits((4 * 3, 6), "huge", seed=12).reshape(4, 3, 6)
    x[0, 1, 2] = -np.inf
    g = np.random.default_rng(13).standard_normal(x.shape)
    a = engine.tensor(x, dtype=np.float64, requires_grad=True)
    y = getattr(F, op)(a, dim=dim)
    y.backward(g)
    ta = torch.tensor(x, requires_grad=True)
    ty = getattr(torch, op)(ta, dim=dim)
    ty.backward(torch.tensor(g))
    np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(a.grad.numpy(), ta.grad.numpy(), rtol=1e-10, atol=1e-10)


def test_engine_all_neginf_slice_documented(device):
    """A slice of all -inf: softmax gives zeros and zero gradient, log_softmax -inf (PyTorch: NaN)."""
    x = np.zeros((2, 3))
    x[1] = -np.inf
    a = engine.tensor(x, dtype=np.float64, requires_grad=True, device=device)
    y = F.softmax(a)
    y.backward(engine.ones(2, 3, dtype=np.float64, device=device))
    np.testing.assert_array_equal(y.numpy()[1], 0)
    np.testing.assert_array_equal(a.grad.numpy(), 0)
    assert np.isneginf(F.log_softmax(a).numpy()[1]).all()


@pytest.mark.parametrize(*on_devices("vshape,dtype", cases(["none", "B", "BQ"], DTYPES),
                                     [("none", f32), ("B", f64), ("BQ", f32)]))
def test_engine_masked_softmax(device, vshape, dtype):
    rng = np.random.default_rng(14)
    B, Q, K = 3, 4, 9
    x = logits((B * Q, K), "spiky", seed=15).reshape(B, Q, K)
    if vshape == "none":
        vl, lens = None, np.full(B * Q, K)
    elif vshape == "B":
        v = np.array([0, 4, 9])
        vl, lens = engine.tensor(v, device=device), np.repeat(v, Q)
    else:
        v = rng.integers(0, K + 1, (B, Q))
        v[1, 2] = 0
        vl, lens = engine.tensor(v, device=device), v.reshape(-1)
    g = rng.standard_normal(x.shape)
    a = engine.tensor(x, dtype=dtype, requires_grad=True, device=device)
    y = F.masked_softmax(a, vl)
    y.backward(engine.tensor(g, dtype=dtype, device=device))
    assert y.device == device
    y_ref = ref.masked_softmax_fwd(x.reshape(-1, K), lens)
    assert_close(y.numpy(), y_ref.reshape(x.shape), dtype)
    assert_close(a.grad.numpy(), ref.masked_softmax_bwd(g.reshape(-1, K), y_ref, lens).reshape(x.shape), dtype, scale=4)
    zero_rows = (lens == 0).reshape(B, Q)
    assert (y.numpy()[zero_rows] == 0).all() and (a.grad.numpy()[zero_rows] == 0).all()


def test_engine_masked_softmax_vs_torch():
    """Rows with at least one valid key agree with torch's -inf masking; fully masked rows are zeros here."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(16)
    x = rng.standard_normal((2, 3, 5))
    v = np.array([[1, 5, 3], [2, 0, 4]])
    a = engine.tensor(x, dtype=np.float64, requires_grad=True)
    y = F.masked_softmax(a, engine.tensor(v))
    g = rng.standard_normal(x.shape)
    y.backward(g)
    mask = np.arange(5) >= v[..., None]
    ta = torch.tensor(x, requires_grad=True)
    ty = torch.softmax(ta.masked_fill(torch.tensor(mask), float("-inf")), dim=-1)
    g[v == 0] = 0                                   # torch's fully masked row is NaN: keep it out
    ty.backward(torch.tensor(g))
    ok = v > 0
    np.testing.assert_allclose(y.numpy()[ok], ty.detach().numpy()[ok], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(a.grad.numpy()[ok], ta.grad.numpy()[ok], rtol=1e-10, atol=1e-15)
    assert (y.numpy()[~ok] == 0).all()
