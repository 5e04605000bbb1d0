"""relu, sigmoid, tanh, gelu, dropout: references against finite differences, both backends' kernels against
the references, engine ops (on each device) against the tape and PyTorch; plus the vectorizable exp the CPU
kernels use. Determinism: tests/test_determinism.py."""
import numba
import numpy as np
import pytest

import engine
import engine.functional as F
import kernels.reference as ref
from conftest import (DTYPES, assert_close, cases, check_backward_fd, check_engine_grad, kernels_on, noncontig,
                      on_devices, to_dev, to_host)
from kernels.cpu._math import vexp_array, vexp_neg

f32, f64 = np.float32, np.float64

rng = np.random.default_rng(0)


def off_kink(shape):
    x = rng.standard_normal(shape)
    return np.where(np.abs(x) < 0.05, 0.5, x)          # keep finite differences off relu's kink


@pytest.mark.parametrize("op", ["relu", "sigmoid", "tanh"])
def test_reference_backward_matches_finite_differences(op):
    fwd, bwd = getattr(ref, f"{op}_fwd"), getattr(ref, f"{op}_bwd")
    check_backward_fd(fwd, lambda dout, x: bwd(dout, fwd(x)), [off_kink((7, 5))])


@pytest.mark.parametrize(*on_devices("op,shape,dtype",
                                     cases(["relu", "sigmoid", "tanh"], [(1,), (7, 5), (3, 4, 33), (70000,)], DTYPES),
                                     [("relu", (7, 5), f32), ("sigmoid", (3, 4, 33), f64), ("tanh", (1,), f32),
                                      ("tanh", (3, 4, 33), f64)]))
def test_kernels_match_reference(device, op, shape, dtype):
    K = kernels_on(device)
    x = (off_kink(shape) * 4).astype(dtype)
    y = getattr(K, f"{op}_fwd")(to_dev(x, device))
    yh = to_host(y)
    assert yh.dtype == dtype and yh.shape == shape
    assert_close(yh, getattr(ref, f"{op}_fwd")(x.astype(np.float64)), dtype)
    dout = rng.standard_normal(shape).astype(dtype)
    dx = to_host(getattr(K, f"{op}_bwd")(to_dev(dout, device), y))
    assert_close(dx, getattr(ref, f"{op}_bwd")(dout.astype(np.float64), yh.astype(np.float64)), dtype)
    assert_close(to_host(getattr(K, f"{op}_fwd")(noncontig(x, device))), yh, dtype)


def test_sigmoid_is_finite_for_huge_inputs(device, dtype):
    x = np.array([-1e4, -100, -30, 0, 30, 100, 1e4], dtype=dtype)
    y = to_host(kernels_on(device).sigmoid_fwd(to_dev(x, device)))
    assert np.all(np.isfinite(y))
    assert_close(y, ref.sigmoid_fwd(x.astype(np.float64)), dtype)


def test_empty_inputs(device):
    K = kernels_on(device)
    for shape in [(0, 5), (3, 0)]:
        x = to_dev(np.zeros(shape, np.float32), device)
        for op in ("relu", "sigmoid", "tanh"):
            assert to_host(getattr(K, f"{op}_fwd")(x)).shape == shape


def test_dropout_kernel_matches_reference_and_scales(device, dtype):
    K = kernels_on(device)
    x = rng.standard_normal((64, 33)).astype(dtype)
    xd = to_dev(x, device)
    y, mask = to_host(K.dropout_fwd(xd, 12345, 0.3))
    ry, rmask = ref.dropout_fwd(x.astype(np.float64), 12345, 0.3)
    np.testing.assert_array_equal(mask, rmask)
    assert abs(rmask.mean() - 0.7) < 0.03
    assert not np.array_equal(to_host(K.dropout_fwd(xd, 12346, 0.3)[1]), mask)          # another seed, another mask
    assert to_host(K.dropout_fwd(xd, 1, 0.0)[1]).all() and not to_host(K.dropout_fwd(xd, 1, 1.0)[1]).any()
    assert_close(y, ry, dtype)
    dout = rng.standard_normal(x.shape).astype(dtype)
    dx = to_host(K.dropout_bwd(to_dev(dout, device), to_dev(mask, device), 0.3))
    assert_close(dx, ref.dropout_bwd(dout.astype(np.float64), rmask, 0.3), dtype)


