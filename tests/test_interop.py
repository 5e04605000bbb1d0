"""The habits users bring from PyTorch and NumPy: Python scalars from tensors, NumPy's view of a tensor,
DLPack both ways, from_numpy, the dtype rules of tensor(), to(dtype), repr and format."""
import numpy as np
import pytest

import engine

try:
    import torch
except ImportError:
    torch = None
needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not installed")


def test_python_scalars_from_one_element_tensors():
    loss = engine.tensor(0.05)
    if loss < 0.1:                                 # the book's habit
        pass
    assert bool(loss < 0.1) is True and bool(engine.tensor([0])) is False
    assert float(engine.tensor([[2.5]])) == 2.5 and int(engine.tensor(3.9)) == 3
    assert [10, 20, 30][engine.tensor(1)] == 20              # __index__ for integer tensors
    with pytest.raises(TypeError, match="integer tensors"):
        [1, 2][engine.tensor(1.0)]
    with pytest.raises(RuntimeError, match="2 values is ambiguous"):
        bool(engine.tensor([1.0, 2.0]))
    with pytest.raises(RuntimeError, match="no values"):
        bool(engine.zeros(0))
    with pytest.raises(ValueError, match="one-element"):
        float(engine.tensor([1.0, 2.0]))
    with pytest.raises(RuntimeError, match="2 elements"):
        engine.tensor([1.0, 2.0]).item()
    with pytest.raises(TypeError, match="0-d"):
        len(engine.tensor(1.0))
    with pytest.raises(TypeError, match="0-d"):
        iter(engine.tensor(1.0))
    assert [float(r.sum()) for r in engine.tensor([[1.0, 2.0], [3.0, 4.0]])] == [3.0, 7.0]


def test_format_and_repr_follow_pytorch():
    assert f"{engine.tensor(3.14159):.3f}" == "3.142"
    with pytest.raises(TypeError, match="0-d"):
        f"{engine.tensor([1.0, 2.0]):.3f}"
    cases = {
        engine.tensor([1.5, 2.0, 1e-5]): "tensor([1.5000e+00, 2.0000e+00, 1.0000e-05])",
        engine.tensor([1.0, 2.0], dtype=engine.float64, requires_grad=True):
            "tensor([1., 2.], dtype=engine.float64, requires_grad=True)",
        engine.tensor([[1, 2], [3, 4]]): "tensor([[1, 2],\n        [3, 4]])",
        engine.tensor([True, False]): "tensor([ True, False])",
        engine.tensor([1.123456789, 100.5]): "tensor([  1.1235, 100.5000])",
        engine.zeros(0, 3): "tensor([], size=(0, 3))",
        engine.tensor([float("nan"), float("inf"), 1.5]): "tensor([   nan,    inf, 1.5000])",
        engine.tensor(3.25) * engine.tensor(2.0, requires_grad=True): "tensor(6.5000, grad_fn=<MulBackward>)",
    }
    for t, text in cases.items():
        assert repr(t) == text
    if torch is not None:                       # the same strings as PyTorch, up to the module's name
        assert repr(torch.tensor([1.123456789, 100.5])) == repr(engine.tensor([1.123456789, 100.5]))
        assert repr(torch.tensor([[1, 2], [3, 4]])) == repr(engine.tensor([[1, 2], [3, 4]]))


def test_numpy_sees_cpu_tensors_without_a_copy():
    t = engine.tensor([[1.0, 2.0], [3.0, 4.0]])
    a = np.asarray(t)
    assert a.dtype == np.float32 and a.shape == (2, 2) and np.shares_memory(a, t.numpy())
    assert np.asarray(t, dtype=np.float64).dtype == np.float64
    assert float(np.sum(t)) == 10.0
    r = np.ones(2) + engine.tensor([1.0, 2.0])                # ndarray + Tensor defers to the tensor
    assert isinstance(r, engine.Tensor)


