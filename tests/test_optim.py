"""SGD, Adam and AdamW: both backends' fused kernels against the references, the optimizers (on each device)
against closed forms and PyTorch."""
import numpy as np
import pytest

import engine
import kernels.reference as ref
from conftest import kernels_on, to_dev, to_host
from engine import nn, optim

rng = np.random.default_rng(0)


def _n(device):
    """Parameter count for the kernel tests: past the CPU's parallel threshold; a few blocks on "cuda"."""
    return 300 if device == "cuda" else 70000


def test_sgd_weight_decay_without_momentum_is_the_books_formula(device, dtype):
    w0, g = rng.standard_normal(1000).astype(dtype), rng.standard_normal(1000).astype(dtype)
    p = engine.tensor(w0.copy(), dtype=dtype, requires_grad=True, device=device)
    p.grad = engine.tensor(g, dtype=dtype, device=device)
    optim.SGD([p], lr=0.1, weight_decay=0.01).step()
    expected = (1 - 0.1 * 0.01) * w0.astype(np.float64) - 0.1 * g
    np.testing.assert_allclose(p.numpy(), expected, rtol=1e-6 if dtype == np.float32 else 1e-14)


@pytest.mark.parametrize("momentum,dampening,nesterov,wd", [(0.0, 0.0, False, 0.0), (0.9, 0.0, False, 1e-4),
                                                            (0.9, 0.1, False, 0.0), (0.8, 0.0, True, 1e-2)])
def test_sgd_kernel_matches_reference_over_steps(device, momentum, dampening, nesterov, wd, dtype):
    K = kernels_on(device)
    p0 = rng.standard_normal(_n(device)).astype(dtype)
    p_r = p0.astype(np.float64)
    p_k, b_k, b_r = to_dev(p0, device), to_dev(np.empty_like(p0), device), np.empty_like(p_r)
    for step in range(3):
        g = rng.standard_normal(p0.shape).astype(dtype)
        K.sgd_step(p_k, to_dev(g, device), b_k if momentum else None, 0.05, momentum, dampening, nesterov, wd,
                   step == 0)
        ref.sgd_step(p_r, g.astype(np.float64), b_r, 0.05, momentum, dampening, nesterov, wd, step == 0)
    np.testing.assert_allclose(to_host(p_k), p_r, rtol=1e-5 if dtype == np.float32 else 1e-13, atol=1e-6)


def test_adamw_kernel_matches_reference_over_steps(device, dtype):
    K = kernels_on(device)
    p0 = rng.standard_normal(_n(device)).astype(dtype)
    p_r = p0.astype(np.float64)
    p_k, m_k, v_k = (to_dev(a, device) for a in (p0, np.zeros_like(p0), np.zeros_like(p0)))
    m_r, v_r = np.zeros_like(p_r), np.zeros_like(p_r)
    for step in range(1, 4):
        g = rng.standard_normal(p0.shape).astype(dtype)
        K.adamw_step(p_k, to_dev(g, device), m_k, v_k, 1e-2, 0.9, 0.999, 1e-8, 0.05, step)
        ref.adamw_step(p_r, g.astype(np.float64), m_r, v_r, 1e-2, 0.9, 0.999, 1e-8, 0.05, step)
    np.testing.assert_allclose(to_host(p_k), p_r, rtol=1e-5 if dtype == np.float32 else 1e-13, atol=1e-6)


@pytest.mark.parametrize("wd", [0.0, 0.05])
def test_adam_kernel_matches_reference_over_steps(device, wd, dtype):
    K = kernels_on(device)
    p0 = rng.standard_normal(_n(device)).astype(dtype)          # CPU: > PARALLEL_MIN, the prange'd driver runs
    p_r = p0.astype(np.float64)
    p_k, m_k, v_k = (to_dev(a, device) for a in (p0, np.zeros_like(p0), np.zeros_like(p0)))
    m_r, v_r = np.zeros_like(p_r), np.zeros_like(p_r)
    for step in range(1, 4):
        g = rng.standard_normal(p0.shape).astype(dtype)
        K.adam_step(p_k, to_dev(g, device), m_k, v_k, 1e-2, 0.9, 0.999, 1e-8, wd, step)
        ref.adam_step(p_r, g.astype(np.float64), m_r, v_r, 1e-2, 0.9, 0.999, 1e-8, wd, step)
    tol = dict(rtol=1e-5 if dtype == np.float32 else 1e-13, atol=1e-6)
    np.testing.assert_allclose(to_host(p_k), p_r, **tol)
    np.testing.assert_allclose(to_host(m_k), m_r, **tol)
    np.testing.assert_allclose(to_host(v_k), v_r, **tol)


