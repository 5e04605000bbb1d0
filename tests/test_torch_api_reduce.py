"""Reductions, scans and sorts against PyTorch: dim as int / tuple / negative / None, keepdim, dtypes
(integer sums are int64, mean needs floats), max/min in their three forms, sort and topk, norm, gradients."""
import numpy as np
import pytest

import engine
from conftest import check_engine_grad

torch = pytest.importorskip("torch")
from test_torch_api import compare  # noqa: E402

rng = np.random.default_rng(5)
X = rng.standard_normal((3, 4, 5))
INT = rng.integers(-9, 10, (3, 4)).astype(np.int64)
I32 = INT.astype(np.int32)
BOOL = rng.random((3, 4)) > 0.5
DIMS = [None, 0, -1, (0, 2), (-1, 1)]


@pytest.mark.parametrize("dim", DIMS, ids=str)
@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("name", ["sum", "mean", "amax", "amin", "std", "var", "logsumexp"])
def test_reductions_over_dims(device, name, dim, keepdim):
    if name == "logsumexp" and dim is None:
        pytest.skip("torch.logsumexp needs a dim")
    if name in ("amax", "amin") and dim is None:
        compare(lambda lib, x: getattr(lib, name)(x), X, device=device)
        return
    compare(lambda lib, x: getattr(lib, name)(x, dim, keepdim=keepdim), X, device=device)
    compare(lambda lib, x: getattr(x, name)(dim=dim, keepdim=keepdim), X, device=device)


@pytest.mark.parametrize("data", [INT, I32, BOOL, INT.astype(np.uint8)], ids=["int64", "int32", "bool", "uint8"])
def test_integer_and_bool_sums_are_int64(device, data):
    compare(lambda lib, x: (x.sum(), x.sum(0), lib.sum(x, dim=1, keepdim=True)), data, grad=False, device=device)
    compare(lambda lib, x: x.cumsum(0), data, grad=False, device=device)


def test_mean_of_integers_is_refused_as_in_pytorch(device):
    with pytest.raises(RuntimeError, match="floating point"):
        engine.tensor([1, 2]).mean()
    compare(lambda lib, x: x.mean(dtype=lib.float64), INT, device=device)


def test_numpy_style_axis_and_keepdims_are_accepted(device):
    compare(lambda lib, x: (x.sum(axis=1), x.cumsum(axis=0), x.mean(axis=(0, 2), keepdims=True)), X, device=device)


def test_std_var_corrections(device):
    compare(lambda lib, x: (lib.std(x, dim=1, correction=0), x.var(unbiased=False), x.std(0, unbiased=True)), X,
            device=device)


@pytest.mark.parametrize("dim", [0, 1, -1])
@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("name", ["max", "min"])
def test_max_min_with_dim_give_values_and_indices(device, name, dim, keepdim):
    _, _ = compare(lambda lib, x: tuple(getattr(lib, name)(x, dim, keepdim=keepdim)), X, device=device)
    r = getattr(engine.tensor(X), name)(dim=dim, keepdim=keepdim)
    assert r.values.shape == r[0].shape and r.indices.dtype == engine.int64


def test_max_of_everything_shares_ties_and_max_dim_picks_one(device):
    a = np.array([[1.0, 3.0, 3.0], [2.0, 0.0, 2.0]])
    compare(lambda lib, x: x.max(), a, device=device)      # ties share the gradient (PyTorch's amax rule)
    compare(lambda lib, x: lib.max(x), a, device=device)
    compare(lambda lib, x: x.min(), a, device=device)
    compare(lambda lib, x: (x * 1.0).max(1).values, np.array([[1.0, 3.0, 2.0], [2.0, 0.0, 5.0]]), device=device)
    with pytest.raises(IndexError, match="empty"):
        engine.zeros(0, 3).max()


@pytest.mark.parametrize("dim", [None, 0, 1, -1])
@pytest.mark.parametrize("keepdim", [False, True])
def test_argmax_argmin(device, dim, keepdim):
    a = np.array([[1.0, 5.0, 3.0], [7.0, 0.0, 2.0]])
    if dim is None and keepdim:
        compare(lambda lib, x: lib.argmax(x, keepdim=True), a, grad=False, device=device)
        return
    compare(lambda lib, x: (lib.argmax(x, dim, keepdim), x.argmin(dim=dim, keepdim=keepdim)), a, grad=False,
            device=device)


@pytest.mark.parametrize("p", [2, 1, 3, float("inf"), "fro", 0.5])
@pytest.mark.parametrize("dim", [None, 1, (0, 1)], ids=str)
def test_norm(device, p, dim):
    compare(lambda lib, x: lib.norm(x, p=p, dim=dim), X, device=device)
    compare(lambda lib, x: x.norm(p, dim, keepdim=True), X, device=device)


def test_norm_at_zero_has_a_zero_gradient(device):
    compare(lambda lib, x: x.norm(), np.zeros(3), device=device)
    compare(lambda lib, x: x.norm(dim=1), np.array([[0.0, 0.0], [3.0, 4.0]]), device=device)
    check_engine_grad(lambda x: x.norm(p=3, dim=0), [X[:, 0]], device=device)


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_cumsum(device, dim):
    compare(lambda lib, x: lib.cumsum(x, dim), X, device=device)
    compare(lambda lib, x: x.cumsum(dim=dim), X, device=device)
    check_engine_grad(lambda x: x.cumsum(dim), [X], device=device)


@pytest.mark.parametrize("name", ["all", "any"])
def test_all_any(device, name):
    a = np.array([[0.0, 1.0], [2.0, 3.0]])
    compare(lambda lib, x: (getattr(lib, name)(x), getattr(x, name)(1), getattr(x > 1, name)(dim=0)), a, grad=False,
            device=device)


@pytest.mark.parametrize("descending", [False, True])
@pytest.mark.parametrize("dim", [0, -1])
def test_sort_argsort(device, descending, dim):
    compare(lambda lib, x: tuple(lib.sort(x, dim=dim, descending=descending)), X, device=device)
    compare(lambda lib, x: x.argsort(dim=dim, descending=descending), X, grad=False, device=device)
    compare(lambda lib, x: x.sort(dim).values * 2, X, device=device)


def test_sort_keeps_ties_in_order():
    a = np.array([2, 1, 2, 1, 3, 2])
    for desc in (False, True):
        got = engine.sort(engine.tensor(a), descending=desc, stable=True)
        want = torch.sort(torch.tensor(a), descending=desc, stable=True)
        np.testing.assert_array_equal(got.indices.numpy(), want.indices.numpy())


@pytest.mark.parametrize("largest", [True, False])
def test_topk(device, largest):
    compare(lambda lib, x: tuple(lib.topk(x, 2, dim=1, largest=largest)), X, device=device)
    with pytest.raises(RuntimeError, match="k"):
        engine.topk(engine.tensor(X), 9, dim=1)


def test_count_nonzero_and_zero_dim_inputs(device):
    compare(lambda lib, x: (lib.count_nonzero(x), lib.count_nonzero(x, dim=0)), INT, grad=False, device=device)
    compare(lambda lib, x: (x.sum(), x.sum(0), x.max(), x.cumsum(0), x.norm()), np.array(2.5), device=device)


def test_bad_dims_are_clear():
    x = engine.tensor(X)
    with pytest.raises(IndexError, match="dim"):
        x.sum(dim=3)
    with pytest.raises(TypeError, match="dim"):
        x.sum(dim=1.5)
    with pytest.raises(RuntimeError, match="more than once"):
        x.sum(dim=(0, 0))
    with pytest.raises(ValueError, match="p"):
        x.norm(p=-1)
