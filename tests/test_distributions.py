"""engine.distributions (torch.distributions through the alias): shapes and dtypes of samples, their
statistics over large seeded samples (bounds at 6 standard errors or more, so no seed fails them), log_prob,
entropy, mean and variance against torch.distributions (values and gradients), and argument checks."""
import math

import numpy as np
import pytest

import engine
import engine.distributions as D

P3 = [0.2, 0.3, 0.5]


def T(a, dtype=np.float64, grad=False):
    a = np.asarray(a)
    return engine.tensor(a, dtype=dtype if a.dtype.kind == "f" else a.dtype, requires_grad=grad)


def within(estimate, expected, stderr, k=6.0):
    """|estimate - expected| <= k standard errors (elementwise)."""
    estimate, expected = np.asarray(estimate, np.float64), np.asarray(expected, np.float64)
    assert np.all(np.abs(estimate - expected) <= k * np.asarray(stderr)), (estimate, expected, stderr)


# ---- Multinomial ----------------------------------------------------------------------------------------
def test_multinomial_shapes_dtype_and_counts():
    engine.manual_seed(0)
    m = D.Multinomial(100, T(P3, np.float32))
    assert m.batch_shape == () and m.event_shape == (3,)
    s = m.sample()
    assert s.shape == (3,) and s.dtype == np.float32 and s.sum().item() == 100
    s = m.sample((4, 5))
    assert s.shape == (4, 5, 3) and (s.sum(-1).numpy() == 100).all() and (s.numpy() >= 0).all()
    assert np.array_equal(s.numpy(), np.round(s.numpy()))
    mb = D.Multinomial(7, T([[0.1, 0.9], [0.5, 0.5], [1.0, 0.0]]))
    assert mb.batch_shape == (3,) and mb.event_shape == (2,)
    s = mb.sample((6,))
    assert s.shape == (6, 3, 2) and s.dtype == np.float64 and (s.sum(-1).numpy() == 7).all()
    assert (s.numpy()[:, 2] == [7, 0]).all()                       # probability 1 and 0: always all, never
    assert D.Multinomial(0, T(P3)).sample((2,)).numpy().tolist() == [[0, 0, 0], [0, 0, 0]]


def test_multinomial_large_sample_statistics():
    """The book's coin: counts / n near p; each component's mean and variance over many draws near n p and
    n p (1 - p); the one-trial form gives one-hot rows whose running average converges."""
    engine.manual_seed(1)
    p = np.array(P3)
    s = D.Multinomial(100, T(p)).sample((20000,)).numpy()
    within(s.mean(0), 100 * p, np.sqrt(100 * p * (1 - p) / 20000))
    var = 100 * p * (1 - p)
    within(s.var(0), var, var * np.sqrt(2 / 20000) * 1.5)         # kurtosis of a binomial ~ normal: margin 1.5
    one = D.Multinomial(1, T([0.5, 0.5])).sample((10000,)).numpy()
    assert one.shape == (10000, 2) and (one.sum(1) == 1).all() and set(np.unique(one)) == {0.0, 1.0}
    within(one.mean(0), [0.5, 0.5], np.sqrt(0.25 / 10000))
    big = D.Multinomial(10000, T([0.5, 0.5])).sample().numpy() / 10000
    within(big, [0.5, 0.5], np.sqrt(0.25 / 10000))


def test_multinomial_never_draws_a_zero_probability_category_and_repeats_with_the_seed():
    engine.manual_seed(2)
    a = D.Multinomial(50, T([0.0, 0.25, 0.0, 0.75])).sample((2000,)).numpy()
    assert not a[:, [0, 2]].any()
    engine.manual_seed(2)
    np.testing.assert_array_equal(D.Multinomial(50, T([0.0, 0.25, 0.0, 0.75])).sample((2000,)).numpy(), a)


