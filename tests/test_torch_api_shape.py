"""Products and shape functions against PyTorch: matmul/mm/bmm/mv/dot/outer with their shape rules,
repeat_interleave, repeat, expand, gather, split/chunk, flip, nonzero, tril/triu, meshgrid, t, type, dim."""
import numpy as np
import pytest

import engine
from conftest import check_engine_grad

torch = pytest.importorskip("torch")
from test_torch_api import compare  # noqa: E402

rng = np.random.default_rng(7)
M = rng.standard_normal((3, 4))
N = rng.standard_normal((4, 5))
V = rng.standard_normal(4)
W = rng.standard_normal(4)
B3 = rng.standard_normal((2, 3, 4))
C3 = rng.standard_normal((2, 4, 5))


@pytest.mark.parametrize("a,b", [(M, N), (V, W), (M, V), (V, N), (B3, C3), (B3, N), (B3, V), (V, C3),
                                 (rng.standard_normal((2, 1, 3, 4)), rng.standard_normal((3, 4, 2)))],
                         ids=["mm", "dot", "mv", "vm", "bmm", "batch-mat", "batch-vec", "vec-batch", "broadcast"])
def test_matmul_shapes_and_gradients(device, a, b):
    compare(lambda lib, x, y: lib.matmul(x, y), a, b, device=device)
    compare(lambda lib, x, y: x @ y, a, b, device=device)


def test_mm_bmm_mv_dot_outer(device):
    compare(lambda lib, x, y: lib.mm(x, y), M, N, device=device)
    compare(lambda lib, x, y: x.bmm(y), B3, C3, device=device)
    compare(lambda lib, x, y: lib.mv(x, y), M, V, device=device)
    compare(lambda lib, x, y: (lib.dot(x, y), x.dot(y)), V, W, device=device)
    compare(lambda lib, x, y: lib.outer(x, y), V, W[:3], device=device)
    compare(lambda lib, x, y: lib.matmul(x, y), np.arange(4), np.arange(8).reshape(4, 2), grad=False, device=device)


@pytest.mark.parametrize("call,args", [
    ("mm", (M, V)), ("mm", (M, M)), ("bmm", (B3, N)), ("bmm", (B3, rng.standard_normal((3, 4, 5)))),
    ("mv", (M, M)), ("mv", (M, W[:3])), ("dot", (V, W[:3])), ("dot", (M, M)), ("matmul", (M, M)),
])
def test_product_shape_errors_are_runtime_errors_as_in_pytorch(call, args):
    with pytest.raises(RuntimeError, match=call):
        getattr(engine, call)(*[engine.tensor(a) for a in args])
    with pytest.raises(RuntimeError):
        getattr(torch, call)(*[torch.tensor(a) for a in args])


def test_products_need_one_dtype():
    with pytest.raises(RuntimeError, match="one dtype"):
        engine.dot(engine.tensor([1, 2]), engine.tensor([1.0, 2.0]))


@pytest.mark.parametrize("repeats,dim", [(2, None), (2, 0), (3, 1), (np.array([1, 0, 2]), 0),
                                         (np.array([2, 1, 1, 3]), -1), (np.array([2]), 1)], ids=str)
def test_repeat_interleave(device, repeats, dim):
    r = repeats if isinstance(repeats, int) else repeats.astype(np.int64)
    compare(lambda lib, x, rr: lib.repeat_interleave(x, rr, dim=dim), M[:3] if dim != -1 else M, r, device=device)
    compare(lambda lib, x, rr: x.repeat_interleave(rr, dim), M, r, device=device) if dim is not None and not isinstance(
        repeats, np.ndarray) else None
    compare(lambda lib, c: lib.repeat_interleave(c), np.array([2, 0, 3]), grad=False, device=device)


@pytest.mark.parametrize("sizes", [(2, 1), (1, 3), (2, 2, 2), (0, 1)], ids=str)
def test_repeat_tiles(device, sizes):
    compare(lambda lib, x: x.repeat(*sizes), M, device=device)
    compare(lambda lib, x: x.repeat(sizes), V, device=device)


