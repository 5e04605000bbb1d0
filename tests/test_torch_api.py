"""The torch.* API against PyTorch: a comparison helper the other test_torch_api_*.py files use (the engine's
side on either device), and the operators' type promotion, broadcasting and gradients. Skipped where PyTorch
is not installed."""
import numpy as np
import pytest

import engine

torch = pytest.importorskip("torch")

_TORCH_DTYPES = {torch.float32: np.float32, torch.float64: np.float64, torch.float16: np.float16,
                 torch.int64: np.int64, torch.int32: np.int32, torch.int16: np.int16, torch.int8: np.int8,
                 torch.uint8: np.uint8, torch.bool: np.bool_}


def np_dtype(t):
    return np.dtype(_TORCH_DTYPES[t.dtype]) if isinstance(t, torch.Tensor) else np.dtype(t.dtype)


def make(lib, arrays, grad, device="cpu"):
    """Tensors of `lib` (engine on `device`, or torch) from NumPy arrays; floats require grad when `grad`."""
    out = []
    for a in arrays:
        if not isinstance(a, np.ndarray):
            out.append(a)
            continue
        rg = grad and a.dtype.kind == "f"
        out.append(engine.tensor(a, requires_grad=rg, device=device) if lib is engine else
                   torch.tensor(a, requires_grad=rg))
    return out


def _flat(y):
    if isinstance(y, (tuple, list)):
        return [v for e in y for v in _flat(e)]
    return [y]


def compare(fn, *arrays, grad=True, rtol=1e-5, atol=1e-6, check_dtype=True, device="cpu"):
    """Run fn(lib, *tensors) with lib = engine (its tensors on `device`) and lib = torch on the same inputs;
    compare every output's shape, dtype, device and values, then (grad=True) the gradients of
    sum(<output, dout>) for each float input."""
    te, tt = make(engine, arrays, grad, device), make(torch, arrays, grad)
    ye, yt = _flat(fn(engine, *te)), _flat(fn(torch, *tt))
    assert len(ye) == len(yt), f"{len(ye)} outputs vs PyTorch's {len(yt)}"
    rng = np.random.default_rng(1)
    loss_e = loss_t = None
    for a, b in zip(ye, yt):
        if not isinstance(b, torch.Tensor):
            assert a == b, f"{a!r} vs PyTorch's {b!r}"
            continue
        assert isinstance(a, engine.Tensor), f"got {type(a).__name__}, PyTorch gives a tensor"
        assert a.shape == tuple(b.shape), f"shape {a.shape} vs PyTorch's {tuple(b.shape)}"
        assert a.device == device, f"an output on {a.device}, the inputs on {device}"
        if check_dtype:
            assert a.dtype == np_dtype(b), f"dtype {a.dtype} vs PyTorch's {b.dtype}"
        np.testing.assert_allclose(a.numpy().astype(np.float64), b.detach().numpy().astype(np.float64),
                                   rtol=rtol, atol=atol, equal_nan=True)
        if grad and b.requires_grad:
            assert a.requires_grad, "the engine's output does not require grad, PyTorch's does"
            d = rng.standard_normal(b.shape)
            term_e = (a * engine.tensor(d.astype(a.dtype), device=device)).sum()
            term_t = (b * torch.tensor(d, dtype=b.dtype)).sum()
            loss_e = term_e if loss_e is None else loss_e + term_e
            loss_t = term_t if loss_t is None else loss_t + term_t
    if loss_t is None:
        return te, tt
    loss_e.backward()
    loss_t.backward()
    for i, (a, b) in enumerate(zip(te, tt)):
        if isinstance(b, torch.Tensor) and b.requires_grad:
            if b.grad is None:
                assert a.grad is None or not np.any(a.grad.numpy()), f"input {i}: PyTorch gives no gradient"
                continue
            assert a.grad is not None, f"input {i}: no gradient (PyTorch has one)"
            assert a.grad.device == device, f"input {i}: gradient on {a.grad.device}"
            np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=rtol, atol=atol, equal_nan=True,
                                       err_msg=f"gradient of input {i}")
    return te, tt


rng = np.random.default_rng(0)
F32 = rng.standard_normal((3, 4)).astype(np.float32)
F64 = rng.standard_normal((3, 4))
ROW64 = rng.standard_normal(4)
I64 = rng.integers(-5, 6, (3, 4)).astype(np.int64)
I32 = rng.integers(-5, 6, (3, 4)).astype(np.int32)
U8 = rng.integers(0, 9, (3, 4)).astype(np.uint8)
B = rng.random((3, 4)) > 0.5
POS = rng.uniform(0.5, 2.0, (3, 4))


@pytest.mark.parametrize("a,b", [
    (F32, F64), (I64, 2.5), (I64, F32), (I32, I64), (B, I64), (B, 1), (B, 1.5), (U8, 3), (I32, 7),
    (F32, np.float64(2.0)), (F32, np.array(2.0)), (I64, np.array(2.5)), (I32, np.array(3, np.int64)),
    (B, B), (F64, ROW64), (ROW64.astype(np.float32), F64[:1]),
], ids=lambda v: f"{np.asarray(v).dtype}{np.shape(v)}" if isinstance(v, (np.ndarray, np.generic)) else repr(v))
@pytest.mark.parametrize("op", ["add", "sub", "mul", "truediv", "radd", "rsub", "rmul", "rtruediv"])
def test_arithmetic_promotes_and_broadcasts_as_pytorch(device, op, a, b):
    if op.endswith("sub") and (np.asarray(a).dtype == bool or np.asarray(b).dtype == bool):
        pytest.skip("PyTorch refuses bool subtraction; see test_bool_subtraction_is_refused")
    import operator
    f = getattr(operator, op) if not op.startswith("r") else (lambda x, y, o=getattr(operator, op[1:]): o(y, x))

    compare(lambda lib, x, y: f(x, y), a, b, device=device)


