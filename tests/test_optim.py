"""SGD and AdamW: fused kernels against the references and closed forms, and against PyTorch."""
import numpy as np
import pytest

import engine
import kernels.cpu as cpu
import kernels.reference as ref
from engine import nn, optim

rng = np.random.default_rng(0)


def test_sgd_weight_decay_without_momentum_is_the_books_formula(dtype):
    w0, g = rng.standard_normal(1000).astype(dtype), rng.standard_normal(1000).astype(dtype)
    p = engine.tensor(w0.copy(), dtype=dtype, requires_grad=True)
    p.grad = engine.tensor(g, dtype=dtype)
    optim.SGD([p], lr=0.1, weight_decay=0.01).step()
    expected = (1 - 0.1 * 0.01) * w0.astype(np.float64) - 0.1 * g
    np.testing.assert_allclose(p.numpy(), expected, rtol=1e-6 if dtype == np.float32 else 1e-14)


@pytest.mark.parametrize("momentum,dampening,nesterov,wd", [(0.0, 0.0, False, 0.0), (0.9, 0.0, False, 1e-4),
                                                            (0.9, 0.1, False, 0.0), (0.8, 0.0, True, 1e-2)])
def test_sgd_kernel_matches_reference_over_steps(momentum, dampening, nesterov, wd, dtype):
    p_k = rng.standard_normal(70000).astype(dtype)
    p_r = p_k.astype(np.float64)
    b_k, b_r = np.empty_like(p_k), np.empty_like(p_r)
    for step in range(3):
        g = rng.standard_normal(p_k.shape).astype(dtype)
        cpu.sgd_step(p_k, g, b_k if momentum else None, 0.05, momentum, dampening, nesterov, wd, step == 0)
        ref.sgd_step(p_r, g.astype(np.float64), b_r, 0.05, momentum, dampening, nesterov, wd, step == 0)
    np.testing.assert_allclose(p_k, p_r, rtol=1e-5 if dtype == np.float32 else 1e-13, atol=1e-6)


def test_adamw_kernel_matches_reference_over_steps(dtype):
    p_k = rng.standard_normal(70000).astype(dtype)
    p_r = p_k.astype(np.float64)
    m_k, v_k, m_r, v_r = (np.zeros_like(p_k), np.zeros_like(p_k), np.zeros_like(p_r), np.zeros_like(p_r))
    for step in range(1, 4):
        g = rng.standard_normal(p_k.shape).astype(dtype)
        cpu.adamw_step(p_k, g, m_k, v_k, 1e-2, 0.9, 0.999, 1e-8, 0.05, step)
        ref.adamw_step(p_r, g.astype(np.float64), m_r, v_r, 1e-2, 0.9, 0.999, 1e-8, 0.05, step)
    np.testing.assert_allclose(p_k, p_r, rtol=1e-5 if dtype == np.float32 else 1e-13, atol=1e-6)


def test_adamw_first_step_closed_form():
    # After one step, m_hat = g and v_hat = g^2, so the step is lr * sign(g) (eps aside) after decay.
    w0, g = rng.standard_normal(100), rng.standard_normal(100)
    p = engine.tensor(w0.copy(), dtype=np.float64, requires_grad=True)
    p.grad = engine.tensor(g, dtype=np.float64)
    optim.AdamW([p], lr=0.01, weight_decay=0.1, eps=0.0).step()
    np.testing.assert_allclose(p.numpy(), w0 * (1 - 0.01 * 0.1) - 0.01 * np.sign(g), rtol=1e-12)


@pytest.mark.parametrize("make", [
    lambda ps, torch: (optim.SGD(ps[0], lr=0.1, momentum=0.9, weight_decay=1e-3),
                       torch.optim.SGD(ps[1], lr=0.1, momentum=0.9, weight_decay=1e-3)),
    lambda ps, torch: (optim.SGD(ps[0], lr=0.1, momentum=0.9, nesterov=True),
                       torch.optim.SGD(ps[1], lr=0.1, momentum=0.9, nesterov=True)),
    lambda ps, torch: (optim.AdamW(ps[0], lr=0.01), torch.optim.AdamW(ps[1], lr=0.01)),
])
def test_optimizers_follow_pytorch(make):
    torch = pytest.importorskip("torch")
    w0 = rng.standard_normal((5, 3))
    mine = [engine.tensor(w0.copy(), dtype=np.float64, requires_grad=True)]
    theirs = [torch.tensor(w0.copy(), requires_grad=True)]
    o1, o2 = make((mine, theirs), torch)
    for _ in range(4):
        g = rng.standard_normal(w0.shape)
        mine[0].grad = engine.tensor(g, dtype=np.float64)
        theirs[0].grad = torch.tensor(g)
        o1.step()
        o2.step()
    np.testing.assert_allclose(mine[0].numpy(), theirs[0].detach().numpy(), rtol=1e-12, atol=1e-14)


def test_optimizer_state_dict_round_trip():
    m = nn.Linear(3, 2)
    o = optim.AdamW(m.parameters(), lr=0.1)
    m(engine.tensor(np.ones((4, 3), np.float32))).sum().backward()
    o.step()
    o2 = optim.AdamW(m.parameters(), lr=0.5)
    o2.load_state_dict(o.state_dict())
    assert o2.param_groups[0]["lr"] == 0.1
    st = o2.state[id(m.weight)]
    assert st["step"] == 1 and np.array_equal(st["exp_avg"], o.state[id(m.weight)]["exp_avg"])


def test_bad_arguments():
    p = [engine.tensor([1.0], requires_grad=True)]
    with pytest.raises(ValueError, match="lr"):
        optim.SGD(p, lr=-1)
    with pytest.raises(ValueError, match="nesterov"):
        optim.SGD(p, lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="betas"):
        optim.AdamW(p, betas=(0.9, 1.5))
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


def test_frozen_parameter_is_kept_and_skipped():
    """A tensor that does not require grad is accepted (PyTorch's freeze-then-unfreeze habit) and stepped
    once it requires grad and has a gradient."""
    frozen = engine.tensor([1.0])
    o = optim.SGD([frozen], lr=0.5)
    o.step()
    assert frozen.item() == 1.0
    frozen.requires_grad = True
    (frozen * 2).sum().backward()
    o.step()
    assert frozen.item() == 0.0


def test_zero_grad_and_skip_params_without_grad():
    a, b = engine.tensor([1.0], requires_grad=True), engine.tensor([2.0], requires_grad=True)
    o = optim.SGD([a, b], lr=1.0)
    (a * 3).sum().backward()
    o.step()
    assert a.item() == -2.0 and b.item() == 2.0
    o.zero_grad()
    assert a.grad is None