def test_dropout_engine_semantics(device):
    n = 40 if device == "cuda" else 200
    x = engine.tensor(np.ones((n, n)), requires_grad=True, device=device)
    engine.manual_seed(1)
    y = F.dropout(x, 0.25)
    kept = y.numpy() != 0
    assert abs(kept.mean() - 0.75) < 4 * np.sqrt(0.75 * 0.25 / n**2)   # keep rate 1 - p, within 4 sigma
    np.testing.assert_allclose(y.numpy()[kept], 1 / 0.75, rtol=1e-6)    # inverted scaling
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy() != 0, kept)            # backward reuses the mask
    engine.manual_seed(1)
    np.testing.assert_array_equal(F.dropout(x, 0.25).numpy(), y.numpy())    # seedable
    assert F.dropout(x, 0.25, training=False) is x
    assert np.all(F.dropout(x, 1.0).numpy() == 0)
    with pytest.raises(ValueError, match="p"):
        F.dropout(x, 1.5)


@pytest.mark.parametrize("fn", [F.relu, F.sigmoid, F.tanh])
def test_engine_ops_against_tape_and_torch(device, fn):
    x = off_kink((6, 9))
    check_engine_grad(fn, [x], device=device)
    torch = pytest.importorskip("torch")
    t = torch.tensor(x, requires_grad=True)
    getattr(torch, fn.__name__)(t).sum().backward()
    e = engine.tensor(x, dtype=np.float64, requires_grad=True, device=device)
    fn(e).sum().backward()
    np.testing.assert_allclose(e.grad.numpy(), t.grad.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(*on_devices("op,dtype", cases(["relu", "sigmoid", "tanh", "dropout"], DTYPES),
                                     [("relu", f32), ("sigmoid", f64), ("tanh", f32), ("dropout", f64)]))
def test_zero_dim_keeps_its_shape(device, op, dtype):
    """Issue 9: a 0-d input gave shape (1,) and a backward that failed; kernels and op keep shape ()."""
    x = np.array(1.5, dtype)
    for k, dev in ((ref, lambda a: a), (kernels_on(device), lambda a: to_dev(a, device))):
        y = k.dropout_fwd(dev(x), 3, 0.5)[0] if op == "dropout" else getattr(k, f"{op}_fwd")(dev(x))
        assert to_host(y).shape == ()
    t = engine.tensor(x, dtype=dtype, requires_grad=True, device=device)
    y = getattr(F, op)(t)
    y.backward()
    assert y.shape == () and t.grad.shape == ()


def test_relu_propagates_nan_and_its_gradient(device, dtype):
    """Issue 9: relu(NaN) is NaN and the gradient passes there (PyTorch's threshold_backward); -0.0 stays."""
    x = np.array([np.nan, -0.0, 0.0, 2.0, -2.0, np.inf, -np.inf], dtype)
    want_y = np.array([np.nan, -0.0, 0.0, 2.0, 0.0, np.inf, 0.0])
    want_g = np.array([1.0, 0.0, 0.0, 1.0, 0.0, 1.0, 0.0])
    for k, dev in ((ref, lambda a: a), (kernels_on(device), lambda a: to_dev(a, device))):
        y = k.relu_fwd(dev(x))
        yh = to_host(y)
        np.testing.assert_array_equal(yh, want_y)
        assert np.signbit(yh[1])
        np.testing.assert_array_equal(to_host(k.relu_bwd(dev(np.ones_like(x)), y)), want_g)


def test_dropout_zeroes_dropped_nonfinite_values(device, dtype):
    """A dropped element is exactly 0 even where x is inf or NaN (documented; PyTorch's product gives NaN),
    in the reference and the kernel alike; kept ones stay inf / NaN."""
    x = np.where(np.arange(64) % 2, np.inf, np.nan).astype(dtype)
    for k, dev in ((ref, lambda a: a), (kernels_on(device), lambda a: to_dev(a, device))):
        y, mask = to_host(k.dropout_fwd(dev(x), 5, 0.5))
        assert 0 < mask.sum() < 64
        assert np.all(y[~mask] == 0) and not np.isfinite(y[mask]).any()
        dx = to_host(k.dropout_bwd(dev(np.full_like(x, np.nan)), dev(mask), 0.5))
        assert np.all(dx[~mask] == 0) and np.isnan(dx[mask]).all()


def test_bad_input():
    with pytest.raises(TypeError, match="input"):
        F.relu(engine.tensor([1, 2]))
    with pytest.raises(TypeError, match="input"):
        F.sigmoid(np.ones(3))


@pytest.mark.parametrize("dt,rtol", [(np.float32, 4e-7), (np.float64, 2e-14)])
def test_vexp_accuracy_and_special_values(dt, rtol):
    x = np.linspace(-80 if dt == np.float32 else -700, 88 if dt == np.float32 else 709, 100001).astype(dt)
    np.testing.assert_allclose(vexp_array(x), np.exp(x.astype(np.float64)), rtol=rtol)
    special = vexp_array(np.array([-np.inf, np.inf, np.nan, 0.0, -1e30], dtype=dt))
    assert special[0] == 0 and special[1] == np.inf and np.isnan(special[2]) and special[3] == 1 and special[4] == 0


@numba.njit
def _apply_vexp_neg(x, out):
    for i in range(x.size):
        out[i] = vexp_neg(x[i])


def test_vexp_neg_accuracy_and_special_values(dtype):
    lo = -87.0 if dtype == np.float32 else -708.0
    x = np.concatenate([np.linspace(lo, 0.0, 100001), [-np.inf, np.nan, lo - 1.0, -1e30, 0.0, -0.0, 1e-7]])
    x = x.astype(dtype)
    out = np.empty_like(x)
    _apply_vexp_neg(x, out)
    want = np.exp(x.astype(np.float64))
    big = want > (1e-37 if dtype == np.float32 else 1e-307)
    rel = np.abs(out[big] - want[big]) / want[big]
    assert rel.max() < (4e-7 if dtype == np.float32 else 1e-14)
    assert out[-7] == 0 and np.isnan(out[-6]) and out[-5] == 0 and out[-4] == 0 and out[-3] == 1 and out[-2] == 1


# ---- gelu -------------------------------------------------------------------------------------------------
GELU_HARD = [-np.inf, np.inf, np.nan, -3e38, 3e38, -1e30, 1e30, -40.0, -10.0, -5.0, -1.0, -0.0, 0.0, 1e-30, 3.0, 40.0]


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_reference_backward_matches_finite_differences(approximate):
    x = rng.standard_normal((7, 5)) * 3
    check_backward_fd(lambda x: ref.gelu_fwd(x, approximate), lambda d, x: ref.gelu_bwd(d, x, approximate), [x])


@pytest.mark.parametrize(*on_devices("approximate,shape,dtype",
                                     cases(["none", "tanh"], [(1,), (7, 5), (3, 4, 33), (70000,)], DTYPES),
                                     [("none", (3, 4, 33), f32), ("tanh", (7, 5), f64), ("tanh", (1,), f32),
                                      ("none", (7, 5), f64)]))
def test_gelu_kernels_match_reference(device, approximate, shape, dtype):
    K = kernels_on(device)
    x = (rng.standard_normal(shape) * 4).astype(dtype)
    y = to_host(K.gelu_fwd(to_dev(x, device), approximate))
    assert y.dtype == dtype and y.shape == shape
    x64 = x.astype(np.float64)
    assert_close(y, ref.gelu_fwd(x64, approximate), dtype)
    dout = rng.standard_normal(shape).astype(dtype)
    dx = to_host(K.gelu_bwd(to_dev(dout, device), to_dev(x, device), approximate))
    assert dx.dtype == dtype
    assert_close(dx, ref.gelu_bwd(dout.astype(np.float64), x64, approximate), dtype)
    assert_close(to_host(K.gelu_fwd(noncontig(x, device), approximate)), y, dtype)
    assert to_host(K.gelu_fwd(to_dev(np.array(1.5, dtype), device), approximate)).shape == ()


@pytest.mark.filterwarnings("ignore::RuntimeWarning")     # the simulator's NumPy scalars warn at inf * 0
@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_hard_values(device, approximate, dtype):
    """+-inf, NaN, huge and tiny |x|: the kernels equal the reference (NaN where it is NaN: gelu(-inf) and the
    gradient at +-inf, as PyTorch), a huge x gives x and gradient 1, a huge -x gives -0 and gradient 0 (no
    0 * inf from x^3 or x^2 overflowing in float32)."""
    K = kernels_on(device)
    x = np.array(GELU_HARD, dtype)
    xd = to_dev(x, device)
    y = to_host(K.gelu_fwd(xd, approximate))
    dx = to_host(K.gelu_bwd(to_dev(np.ones_like(x), device), xd, approximate))
    x64 = x.astype(np.float64)
    want_y, want_dx = ref.gelu_fwd(x64, approximate), ref.gelu_bwd(np.ones_like(x64), x64, approximate)
    np.testing.assert_array_equal(np.isnan(y), np.isnan(want_y))
    np.testing.assert_array_equal(np.isnan(dx), np.isnan(want_dx))
    assert_close(y, want_y, dtype)
    assert_close(dx, want_dx, dtype)
    assert np.isnan(y[0]) and y[1] == np.inf and np.isnan(y[2]) and np.isnan(dx[:3]).all()
    big = np.isfinite(x) & (np.abs(x) >= 40)
    np.testing.assert_array_equal(y[big], np.where(x[big] > 0, x[big], 0.0))
    np.testing.assert_array_equal(dx[big], np.where(x[big] > 0, 1.0, 0.0))
    assert y[x == 0].tolist() == [0.0, 0.0] and dx[x == 0].tolist() == [0.5, 0.5]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")     # the simulator's NumPy scalars warn at inf * 0
@pytest.mark.parametrize(*on_devices("approximate,dtype", cases(["none", "tanh"], DTYPES),
                                     [("none", f32), ("tanh", f64)]))
def test_gelu_against_pytorch_and_tape(device, approximate, dtype):
    x = rng.standard_normal((6, 9)) * 3
    x[0, :4] = [-np.inf, np.inf, np.nan, -1e30]
    check_engine_grad(lambda t: F.gelu(t, approximate), [x[1:]], device=device)
    torch = pytest.importorskip("torch")
    xd = x.astype(dtype)
    t = torch.tensor(xd, requires_grad=True)
    ty = torch.nn.functional.gelu(t, approximate=approximate)
    ty.sum().backward()
    e = engine.tensor(xd, dtype=dtype, requires_grad=True, device=device)
    y = F.gelu(e, approximate)
    y.sum().backward()
    assert y.dtype == dtype and e.grad.dtype == dtype
    tol = dict(rtol=1e-12, atol=1e-14) if dtype == np.float64 else dict(rtol=2e-5, atol=1e-6)
    y, g = y.numpy(), e.grad.numpy()
    ty, tg = ty.detach().numpy(), t.grad.numpy()
    np.testing.assert_allclose(y[1:], ty[1:], **tol)
    np.testing.assert_allclose(g[1:], tg[1:], **tol)
    # The row of -inf, inf, NaN, -1e30: against PyTorch in float64, whose results are the same on every CPU.
    # (PyTorch's vectorized float32 erf gives gelu(inf) = NaN on AVX-512 and inf on AVX2; the engine gives inf.)
    t64 = torch.tensor(x[:1], requires_grad=True)
    y64 = torch.nn.functional.gelu(t64, approximate=approximate)
    y64.sum().backward()
    np.testing.assert_allclose(y[0, 4:], ty[0, 4:], **tol)
    np.testing.assert_array_equal(y[0, :4], y64.detach().numpy()[0, :4])
    # PyTorch's 'tanh' gradient at -1e30 is NaN in float32 (x^3 overflows, then 0 * inf); the engine gives the
    # limit 0 there (a documented difference); the other elements equal PyTorch's, NaNs included
    assert g[0, 3] == 0
    np.testing.assert_allclose(g[0, 4:], tg[0, 4:], **tol)
    np.testing.assert_array_equal(g[0, :3], t64.grad.numpy()[0, :3])
    assert t64.grad.numpy()[0, 3] == 0


def test_gelu_module_zero_dim_and_bad_input():
    assert repr(engine.nn.GELU()) == "GELU(approximate='none')"
    assert repr(engine.nn.GELU("tanh")) == "GELU(approximate='tanh')"
    t = engine.tensor(np.array(1.5), dtype=np.float64, requires_grad=True)
    y = engine.nn.GELU("tanh")(t)
    y.backward()
    assert y.shape == () and t.grad.shape == ()
    np.testing.assert_allclose(y.item(), ref.gelu_fwd(1.5, "tanh"), rtol=1e-14)
    with pytest.raises(ValueError, match="approximate"):
        engine.nn.GELU("erf")
    with pytest.raises(ValueError, match="approximate"):
        F.gelu(t, approximate="Tanh")
    with pytest.raises(TypeError, match="input"):
        F.gelu(engine.tensor([1, 2]))
