"""The tensor and the tape: each differentiable tensor operation against finite differences (on each device),
broadcast gradient reduction, accumulation, no_grad, dtypes and errors."""
import numpy as np
import pytest

import engine
from conftest import check_engine_grad

rng = np.random.default_rng(0)
A = rng.standard_normal((3, 4))
B = rng.standard_normal((4,))
C = rng.standard_normal((2, 3, 4))
POS = rng.uniform(0.5, 2.0, (3, 4))


@pytest.mark.parametrize("name,fn,inputs", [
    ("add-broadcast", lambda a, b: a + b, [A, B]),
    ("sub-broadcast", lambda a, b: b - a, [A, B]),
    ("mul-broadcast", lambda a, c: a * c, [A, C]),
    ("div", lambda a, p: a / p, [A, POS]),
    ("rdiv-scalar", lambda p: 2.0 / p, [POS]),
    ("neg-pow", lambda p: -(p ** 2.5), [POS]),
    ("exp-log", lambda p: (p.exp() + p.log()) * 0.5, [POS]),
    ("matmul-2d", lambda a, b: a @ b.T, [A, rng.standard_normal((5, 4))]),
    ("matmul-batched-broadcast", lambda c, m: c @ m, [C, rng.standard_normal((4, 5))]),
    ("matmul-vector", lambda a, b: a @ b, [A, B]),
    ("sum-axis", lambda c: c.sum(axis=1), [C]),
    ("sum-keepdims", lambda c: c.sum(axis=(0, 2), keepdims=True), [C]),
    ("mean-all", lambda c: c.mean(), [C]),
    ("mean-dim", lambda c: c.mean(dim=-1), [C]),
    ("max-axis", lambda c: c.amax(axis=2), [C]),
    ("max-dim-values", lambda c: c.max(dim=1).values * 1.0, [C]),
    ("reshape-transpose", lambda c: c.reshape(6, 4).T * 3, [C]),
    ("permute", lambda c: c.permute(2, 0, 1) * 1.0, [C]),
    ("swapaxes", lambda c: c.swapaxes(0, 2) * 1.0, [C]),
    ("slice", lambda c: c[:, 1:, ::2] * 2, [C]),
    ("int-index-repeated", lambda a: a[np.array([0, 2, 0])], [A]),
    ("cat", lambda a, p: engine.cat([a, p], dim=1), [A, POS]),
    ("stack", lambda a, p: engine.stack([a, p], dim=0), [A, POS]),
    ("abs-sqrt", lambda p: p.sqrt() + (p - 1.25).abs(), [POS]),
    ("clamp", lambda a: a.clamp(-0.5, 0.5) * 1.0 + a.clamp(min=0.1), [A]),
    ("matmul-one-side", lambda a: engine.tensor(B, device=a.device) @ a.T, [A]),
])
def test_op_gradients_match_finite_differences(device, name, fn, inputs):
    check_engine_grad(fn, inputs, device=device)


def test_broadcast_gradient_is_reduced_to_the_input_shape(device):
    a = engine.tensor(np.ones((2, 3)), requires_grad=True, device=device)
    b = engine.tensor(np.ones((1, 3)), requires_grad=True, device=device)
    (a * b).sum().backward()
    assert b.grad.shape == (1, 3)
    np.testing.assert_array_equal(b.grad.numpy(), [[2, 2, 2]])


def test_gradients_accumulate_across_backward_calls_and_shared_inputs(device):
    x = engine.tensor([1.0, 2.0], requires_grad=True, device=device)
    (x * x).sum().backward()
    (x + x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [2 + 2, 4 + 2])


def test_no_grad_records_nothing():
    x = engine.tensor([1.0], requires_grad=True)
    with engine.no_grad():
        y = x * 2
    assert not y.requires_grad and y.is_leaf
    with pytest.raises(RuntimeError, match="does not require grad"):
        y.backward()


def test_deep_graph_does_not_hit_the_recursion_limit():
    x = engine.tensor([1.0], requires_grad=True)
    y = x
    for _ in range(5000):
        y = y * 1.0001
    y.backward()
    assert np.isclose(x.grad.item(), 1.0001 ** 5000, rtol=1e-3)


def test_dtypes_default_and_explicit():
    assert engine.tensor([1.0, 2.0]).dtype == np.float32
    assert engine.tensor(np.zeros(3)).dtype == np.float64              # NumPy arrays keep their dtype
    assert engine.tensor([1.0], dtype=engine.float64).dtype == np.float64
    assert engine.tensor([1, 2]).dtype == np.int64
    assert engine.tensor([True, False]).dtype == np.bool_
    x = engine.tensor([1.0, 2.0], requires_grad=True)
    assert (x * 2.0).dtype == np.float32                                # Python scalars do not promote


def test_tensor_api_basics():
    x = engine.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    assert x.shape == (2, 2) and x.ndim == 2 and x.device == "cpu" and x.requires_grad
    assert x.sum().item() == 10.0
    d = x.detach()
    assert not d.requires_grad and d.numpy() is x.numpy()
    assert x.to("cpu") is x
    assert x.to(dtype=engine.float64).dtype == np.float64
    assert (x.argmax(axis=1).numpy() == [1, 1]).all()


def test_errors_are_clear():
    with pytest.raises(TypeError, match="requires_grad"):
        engine.tensor([1, 2], requires_grad=True)
    with pytest.raises(RuntimeError, match="item"):
        engine.tensor([1.0, 2.0]).item()
    with pytest.raises(RuntimeError, match="one-element"):
        engine.tensor([1.0, 2.0], requires_grad=True).backward()
    with pytest.raises(ValueError, match="grad"):
        engine.tensor([1.0, 2.0], requires_grad=True).backward(np.ones(3))
    with pytest.raises(ValueError, match="matmul"):
        engine.tensor(np.ones((2, 3))) @ engine.tensor(np.ones((2, 3)))
    with pytest.raises(ValueError, match="shape"):
        engine.tensor(np.ones((2, 3))).reshape(4, 2)
    with pytest.raises(ValueError, match="tensors\\[1\\]"):
        engine.cat([engine.tensor(np.ones((2, 3))), engine.tensor(np.ones((2, 4)))], dim=0)
    with pytest.raises(ValueError, match="device"):
        engine.tensor([1.0]).to("tpu")
    with pytest.raises(RuntimeError, match="cuda"):
        engine.tensor([1.0], device="cuda")
    with pytest.raises(IndexError, match="dim"):
        engine.tensor(np.ones((2, 3))).sum(axis=2)
    with pytest.raises(IndexError, match="dim: 5 is out of range"):
        engine.tensor(np.ones((2, 3))).transpose(0, 5)
    with pytest.raises(ValueError, match="permutation"):
        engine.tensor(np.ones((2, 3))).permute(0, 0)