def test_multinomial_log_prob_mean_variance_against_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    probs = rng.uniform(0.05, 1.0, (2, 4))
    probs[1, 2] = 0.0                                          # a zero-probability category, count 0
    counts = rng.multinomial(9, probs / probs.sum(-1, keepdims=True), size=(5, 2)).astype(np.float64)
    mine, theirs = D.Multinomial(9, T(probs)), torch.distributions.Multinomial(9, torch.tensor(probs))
    lp, tlp = mine.log_prob(T(counts)), theirs.log_prob(torch.tensor(counts))
    assert lp.shape == tuple(tlp.shape) == (5, 2)
    np.testing.assert_allclose(lp.numpy(), tlp.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(mine.mean.numpy(), theirs.mean.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(mine.variance.numpy(), theirs.variance.detach().numpy(), rtol=1e-12)
    for lg in (rng.standard_normal(3), np.array([2.0, -50.0, 0.5])):    # logits, one nearly impossible
        c = rng.multinomial(6, np.exp(lg) / np.exp(lg).sum(), size=4).astype(np.float64)
        np.testing.assert_allclose(D.Multinomial(6, logits=T(lg)).log_prob(T(c)).numpy(),
                                   torch.distributions.Multinomial(6, logits=torch.tensor(lg)).log_prob(
                                       torch.tensor(c)).numpy(), rtol=1e-12)


def test_multinomial_log_prob_gradient_against_torch():
    torch = pytest.importorskip("torch")
    probs = np.array([[0.2, 0.5, 0.3], [0.6, 0.1, 0.3]])
    counts = np.array([[1.0, 3.0, 2.0], [0.0, 5.0, 1.0]])
    pe, pt = T(probs, grad=True), torch.tensor(probs, requires_grad=True)
    D.Multinomial(6, pe).log_prob(T(counts)).sum().backward()
    torch.distributions.Multinomial(6, pt).log_prob(torch.tensor(counts)).sum().backward()
    np.testing.assert_allclose(pe.grad.numpy(), pt.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_multinomial_bad_arguments():
    p = T(P3)
    for kw, err, what in [(dict(total_count=2.5, probs=p), TypeError, "total_count"),
                          (dict(total_count=True, probs=p), TypeError, "total_count"),
                          (dict(total_count=-1, probs=p), ValueError, "total_count"),
                          (dict(total_count=3), ValueError, "probs"),
                          (dict(total_count=3, probs=p, logits=p), ValueError, "probs"),
                          (dict(total_count=3, probs=T([0.5, -0.5])), ValueError, "probs"),
                          (dict(total_count=3, probs=T([0.0, 0.0])), ValueError, "probs"),
                          (dict(total_count=3, probs=T(np.nan * np.ones(2))), ValueError, "probs"),
                          (dict(total_count=3, probs=T(0.5)), ValueError, "probs"),
                          (dict(total_count=3, probs=[0.5, 0.5]), TypeError, "probs")]:
        with pytest.raises(err, match=what):
            D.Multinomial(**kw)
    m = D.Multinomial(3, p)
    with pytest.raises(ValueError, match="value"):
        m.log_prob(T([1.0, 2.0, 3.0]))                                  # sums past total_count
    with pytest.raises(ValueError, match="value"):
        m.log_prob(T([-1.0, 2.0, 2.0]))
    with pytest.raises(ValueError, match="value"):
        m.log_prob(T([1.0, 2.0]))                                       # not K counts
    with pytest.raises(TypeError, match="sample_shape"):
        m.sample(10)
    with pytest.raises(NotImplementedError, match="entropy"):
        m.entropy()


# ---- Categorical -----------------------------------------------------------------------------------------
def test_categorical_samples():
    engine.manual_seed(4)
    c = D.Categorical(T([1.0, 0.0, 3.0, 6.0]))                         # unnormalized probs, one zero
    s = c.sample((200000,))
    assert s.shape == (200000,) and s.dtype == np.int64
    freq = np.bincount(s.numpy(), minlength=4) / 200000
    p = np.array([0.1, 0.0, 0.3, 0.6])
    within(freq, p, np.sqrt(p * (1 - p) / 200000) + 1e-12)
    assert freq[1] == 0
    cb = D.Categorical(logits=T([[0.0, 0.0], [0.0, -np.inf]]))         # a batch of 2
    s = cb.sample((1000, 3)).numpy()
    assert s.shape == (1000, 3, 2) and (s[..., 1] == 0).all() and 0 < s[..., 0].mean() < 1
    assert D.Categorical(T([0.0, 1.0])).sample().shape == ()


def test_categorical_log_prob_entropy_against_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    lg = rng.standard_normal((3, 5)) * 2
    for mine, theirs in [(D.Categorical(logits=T(lg)), torch.distributions.Categorical(logits=torch.tensor(lg))),
                         (D.Categorical(T(np.exp(lg))), torch.distributions.Categorical(torch.tensor(np.exp(lg))))]:
        for v in (np.array([0, 4, 2]), np.array([[1], [3]]), np.array(2), rng.integers(0, 5, (7, 3))):
            lp, tlp = mine.log_prob(T(v)), theirs.log_prob(torch.tensor(v))
            assert lp.shape == tuple(tlp.shape)
            np.testing.assert_allclose(lp.numpy(), tlp.numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(mine.entropy().numpy(), theirs.entropy().numpy(), rtol=1e-10)
        np.testing.assert_allclose(mine.probs.numpy(), theirs.probs.numpy(), rtol=1e-12)
        assert np.isnan(mine.mean.numpy()).all() and mine.mean.shape == (3,)
        assert mine.enumerate_support().shape == tuple(theirs.enumerate_support().shape) == (5, 3)
    assert D.Categorical(T([0.0, 1.0])).entropy().item() == 0.0        # PyTorch: 1.2e-7 from its clamping
    lt = torch.tensor(lg, requires_grad=True)
    le = T(lg, grad=True)
    v = np.array([1, 0, 4])
    (D.Categorical(logits=le).log_prob(T(v)).sum() + D.Categorical(logits=le).entropy().sum()).backward()
    (torch.distributions.Categorical(logits=lt).log_prob(torch.tensor(v)).sum()
     + torch.distributions.Categorical(logits=lt).entropy().sum()).backward()
    np.testing.assert_allclose(le.grad.numpy(), lt.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_categorical_bad_arguments():
    with pytest.raises(ValueError, match="probs"):
        D.Categorical()
    with pytest.raises(ValueError, match="probs"):
        D.Categorical(T([-0.1, 1.1]))
    with pytest.raises(ValueError, match="logits"):
        D.Categorical(logits=T([np.nan, 1.0]))
    with pytest.raises(ValueError, match="logits"):
        D.Categorical(logits=T([-np.inf, -np.inf]))
    c = D.Categorical(T(P3))
    for v in (T([3]), T([-1]), T([0.5])):
        with pytest.raises(ValueError, match="value"):
            c.log_prob(v)
    with pytest.raises(TypeError, match="value"):
        c.log_prob(1)
    assert D.Categorical(T(P3), validate_args=False).log_prob(T([0.0])).shape == (1,)


# ---- Bernoulli -------------------------------------------------------------------------------------------
def test_bernoulli_samples_and_moments():
    engine.manual_seed(6)
    p = np.array([0.0, 0.1, 0.5, 0.9, 1.0])
    b = D.Bernoulli(T(p, np.float32))
    s = b.sample((50000,))
    assert s.shape == (50000, 5) and s.dtype == np.float32 and set(np.unique(s.numpy())) <= {0.0, 1.0}
    within(s.numpy().mean(0), p, np.sqrt(p * (1 - p) / 50000) + 1e-12)
    np.testing.assert_allclose(b.mean.numpy(), p, rtol=1e-7)
    np.testing.assert_allclose(b.variance.numpy(), p * (1 - p), rtol=1e-6, atol=1e-8)


def test_bernoulli_log_prob_entropy_against_torch():
    torch = pytest.importorskip("torch")
    p = np.array([0.01, 0.3, 0.5, 0.77, 0.99])
    v = np.array([[1.0, 0.0, 1.0, 0.0, 1.0], [0.0, 1.0, 0.0, 1.0, 0.0]])
    lg = np.array([-100.0, -3.0, 0.0, 4.0, 100.0])                     # saturated logits stay finite
    for mine, theirs in [(D.Bernoulli(T(p)), torch.distributions.Bernoulli(torch.tensor(p))),
                         (D.Bernoulli(logits=T(lg)), torch.distributions.Bernoulli(logits=torch.tensor(lg)))]:
        lp, tlp = mine.log_prob(T(v)), theirs.log_prob(torch.tensor(v))
        assert lp.shape == (2, 5) and np.isfinite(lp.numpy()).all()
        np.testing.assert_allclose(lp.numpy(), tlp.numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(mine.entropy().numpy(), theirs.entropy().numpy(), rtol=1e-9, atol=1e-30)
    pe, pt = T(p, grad=True), torch.tensor(p, requires_grad=True)
    (D.Bernoulli(pe).log_prob(T(v)).sum() + D.Bernoulli(pe).entropy().sum()).backward()
    (torch.distributions.Bernoulli(pt).log_prob(torch.tensor(v)).sum()
     + torch.distributions.Bernoulli(pt).entropy().sum()).backward()
    np.testing.assert_allclose(pe.grad.numpy(), pt.grad.numpy(), rtol=1e-9)
    ends = D.Bernoulli(T([0.0, 1.0]))
    np.testing.assert_array_equal(ends.log_prob(T([0.0, 1.0])).numpy(), [0.0, 0.0])     # exact, not log(1 - eps)
    np.testing.assert_array_equal(ends.log_prob(T([1.0, 0.0])).numpy(), [-np.inf, -np.inf])
    np.testing.assert_array_equal(ends.entropy().numpy(), [0.0, 0.0])


def test_bernoulli_bad_arguments():
    for kw, what in [(dict(probs=T([1.5])), "probs"), (dict(probs=T([-0.5])), "probs"),
                     (dict(logits=T([np.nan])), "logits"), (dict(), "probs")]:
        with pytest.raises(ValueError, match=what):
            D.Bernoulli(**kw)
    with pytest.raises(ValueError, match="value"):
        D.Bernoulli(T([0.5])).log_prob(T([0.5]))


# ---- Normal --------------------------------------------------------------------------------------------------
def test_normal_samples_rsample_and_dtypes():
    engine.manual_seed(7)
    n = D.Normal(T([0.0, 3.0]), T([1.0, 0.5]))
    s = n.sample((40000,)).numpy()
    assert s.shape == (40000, 2)
    within(s.mean(0), [0.0, 3.0], np.array([1.0, 0.5]) / np.sqrt(40000))
    within(s.std(0), [1.0, 0.5], np.array([1.0, 0.5]) / np.sqrt(2 * 40000) * 1.5)
    n32 = D.Normal(0.0, 1.0)
    assert n32.batch_shape == () and n32.sample().shape == () and n32.sample().dtype == np.float32
    assert D.Normal(T(0.0), 2.0).scale.dtype == np.float64              # a number takes the tensor's dtype
    loc, scale = T([1.0, -2.0], grad=True), T([0.5, 2.0], grad=True)
    engine.manual_seed(8)                  # the engine's generator is NumPy's default_rng(seed): eps is known
    r = D.Normal(loc, scale).rsample((3,))
    eps = np.random.default_rng(8).standard_normal((3, 2))
    assert r.requires_grad and not D.Normal(loc, scale).sample().requires_grad
    np.testing.assert_allclose(r.numpy(), np.array([1.0, -2.0]) + eps * np.array([0.5, 2.0]), rtol=1e-12)
    r.sum().backward()                     # the reparameterization: d/dloc = 1, d/dscale = eps
    np.testing.assert_allclose(loc.grad.numpy(), [3.0, 3.0])
    np.testing.assert_allclose(scale.grad.numpy(), eps.sum(0), rtol=1e-12)


def test_normal_log_prob_entropy_against_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(9)
    loc, scale, v = rng.standard_normal(4), rng.uniform(0.1, 3.0, 4), rng.standard_normal((6, 4)) * 3
    le, se = T(loc, grad=True), T(scale, grad=True)
    lt, st = torch.tensor(loc, requires_grad=True), torch.tensor(scale, requires_grad=True)
    mine, theirs = D.Normal(le, se), torch.distributions.Normal(lt, st)
    lp, tlp = mine.log_prob(T(v)), theirs.log_prob(torch.tensor(v))
    np.testing.assert_allclose(lp.numpy(), tlp.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(mine.entropy().numpy(), theirs.entropy().detach().numpy(), rtol=1e-12)
    (lp.sum() + mine.entropy().sum()).backward()
    (tlp.sum() + theirs.entropy().sum()).backward()
    np.testing.assert_allclose(le.grad.numpy(), lt.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(se.grad.numpy(), st.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(mine.variance.numpy(), scale ** 2, rtol=1e-14)
    np.testing.assert_allclose(mine.stddev.numpy(), scale, rtol=1e-14)
    assert repr(D.Normal(0.0, 1.0)) == repr(torch.distributions.Normal(0.0, 1.0)) == "Normal(loc: 0.0, scale: 1.0)"


def test_normal_bad_arguments():
    for loc, scale, what in [(0.0, 0.0, "scale"), (0.0, -1.0, "scale"), (np.nan, 1.0, "loc"), (0.0, np.nan, "scale")]:
        with pytest.raises(ValueError, match=what):
            D.Normal(loc, scale)
    with pytest.raises(TypeError, match="loc"):
        D.Normal("0", 1.0)
    with pytest.raises(ValueError, match="value"):
        D.Normal(0.0, 1.0).log_prob(T([np.nan]))
    with pytest.raises(TypeError, match="validate_args"):
        D.Normal(0.0, 1.0, validate_args="no")


# ---- as torch.distributions -------------------------------------------------------------------------------
def test_importable_as_torch_distributions():
    from engine.utils import as_torch
    with as_torch():
        import torch
        from torch.distributions.multinomial import Multinomial
        names = dir(torch.distributions)
        engine.manual_seed(10)
        counts = Multinomial(1000, torch.tensor([0.5, 0.5])).sample()
    assert Multinomial is D.Multinomial
    assert {"Bernoulli", "Categorical", "Distribution", "Multinomial", "Normal"} <= set(names)
    assert counts.sum().item() == 1000 and abs(counts[0].item() - 500) <= 6 * math.sqrt(250)