def test_bool_subtraction_is_refused():
    with pytest.raises(TypeError):
        engine.tensor([True]) - engine.tensor([False])


@pytest.mark.parametrize("op", ["eq", "ne", "lt", "le", "gt", "ge"])
@pytest.mark.parametrize("b", [F64[0], 0.1, np.float32(0.1), 1, np.array(0.1)], ids=["f64", "0.1", "np.f32", "1", "0d"])
def test_comparisons_promote_first_and_give_bool(device, op, b):
    import operator
    a = np.array([0.1, 0.2, -1.0], np.float32)

    compare(lambda lib, x, y: getattr(operator, op)(x, y), a, b[:3] if isinstance(b, np.ndarray) and b.ndim else b,
            grad=False, device=device)


@pytest.mark.parametrize("base,exp", [(POS, 2), (POS, 0.5), (POS, -1.5), (I64, 2), (I64, 2.5), (POS, POS[0]),
                                      (F32, I64), (np.abs(I64), I64 % 3), (2.0, F64), (2, I64 % 3), (3, F32)])
def test_powers_both_ways(device, base, exp):
    def fn(lib, x, y):
        return x ** y
    compare(fn, base, exp, device=device)


def test_power_gradient_conventions_at_zero_match_pytorch():
    compare(lambda lib, a, b: a ** b, np.array([0.0, 2.0, 0.0, -2.0]), np.array([2.0, 3.0, 0.0, 2.0]))


def test_integer_to_negative_integer_power_is_refused():
    with pytest.raises(RuntimeError, match="negative integer powers"):
        engine.tensor([2, 3]) ** -1
    with pytest.raises(RuntimeError, match="negative integer powers"):
        engine.tensor([2, 3]) ** engine.tensor([1, -1])


@pytest.mark.parametrize("op", ["floordiv", "mod"])
@pytest.mark.parametrize("a,b", [(I64, 3), (I64, -4), (F64, 0.7), (F64, POS), (7, np.abs(I64) + 1), (-2.5, POS)])
def test_floor_division_and_remainder_follow_python_signs(device, op, a, b):
    import operator
    f = getattr(operator, op)
    # PyTorch has no derivative of `number % tensor` in the tensor; the engine's (-floor(a / b)) is checked on
    # tensor % tensor
    compare(lambda lib, x, y: f(x, y), a, b, grad=(op == "mod" and not isinstance(a, (int, float))), device=device)


def test_floor_divide_has_no_derivative():
    x = engine.tensor([3.0, 4.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="floor_divide"):
        (x // 2).sum().backward()


@pytest.mark.parametrize("op", ["and_", "or_", "xor"])
@pytest.mark.parametrize("a,b", [(B, ~B), (I64, I32), (I64, 3), (B, True)])
def test_bitwise_and_logical_operators(device, op, a, b):
    import operator
    compare(lambda lib, x, y: getattr(operator, op)(x, y), a, b, grad=False, device=device)


def test_invert_is_logical_not_on_bool_and_bitwise_on_ints():
    compare(lambda lib, x: ~x, B, grad=False)
    compare(lambda lib, x: ~x, I64, grad=False)
    compare(lambda lib, x: ~(x > 0), F32, grad=False)
    with pytest.raises(TypeError, match="bool and integer"):
        ~engine.tensor([1.0])
    with pytest.raises(TypeError, match="bitwise_and"):
        engine.tensor([1.0]) & engine.tensor([1.0])


def test_format_of_a_0d_tensor_and_abs_neg_pos():
    x = engine.tensor(3.14159)
    assert f"{x:.3f}" == f"{torch.tensor(3.14159):.3f}" == "3.142"
    assert f"{engine.tensor(7):d}" == "7"
    with pytest.raises(TypeError, match="0-d"):
        f"{engine.tensor([1.0, 2.0]):.2f}"
    compare(lambda lib, a: abs(a) + (-a) * 2 + (+a), F64)


def test_matmul_operator_needs_one_dtype():
    with pytest.raises(RuntimeError, match="one dtype"):
        engine.tensor(F32) @ engine.tensor(F64.T)


def test_backward_with_a_gradient_argument_as_pytorch():
    def fn(lib, x):
        y = x * x
        y.backward(gradient=lib.ones(len(y)) if lib is engine else torch.ones(len(y), dtype=torch.float64))
        return x.grad
    compare(fn, ROW64, grad=True)


def test_from_scratch_sgd_learns_with_in_place_updates():
    """The book's loop: minibatch SGD on y = Xw + b + noise with `param -= lr * param.grad` under no_grad."""
    engine.manual_seed(0)
    w_true, b_true = engine.tensor([2.0, -3.4]), 4.2
    X = engine.normal(0, 1, (1000, 2))
    y = X @ w_true + b_true + engine.normal(0, 0.01, (1000,))
    w = engine.normal(0, 0.01, size=(2, 1), requires_grad=True)
    b = engine.zeros(1, requires_grad=True)
    for epoch in range(3):
        for i in range(0, 1000, 10):
            Xb, yb = X[i:i + 10], y[i:i + 10].reshape(-1, 1)
            loss = ((Xb @ w + b - yb) ** 2 / 2).mean()
            loss.backward()
            with engine.no_grad():
                for p in (w, b):
                    p -= 0.03 * p.grad
                    p.grad.zero_()
    final = (((X @ w + b).reshape(-1) - y) ** 2 / 2).mean().item()
    assert final < 1e-3, final                     # PyTorch's run of the same loop lands near 5e-5
    assert float((w.reshape(-1) - w_true).abs().max()) < 0.02