def test_expand_and_expand_as(device):
    compare(lambda lib, x: x.expand(3, -1), V[None], device=device)
    compare(lambda lib, x: x.expand(2, 3, 4), V, device=device)
    compare(lambda lib, x, y: x.expand_as(y), M[:1], M, device=device)
    with pytest.raises(RuntimeError, match="expand"):
        engine.tensor(M).expand(3, 5)
    with pytest.raises(RuntimeError, match="read-only|in place"):
        engine.tensor(V).expand(2, 4)[0, 0] = 1.0


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_gather(device, dim):
    idx = rng.integers(0, M.shape[dim], (2, 3)).astype(np.int64)
    compare(lambda lib, x, i: lib.gather(x, dim, i), M, idx, device=device)
    compare(lambda lib, x, i: x.gather(dim, i), M, idx, device=device)
    with pytest.raises(RuntimeError, match="index"):
        engine.gather(engine.tensor(M), dim, engine.tensor(idx + 10))


def test_gather_with_repeated_indices_accumulates(device):
    compare(lambda lib, x, i: lib.gather(x, 1, i), M, np.array([[0, 0, 0], [1, 1, 2], [3, 3, 3]]), device=device)
    check_engine_grad(lambda x: engine.gather(x, 0, engine.tensor([[0, 1], [0, 0]], device=x.device)), [M],
                      device=device)


@pytest.mark.parametrize("s", [2, 3, [1, 3]], ids=str)
def test_split_chunk_unbind(device, s):
    compare(lambda lib, x: lib.split(x, s, dim=1), M, device=device)
    compare(lambda lib, x: x.split(s, 1), M, device=device)
    compare(lambda lib, x: lib.chunk(x, 3, dim=1), M, device=device)
    compare(lambda lib, x: lib.unbind(x, 1), M, device=device)


def test_flip_narrow_index_select_movedim(device):
    compare(lambda lib, x: (lib.flip(x, [0, 2]), x.flip(1)), B3, device=device)
    compare(lambda lib, x: (lib.narrow(x, 1, 1, 2), x.narrow(0, -2, 1)), M, device=device)
    compare(lambda lib, x, i: lib.index_select(x, 1, i), M, np.array([3, 0, 3]), device=device)
    compare(lambda lib, x: lib.movedim(x, 0, -1), B3, device=device)


def test_nonzero_argwhere_masked_select(device):
    a = np.array([[0.0, 1.5], [2.0, 0.0], [0.0, 0.0]])
    compare(lambda lib, x: (lib.nonzero(x), x.nonzero(as_tuple=True), lib.argwhere(x)), a, grad=False, device=device)
    compare(lambda lib, x: lib.masked_select(x, x > 0.5), M, device=device)


def test_tril_triu_diag(device):
    compare(lambda lib, x: (lib.tril(x), lib.triu(x, 1), x.tril(-1)), M, device=device)
    compare(lambda lib, x: (lib.diag(x), lib.diag(x, 1)), M, device=device)
    compare(lambda lib, x: lib.diag(x), V, device=device)


@pytest.mark.parametrize("indexing", ["ij", "xy"])
def test_meshgrid(device, indexing):
    compare(lambda lib, x, y: lib.meshgrid(x, y, indexing=indexing), V, W[:3], device=device)


def test_cat_stack_concat_hstack_vstack(device):
    compare(lambda lib, x, y: (lib.cat((x, y), 0), lib.concat([x, y], dim=-1), lib.stack([x, y], 1)), M, M * 2,
            device=device)
    compare(lambda lib, x, y: (lib.hstack([x, y]), lib.vstack([x, y])), V, W, device=device)


def test_t_type_dim_numel_and_dtype_aliases(device):
    compare(lambda lib, x: (x.t(), lib.t(x), x.T), M, device=device)
    compare(lambda lib, x: x.t(), V, device=device)
    with pytest.raises(RuntimeError, match="t\\(\\)"):
        engine.tensor(B3).t()
    x = engine.tensor(M)
    assert x.dim() == 2 and x.numel() == 12 and engine.numel(x) == 12
    assert x.type() == "engine.DoubleTensor" and engine.tensor([1]).type() == "engine.LongTensor"
    assert x.type(engine.float32).dtype == engine.float32
    assert x.type("torch.LongTensor").dtype == engine.int64
    for name in ("float", "double", "half", "long", "int", "short", "bool", "uint8", "int8"):
        assert getattr(engine, name) == np.dtype(str(getattr(torch, name)).split(".")[1]), name


def test_squeeze_unsqueeze_flatten(device):
    a = rng.standard_normal((2, 1, 3, 1))
    compare(lambda lib, x: (x.squeeze(), x.squeeze(1), x.squeeze((1, 3)), x.unsqueeze(-1), x.flatten(1, 2)), a,
            device=device)
    with pytest.raises(RuntimeError, match="start_dim"):
        engine.tensor(a).flatten(2, 1)
