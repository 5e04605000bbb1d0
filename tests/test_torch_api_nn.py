"""nn.Lazy* modules, nn.NLLLoss / F.nll_loss, F.one_hot, engine.utils.data and engine.cuda against PyTorch;
the losses, one_hot, the Lazy modules and the DataLoader on each device."""
import numpy as np
import pytest

import engine
import engine.functional as F
from engine import nn, optim
from engine.utils import data

torch = pytest.importorskip("torch")
from test_torch_api import compare  # noqa: E402

rng = np.random.default_rng(11)


@pytest.mark.parametrize("make,x,cls,shapes", [
    (lambda: nn.LazyLinear(3), (4, 5), nn.Linear, [(3, 5), (3,)]),
    (lambda: nn.LazyLinear(3, bias=False), (2, 7, 5), nn.Linear, [(3, 5)]),
    (lambda: nn.LazyConv2d(6, kernel_size=3, padding=1), (2, 4, 8, 8), nn.Conv2d, [(6, 4, 3, 3), (6,)]),
    (lambda: nn.LazyConv2d(4, 3, groups=2), (1, 6, 5, 5), nn.Conv2d, [(4, 3, 3, 3), (4,)]),
    (lambda: nn.LazyBatchNorm2d(), (2, 3, 4, 4), nn.BatchNorm2d, [(3,), (3,)]),
    (lambda: nn.LazyBatchNorm1d(), (5, 3), nn.BatchNorm1d, [(3,), (3,)]),
], ids=["linear", "linear-3d", "conv", "conv-groups", "bn2d", "bn1d"])
def test_lazy_modules_infer_shapes_at_the_first_call_and_become_the_layer(make, x, cls, shapes):
    m = make()
    params = list(m.parameters())
    assert all(p.shape == (0,) for p in params) and "Lazy" in repr(m)
    y = m(engine.randn(*x))
    assert type(m) is cls and "Lazy" not in repr(m)
    assert [p.shape for p in m.parameters()] == shapes
    assert all(a is b for a, b in zip(params, m.parameters()))           # the same Parameter objects
    assert y.shape == tuple(getattr(torch.nn, type(m).__name__.replace("Lazy", ""))
                            (*_torch_args(m)).forward(torch.randn(*x)).shape) if cls is not nn.BatchNorm1d else True


def _torch_args(m):
    if isinstance(m, nn.Linear):
        return m.in_features, m.out_features, m.bias is not None
    if isinstance(m, nn.Conv2d):
        return m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding, m.dilation, m.groups
    return (m.num_features,)


def test_lazy_initialization_follows_pytorch_bounds():
    engine.manual_seed(0)
    lin = nn.LazyLinear(400)
    lin(engine.zeros(2, 100))
    bound = 1 / np.sqrt(100)                            # kaiming_uniform(a=sqrt(5)): U(-1/sqrt(fan_in), ...)
    w = lin.weight.numpy()
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.98 * bound
    assert abs(w.std() - bound / np.sqrt(3)) < 0.02 * bound
    bn = nn.LazyBatchNorm2d().eval()                    # eval: the call leaves the running statistics as made
    bn(engine.randn(2, 3, 2, 2))
    np.testing.assert_array_equal(bn.weight.numpy(), 1)
    np.testing.assert_array_equal(bn.running_var.numpy(), 1)


def test_an_optimizer_built_before_the_first_call_trains_the_materialized_parameters():
    """As in PyTorch: the uninitialized parameters are the ones that get their values."""
    engine.manual_seed(1)
    net = nn.Sequential(nn.LazyLinear(8), nn.ReLU(), nn.LazyLinear(1))
    opt = optim.SGD(net.parameters(), lr=0.05)
    X = engine.randn(64, 3)
    y = X @ engine.tensor([[1.0], [-2.0], [0.5]])
    first = None
    for _ in range(200):
        loss = ((net(X) - y) ** 2).mean()
        first = loss.item() if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.1 * first


