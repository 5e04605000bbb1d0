"""embedding and linear: kernels against references, engine gradients, errors."""
import numba
import numpy as np
import pytest

import engine
import engine.functional as F
import kernels.cpu as cpu
import kernels.reference as ref
from conftest import assert_close, check_engine_grad

rng = np.random.default_rng(0)


@pytest.mark.parametrize("idx_shape,num,dim,pad", [((5,), 7, 3, -1), ((4, 9), 11, 33, 2), ((2, 50), 5, 300, -1)])
def test_embedding_kernels_match_reference(idx_shape, num, dim, pad, dtype):
    idx = rng.integers(0, num, idx_shape)
    w = rng.standard_normal((num, dim)).astype(dtype)
    assert_close(cpu.embedding_fwd(idx, w), ref.embedding_fwd(idx, w.astype(np.float64)), dtype)
    dout = rng.standard_normal(idx_shape + (dim,)).astype(dtype)
    dw = cpu.embedding_bwd(dout, idx, num, pad)
    assert_close(dw, ref.embedding_bwd(dout.astype(np.float64), idx, num, pad), dtype)


def test_embedding_backward_parallel_matches_serial():
    idx = rng.integers(0, 4, (1000,))                 # many repeats: the race a naive prange would have
    dout = rng.standard_normal((1000, 64)).astype(np.float32)
    a = cpu.embedding_bwd(dout, idx, 4)
    numba.set_num_threads(1)
    try:
        b = cpu.embedding_bwd(dout, idx, 4)
    finally:
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    np.testing.assert_array_equal(a, b)


def test_embedding_engine_gradient_and_padding():
    idx = engine.tensor([[0, 2, 2], [1, 0, 3]])
    check_engine_grad(lambda w: F.embedding(idx, w) * 2, [rng.standard_normal((4, 5))])
    w = engine.tensor(rng.standard_normal((4, 5)), requires_grad=True)
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


def test_linear_gradients_and_torch():
    x, w, b = rng.standard_normal((2, 3, 5)), rng.standard_normal((4, 5)), rng.standard_normal(4)
    check_engine_grad(F.linear, [x, w, b])
    check_engine_grad(lambda x, w: F.linear(x, w), [x, w])
    torch = pytest.importorskip("torch")
    out = F.linear(engine.tensor(x, dtype=np.float64), engine.tensor(w, dtype=np.float64), engine.tensor(b, dtype=np.float64))
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