def test_adam_weight_decay_is_coupled_unlike_adamw(device):
    """Adam adds wd*p to the gradient (then normalizes it away on the first step); AdamW decays p itself."""
    w0, g = rng.standard_normal(100), rng.standard_normal(100)
    out = {}
    for cls in (optim.Adam, optim.AdamW):
        p = engine.tensor(w0.copy(), dtype=np.float64, requires_grad=True, device=device)
        p.grad = engine.tensor(g, dtype=np.float64, device=device)
        cls([p], lr=0.01, weight_decay=0.5, eps=0.0).step()
        out[cls.__name__] = p.numpy()
    np.testing.assert_allclose(out["Adam"], w0 - 0.01 * np.sign(g + 0.5 * w0), rtol=1e-12)
    np.testing.assert_allclose(out["AdamW"], w0 * (1 - 0.01 * 0.5) - 0.01 * np.sign(g), rtol=1e-12)
    assert isinstance(optim.AdamW([engine.tensor([1.0], requires_grad=True)]), optim.Adam)


def test_adamw_first_step_closed_form(device):
    # After one step, m_hat = g and v_hat = g^2, so the step is lr * sign(g) (eps aside) after decay.
    w0, g = rng.standard_normal(100), rng.standard_normal(100)
    p = engine.tensor(w0.copy(), dtype=np.float64, requires_grad=True, device=device)
    p.grad = engine.tensor(g, dtype=np.float64, device=device)
    optim.AdamW([p], lr=0.01, weight_decay=0.1, eps=0.0).step()
    np.testing.assert_allclose(p.numpy(), w0 * (1 - 0.01 * 0.1) - 0.01 * np.sign(g), rtol=1e-12)


