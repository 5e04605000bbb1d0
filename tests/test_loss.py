"""cross_entropy (fused) and mse_loss: reference vs finite differences, both backends' kernels vs the
reference, engine ops (on each device) vs the reference and torch. Determinism: tests/test_determinism.py."""
import numpy as np
import pytest

import engine
import engine.functional as F
import kernels.reference as ref
from conftest import DTYPES, assert_close, cases, check_backward_fd, kernels_on, noncontig, on_devices, to_dev, to_host

IGN = -100
f32, f64 = np.float32, np.float64


def ce_case(N, C, kind="spiky", seed=0, ignore_frac=0.2):
    """Logits (N, C) and targets (N,) with some ignore_index rows; 'spiky' logits put the target or a decoy
    far above the rest, 'huge' uses +-1e4."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C)) * 2
    t = rng.integers(0, C, N)
    if kind == "spiky":
        x[np.arange(N), t] += rng.uniform(0, 12, N)
        x[np.arange(N), rng.integers(0, C, N)] += rng.uniform(0, 12, N)
    elif kind == "huge":
        x *= 5e3
        x[:, 0] = 1e4
    t[rng.random(N) < ignore_frac] = IGN
    return x, t


def ce_reduce(loss, t, reduction):
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    n = np.count_nonzero(t != IGN)
    return loss.sum() / n if n else 0.0


# ---- (1) reference backward vs finite differences ------------------------------------------------------
@pytest.mark.parametrize("eps", [0.0, 0.3])
def test_reference_cross_entropy_fd(eps):
    x, t = ce_case(6, 5, seed=1, ignore_frac=0.3)
    lse = lambda x: ref.cross_entropy_fwd(x, t, eps, IGN)[1]                 # noqa: E731
    check_backward_fd(lambda x: ref.cross_entropy_fwd(x, t, eps, IGN)[0],
                      lambda d, x: (ref.cross_entropy_bwd(d, x, t, lse(x), eps, IGN),), [x])


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_reference_mse_fd(reduction):
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    check_backward_fd(lambda x, y: ref.mse_loss_fwd(x, y, reduction),
                      lambda d, x, y: (ref.mse_loss_bwd(d, x, y, reduction), -ref.mse_loss_bwd(d, x, y, reduction)),
                      [x, y])


# ---- (2) kernels vs reference (the cuda half: a subset with both kinds, both dtypes, rows past a block) ------
@pytest.mark.parametrize(*on_devices("NC,kind,eps,dtype",
                                     cases([(1, 1), (5, 2), (7, 97), (4, 1029), (3, 2001)], ["spiky", "huge"],
                                           [0.0, 0.1], DTYPES),
                                     [((1, 1), "spiky", 0.0, f32), ((5, 2), "huge", 0.1, f64),
                                      ((7, 97), "spiky", 0.1, f32), ((4, 1029), "huge", 0.0, f64)]))
def test_cross_entropy_kernels_vs_reference(device, NC, kind, eps, dtype):
    K, (N, C) = kernels_on(device), NC
    x, t = ce_case(N, C, kind, seed=N * C)
    x = x.astype(dtype)
    loss, lse = K.cross_entropy_fwd(noncontig(x, device), to_dev(t, device), eps, IGN)
    loss_r, lse_r = ref.cross_entropy_fwd(x, t, eps, IGN)
    assert loss.shape == (N,) and lse.shape == (N, 2)
    keep = t != IGN
    lh = to_host(loss)
    assert_close(lh, loss_r, dtype)
    assert_close(to_host(lse)[keep], lse_r[keep], dtype)
    assert (lh[~keep] == 0).all()
    g = np.random.default_rng(3).standard_normal(N)
    dx = to_host(K.cross_entropy_bwd(to_dev(g, device), to_dev(x, device), to_dev(t, device), lse, eps, IGN))
    assert dx.dtype == dtype
    assert_close(dx, ref.cross_entropy_bwd(g, x, t, lse_r, eps, IGN), dtype, scale=4)
    assert (dx[~keep] == 0).all()


@pytest.mark.parametrize(*on_devices("big,eps,dtype", [c for c in cases([3e38, 1e20, 1e300], [0.0, 0.2], DTYPES)
                                                       if c[0] <= float(np.finfo(c[2]).max)],
                                     [(3e38, 0.0, f32), (3e38, 0.2, f32), (1e20, 0.2, f64), (1e300, 0.0, f64)]))
def test_cross_entropy_keeps_log_sum_exp_for_huge_logits(device, big, eps, dtype):
    """Issue 9: four equal logits give log 4 and two tied maxima half the gradient each, however large the
    logits (a float64 lse = m + log s loses log s past |m| ~ 1e16). The device's kernels and the reference."""
    K = kernels_on(device)
    x = np.array([[big] * 4, [big, big, -big, 0.0]], dtype)
    t = np.array([0, 0])
    p = np.array([[0.25] * 4, [0.5, 0.5, 0.0, 0.0]])                 # softmax of each row
    want_dx = p - eps / 4 - (1 - eps) * np.eye(4)[t]
    # label smoothing adds eps / C * sum_c(-log p_c) = eps / C * (C log s + sum_c(m - x_c)): here 3 big; the
    # CPU kernels form m - x_c in the input's dtype, so it overflows where 2 big does (as PyTorch's float32
    # does); the CUDA kernels form it in float64, as the reference does
    smooth = (1 - eps) * np.log(2) + eps / 4 * (4 * np.log(2) + 3 * big)
    for k, dev in ((ref, lambda a: a), (K, lambda a: to_dev(a, device))):
        loss, lse = k.cross_entropy_fwd(dev(x), dev(t), eps, IGN)
        overflow = k is not ref and device == "cpu" and 2 * big > float(np.finfo(dtype).max)
        np.testing.assert_allclose(to_host(loss), [np.log(4), np.inf if eps and overflow else smooth], rtol=1e-6)
        dx = k.cross_entropy_bwd(dev(np.ones(2)), dev(x), dev(t), lse, eps, IGN)
        np.testing.assert_allclose(to_host(dx), want_dx, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize(*on_devices("shape,reduction,dtype", cases([(1,), (7, 5), (3, 40001)], ["none", "sum", "mean"],
                                                                     DTYPES),
                                     [((1,), "mean", f32), ((7, 5), "none", f64), ((3, 70), "sum", f32),
                                      ((3, 70), "mean", f64)]))
def test_mse_kernels_vs_reference(device, shape, reduction, dtype):
    K = kernels_on(device)
    rng = np.random.default_rng(4)
    x, y = rng.standard_normal(shape).astype(dtype), rng.standard_normal(shape).astype(dtype)
    out = to_host(K.mse_loss_fwd(noncontig(x, device), noncontig(y, device), reduction))
    out_r = ref.mse_loss_fwd(x, y, reduction)
    assert out.dtype == dtype and out.shape == out_r.shape
    assert_close(out, out_r, dtype)
    d = rng.standard_normal(out_r.shape).astype(dtype)
    dx = K.mse_loss_bwd(noncontig(d, device) if d.ndim else to_dev(d, device), to_dev(x, device), to_dev(y, device),
                        reduction)
    assert_close(to_host(dx), ref.mse_loss_bwd(d, x, y, reduction), dtype)


def test_empty_inputs(device):
    """No rows: empty losses; the mean squared error of nothing is NaN (as NumPy's and PyTorch's mean)."""
    K = kernels_on(device)
    loss, lse = K.cross_entropy_fwd(to_dev(np.zeros((0, 4), np.float32), device), to_dev(np.zeros(0, np.int64), device),
                                    0.0, IGN)
    assert to_host(loss).shape == (0,)
    e = to_dev(np.zeros(0, np.float32), device)
    assert np.isnan(to_host(K.mse_loss_fwd(e, e, "mean")))
    assert to_host(K.mse_loss_fwd(e, e, "sum")) == 0


# ---- (4) book facts ------------------------------------------------------------------------------------
def test_book_cross_entropy_picks_target_probability():
    y_hat = np.array([[0.1, 0.3, 0.6], [0.3, 0.2, 0.5]])
    loss = F.cross_entropy(engine.tensor(np.log(y_hat), dtype=np.float64), engine.tensor([0, 2]), reduction="none")
    np.testing.assert_allclose(loss.numpy(), [-np.log(0.1), -np.log(0.5)], rtol=1e-12)


def test_book_entropy():
    """entropy([.1, .5, .1, .3]) = sum_t p_t * cross_entropy(log p, t) = 1.1683 nats = 1.6855 bits
    (STYLE.md says 1.6855 nats: that number is in bits)."""
    p = np.array([0.1, 0.5, 0.1, 0.3])
    logits = engine.tensor(np.tile(np.log(p), (4, 1)), dtype=np.float64)
    nll = F.cross_entropy(logits, engine.tensor([0, 1, 2, 3]), reduction="none").numpy()
    assert abs(float(np.sum(p * nll)) / np.log(2) - 1.6855) < 1e-4


# ---- (5) bad inputs ------------------------------------------------------------------------------------
def test_bad_inputs():
    x, t = engine.randn(4, 3), engine.tensor([0, 1, 2, 1])
    with pytest.raises(TypeError, match="input"):
        F.cross_entropy(np.zeros((4, 3)), t)
    with pytest.raises(TypeError, match="target"):
        F.cross_entropy(x, [0, 1, 2, 1])
    with pytest.raises(TypeError, match="target"):
        F.cross_entropy(x, engine.tensor([0.0, 1.0, 2.0, 1.0]))
    with pytest.raises(ValueError, match="target"):
        F.cross_entropy(x, engine.tensor([0, 1, 3, 1]))
    with pytest.raises(ValueError, match="target"):
        F.cross_entropy(x, engine.tensor([0, -1, 2, 1]))
    with pytest.raises(ValueError, match="target"):
        F.cross_entropy(x, engine.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="target"):
        F.cross_entropy(engine.randn(3), engine.tensor([0]))
    with pytest.raises(ValueError, match="target"):
        F.cross_entropy(engine.randn(2, 3, 4), engine.tensor(np.zeros((2, 3), np.int64)))
    with pytest.raises(ValueError, match="input"):
        F.cross_entropy(engine.tensor(1.0), engine.tensor(0))
    with pytest.raises(ValueError, match="reduction"):
        F.cross_entropy(x, t, reduction="avg")
    with pytest.raises(ValueError, match="label_smoothing"):
        F.cross_entropy(x, t, label_smoothing=1.5)
    with pytest.raises(TypeError, match="ignore_index"):
        F.cross_entropy(x, t, ignore_index=1.0)
    F.cross_entropy(x, engine.tensor([0, 7, 2, 1]), ignore_index=7)          # ignored: not out of range
    with pytest.raises(TypeError, match="input"):
        F.mse_loss(engine.tensor([1, 2]), engine.tensor([1.0, 2.0]))
    with pytest.raises(TypeError, match="target"):
        F.mse_loss(engine.tensor([1.0, 2.0]), engine.tensor([1.0, 2.0], dtype=np.float64))
    with pytest.raises(ValueError, match="target"):
        F.mse_loss(engine.randn(2, 3), engine.randn(1, 3))
    with pytest.raises(ValueError, match="reduction"):
        F.mse_loss(engine.randn(2), engine.randn(2), reduction=None)


# ---- (6) engine level ----------------------------------------------------------------------------------
CE_SHAPES = [((6, 5), (6,)), ((3, 4, 2, 5), (3, 2, 5)), ((7,), ())]


@pytest.mark.parametrize(*on_devices("shapes,reduction,eps,dtype",
                                     cases(CE_SHAPES, ["none", "sum", "mean"], [0.0, 0.25], DTYPES),
                                     [(CE_SHAPES[0], "mean", 0.0, f32), (CE_SHAPES[1], "none", 0.25, f64),
                                      (CE_SHAPES[2], "sum", 0.25, f32)]))
def test_engine_cross_entropy_vs_reference(device, shapes, reduction, eps, dtype):
    xshape, tshape = shapes
    rng = np.random.default_rng(8)
    C = xshape[1] if len(xshape) > 1 else xshape[0]
    x = rng.standard_normal(xshape) * 3
    t = rng.integers(0, C, tshape)
    if t.ndim:
        t.reshape(-1)[::3] = IGN
    a = engine.tensor(x, dtype=dtype, requires_grad=True, device=device)
    loss = F.cross_entropy(a, engine.tensor(t, device=device), reduction, eps)
    g = rng.standard_normal(loss.shape)
    loss.backward(engine.tensor(g, dtype=dtype, device=device))
    assert loss.device == a.grad.device == device
    x2 = np.moveaxis(x, 1, -1).reshape(-1, C) if x.ndim > 1 else x.reshape(1, C)
    t2 = t.reshape(-1)
    rows, lse = ref.cross_entropy_fwd(x2, t2, eps, IGN)
    n = np.count_nonzero(t2 != IGN)
    assert loss.dtype == dtype and loss.shape == (tshape if reduction == "none" else ())
    assert_close(loss.numpy(), ce_reduce(rows, t2, reduction).reshape(loss.shape), dtype)
    dloss = g.reshape(-1) if reduction == "none" else np.full(len(t2), float(g) / (n if reduction == "mean" else 1))
    dx2 = ref.cross_entropy_bwd(dloss, x2, t2, lse, eps, IGN)
    dx = np.moveaxis(dx2.reshape((xshape[0],) + xshape[2:] + (C,)), -1, 1) if x.ndim > 1 else dx2.reshape(C)
    assert_close(a.grad.numpy(), dx, dtype, scale=4)


@pytest.mark.parametrize("shapes", CE_SHAPES, ids=["NC", "NCd1d2", "unbatched"])
@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@pytest.mark.parametrize("eps", [0.0, 0.25])
def test_engine_cross_entropy_vs_torch(shapes, reduction, eps):
    torch = pytest.importorskip("torch")
    xshape, tshape = shapes
    rng = np.random.default_rng(9)
    C = xshape[1] if len(xshape) > 1 else xshape[0]
    x = rng.standard_normal(xshape) * 3
    t = rng.integers(0, C, tshape)
    if t.ndim:
        t.reshape(-1)[::3] = 1
        t.reshape(-1)[1::4] = IGN
    a = engine.tensor(x, dtype=np.float64, requires_grad=True)
    loss = F.cross_entropy(a, engine.tensor(t), reduction=reduction, label_smoothing=eps)
    g = rng.standard_normal(loss.shape)
    loss.backward(g)
    ta = torch.tensor(x, requires_grad=True)
    tl = torch.nn.functional.cross_entropy(ta, torch.tensor(t), reduction=reduction, label_smoothing=eps)
    tl.backward(torch.tensor(g))
    np.testing.assert_allclose(loss.numpy(), tl.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(a.grad.numpy(), ta.grad.numpy(), rtol=1e-10, atol=1e-14)


def test_engine_cross_entropy_transposed_and_huge(device):
    torch = pytest.importorskip("torch")
    x = ce_case(4, 9, "huge", seed=10)[0]
    t = np.array([0, 3, 8, IGN])
    a = engine.tensor(x.T, dtype=np.float32, requires_grad=True, device=device)   # (9, 4): non-contiguous
    xt = a.transpose()
    loss = F.cross_entropy(xt, engine.tensor(t, device=device), label_smoothing=0.1)
    loss.backward()
    ta = torch.tensor(x.T.astype(np.float32), requires_grad=True)
    tl = torch.nn.functional.cross_entropy(ta.t(), torch.tensor(t), label_smoothing=0.1)
    tl.backward()
    np.testing.assert_allclose(loss.item(), tl.item(), rtol=1e-5)
    np.testing.assert_allclose(a.grad.numpy(), ta.grad.numpy(), rtol=1e-4, atol=1e-6)


def test_engine_cross_entropy_all_ignored_documented(device):
    """Every target ignored: 'mean' gives 0.0 (PyTorch: NaN) and zero gradient; 'sum' gives 0."""
    a = engine.tensor(np.random.default_rng(11).standard_normal((3, 4)), requires_grad=True, device=device)
    t = engine.tensor([IGN, IGN, IGN], device=device)
    loss = F.cross_entropy(a, t)
    assert loss.item() == 0.0
    loss.backward()
    np.testing.assert_array_equal(a.grad.numpy(), 0)
    assert F.cross_entropy(a, t, reduction="sum").item() == 0.0
    ones = engine.tensor([1, 1, 1], device=device)
    assert F.cross_entropy(a, ones, ignore_index=1, label_smoothing=0.5).item() == 0.0


@pytest.mark.parametrize(*on_devices("reduction,dtype", cases(["none", "sum", "mean"], DTYPES),
                                     [("none", f64), ("mean", f32)]))
def test_engine_mse_vs_reference_and_torch(device, reduction, dtype):
    rng = np.random.default_rng(12)
    x, y = rng.standard_normal((5, 7)), rng.standard_normal((5, 7))
    a = engine.tensor(x, dtype=dtype, requires_grad=True, device=device)
    b = engine.tensor(y.T, dtype=dtype, requires_grad=True, device=device)      # (7, 5), used transposed
    loss = F.mse_loss(a, b.transpose(), reduction=reduction)
    g = rng.standard_normal(loss.shape)
    loss.backward(engine.tensor(g, dtype=dtype, device=device))
    assert loss.dtype == dtype and loss.device == b.grad.device == device
    assert_close(loss.numpy(), ref.mse_loss_fwd(x, y, reduction), dtype)
    dx = ref.mse_loss_bwd(g, x, y, reduction)
    assert_close(a.grad.numpy(), dx, dtype)
    assert_close(b.grad.numpy(), -dx.T, dtype)
    torch = pytest.importorskip("torch")
    ta, tb = torch.tensor(x, requires_grad=True), torch.tensor(y, requires_grad=True)
    tl = torch.nn.functional.mse_loss(ta, tb, reduction=reduction)
    tl.backward(torch.tensor(g))
    tol = dict(rtol=1e-12, atol=1e-12) if dtype == np.float64 else dict(rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(loss.numpy(), tl.detach().numpy(), **tol)
    np.testing.assert_allclose(a.grad.numpy(), ta.grad.numpy(), **tol)
    np.testing.assert_allclose(b.grad.numpy(), tb.grad.numpy().T, **tol)


def test_engine_mse_target_without_grad(device):
    a = engine.tensor([1.0, 2.0, 4.0], requires_grad=True, device=device)
    loss = F.mse_loss(a, engine.tensor([1.0, 1.0, 1.0], device=device))
    np.testing.assert_allclose(loss.item(), (0 + 1 + 9) / 3, rtol=1e-6)
    loss.backward()
    np.testing.assert_allclose(a.grad.numpy(), [0, 2 / 3, 2.0], rtol=1e-6)
