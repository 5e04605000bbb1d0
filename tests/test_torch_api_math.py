"""torch.* elementwise functions and their Tensor methods against PyTorch, on each device: values, dtypes
(integers compute in float32), gradients; where, maximum/minimum, clamp with tensors, masked_fill, logical ops,
flags."""
import numpy as np
import pytest

import engine
from conftest import check_engine_grad

torch = pytest.importorskip("torch")
from test_torch_api import compare  # noqa: E402

rng = np.random.default_rng(3)
X = rng.standard_normal((2, 3, 4))
UNIT = rng.uniform(-0.9, 0.9, (5,))
POS = rng.uniform(0.3, 3.0, (4, 3))
INT = rng.integers(-4, 5, (3, 3)).astype(np.int64)

FLOAT_FNS = ["exp", "log", "log2", "log10", "log1p", "expm1", "exp2", "sqrt", "rsqrt", "sin", "cos", "tan",
             "sinh", "cosh", "tanh", "sigmoid", "asin", "acos", "atan", "reciprocal"]
DOMAIN = {"log": POS, "log2": POS, "log10": POS, "log1p": POS, "sqrt": POS, "rsqrt": POS, "asin": UNIT,
          "acos": UNIT, "reciprocal": POS}


@pytest.mark.parametrize("name", FLOAT_FNS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float_functions_and_methods_match_pytorch(device, name, dtype):
    a = DOMAIN.get(name, X).astype(dtype)
    tol = dict(rtol=2e-5, atol=2e-6) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-12)
    compare(lambda lib, x: getattr(lib, name)(x), a, **tol, device=device)
    compare(lambda lib, x: getattr(x, name)(), a, **tol, device=device)


@pytest.mark.parametrize("name", FLOAT_FNS)
def test_float_functions_of_integers_compute_in_float32(device, name):
    a = np.abs(INT) + 1 if name in DOMAIN and name not in ("asin", "acos") else INT % 2
    compare(lambda lib, x: getattr(lib, name)(x), a, grad=False, rtol=2e-5, atol=2e-6, device=device)


@pytest.mark.parametrize("name", ["sin", "log2", "rsqrt", "tan", "cosh", "atan", "expm1"])
def test_float_function_gradients_match_finite_differences(device, name):
    a = DOMAIN.get(name, X * 0.5)
    check_engine_grad(lambda x: getattr(engine, name)(x), [a], device=device)


@pytest.mark.parametrize("name", ["abs", "neg", "square", "sign", "floor", "ceil", "round", "trunc", "relu"])
@pytest.mark.parametrize("data", [X * 3, INT], ids=["float", "int"])
def test_same_dtype_functions_keep_the_dtype(device, name, data):
    data = np.where(np.abs(data) < 1e-3, 0.5, data)
    compare(lambda lib, x: getattr(lib, name)(x), data, device=device)
    compare(lambda lib, x: getattr(x, name)(), data, device=device)


def test_round_half_to_even_and_decimals(device):
    compare(lambda lib, x: lib.round(x), np.array([0.5, 1.5, 2.5, -0.5, -1.5]), device=device)
    compare(lambda lib, x: lib.round(x, decimals=2), np.array([1.2345, -2.3456]), grad=False, device=device)


@pytest.mark.parametrize("name", ["isnan", "isinf", "isfinite"])
def test_flags(device, name):
    compare(lambda lib, x: getattr(lib, name)(x), np.array([0.0, np.nan, np.inf, -np.inf, 1.0]), grad=False,
            device=device)
    compare(lambda lib, x: getattr(lib, name)(x), INT, grad=False, device=device)


@pytest.mark.parametrize("name", ["add", "sub", "mul", "div", "maximum", "minimum", "pow", "remainder", "eq", "lt",
                                  "ge", "ne"])
@pytest.mark.parametrize("a,b", [(X, X[0, 0]), (POS, POS[:1]), (INT, X[0, :1, :3]), (POS, 2)],
                         ids=["broadcast", "row", "int-float", "scalar"])
def test_binary_functions_broadcast_promote_and_differentiate(device, name, a, b):
    if name == "pow":
        a = np.abs(a) + 0.5
    if name in ("div", "remainder"):
        b = np.abs(b) + 0.5 if isinstance(b, np.ndarray) else b
    if name in ("maximum", "minimum") and not isinstance(b, np.ndarray):
        with pytest.raises(TypeError, match="other"):
            getattr(engine, name)(engine.tensor(a), b)          # as PyTorch: maximum takes two tensors
        return
    compare(lambda lib, x, y: getattr(lib, name)(x, y), a, b, device=device)
    compare(lambda lib, x, y: getattr(x, name)(y), a, b, device=device)


