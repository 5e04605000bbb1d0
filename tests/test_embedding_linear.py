"""embedding and linear: both backends' kernels against the references, engine gradients (on each device),
errors. Determinism: tests/test_determinism.py."""
import numpy as np
import pytest

import engine
import engine.functional as F
import kernels.reference as ref
from conftest import DTYPES, assert_close, cases, check_engine_grad, kernels_on, on_devices, to_dev, to_host

rng = np.random.default_rng(0)
EMB = [((5,), 7, 3, -1), ((4, 9), 11, 33, 2), ((2, 50), 5, 300, -1)]     # (4, 9): repeated rows sum


@pytest.mark.parametrize(*on_devices("case,dtype", cases(EMB, DTYPES), [(EMB[0], np.float64), (EMB[1], np.float32)]))
def test_embedding_kernels_match_reference(device, case, dtype):
    K, (idx_shape, num, dim, pad) = kernels_on(device), case
    idx = rng.integers(0, num, idx_shape)
    w = rng.standard_normal((num, dim)).astype(dtype)
    out = to_host(K.embedding_fwd(to_dev(idx, device), to_dev(w, device)))
    assert out.dtype == dtype
    np.testing.assert_array_equal(out, ref.embedding_fwd(idx, w.astype(np.float64)))         # a copy: exact
    dout = rng.standard_normal(idx_shape + (dim,)).astype(dtype)
    dw = to_host(K.embedding_bwd(to_dev(dout, device), to_dev(idx, device), num, pad))
    assert_close(dw, ref.embedding_bwd(dout.astype(np.float64), idx, num, pad), dtype)


@pytest.mark.parametrize(*on_devices("dtype", DTYPES))
def test_linear_kernels_match_reference(device, dtype):
    K = kernels_on(device)
    x, w, b = (rng.standard_normal(s).astype(dtype) for s in ((2, 3, 4), (5, 4), (5,)))
    y = to_host(K.linear_fwd(to_dev(x, device), to_dev(w, device), to_dev(b, device)))
    assert y.dtype == dtype
    assert_close(y, ref.linear_fwd(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64)), dtype)
    dout = rng.standard_normal(y.shape).astype(dtype)
    grads = to_host(K.linear_bwd(to_dev(dout, device), to_dev(x, device), to_dev(w, device)))
    for g, e in zip(grads, ref.linear_bwd(*(a.astype(np.float64) for a in (dout, x, w)))):
        assert g.dtype == dtype
        assert_close(g, e, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 5, 7), (2, 1, 1), (16, 32, 20), (64, 96, 48)])
def test_linear_cpu_paths(shape, dtype):
    """The CPU kernels' two paths (one Numba call below SMALL_FLOPS, BLAS above) against the reference: strided
    inputs, 3-D input, no bias, and each subset of the gradients."""
    from kernels.cpu import linear as L
    M, K, N = shape
    assert L._small(np.ones((M, K), dtype), np.ones((N, K), dtype)) == (2 * M * K * N < L.SMALL_FLOPS)
    x = rng.standard_normal((M, 2 * K)).astype(dtype)[:, ::2]             # strided rows
    w = np.asfortranarray(rng.standard_normal((N, K)).astype(dtype))      # a transposed layout
    b = rng.standard_normal(N).astype(dtype)
    x64, w64, b64 = (a.astype(np.float64) for a in (x, w, b))
    assert_close(L.linear_fwd(x, w, b), ref.linear_fwd(x64, w64, b64), dtype)
    assert_close(L.linear_fwd(x, w, None), x64 @ w64.T, dtype)
    x3 = np.ascontiguousarray(x).reshape(1, M, K)
    y3 = L.linear_fwd(x3, w, b)
    assert y3.shape == (1, M, N) and y3.dtype == dtype
    assert_close(y3[0], ref.linear_fwd(x64, w64, b64), dtype)
    dout = rng.standard_normal((M, N)).astype(dtype)
    expect = ref.linear_bwd(dout.astype(np.float64), x64, w64)
    for need in [(True, True, True), (True, False, False), (False, True, False), (False, False, True)]:
        got = L.linear_bwd(dout, x, w, *need)
        for g, e, n in zip(got, expect, need):
            if n:
                assert g.dtype == dtype
                assert_close(g, e, dtype)
            else:
                assert g is None
    dx3, dw3, db3 = L.linear_bwd(dout.reshape(1, M, N), x3, w)
    assert dx3.shape == (1, M, K)
    assert_close(dx3[0], expect[0], dtype)
    assert_close(dw3, expect[1], dtype)


def test_linear_kernels_without_input_features(device):
    """No input features: empty dx and dw, db the column sums, no reshape error (PyTorch's behaviour)."""
    K = kernels_on(device)
    dx, dw, db = to_host(K.linear_bwd(to_dev(np.ones((2, 4)), device), to_dev(np.zeros((2, 0)), device),
                                      to_dev(np.zeros((4, 0)), device)))
    assert dx.shape == (2, 0) and dw.shape == (4, 0) and (db == 2).all()


def test_embedding_engine_gradient_and_padding(device):
    idx = engine.tensor([[0, 2, 2], [1, 0, 3]], device=device)
    check_engine_grad(lambda w: F.embedding(idx, w) * 2, [rng.standard_normal((4, 5))], device=device)
    w = engine.tensor(rng.standard_normal((4, 5)), requires_grad=True, device=device)
    F.embedding(idx, w, padding_idx=2).sum().backward()
    np.testing.assert_array_equal(w.grad.numpy()[2], 0)
    np.testing.assert_array_equal(w.grad.numpy()[0], 2)


def test_embedding_bad_input():
    w = engine.tensor(np.ones((4, 3)))
    with pytest.raises(TypeError, match="input"):
        F.embedding(engine.tensor([0.0, 1.0]), w)
    with pytest.raises(ValueError, match="input"):
        F.embedding(engine.tensor([0, 4]), w)
    with pytest.raises(ValueError, match="input"):
        F.embedding(engine.tensor([-1]), w)
    with pytest.raises(ValueError, match="weight"):
        F.embedding(engine.tensor([0]), engine.tensor(np.ones(4)))
    with pytest.raises(ValueError, match="padding_idx"):
        F.embedding(engine.tensor([0]), w, padding_idx=7)


def test_linear_gradients_and_torch(device):
    x, w, b = rng.standard_normal((2, 3, 5)), rng.standard_normal((4, 5)), rng.standard_normal(4)
    check_engine_grad(F.linear, [x, w, b], device=device)
    check_engine_grad(lambda x, w: F.linear(x, w), [x, w], device=device)
    torch = pytest.importorskip("torch")
    out = F.linear(*(engine.tensor(a, dtype=np.float64, device=device) for a in (x, w, b)))
    expected = torch.nn.functional.linear(torch.tensor(x), torch.tensor(w), torch.tensor(b)).numpy()
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-12)


def test_linear_bad_input():
    x = engine.tensor(np.ones((2, 5)), dtype=np.float32)
    with pytest.raises(ValueError, match="input"):
        F.linear(x, engine.tensor(np.ones((4, 3)), dtype=np.float32))
    with pytest.raises(ValueError, match="bias"):
        F.linear(x, engine.tensor(np.ones((4, 5)), dtype=np.float32), engine.tensor(np.ones(3), dtype=np.float32))
    with pytest.raises(TypeError, match="weight"):
        F.linear(x, engine.tensor(np.ones((4, 5)), dtype=np.float64))
    with pytest.raises(TypeError, match="input"):
        F.linear(engine.tensor(np.ones((2, 5), dtype=np.int64)), engine.tensor(np.ones((4, 5))))
