"""Creation and random functions against PyTorch: shapes (sizes as arguments, a tuple or size=), dtypes, and
the distributions of the samples (large seeded samples, bounds far outside their sampling error); creation,
random draws and type promotion on each device."""
import numpy as np
import pytest

import engine

torch = pytest.importorskip("torch")
from test_torch_api import compare  # noqa: E402

N = 200_000          # the standard error of a sample mean of N(0, 1) is 0.0022: bounds below are 10x that


@pytest.mark.parametrize("name", ["zeros", "ones", "empty", "randn", "rand"])
@pytest.mark.parametrize("args,kw", [((2, 3), {}), (((2, 3),), {}), (([2, 3],), {}), ((), {"size": (2, 3)}),
                                     ((4,), {"dtype": "float64"})], ids=["args", "tuple", "list", "size", "dtype"])
def test_factories_take_pytorchs_size_forms(name, args, kw):
    mine = getattr(engine, name)(*args, **kw)
    tkw = dict(kw, dtype=torch.float64) if "dtype" in kw else kw
    theirs = getattr(torch, name)(*args, **tkw)
    assert mine.shape == tuple(theirs.shape) and mine.dtype == np.dtype(str(theirs.dtype).split(".")[1])


def test_full_eye_linspace_arange_like():
    compare(lambda lib, x: (lib.full((2, 3), 7), lib.full((2,), 1.5), lib.full((1,), True), lib.eye(3),
                            lib.eye(2, 4), lib.linspace(0, 1, 5), lib.linspace(-2, 2, 1), lib.arange(0, 3, 0.5),
                            lib.arange(5.0), lib.arange(1, 10, 3), lib.zeros_like(x), lib.ones_like(x),
                            lib.full_like(x, 2.5)), np.arange(6).reshape(2, 3), grad=False)
    with pytest.raises(ValueError, match="steps"):
        engine.linspace(0, 1, -1)
    with pytest.raises(ValueError, match="size"):
        engine.zeros(-1)
    with pytest.raises(TypeError, match="size"):
        engine.zeros(2, size=(2,))


def test_creation_random_and_promotion_stay_on_the_device(device):
    x = engine.arange(6, device=device).reshape(2, 3)
    y = x / 2 + 0.5
    assert y.device == device and y.dtype == engine.float32
    assert (x.sum().item(), x.float().mean().item()) == (15, 2.5)
    for t in (engine.normal(engine.zeros(4, device=device), 1.0), engine.randn(size=(2,), device=device),
              engine.full((2,), 3, device=device), engine.randint(0, 5, (3,), device=device),
              engine.zeros(3, device=device).normal_(0, 1), (x > 2).nonzero(), ~(x > 2), x.argmax(1)):
        assert t.device == device
    np.testing.assert_array_equal((x > 2).nonzero().numpy(), [[1, 0], [1, 1], [1, 2]])


def _moments(t):
    a = t.numpy().astype(np.float64)
    return a.mean(), a.std()


def test_randn_rand_distributions():
    engine.manual_seed(0)
    m, s = _moments(engine.randn(N))
    assert abs(m) < 0.02 and abs(s - 1) < 0.02
    u = engine.rand(size=(N,)).numpy()
    assert u.min() >= 0 and u.max() < 1 and abs(u.mean() - 0.5) < 0.01 and abs(u.var() - 1 / 12) < 0.005


@pytest.mark.parametrize("form", ["numbers", "tensor-mean", "tensor-std", "both-tensors"])
def test_normal_in_each_of_its_forms(form):
    engine.manual_seed(1)
    n = N // 4
    if form == "numbers":
        x = engine.normal(3.0, 2.0, size=(n,))
        want_shape = tuple(torch.normal(3.0, 2.0, size=(n,)).shape)
        mean, std = 3.0, 2.0
    elif form == "tensor-mean":
        x = engine.normal(engine.full((n,), -1.0), 0.5)
        want_shape = tuple(torch.normal(torch.full((n,), -1.0), 0.5).shape)
        mean, std = -1.0, 0.5
    elif form == "tensor-std":
        x = engine.normal(2.0, engine.full((n,), 3.0))
        want_shape = tuple(torch.normal(2.0, torch.full((n,), 3.0)).shape)
        mean, std = 2.0, 3.0
    else:
        x = engine.normal(engine.zeros(2, n // 2), engine.full((n // 2,), 4.0))
        want_shape = tuple(torch.normal(torch.zeros(2, n // 2), torch.full((n // 2,), 4.0)).shape)
        mean, std = 0.0, 4.0
    assert x.shape == want_shape and x.dtype == engine.float32
    m, s = _moments(x)
    assert abs(m - mean) < 0.05 * std and abs(s - std) < 0.02 * std


def test_normal_dtype_follows_its_tensors_and_needs_a_size_with_numbers():
    assert engine.normal(engine.zeros(3, dtype=engine.float64), 1.0).dtype == engine.float64
    with pytest.raises(TypeError, match="size"):
        engine.normal(0.0, 1.0)
    with pytest.raises(RuntimeError, match="std"):
        engine.normal(0.0, -1.0, (2,))


def test_randint_randperm_bernoulli_multinomial():
    engine.manual_seed(2)
    r = engine.randint(3, 7, (N,))
    assert r.dtype == engine.int64 and r.numpy().min() == 3 and r.numpy().max() == 6
    assert abs(r.numpy().mean() - 4.5) < 0.02
    assert engine.randint(5, size=(2, 2)).shape == (2, 2)
    p = engine.randperm(50)
    assert sorted(p.tolist()) == list(range(50)) and p.dtype == engine.int64
    b = engine.bernoulli(engine.full((N,), 0.3))
    assert set(np.unique(b.numpy())) <= {0.0, 1.0} and abs(b.numpy().mean() - 0.3) < 0.01
    w = engine.tensor([1.0, 0.0, 3.0])
    s = engine.multinomial(w, N, replacement=True).numpy()
    assert (s != 1).all() and abs((s == 2).mean() - 0.75) < 0.01
    s2 = engine.multinomial(w, 2)
    assert sorted(s2.tolist()) == [0, 2]
    with pytest.raises(RuntimeError, match="without replacement"):
        engine.multinomial(w, 3)


def test_in_place_fills_follow_the_distributions_and_the_in_place_rules():
    engine.manual_seed(4)
    t = engine.empty(N)
    assert t.normal_(0, 0.01) is t
    m, s = _moments(t)
    assert abs(m) < 1e-3 and abs(s - 0.01) < 2e-4
    t.uniform_(-10, 10)
    a = t.numpy()
    assert a.min() >= -10 and a.max() < 10 and abs(a.std() - 20 / np.sqrt(12)) < 0.1
    w = engine.zeros(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf"):
        w.normal_()
    with engine.no_grad():
        w.normal_()
    assert w.requires_grad and w.numpy().any()


def test_a_seed_repeats_the_draws():
    engine.manual_seed(9)
    a = (engine.randn(3), engine.normal(0, 1, (3,)), engine.rand(2), engine.randint(0, 9, (4,)))
    engine.manual_seed(9)
    b = (engine.randn(3), engine.normal(0, 1, (3,)), engine.rand(2), engine.randint(0, 9, (4,)))
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x.numpy(), y.numpy())
