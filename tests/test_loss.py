"""cross_entropy (fused) and mse_loss: reference vs finite differences, CPU kernels vs reference, engine vs torch."""
import numba
import numpy as np
import pytest

import engine
import engine.functional as F
import kernels.cpu as cpu
import kernels.cpu.loss as cpu_loss
import kernels.cpu.softmax as cpu_softmax
import kernels.reference as ref
from conftest import assert_close, check_backward_fd, noncontig

IGN = -100


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


# ---- (2) CPU kernels vs reference ------------------------------------------------------------------------
@pytest.mark.parametrize("N,C", [(1, 1), (5, 2), (7, 97), (4, 1029), (3, 2001)])
@pytest.mark.parametrize("kind", ["spiky", "huge"])
@pytest.mark.parametrize("eps", [0.0, 0.1])
def test_cross_entropy_cpu_vs_reference(N, C, kind, eps, dtype):
    x, t = ce_case(N, C, kind, seed=N * C)
    x = x.astype(dtype)
    loss, lse = cpu.cross_entropy_fwd(noncontig(x), t, eps, IGN)
    loss_r, lse_r = ref.cross_entropy_fwd(x, t, eps, IGN)
    assert loss.shape == (N,) and lse.shape == (N, 2)
    keep = t != IGN
    assert_close(loss, loss_r, dtype)
    assert_close(lse[keep], lse_r[keep], dtype)
    assert (loss[~keep] == 0).all()
    g = np.random.default_rng(3).standard_normal(N)
    dx = cpu.cross_entropy_bwd(g, x, t, lse, eps, IGN)
    assert dx.dtype == dtype
    assert_close(dx, ref.cross_entropy_bwd(g, x, t, lse_r, eps, IGN), dtype, scale=4)
    assert (dx[~keep] == 0).all()


