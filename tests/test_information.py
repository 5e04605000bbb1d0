"""Information theory: the book's value and the identities its notes state."""
import numpy as np
import pytest

import engine
import engine.information as I

rng = np.random.default_rng(0)


def random_joint(nx=3, ny=4):
    p = rng.random((nx, ny))
    return p / p.sum()


def test_books_entropy_value():
    assert abs(I.entropy([0.1, 0.5, 0.1, 0.3], base=2).item() - 1.6855) < 1e-4      # bits, as the book computes
    assert abs(I.entropy([0.1, 0.5, 0.1, 0.3]).item() - 1.16828) < 1e-5             # the same in nats


def test_entropy_edge_cases():
    assert I.entropy([1.0, 0.0, 0.0]).item() == 0.0                                   # 0 log 0 = 0
    assert abs(I.entropy(np.full(8, 1 / 8), base=2).item() - 3.0) < 1e-12            # uniform: log2 n bits
    with pytest.raises(ValueError, match="p"):
        I.entropy([0.5, 1.5])


def test_mutual_information_identity():
    p = random_joint()
    h_x, h_y = I.entropy(p.sum(axis=1)).item(), I.entropy(p.sum(axis=0)).item()
    assert abs(I.mutual_information(p).item() - (h_x + h_y - I.joint_entropy(p).item())) < 1e-12


def test_conditional_entropy_chain_rule():
    p = random_joint()
    assert abs(I.conditional_entropy(p).item() - (I.joint_entropy(p).item() - I.entropy(p.sum(axis=1)).item())) < 1e-12


def test_independent_variables_have_zero_mutual_information_and_pmi():
    px, py = np.array([0.2, 0.8]), np.array([0.1, 0.3, 0.6])
    p = np.outer(px, py)
    assert abs(I.mutual_information(p).item()) < 1e-12
    np.testing.assert_allclose(I.pointwise_mutual_information(p).numpy(), 0, atol=1e-12)


def test_cross_entropy_is_entropy_plus_kl_and_kl_is_non_negative():
    for _ in range(20):
        p, q = rng.random(6), rng.random(6)
        p, q = p / p.sum(), q / q.sum()
        ce, h, kl = I.cross_entropy(p, q).item(), I.entropy(p).item(), I.kl_divergence(p, q).item()
        assert abs(ce - (h + kl)) < 1e-12
        assert kl >= 0
    assert abs(I.kl_divergence(p, p).item()) < 1e-12


def test_kl_is_differentiable():
    q = engine.tensor([0.2, 0.3, 0.5], dtype=np.float64, requires_grad=True)
    p = np.array([0.1, 0.6, 0.3])
    I.kl_divergence(p, q).backward()
    np.testing.assert_allclose(q.grad.numpy(), -p / q.numpy(), rtol=1e-12)    # d/dq of -sum p log q