def test_lazy_modules_keep_the_device_and_dtype_set_before_the_call_and_accept_a_state_dict():
    m = nn.Sequential(nn.LazyLinear(2)).to(engine.float64)
    m(engine.randn(3, 4, dtype=engine.float64))
    assert m[0].weight.dtype == engine.float64
    src = nn.Sequential(nn.Linear(4, 2))
    clone = nn.Sequential(nn.LazyLinear(2))
    for p in clone[0].parameters():                      # what load_state_dict does for a lazy module
        p.materialize(src.state_dict()["0." + ("weight" if p.shape == (0,) and p is clone[0].weight else "bias")]
                      .shape)
    clone.load_state_dict(src.state_dict())
    x = engine.randn(3, 4)
    np.testing.assert_allclose(clone(x).numpy(), src(x).numpy())
    assert type(clone[0]) is nn.Linear and clone[0].in_features == 4


def test_lazy_modules_losses_and_loader_on_a_device(device):
    net = nn.Sequential(nn.LazyConv2d(2, 3, padding=1), nn.LazyBatchNorm2d(), nn.Flatten(), nn.LazyLinear(3)).to(device)
    x = engine.randn(4, 1, 4, 4, device=device)
    logits = net(x)
    assert logits.device == device and all(p.device == device for p in net.parameters())
    t = engine.tensor([0, 2, 1, 2], device=device)
    loss = nn.NLLLoss()(F.log_softmax(logits, dim=1), t)
    loss.backward()
    np.testing.assert_allclose(loss.item(), F.cross_entropy(logits, t).item(), rtol=1e-5)
    assert net[3].weight.grad.device == device
    oh = F.one_hot(t, 3)
    assert oh.device == device and oh.numpy().tolist() == [[1, 0, 0], [0, 0, 1], [0, 1, 0], [0, 0, 1]]
    batches = list(data.DataLoader(data.TensorDataset(x, t), batch_size=3))
    assert [b[0].shape[0] for b in batches] == [3, 1] and batches[0][1].device == device
    np.testing.assert_array_equal(batches[1][0].numpy(), x.numpy()[3:])


def test_lazy_modules_check_their_input():
    with pytest.raises(ValueError, match="input"):
        nn.LazyConv2d(2, 3)(engine.randn(4, 4))
    with pytest.raises(ValueError, match="input"):
        nn.LazyBatchNorm2d()(engine.randn(4, 4))
    with pytest.raises(ValueError, match="out_features"):
        nn.LazyLinear(0)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("shape", [(5, 4), (2, 4, 3), (4,)], ids=str)
def test_nll_loss_matches_pytorch(device, reduction, weighted, shape):
    x = rng.standard_normal(shape)
    C = shape[1] if len(shape) > 1 else shape[0]
    t = rng.integers(0, C, (shape[0],) + shape[2:] if len(shape) > 1 else ()).astype(np.int64)
    if t.ndim:
        t.reshape(-1)[0] = -100                            # an ignored target
    w = rng.uniform(0.5, 2.0, C).tolist() if weighted else None     # a list: compare() leaves it as it is

    def fn(lib, x, t, w=None):
        kw = {} if w is None else {"weight": lib.tensor(w, dtype=lib.float64, device=x.device)}
        logp = (F if lib is engine else torch.nn.functional).log_softmax(x, dim=0 if x.ndim == 1 else 1)
        return (lib.nn.functional.nll_loss(logp, t, reduction=reduction, **kw),
                lib.nn.NLLLoss(reduction=reduction, **kw)(logp, t))
    compare(fn, x, t, *([w] if weighted else []), rtol=1e-10, atol=1e-12, device=device)


def test_log_softmax_then_nll_is_cross_entropy():
    x = engine.tensor(rng.standard_normal((6, 5)))
    t = engine.tensor(rng.integers(0, 5, 6))
    np.testing.assert_allclose(F.nll_loss(F.log_softmax(x, dim=1), t).item(), F.cross_entropy(x, t).item())


def test_nll_loss_errors():
    x = engine.randn(3, 4)
    with pytest.raises(ValueError, match="class index 7"):
        F.nll_loss(x, engine.tensor([0, 7, 1]))
    with pytest.raises(ValueError, match="target"):
        F.nll_loss(x, engine.tensor([0, 1]))
    with pytest.raises(TypeError, match="target"):
        F.nll_loss(x, engine.tensor([0.0, 1.0, 2.0]))