@pytest.mark.parametrize("big", [3e38, 1e20, 1e300])
@pytest.mark.parametrize("eps", [0.0, 0.2])
def test_cross_entropy_keeps_log_sum_exp_for_huge_logits(big, eps, dtype):
    """Issue 9: four equal logits give log 4 and two tied maxima half the gradient each, however large the
    logits (a float64 lse = m + log s loses log s past |m| ~ 1e16). Both backends and the reference."""
    if big > np.finfo(dtype).max:
        pytest.skip("not representable")
    x = np.array([[big] * 4, [big, big, -big, 0.0]], dtype)
    t = np.array([0, 0])
    p = np.array([[0.25] * 4, [0.5, 0.5, 0.0, 0.0]])                 # softmax of each row
    want_dx = p - eps / 4 - (1 - eps) * np.eye(4)[t]
    # label smoothing adds eps / C * sum_c(-log p_c) = eps / C * (C log s + sum_c(m - x_c)): here 3 big; the
    # kernels form m - x_c in the input's dtype, so it overflows where 2 big does (as PyTorch's float32 does)
    smooth = (1 - eps) * np.log(2) + eps / 4 * (4 * np.log(2) + 3 * big)
    for k in (ref, cpu):
        loss, lse = k.cross_entropy_fwd(x, t, eps, IGN)
        overflow = k is cpu and 2 * big > np.finfo(dtype).max
        np.testing.assert_allclose(loss, [np.log(4), np.inf if eps and overflow else smooth], rtol=1e-6)
        dx = k.cross_entropy_bwd(np.ones(2), x, t, lse, eps, IGN)
        np.testing.assert_allclose(dx, want_dx, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("shape", [(1,), (7, 5), (3, 40001)])
@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_mse_cpu_vs_reference(shape, reduction, dtype):
    rng = np.random.default_rng(4)
    x, y = rng.standard_normal(shape).astype(dtype), rng.standard_normal(shape).astype(dtype)
    out = cpu.mse_loss_fwd(noncontig(x), noncontig(y), reduction)
    out_r = ref.mse_loss_fwd(x, y, reduction)
    assert out.dtype == dtype and out.shape == out_r.shape
    assert_close(out, out_r, dtype)
    d = rng.standard_normal(out_r.shape).astype(dtype)
    assert_close(cpu.mse_loss_bwd(noncontig(d) if d.ndim else d, x, y, reduction),
                 ref.mse_loss_bwd(d, x, y, reduction), dtype)


# ---- (3) determinism -----------------------------------------------------------------------------------
def test_bitwise_repeat_threads_and_serial_path(monkeypatch):
    """Big enough for the parallel drivers: same bits on a rerun, with 1 thread, and on the serial path."""
    x, t = ce_case(67, 1031, seed=5)
    x = x.astype(np.float32)
    assert x.size >= cpu_loss.PARALLEL_MIN
    a, b = np.random.default_rng(6).standard_normal((2, 200003)).astype(np.float32)
    g = np.random.default_rng(7).standard_normal(67)

    def run():
        loss, lse = cpu.cross_entropy_fwd(x, t, 0.1, IGN)
        return [loss, lse, cpu.cross_entropy_bwd(g, x, t, lse, 0.1, IGN), cpu.mse_loss_fwd(a, b, "mean"),
                cpu.mse_loss_fwd(a, b, "none"), cpu.mse_loss_bwd(np.float32(0.5), a, b, "sum")]

    first = run()
    loss_r, lse_r = ref.cross_entropy_fwd(x, t, 0.1, IGN)
    assert_close(first[0], loss_r, np.float32)
    assert_close(first[2], ref.cross_entropy_bwd(g, x, t, lse_r, 0.1, IGN), np.float32, scale=4)
    assert_close(first[3], ref.mse_loss_fwd(a, b, "mean"), np.float32)
    prev = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one_thread = run()
    finally:
        numba.set_num_threads(prev)
    monkeypatch.setattr(cpu_softmax, "PARALLEL_MIN", 1 << 62)         # cross_entropy's launcher
    monkeypatch.setattr(cpu_loss, "PARALLEL_MIN", 1 << 62)            # mse_loss's launcher
    serial = run()
    for p, q, s1, s2 in zip(first, run(), one_thread, serial):
        np.testing.assert_array_equal(p, q)
        np.testing.assert_array_equal(p, s1)
        np.testing.assert_array_equal(p, s2)


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


@pytest.mark.parametrize("shapes", CE_SHAPES, ids=["NC", "NCd1d2", "unbatched"])
@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@pytest.mark.parametrize("eps", [0.0, 0.25])
def test_engine_cross_entropy_vs_reference(shapes, reduction, eps, dtype):
    xshape, tshape = shapes
    rng = np.random.default_rng(8)
    C = xshape[1] if len(xshape) > 1 else xshape[0]
    x = rng.standard_normal(xshape) * 3
    t = rng.integers(0, C, tshape)
    if t.ndim:
        t.reshape(-1)[::3] = IGN
    a = engine.tensor(x, dtype=dtype, requires_grad=True)
    loss = F.cross_entropy(a, engine.tensor(t), reduction, eps)
    g = rng.standard_normal(loss.shape)
    loss.backward(g.astype(dtype))
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


def test_engine_cross_entropy_transposed_and_huge():
    torch = pytest.importorskip("torch")
    x = ce_case(4, 9, "huge", seed=10)[0]
    t = np.array([0, 3, 8, IGN])
    a = engine.tensor(x.T, dtype=np.float32, requires_grad=True)                 # (9, 4): non-contiguous
    xt = a.transpose()
    loss = F.cross_entropy(xt, engine.tensor(t), label_smoothing=0.1)
    loss.backward()
    ta = torch.tensor(x.T.astype(np.float32), requires_grad=True)
    tl = torch.nn.functional.cross_entropy(ta.t(), torch.tensor(t), label_smoothing=0.1)
    tl.backward()
    np.testing.assert_allclose(loss.item(), tl.item(), rtol=1e-5)
    np.testing.assert_allclose(a.grad.numpy(), ta.grad.numpy(), rtol=1e-4, atol=1e-6)


def test_engine_cross_entropy_all_ignored_documented():
    """Every target ignored: 'mean' gives 0.0 (PyTorch: NaN) and zero gradient; 'sum' gives 0."""
    a = engine.tensor(np.random.default_rng(11).standard_normal((3, 4)), requires_grad=True)
    t = engine.tensor([IGN, IGN, IGN])
    loss = F.cross_entropy(a, t)
    assert loss.item() == 0.0
    loss.backward()
    np.testing.assert_array_equal(a.grad.numpy(), 0)
    assert F.cross_entropy(a, t, reduction="sum").item() == 0.0
    assert F.cross_entropy(a, engine.tensor([1, 1, 1]), ignore_index=1, label_smoothing=0.5).item() == 0.0


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_engine_mse_vs_reference_and_torch(reduction, dtype):
    rng = np.random.default_rng(12)
    x, y = rng.standard_normal((5, 7)), rng.standard_normal((5, 7))
    a = engine.tensor(x, dtype=dtype, requires_grad=True)
    b = engine.tensor(y.T, dtype=dtype, requires_grad=True)                     # (7, 5), used transposed
    loss = F.mse_loss(a, b.transpose(), reduction=reduction)
    g = rng.standard_normal(loss.shape)
    loss.backward(g.astype(dtype))
    assert loss.dtype == dtype
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


def test_engine_mse_target_without_grad():
    a = engine.tensor([1.0, 2.0, 4.0], requires_grad=True)
    loss = F.mse_loss(a, engine.tensor([1.0, 1.0, 1.0]))
    np.testing.assert_allclose(loss.item(), (0 + 1 + 9) / 3, rtol=1e-6)
    loss.backward()
    np.testing.assert_allclose(a.grad.numpy(), [0, 2 / 3, 2.0], rtol=1e-6)
