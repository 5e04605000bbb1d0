"""In-place ops with PyTorch's rules: updates under no_grad, leaves refused on the tape, histories rewritten
correctly (also through views), version counters catching modified saved values, freed graphs.
Each gradient is checked against PyTorch where it is installed, else against the value worked out by hand."""
import numpy as np
import pytest

import engine
from engine import nn, optim

try:
    import torch
except ImportError:                                   # the PyTorch comparisons skip; the rest runs
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not installed")


def t64(a, grad=False):
    return engine.tensor(np.asarray(a, np.float64), requires_grad=grad)


def test_the_books_from_scratch_sgd_updates_parameters_in_place():
    engine.manual_seed(0)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 2))
    y = X @ np.array([2.0, -3.4]) + 4.2
    w = engine.tensor(rng.normal(0, 0.01, (2, 1)), requires_grad=True)
    b = engine.zeros(1, dtype=engine.float64, requires_grad=True)
    w_id, b_id = id(w._data), id(b._data)
    for epoch in range(30):
        for i in range(0, 200, 10):
            xb, yb = engine.tensor(X[i:i + 10]), engine.tensor(y[i:i + 10, None])
            loss = ((xb @ w + b - yb) ** 2 / 2).mean()
            loss.backward()
            with engine.no_grad():
                for p in (w, b):
                    p -= 0.03 * p.grad
                    p.grad.zero_()
    assert id(w._data) == w_id and id(b._data) == b_id           # updated in place, not rebound
    np.testing.assert_allclose(w.numpy().ravel(), [2.0, -3.4], atol=1e-3)
    np.testing.assert_allclose(b.numpy(), [4.2], atol=1e-3)
    assert w.is_leaf and w.requires_grad and float(loss) < 1e-6


@pytest.mark.parametrize("op", ["add_", "sub_", "mul_", "div_", "zero_", "fill_", "copy_", "clamp_", "iadd",
                                "setitem"])
def test_in_place_on_a_leaf_that_requires_grad_raises_outside_no_grad(op):
    w = t64([1.0, 2.0], grad=True)
    calls = {"add_": lambda: w.add_(1), "sub_": lambda: w.sub_(1), "mul_": lambda: w.mul_(2),
             "div_": lambda: w.div_(2), "zero_": lambda: w.zero_(), "fill_": lambda: w.fill_(3),
             "copy_": lambda: w.copy_(t64([5.0, 6.0])), "clamp_": lambda: w.clamp_(min=0),
             "iadd": lambda: w.__iadd__(1), "setitem": lambda: w.__setitem__(0, 7.0)}
    with pytest.raises(RuntimeError, match="leaf tensor that requires grad"):
        calls[op]()
    np.testing.assert_array_equal(w.numpy(), [1.0, 2.0])        # nothing was written
    with engine.no_grad():
        calls[op]()                                            # allowed as an update
    with pytest.raises(RuntimeError, match="view of a leaf"):
        w[0:1].add_(1)


def test_in_place_values_follow_numpy_and_pytorch():
    x = engine.tensor([1.0, -2.0, 3.0])
    x.add_(engine.tensor([1.0, 1.0, 1.0]), alpha=2).mul_(2).sub_(1).div_(2)
    np.testing.assert_allclose(x.numpy(), [2.5, -0.5, 4.5])
    x.clamp_(min=0, max=4)
    np.testing.assert_allclose(x.numpy(), [2.5, 0.0, 4.0])
    x[1] = 7
    x[engine.tensor([0, 2])] = engine.tensor(-1.0)
    np.testing.assert_allclose(x.numpy(), [-1, 7, -1])
    m = engine.zeros(2, 3)
    m[:, 1] = engine.tensor([1.0, 2.0])
    m[m > 1] = 9
    np.testing.assert_allclose(m.numpy(), [[0, 1, 0], [0, 9, 0]])
    m.fill_(2).zero_()
    assert (m.numpy() == 0).all() and m.dtype == np.float32
    m.copy_(engine.tensor([1.0, 2.0, 3.0]))                    # broadcast
    np.testing.assert_allclose(m.numpy(), [[1, 2, 3], [1, 2, 3]])
    i = engine.tensor([1, 2])
    i += 3
    assert i.dtype == np.int64 and i.tolist() == [4, 5]