@pytest.mark.parametrize("num_classes", [-1, 6])
def test_one_hot(device, num_classes):
    idx = np.array([[0, 2], [4, 1]])
    compare(lambda lib, i: lib.nn.functional.one_hot(i, num_classes), idx, grad=False, device=device)
    with pytest.raises(ValueError, match="smaller than num_classes"):
        F.one_hot(engine.tensor([3]), 2)
    with pytest.raises(TypeError, match="integer"):
        F.one_hot(engine.tensor([1.0]), 2)


def test_tensor_dataset_and_data_loader_batch_like_pytorch():
    X, y = rng.standard_normal((10, 3)), rng.integers(0, 2, 10)
    ds = data.TensorDataset(engine.tensor(X), engine.tensor(y))
    assert len(ds) == 10 and np.allclose(ds[3][0].numpy(), X[3])
    for drop_last in (False, True):
        mine = list(data.DataLoader(ds, batch_size=4, drop_last=drop_last))
        theirs = list(torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.tensor(X), torch.tensor(y)),
                                                  batch_size=4, drop_last=drop_last))
        assert len(mine) == len(theirs) == len(data.DataLoader(ds, batch_size=4, drop_last=drop_last))
        for (a, b), (c, d) in zip(mine, theirs):
            np.testing.assert_array_equal(a.numpy(), c.numpy())
            np.testing.assert_array_equal(b.numpy(), d.numpy())
    engine.manual_seed(3)
    rows = np.concatenate([b[0].numpy() for b in data.DataLoader(ds, batch_size=3, shuffle=True)])
    assert sorted(map(tuple, rows)) == sorted(map(tuple, X)) and not np.array_equal(rows, X)


def test_data_loader_collates_a_custom_dataset():
    class Squares(data.Dataset):
        def __len__(self):
            return 5

        def __getitem__(self, i):
            return engine.tensor([float(i), float(i * i)]), i, {"odd": i % 2}

    batches = list(data.DataLoader(Squares(), batch_size=2))
    assert len(batches) == 3
    x, i, d = batches[1]
    np.testing.assert_array_equal(x.numpy(), [[2, 4], [3, 9]])
    np.testing.assert_array_equal(i.numpy(), [2, 3])
    np.testing.assert_array_equal(d["odd"].numpy(), [0, 1])
    with pytest.raises(ValueError, match="size mismatch"):
        data.TensorDataset(engine.zeros(3), engine.zeros(4))
    with pytest.raises(ValueError, match="batch_size"):
        data.DataLoader(Squares(), batch_size=0)


def test_cuda_queries():
    import engine.backend as backend
    ok, _ = backend.cuda_status()
    assert engine.cuda.is_available() is ok
    assert engine.cuda.device_count() == (0 if not ok else engine.cuda.device_count()) >= 0
    if not ok:
        assert engine.cuda.device_count() == 0
    assert engine.device("cuda:0").type == "cuda" and engine.device("cpu").index is None
    with pytest.raises(ValueError, match="device"):
        engine.device("tpu")


def test_as_torch_resolves_torch_to_the_engine_inside_the_block_only(tmp_path):
    import subprocess
    import sys

    from engine.utils import as_torch
    with as_torch() as t:
        import torch as inner
        from torch import nn as inner_nn
        from torch.nn import functional as inner_F
        from torch.utils import data as inner_data
        import importlib
        assert inner is t is engine and inner_nn is nn and inner_F is F and inner_data is data
        assert importlib.import_module("torch.optim") is engine.optim
        assert importlib.import_module("torch.distributions") is engine.distributions
        with pytest.raises(ModuleNotFoundError, match="engine.fft"):       # what the engine lacks, it says
            importlib.import_module("torch.fft")
    import torch as outer
    assert outer is torch and outer.__name__ == "torch"
    script = tmp_path / "book.py"
    script.write_text("import torch\nfrom torch import nn\nprint(torch.__name__, nn.LazyLinear(2)(torch.ones(1, 3)).shape)\n")
    out = subprocess.run([sys.executable, "-m", "engine.utils.torch_alias", str(script)], capture_output=True, text=True,
                         cwd=str(tmp_path), env={**__import__("os").environ, "PYTHONPATH": __import__("os").getcwd()})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "engine (1, 2)"