@pytest.mark.parametrize("make", [
    lambda ps, torch: (optim.SGD(ps[0], lr=0.1, momentum=0.9, weight_decay=1e-3),
                       torch.optim.SGD(ps[1], lr=0.1, momentum=0.9, weight_decay=1e-3)),
    lambda ps, torch: (optim.SGD(ps[0], lr=0.1, momentum=0.9, nesterov=True),
                       torch.optim.SGD(ps[1], lr=0.1, momentum=0.9, nesterov=True)),
    lambda ps, torch: (optim.AdamW(ps[0], lr=0.01), torch.optim.AdamW(ps[1], lr=0.01)),
    lambda ps, torch: (optim.Adam(ps[0]), torch.optim.Adam(ps[1])),
    lambda ps, torch: (optim.Adam(ps[0], lr=0.05, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1),
                       torch.optim.Adam(ps[1], lr=0.05, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1)),
    lambda ps, torch: (optim.Adam(ps[0], lr=0.05, weight_decay=0.1, decoupled_weight_decay=True),
                       torch.optim.Adam(ps[1], lr=0.05, weight_decay=0.1, decoupled_weight_decay=True)),
])
def test_optimizers_follow_pytorch(device, make):
    torch = pytest.importorskip("torch")
    w0 = rng.standard_normal((5, 3))
    mine = [engine.tensor(w0.copy(), dtype=np.float64, requires_grad=True, device=device)]
    theirs = [torch.tensor(w0.copy(), requires_grad=True)]
    o1, o2 = make((mine, theirs), torch)
    for _ in range(4):
        g = rng.standard_normal(w0.shape)
        mine[0].grad = engine.tensor(g, dtype=np.float64, device=device)
        theirs[0].grad = torch.tensor(g)
        o1.step()
        o2.step()
    np.testing.assert_allclose(mine[0].numpy(), theirs[0].detach().numpy(), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adam_trains_a_model_as_pytorch_step_for_step(device, dtype):
    """A small MLP, the same weights and data, 5 steps of Adam with weight decay on both sides: every
    parameter and the Adam state stay equal to PyTorch's (float64 to 1e-10, float32 to float32 rounding)."""
    torch = pytest.importorskip("torch")
    x, y = rng.standard_normal((16, 4)), rng.standard_normal((16, 1))
    mine = nn.Sequential(nn.Linear(4, 8, dtype=dtype), nn.Tanh(), nn.Linear(8, 1, dtype=dtype))
    tdt = torch.float64 if dtype == np.float64 else torch.float32
    theirs = torch.nn.Sequential(torch.nn.Linear(4, 8, dtype=tdt), torch.nn.Tanh(), torch.nn.Linear(8, 1, dtype=tdt))
    with torch.no_grad():
        for (k, p), q in zip(mine.state_dict().items(), theirs.parameters()):
            q.copy_(torch.tensor(p.numpy()))
    mine = mine.to(device)
    o1 = optim.Adam(mine.parameters(), lr=0.02, weight_decay=0.01)
    o2 = torch.optim.Adam(theirs.parameters(), lr=0.02, weight_decay=0.01)
    for _ in range(5):
        o1.zero_grad()
        ((mine(engine.tensor(x, dtype=dtype, device=device)) - engine.tensor(y, dtype=dtype, device=device)) ** 2
         ).mean().backward()
        o1.step()
        o2.zero_grad()
        ((theirs(torch.tensor(x, dtype=tdt)) - torch.tensor(y, dtype=tdt)) ** 2).mean().backward()
        o2.step()
    tol = dict(rtol=1e-10, atol=1e-12) if dtype == np.float64 else dict(rtol=2e-4, atol=2e-5)
    for p, q in zip(mine.parameters(), theirs.parameters()):
        np.testing.assert_allclose(p.numpy(), q.detach().numpy(), **tol)
        assert p.device == device
        np.testing.assert_allclose(to_host(o1.state[id(p)]["exp_avg_sq"]), o2.state[q]["exp_avg_sq"].numpy(), **tol)
        assert o1.state[id(p)]["step"] == int(o2.state[q]["step"]) == 5


def test_optimizer_state_dict_round_trip(device):
    m = nn.Linear(3, 2).to(device)
    o = optim.AdamW(m.parameters(), lr=0.1)
    m(engine.ones(4, 3, device=device)).sum().backward()
    o.step()
    o2 = optim.AdamW(m.parameters(), lr=0.5)
    o2.load_state_dict(o.state_dict())
    assert o2.param_groups[0]["lr"] == 0.1
    st = o2.state[id(m.weight)]
    assert st["step"] == 1 and np.array_equal(to_host(st["exp_avg"]), to_host(o.state[id(m.weight)]["exp_avg"]))


def test_bad_arguments():
    p = [engine.tensor([1.0], requires_grad=True)]
    with pytest.raises(ValueError, match="lr"):
        optim.SGD(p, lr=-1)
    with pytest.raises(ValueError, match="nesterov"):
        optim.SGD(p, lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="betas"):
        optim.AdamW(p, betas=(0.9, 1.5))
    for kw, err, what in [(dict(lr=-1e-3), ValueError, "lr"), (dict(lr="0.1"), TypeError, "lr"),
                          (dict(lr=float("nan")), ValueError, "lr"), (dict(betas=(0.9,)), ValueError, "betas"),
                          (dict(betas=(1.0, 0.9)), ValueError, r"betas\[0\]"),
                          (dict(betas=(0.9, -0.1)), ValueError, r"betas\[1\]"),
                          (dict(betas=("0.9", 0.9)), TypeError, r"betas\[0\]"), (dict(eps=-1.0), ValueError, "eps"),
                          (dict(eps=float("inf")), ValueError, "eps"),
                          (dict(weight_decay=-0.1), ValueError, "weight_decay"),
                          (dict(amsgrad=True), ValueError, "amsgrad"), (dict(maximize=True), ValueError, "maximize"),
                          (dict(amsgrad="no"), TypeError, "amsgrad"), (dict(foreach="yes"), TypeError, "foreach"),
                          (dict(decoupled_weight_decay=1), TypeError, "decoupled_weight_decay")]:
        with pytest.raises(err, match=what):
            optim.Adam(p, **kw)
    optim.Adam(p, foreach=False, fused=None, capturable=False, differentiable=False)
    with pytest.raises(ValueError, match="params"):
        optim.SGD([], lr=0.1)
    with pytest.raises(TypeError, match="params"):                   # a bare tensor: PyTorch refuses it too
        optim.SGD(p[0], lr=0.1)
    with pytest.raises(ValueError, match="non-leaf"):
        optim.SGD([p[0] * 2], lr=0.1)
    with pytest.raises(ValueError, match="more than one parameter group"):
        optim.SGD([{"params": p}, {"params": p}], lr=0.1)
    with pytest.raises(TypeError, match="state_dict"):
        optim.SGD(p, lr=0.1).load_state_dict(None)


def test_frozen_parameter_is_kept_and_skipped(device):
    """A tensor that does not require grad is accepted (PyTorch's freeze-then-unfreeze habit) and stepped
    once it requires grad and has a gradient."""
    frozen = engine.tensor([1.0], device=device)
    o = optim.SGD([frozen], lr=0.5)
    o.step()
    assert frozen.item() == 1.0
    frozen.requires_grad = True
    (frozen * 2).sum().backward()
    o.step()
    assert frozen.item() == 0.0


def test_zero_grad_and_skip_params_without_grad(device):
    a, b = engine.tensor([1.0], requires_grad=True, device=device), engine.tensor([2.0], requires_grad=True,
                                                                                    device=device)
    o = optim.SGD([a, b], lr=1.0)
    (a * 3).sum().backward()
    o.step()
    assert a.item() == -2.0 and b.item() == 2.0
    o.zero_grad()
    assert a.grad is None