def test_in_place_errors_are_clear():
    i = engine.tensor([1, 2])
    with pytest.raises(RuntimeError, match="dtype int64"):
        i += 1.5                                              # PyTorch: result type Float can't be cast to Long
    x = engine.zeros(3)
    with pytest.raises(RuntimeError, match="cannot broadcast its target"):
        x += engine.zeros(2, 3)
    with pytest.raises(ValueError, match="value: shape"):
        y = t64([1.0, 2.0, 3.0], grad=True) * 1
        y[0:2] = t64([1.0, 2.0, 3.0], grad=True)
    with pytest.raises(ValueError, match="clamp"):
        x.clamp_()
    ro = np.zeros(3)
    ro.flags.writeable = False
    with pytest.raises(RuntimeError, match="read-only"):
        engine.from_numpy(ro).add_(1)


def _check_grads(engine_fn, torch_fn, inputs, expected=None):
    """Run fn on engine and (if installed) PyTorch float64 leaves; compare the values and gradients."""
    e_in = [t64(a, grad=True) for a in inputs]
    e_out = engine_fn(*e_in)
    e_out.backward(engine.tensor(np.arange(1.0, e_out.numel() + 1).reshape(e_out.shape), dtype=engine.float64))
    got = [e_out.numpy()] + [t.grad.numpy() for t in e_in]
    if torch is not None:
        t_in = [torch.tensor(np.asarray(a, np.float64), requires_grad=True) for a in inputs]
        t_out = torch_fn(*t_in)
        t_out.backward(torch.arange(1.0, t_out.numel() + 1, dtype=torch.float64).reshape(t_out.shape))
        expected = [t_out.detach().numpy()] + [t.grad.numpy() for t in t_in]
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, rtol=1e-12, atol=1e-12)


def test_recorded_in_place_ops_give_pytorchs_gradients():
    a, b = [1.0, 2.0, 3.0], [0.5, -1.0, 2.0]

    def fn(x, w):
        y = x * 2                  # non-leaf: in-place is recorded
        y.mul_(w)                  # needs y's old value: the engine snapshots it
        y += w
        y.clamp_(max=5.0)
        return y * y

    _check_grads(fn, fn, [a, b], expected=[
        np.array([1.5 ** 2, 25.0, 25.0]), np.array([1 * 2 * 1.5 * 2 * 0.5, 0.0, 0.0]),
        np.array([1 * 2 * 1.5 * (2 + 1), 0.0, 0.0])])


def test_earlier_ops_keep_their_history_after_an_in_place_op():
    def fn(x, w):
        y = x * 1.0
        z = y * 3.0                # recorded before y changes: its gradient goes to y's old history
        y.add_(w)
        return z + y

    _check_grads(fn, fn, [[1.0, 2.0], [3.0, 4.0]], expected=[np.array([7.0, 13.0]), np.array([4.0, 8.0]),
                                                             np.array([1.0, 2.0])])


def test_in_place_on_views_rewrites_the_base_history():
    def fn(x, w):
        y = x * 1.0
        v = y[0]                   # a view of y
        v.mul_(w[0])               # y's row 0 changes, through the view
        y[1, 1:] = w[1:] * 2       # item assignment on the tape
        r = y.reshape(6)
        r[-1] += 10.0
        return y * y

    x = np.arange(6.0).reshape(2, 3) + 1
    _check_grads(fn, fn, [x, [2.0, 3.0, 4.0]], expected=None if torch else [
        (np.array([[2, 4, 6], [4, 6, 8 + 10]]) ** 2).astype(float),
        np.array([[2 * 2 * 2 * 1, 2 * 4 * 2 * 2, 2 * 6 * 2 * 3], [2 * 4 * 4, 0, 0]]),
        np.array([2 * 2 * 1 * 1 + 2 * 4 * 2 * 2 + 2 * 6 * 3 * 3, 2 * 6 * 5 * 2, 2 * 18 * 6 * 2])])


