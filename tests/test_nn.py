"""Modules: registration, modes, state dicts, default initialization, clip_grad_norm_, checkpoints; state dicts,
clip_grad_norm_ and a forward pass on each device."""
import math
import os

import numpy as np
import pytest

import engine
from engine import nn


def test_registration_and_named_parameters():
    m = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2, bias=False))
    assert [n for n, _ in m.named_parameters()] == ["0.weight", "0.bias", "2.weight"]
    assert all(p.requires_grad for p in m.parameters())
    assert len(m) == 3 and isinstance(m[1], nn.ReLU)


def test_train_eval_propagates():
    m = nn.Sequential(nn.Dropout(0.5), nn.Sequential(nn.BatchNorm1d(3)))
    m.eval()
    assert all(not x.training for x in m.modules())
    m.train()
    assert all(x.training for x in m.modules())


def test_state_dict_round_trip_with_buffers(device):
    m = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3)).to(device)
    m(engine.randn(4, 2, device=device))                          # running statistics move off their defaults
    sd = m.state_dict()
    assert list(sd) == ["0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var",
                        "1.num_batches_tracked"]
    m2 = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3)).to(device)
    m2.load_state_dict(sd)
    np.testing.assert_array_equal(m2[0].weight.numpy(), m[0].weight.numpy())
    np.testing.assert_array_equal(m2[1].running_var.numpy(), m[1].running_var.numpy())
    assert all(t.device == device for t in list(m2.parameters()) + list(m2.buffers()))
    with pytest.raises(KeyError, match="missing"):
        m2.load_state_dict({"0.weight": sd["0.weight"]})
    bad = dict(sd)
    bad["0.weight"] = engine.tensor(np.ones((5, 5)))
    with pytest.raises(ValueError, match="0.weight"):
        m2.load_state_dict(bad)


def test_default_initialization_matches_pytorchs_bounds():
    engine.manual_seed(0)
    lin = nn.Linear(100, 50)
    bound = 1 / math.sqrt(100)
    assert np.abs(lin.weight.numpy()).max() <= bound and np.abs(lin.weight.numpy()).max() > 0.9 * bound
    assert np.abs(lin.bias.numpy()).max() <= bound
    conv = nn.Conv2d(4, 8, 3)
    cb = 1 / math.sqrt(4 * 9)
    assert np.abs(conv.weight.numpy()).max() <= cb and conv.weight.shape == (8, 4, 3, 3)
    emb = nn.Embedding(1000, 20)
    assert abs(emb.weight.numpy().std() - 1) < 0.05


@pytest.mark.parametrize("fn,std", [(nn.init.xavier_normal_, math.sqrt(2 / (200 + 300))),
                                    (lambda t: nn.init.kaiming_normal_(t, nonlinearity="relu"), math.sqrt(2 / 300))])
def test_init_functions_have_the_right_spread(fn, std):
    t = nn.Parameter(np.empty((200, 300), np.float32))
    fn(t)
    assert abs(t.numpy().std() / std - 1) < 0.03


def test_clip_grad_norm(device):
    a = engine.tensor([3.0], requires_grad=True, device=device)
    b = engine.tensor([4.0], requires_grad=True, device=device)
    (a * a / 2 + b * b / 2).sum().backward()           # grads 3 and 4: norm 5
    total = nn.utils.clip_grad_norm_([a, b], 1.0)
    assert isinstance(total, engine.Tensor) and total.shape == () and total.device == device
    assert abs(float(total) - 5.0) < 1e-6
    np.testing.assert_allclose([a.grad.item(), b.grad.item()], [0.6, 0.8], rtol=1e-5)
    assert abs(float(nn.utils.clip_grad_norm_([a, b], 10.0)) - 1.0) < 1e-5     # under the limit: unchanged
    np.testing.assert_allclose([a.grad.item(), b.grad.item()], [0.6, 0.8], rtol=1e-5)
    assert abs(float(nn.utils.clip_grad_norm_([a, b], 0.5, norm_type=math.inf)) - 0.8) < 1e-6
    np.testing.assert_allclose([a.grad.item(), b.grad.item()], [0.375, 0.5], rtol=1e-5)
    with pytest.raises(ValueError, match="norm_type"):
        nn.utils.clip_grad_norm_([a, b], 1.0, norm_type=0)


def test_module_matches_torch_functionally(device):
    torch = pytest.importorskip("torch")
    m = nn.Sequential(nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 3), nn.Sigmoid()).to(device)
    t = torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.Tanh(), torch.nn.Linear(4, 3), torch.nn.Sigmoid())
    t.load_state_dict({k: torch.tensor(v.numpy()) for k, v in m.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((6, 5)).astype(np.float32)
    y = m(engine.tensor(x, device=device))
    assert y.device == device
    np.testing.assert_allclose(y.numpy(), t(torch.tensor(x)).detach().numpy(), rtol=1e-5, atol=1e-6)


def test_save_load_round_trip_and_atomicity(tmp_path):
    m = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    path = tmp_path / "ck.npz"
    engine.save({"model": m.state_dict(), "epoch": 7, "names": ["a", "b"], "cfg": {"lr": 0.1, "t": (1, 2)}}, path)
    ck = engine.load(path)
    assert ck["epoch"] == 7 and ck["names"] == ["a", "b"] and ck["cfg"] == {"lr": 0.1, "t": (1, 2)}
    np.testing.assert_array_equal(ck["model"]["0.weight"].numpy(), m[0].weight.numpy())
    assert [p.name for p in tmp_path.iterdir()] == ["ck.npz"]          # no temporary file left behind


def test_save_of_unsupported_object_leaves_no_file(tmp_path):
    with pytest.raises(TypeError, match="obj"):
        engine.save({"f": object()}, tmp_path / "x.npz")
    assert list(tmp_path.iterdir()) == []


def test_load_rejects_corrupt_and_foreign_files(tmp_path):
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a checkpoint at all")
    with pytest.raises(ValueError, match="corrupt"):
        engine.load(garbage)
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, x=np.ones(3))
    with pytest.raises(ValueError, match="not an engine checkpoint"):
        engine.load(foreign)
    good = tmp_path / "good.npz"
    engine.save({"w": engine.tensor(np.ones(1000))}, good)
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(good.read_bytes()[: os.path.getsize(good) // 2])
    with pytest.raises(ValueError, match="corrupt"):
        engine.load(truncated)
    with pytest.raises(FileNotFoundError):
        engine.load(tmp_path / "missing.npz")