def test_tensor_dtype_rules_follow_pytorch():
    assert engine.tensor(np.zeros(3)).dtype == np.float64          # NumPy arrays keep their dtype
    assert engine.tensor(np.zeros(3, np.int32)).dtype == np.int32
    assert engine.tensor(np.float64(1.0)).dtype == np.float64
    assert engine.tensor([np.float64(1.0), 2.0]).dtype == np.float64
    assert engine.tensor([1.0, 2.0]).dtype == np.float32          # Python floats: the default float32
    assert engine.tensor(2.5).dtype == np.float32 and engine.tensor([1, 2]).dtype == np.int64
    assert engine.tensor([True]).dtype == np.bool_
    assert engine.tensor(np.zeros(3), dtype=engine.float32).dtype == np.float32
    with pytest.raises(TypeError, match="data: unsupported"):
        engine.tensor(["a"])
    with pytest.raises(TypeError, match="dtype"):
        engine.tensor([1.0], dtype="nonsense")
    if torch is not None:
        for data in (np.zeros(2), np.zeros(2, np.int32), [1.0], [1], [True], np.float64(2), [np.float64(1)]):
            assert engine.tensor(data).dtype.name == str(torch.tensor(data).dtype).split(".")[1]


def test_tensor_copies_and_from_numpy_shares():
    a = np.arange(4.0)
    t, s = engine.tensor(a), engine.from_numpy(a)
    a[0] = 10
    assert t.numpy()[0] == 0 and s.numpy()[0] == 10 and s.dtype == np.float64
    s += 1                                           # writes into the NumPy array
    assert a[1] == 2
    with pytest.raises(TypeError, match="ndarray: expected a NumPy array"):
        engine.from_numpy([1, 2])
    assert engine.as_tensor(a).numpy() is a


def test_to_with_positional_dtype_device_and_tensor():
    x = engine.tensor([1.0, 2.0], requires_grad=True)
    y = x.to(engine.float64)
    assert y.dtype == np.float64 and y.requires_grad
    assert x.to("cpu", engine.float64).dtype == np.float64
    assert x.to(dtype=engine.float32) is x and x.to("cpu") is x
    assert x.to(engine.tensor([1], dtype=engine.int32)).dtype == np.int32
    assert x.to(engine.float32, copy=True) is not x
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [1.0, 1.0])
    with pytest.raises(TypeError, match="to\\(\\)"):
        x.to(object())
    assert x.double().dtype == np.float64 and x.long().dtype == np.int64 and x.float().dtype == np.float32


def test_dlpack_with_numpy_both_ways():
    a = np.arange(6.0).reshape(2, 3)
    t = engine.from_dlpack(a)
    assert np.shares_memory(t.numpy(), a) and t.dtype == np.float64
    back = np.from_dlpack(t)
    assert np.shares_memory(back, a)
    assert t.__dlpack_device__() == (1, 0)
    with pytest.raises(BufferError, match="detach"):
        engine.tensor([1.0], requires_grad=True).__dlpack__()
    with pytest.raises(TypeError, match="__dlpack__"):
        engine.from_dlpack([1, 2])


@needs_torch
def test_dlpack_with_pytorch_both_ways_without_copies():
    src = torch.arange(6, dtype=torch.float32).reshape(2, 3)
    t = engine.from_dlpack(src)
    src[0, 0] = 42.0
    assert t.numpy()[0, 0] == 42.0 and t.dtype == np.float32 and t.shape == (2, 3)
    e = engine.tensor([[1.0, 2.0], [3.0, 4.0]])
    p = torch.from_dlpack(e)
    p += 1
    np.testing.assert_array_equal(e.numpy(), [[2, 3], [4, 5]])
    # a gradient computed by the engine flows into PyTorch and back
    w = engine.tensor([1.0, 2.0], requires_grad=True)
    (w * w).sum().backward()
    assert torch.equal(torch.from_dlpack(w.grad), torch.tensor([2.0, 4.0]))
    # non-contiguous producers keep their strides
    tt = torch.arange(12.0).reshape(3, 4).t()
    np.testing.assert_array_equal(engine.from_dlpack(tt).numpy(), tt.numpy())


def test_dlpack_with_jax_if_installed():
    jnp = pytest.importorskip("jax.numpy")
    j = jnp.arange(4.0)
    t = engine.from_dlpack(j)
    np.testing.assert_array_equal(t.numpy(), [0, 1, 2, 3])
    with pytest.raises(RuntimeError, match="read-only"):
        t.add_(1)                                       # JAX arrays are immutable