def test_backward_raises_when_a_saved_value_was_modified_in_place():
    x = t64([1.0, 2.0], grad=True)
    y = x.exp()                    # exp keeps its output
    y.add_(1)
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        y.sum().backward()
    x.grad = None
    y = x * 2
    z = y * y                      # mul keeps y
    y.add_(1)
    with pytest.raises(RuntimeError, match="version 1, expected 0"):
        z.sum().backward()
    # a view shares its base's counter; detach() too
    y = x * 1.0
    z = y.exp()
    z.detach()[0] = 5.0
    with pytest.raises(RuntimeError, match="in-place"):
        z.sum().backward()
    # an optimizer step in place counts as a modification of the parameters it updates
    lin = nn.Linear(2, 1).double()
    opt = optim.SGD(lin.parameters(), lr=0.1)
    out = lin(t64([[1.0, 2.0]], grad=True)).sum()        # x's gradient needs the weight
    out.backward(retain_graph=True)
    opt.step()
    with pytest.raises(RuntimeError, match="in-place"):
        out.backward()


def test_ops_that_do_not_keep_the_value_allow_in_place_changes():
    x = t64([1.0, 2.0], grad=True)
    y = x + 1                      # add keeps nothing
    s = y + 0
    y.mul_(3)
    s.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [1.0, 1.0])


def test_a_second_backward_through_a_freed_graph_raises_unless_retained():
    x = t64([1.0, 2.0], grad=True)
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        y.backward()
    x.grad = None
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_array_equal(x.grad.numpy(), [4.0, 8.0])


def test_requires_grad_flags_and_detach():
    x = engine.tensor([1.0, 2.0]).requires_grad_()
    assert x.requires_grad and x.is_leaf
    y = x * 2
    with pytest.raises(RuntimeError, match="leaf"):
        y.requires_grad_(False)
    d = y.detach()
    assert not d.requires_grad and np.shares_memory(d.numpy(), y.numpy())
    h = y.detach_()
    assert h is y and y.is_leaf and not y.requires_grad
    with pytest.raises(TypeError, match="floating-point"):
        engine.tensor([1, 2]).requires_grad_()


def test_hooks():
    x = t64([1.0, 2.0], grad=True)
    seen, after = [], []
    h1 = x.register_hook(lambda g: seen.append(g.numpy().copy()) or g * 2)
    x.register_post_accumulate_grad_hook(lambda p: after.append(p.grad.numpy().copy()))
    y = x * 3
    y.register_hook(lambda g: g + 1)
    y.retain_grad()
    y.sum().backward()
    np.testing.assert_array_equal(y.grad.numpy(), [2.0, 2.0])
    np.testing.assert_array_equal(seen[0], [6.0, 6.0])
    np.testing.assert_array_equal(x.grad.numpy(), [12.0, 12.0])
    np.testing.assert_array_equal(after[0], [12.0, 12.0])
    h1.remove()
    (x * 1).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [13.0, 13.0])
    with pytest.raises(RuntimeError, match="leaf"):
        (x * 1).register_post_accumulate_grad_hook(lambda p: None)


@needs_torch
def test_item_assignment_matches_pytorch_including_masks_and_broadcast():
    rng = np.random.default_rng(3)
    base = rng.standard_normal((3, 4))

    def fn(x, v):
        y = x + 0
        y[y > 0.5] = 0.0
        y[1] = v                  # a row from a (4,) tensor
        y[:, 0] = v[0] * 3        # a 0-d value broadcast down a column
        return y

    _check_grads(fn, fn, [base, rng.standard_normal(4)])


def test_item_assignment_drops_the_values_leading_size_one_dims_as_pytorch():
    x = engine.zeros(3)
    x[2] = engine.ones(1, 1)                  # NumPy refuses this for a scalar region; PyTorch accepts it
    x[0:2] = engine.tensor([[5.0, 6.0]])
    np.testing.assert_array_equal(x.numpy(), [5.0, 6.0, 1.0])
    y = t64([1.0, 2.0, 3.0], grad=True) * 1
    v = t64([[7.0]], grad=True)
    y[1] = v
    y.sum().backward()
    np.testing.assert_array_equal(y.numpy(), [1.0, 7.0, 3.0])
    np.testing.assert_array_equal(v.grad.numpy(), [[1.0]])
    with pytest.raises(ValueError, match="value: shape"):
        y = t64([1.0, 2.0, 3.0], grad=True) * 1
        y[1] = t64([[7.0, 8.0]], grad=True)