def test_maximum_ties_split_the_gradient(device):
    a = np.array([1.0, 2.0, 3.0])
    b = np.array([1.0, 1.0, 4.0])
    compare(lambda lib, x, y: lib.maximum(x, y), a, b, device=device)
    compare(lambda lib, x, y: lib.minimum(x, y), a, b, device=device)
    compare(lambda lib, x, y: lib.max(x, y), a, b, device=device)           # torch.max(x, y): the elementwise form


def test_add_sub_alpha_and_div_rounding_modes(device):
    compare(lambda lib, x, y: lib.add(x, y, alpha=2.5), X, X[0], device=device)
    compare(lambda lib, x, y: lib.sub(x, y, alpha=0.5), X, X[0], device=device)
    for mode in ("trunc", "floor"):
        compare(lambda lib, x, y: lib.div(x, y, rounding_mode=mode), np.array([7, -7, 5]), np.array([2, 2, -3]),
                grad=False, device=device)
        compare(lambda lib, x, y: lib.div(x, y, rounding_mode=mode), X * 4, 1.5, grad=False, device=device)
    with pytest.raises(ValueError, match="rounding_mode"):
        engine.div(engine.tensor(X), 2, rounding_mode="up")


def test_where_with_tensors_numbers_and_broadcasting(device):
    cond = X[0] > 0
    compare(lambda lib, x, y: lib.where(lib.tensor(cond) if lib is torch else engine.tensor(cond, device=x.device),
                                        x, y), X, X[1, :1], device=device)
    compare(lambda lib, x: lib.where(x > 0, x, 0.0), X, device=device)
    compare(lambda lib, x: lib.where(x > 0, 1, 2.5), X, grad=False, device=device)
    compare(lambda lib, x: x.where(x > 0, -x), X, device=device)
    compare(lambda lib, x: lib.where(x > 0), X, grad=False, device=device)
    with pytest.raises(TypeError, match="condition"):
        engine.where(engine.tensor([1.0]), engine.tensor([1.0]), 0.0)


def test_clamp_with_tensor_bounds_and_masked_fill(device):
    compare(lambda lib, x, lo: lib.clamp(x, min=lo), X, X[0, 0] * 0.1, device=device)
    compare(lambda lib, x, hi: lib.clamp(x, max=hi), X, X[1, 0] * 0.1, device=device)
    compare(lambda lib, x: lib.clamp(x, -0.5, 0.5), X, device=device)
    compare(lambda lib, x: x.masked_fill(x > 0.5, -1.0), X, device=device)
    compare(lambda lib, x: x.masked_fill((x > 0.5)[0], 2), X, device=device)
    with pytest.raises(TypeError, match="mask"):
        engine.tensor(X).masked_fill(engine.tensor(X), 0.0)


def test_logical_functions(device):
    a, b = X > 0, X < 0.5
    for name in ("logical_and", "logical_or", "logical_xor"):
        compare(lambda lib, x, y: getattr(lib, name)(x > 0, y < 0.5), X, X, grad=False, device=device)
    compare(lambda lib, x: lib.logical_not(x > 0), X, grad=False, device=device)
    assert (engine.logical_and(engine.tensor(a), engine.tensor(b)).numpy() == (a & b)).all()


def test_isclose_allclose_equal(device):
    a = np.array([1.0, 2.0, np.nan])
    b = a + np.array([1e-9, 1e-3, 0])
    for eq_nan in (False, True):
        compare(lambda lib, x, y: lib.isclose(x, y, equal_nan=eq_nan), a, b, grad=False, device=device)
    assert engine.allclose(engine.tensor(a[:1]), engine.tensor(b[:1]))
    assert engine.equal(engine.tensor([1, 2]), engine.tensor([1, 2]))
    assert not engine.equal(engine.tensor([1, 2]), engine.tensor([1, 2, 3]))


def test_inplace_method_variants(device):
    def fn(lib, x):
        y = x - 1.0
        y.masked_fill_(y > 1.2, 0.5)
        y.abs_()
        return y.sqrt_()
    compare(fn, POS, device=device)
    with pytest.raises(RuntimeError, match="cast"):
        engine.tensor([4, 9]).sqrt_()


def test_bad_inputs_name_the_argument():
    with pytest.raises(TypeError, match="input"):
        engine.sin([1.0, 2.0])
    with pytest.raises(TypeError, match="other"):
        engine.add(engine.tensor([1.0]), "a")
