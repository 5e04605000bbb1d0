"""The engine on "cuda": every op, layer and optimizer gives what it gives on the CPU (forward and
gradients), tensors report and keep their device, and mixing devices is an error. Under the simulator
(`make test` runs this file with NUMBA_ENABLE_CUDASIM=1) "cuda" arrays are SimDeviceArrays served by
kernels.cuda; on a GPU they are CuPy arrays."""
import inspect

import numpy as np
import pytest
from numba import config

import engine
import engine.functional as F
from engine import nn, optim
from engine.backend import cuda_status

pytestmark = [pytest.mark.timeout(600),
              pytest.mark.skipif(not cuda_status()[0], reason="needs NUMBA_ENABLE_CUDASIM=1 before numba is "
                                                               "imported (make test runs this file so) or a GPU")]
SIM = bool(config.ENABLE_CUDASIM)


def test_tensors_know_and_keep_their_device():
    x = engine.tensor(np.arange(6.0).reshape(2, 3), device="cuda")
    assert x.device == "cuda" and x.dtype == np.float64          # a NumPy array keeps its dtype
    y = (x * 2 + 1).sum(axis=1)
    assert y.device == "cuda"
    back = y.to("cpu")
    assert back.device == "cpu" and isinstance(back._data, np.ndarray)
    np.testing.assert_array_equal(back.numpy(), [9.0, 27.0])
    np.testing.assert_array_equal(y.numpy(), [9.0, 27.0])                     # a host copy
    assert engine.zeros(2, 3, device="cuda").device == "cuda"
    assert engine.randn(4, device="cuda").device == "cuda"
    labels = engine.tensor([1, 2], device="cuda")
    assert labels.dtype == np.int64 and labels.device == "cuda"


def test_mixing_devices_is_an_error_that_names_them():
    a, b = engine.ones(3), engine.ones(3, device="cuda")
    with pytest.raises(RuntimeError, match="cpu and cuda"):
        a + b
    with pytest.raises(RuntimeError, match="device"):
        F.cross_entropy(engine.ones(2, 3, device="cuda"), engine.tensor([0, 1]))


def test_gradients_flow_back_across_a_move():
    w = engine.tensor(np.array([1.0, -2.0, 3.0]), requires_grad=True)
    (w.to("cuda") ** 2).sum().backward()
    assert w.grad.device == "cpu"
    np.testing.assert_allclose(w.grad.numpy(), [2.0, -4.0, 6.0])


def _run(fn, arrays, device, grads=True):
    """fn(*tensors) on `device`; returns (output, input grads) as NumPy."""
    ts = [engine.tensor(a, dtype=a.dtype, requires_grad=grads and a.dtype.kind == "f", device=device)
          if isinstance(a, np.ndarray) else a for a in arrays]
    out = fn(*ts)
    assert out.device == device, f"output on {out.device}, expected {device}"
    if grads:
        dout = np.random.default_rng(0).standard_normal(out.shape).astype(out.dtype)
        out.backward(engine.tensor(dout, dtype=out.dtype, device=device))
    gs = [t.grad.numpy() if isinstance(t, engine.Tensor) and t.grad is not None else None for t in ts]
    for t in ts:
        if isinstance(t, engine.Tensor) and t.grad is not None:
            assert t.grad.device == device
    return out.numpy(), gs


RNG = np.random.default_rng(1)
R = lambda *s: RNG.standard_normal(s)                                          # noqa: E731
OPS = {
    "arith": (lambda a, b: ((a * b - a / (b * b + 1)) @ b.T).exp().log() + a.sum(axis=0, keepdims=True).amax(axis=1,
                                                                                        keepdims=True), [R(3, 4), R(3, 4)]),
    "index_cat": (lambda a, b: engine.cat([a[1:, ::2], b.transpose(1, 0)[:2, :2]], dim=0).reshape(-1).mean(),
                  [R(3, 4), R(4, 3)]),
    "conv2d": (lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1), [R(2, 3, 7, 6), R(4, 3, 3, 3), R(4)]),
    "conv2d_groups": (lambda x, w: F.conv2d(x, w, padding="same", groups=2, dilation=2), [R(1, 4, 6, 6), R(4, 2, 3, 3)]),
    "max_pool2d": (lambda x: F.max_pool2d(x, 3, stride=2, padding=1, ceil_mode=True), [R(2, 3, 7, 6)]),
    "avg_pool2d": (lambda x: F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False), [R(2, 3, 5, 4)]),
    "adaptive_avg_pool2d": (lambda x: F.adaptive_avg_pool2d(x, 1), [R(2, 3, 5, 4)]),
    "batch_norm": (lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True), [R(4, 3, 3, 2), R(3), R(3)]),
    "layer_norm": (lambda x, w, b: F.layer_norm(x, (5,), w, b), [R(3, 4, 5), R(5), R(5)]),
    "softmax": (lambda x: F.softmax(x, dim=1), [R(3, 4, 5)]),
    "log_softmax": (lambda x: F.log_softmax(x, dim=-1), [R(3, 130)]),
    "masked_softmax": (lambda x: F.masked_softmax(x, engine.tensor([0, 2, 5], device=x.device)), [R(3, 5)]),
    "cross_entropy": (lambda x: F.cross_entropy(x, engine.tensor([0, 3, -100, 1], device=x.device),
                                                label_smoothing=0.1), [R(4, 5)]),
    "mse_loss": (lambda x, y: F.mse_loss(x, y), [R(3, 4), R(3, 4)]),
    "sdpa": (lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True), [R(2, 2, 5, 4), R(2, 2, 5, 4),
                                                                                       R(2, 2, 5, 3)]),
    "sdpa_valid_lens": (lambda q, k, v: F.scaled_dot_product_attention(
        q, k, v, valid_lens=engine.tensor([0, 3], device=q.device)), [R(2, 3, 4), R(2, 6, 4), R(2, 6, 4)]),
    "linear": (lambda x, w, b: F.linear(x, w, b), [R(2, 3, 4), R(5, 4), R(5)]),
    "embedding": (lambda w: F.embedding(engine.tensor([[0, 2], [2, 1]], device=w.device), w), [R(4, 3)]),
    "activations": (lambda x: F.relu(x) + F.sigmoid(x) * F.tanh(x), [R(3, 4)]),
}


@pytest.fixture
def no_cpu_kernels(monkeypatch):
    """Within the test, every kernels.cpu function raises: a "cuda" op that lost its device on the way (under
    the simulator, a NumPy call can turn a device array into a plain one) would otherwise run, and pass, on
    the CPU kernels. Yields a function that turns the guard on."""
    import kernels.cpu

    def on():
        for name in dir(kernels.cpu):
            if not name.startswith("_") and inspect.isfunction(getattr(kernels.cpu, name)):
                def refuse(*a, _name=name, **k):
                    raise AssertionError(f"kernels.cpu.{_name} ran during a cuda op")
                monkeypatch.setattr(kernels.cpu, name, refuse)
    return on


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", list(OPS))
def test_op_on_cuda_matches_cpu(name, dtype, no_cpu_kernels):
    fn, arrays = OPS[name]
    arrays = [a.astype(dtype) for a in arrays]
    out_c, g_c = _run(fn, arrays, "cpu")
    no_cpu_kernels()
    out_g, g_g = _run(fn, arrays, "cuda")
    tol = dict(rtol=1e-4, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(out_g, out_c, **tol)
    for a, b in zip(g_g, g_c):
        assert (a is None) == (b is None)
        if a is not None:
            np.testing.assert_allclose(a, b, **tol)


def _cnn():
    return nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.BatchNorm2d(3), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2),
                         nn.Linear(4, 10))


@pytest.mark.parametrize("opt", ["sgd", "adamw"])
def test_a_small_cnn_trains_alike_on_both_devices(opt):
    from engine.datasets import load_digits
    x, y = load_digits()
    x, y = x[:4].astype(np.float64), y[:4]          # float64: AdamW's first steps would amplify float32 rounding
    losses, states = {}, {}
    for device in ("cpu", "cuda"):
        engine.manual_seed(0)
        model = _cnn().double().to(device)
        o = (optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4) if opt == "sgd"
             else optim.AdamW(model.parameters(), lr=1e-2))
        xb, yb = engine.tensor(x, dtype=np.float64, device=device), engine.tensor(y, device=device)
        losses[device] = []
        for _ in range(3):
            loss = F.cross_entropy(model(xb), yb)
            o.zero_grad()
            loss.backward()
            o.step()
            losses[device].append(loss.item())
        assert all(p.device == device for p in model.parameters())
        assert all(b.device == device for b in model.buffers())
        model.eval()
        with engine.no_grad():
            states[device] = model(xb).numpy()
    np.testing.assert_allclose(losses["cuda"], losses["cpu"], rtol=1e-9)
    assert losses["cpu"][-1] < losses["cpu"][0]
    np.testing.assert_allclose(states["cuda"], states["cpu"], rtol=1e-8, atol=1e-10)


def test_recurrent_and_attention_layers_on_cuda():
    engine.manual_seed(0)
    for device in ("cpu", "cuda"):
        engine.manual_seed(0)
        gru = nn.GRU(3, 5).to(device)
        mha = nn.MultiHeadAttention(5, 1, dropout=0.0).to(device)
        x = engine.tensor(np.random.default_rng(2).standard_normal((4, 2, 3)), dtype=engine.float32, device=device)
        out, h = gru(x)
        q = out.transpose(0, 1)
        y = mha(q, q, q, engine.tensor([2, 4], device=device))
        y.sum().backward()
        assert y.device == device and gru.weight_hh_l0.grad.device == device
        if device == "cpu":
            ref_y, ref_g = y.numpy(), gru.weight_hh_l0.grad.numpy()
    np.testing.assert_allclose(y.numpy(), ref_y, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(gru.weight_hh_l0.grad.numpy(), ref_g, rtol=1e-4, atol=1e-5)


def test_state_dicts_move_between_devices(tmp_path):
    engine.manual_seed(0)
    model = _cnn().to("cuda")
    engine.save(model.state_dict(), tmp_path / "m.npz")
    cpu_model = _cnn()
    cpu_model.load_state_dict(engine.load(tmp_path / "m.npz"))
    for a, b in zip(model.parameters(), cpu_model.parameters()):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    model.load_state_dict(cpu_model.state_dict())
    assert all(p.device == "cuda" for p in model.parameters())


def test_a_training_step_copies_nothing_to_the_host(monkeypatch):
    """Forward, loss, backward and the optimizer step stay on the device: no device-to-host copy through the
    engine (and, on a GPU, none through CuPy either); reading the loss is the caller's one copy."""
    import engine.backend as backend
    from engine.datasets import load_digits
    gets = [0]
    if not SIM:
        import cupy
        real_get = cupy.ndarray.get

        def counting_get(self, *a, **k):
            gets[0] += 1
            return real_get(self, *a, **k)
        try:
            monkeypatch.setattr(cupy.ndarray, "get", counting_get)
        except TypeError:           # a CuPy whose ndarray is an extension type: the engine's counter remains
            pass
    x, y = load_digits()
    engine.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.BatchNorm2d(2), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Dropout(0.5), nn.Linear(32, 10)).to("cuda")
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    xb, yb = engine.tensor(x[:2], device="cuda"), engine.tensor(y[:2], device="cuda")
    backend.flush_checks()
    before = backend.DEVICE_TO_HOST[0]
    loss = F.cross_entropy(model(xb), yb)           # its target check is queued, not waited for
    opt.zero_grad()
    loss.backward()
    norm = nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    assert backend.DEVICE_TO_HOST[0] == before and gets[0] == 0
    assert norm.device == "cuda" and np.isfinite(float(norm))
    loss.item()


LAUNCHES = {  # op: (fn, input shapes, CUDA kernel launches forward, backward): the fused ops stay fused
    "softmax": (lambda t: F.softmax(t[0], -1), [(4, 9)], 1, 1),
    "log_softmax": (lambda t: F.log_softmax(t[0], -1), [(4, 9)], 1, 1),
    "cross_entropy": (lambda t: F.cross_entropy(t[0], engine.tensor([1, 0, 3, 2], device="cuda")), [(4, 9)], 1, 1),
    "layer_norm": (lambda t: F.layer_norm(t[0], (9,), t[1], t[2]), [(4, 9), (9,), (9,)], 1, 2),
    "batch_norm": (lambda t: F.batch_norm(t[0], None, None, t[1], t[2], True), [(4, 3, 2, 2), (3,), (3,)], 2, 2),
    "conv2d": (lambda t: F.conv2d(t[0], t[1], t[2], padding=1), [(2, 3, 5, 5), (4, 3, 3, 3), (4,)], 1, 2),
    "max_pool2d": (lambda t: F.max_pool2d(t[0], 2), [(2, 3, 4, 4)], 1, 1),
    "sdpa": (lambda t: F.scaled_dot_product_attention(t[0], t[1], t[2], is_causal=True), [(1, 2, 5, 4)] * 3, 1, 2),
}


@pytest.mark.parametrize("name", list(LAUNCHES))
def test_fused_ops_launch_the_kernels_they_should(name):
    from kernels.cuda import _launch
    fn, shapes, want_f, want_b = LAUNCHES[name]
    rng = np.random.default_rng(0)
    ts = [engine.tensor(rng.standard_normal(s).astype(np.float32), requires_grad=True, device="cuda") for s in shapes]
    n0 = _launch.LAUNCHES[0]
    y = fn(ts)
    n1 = _launch.LAUNCHES[0]
    y.sum().backward()
    assert (n1 - n0, _launch.LAUNCHES[0] - n1) == (want_f, want_b)


@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_value_checks_on_the_device_wait_for_the_next_host_read(device):
    """A bad class index or embedding index raises a ValueError naming it: at once on the CPU; on "cuda" at
    the next point where the host reads device data (no wait for the GPU inside the op)."""
    import engine.backend as backend
    x = engine.tensor(np.zeros((2, 3)), requires_grad=True, device=device)
    bad = engine.tensor([0, 7], device=device)
    if device == "cpu":
        with pytest.raises(ValueError, match="class index 7"):
            F.cross_entropy(x, bad)
        return
    backend.flush_checks()                                # earlier tests' passing checks
    loss = F.cross_entropy(x, bad)                        # queued, not raised
    assert len(backend._pending()) == 1
    with pytest.raises(ValueError, match=r"target: class index 7 is out of range \[0, 3\)"):
        loss.item()
    assert backend._pending() == []
    out = F.embedding(engine.tensor([1, 5], device=device), engine.ones(4, 2, device=device))
    with pytest.raises(ValueError, match="index 5 is out of range for an embedding of 4 rows"):
        out.numpy()
    good = F.cross_entropy(x, engine.tensor([0, 2], device=device))
    assert abs(good.item() - np.log(3)) < 1e-6 and backend._pending() == []


def test_a_classifier_experiment_trains_alike_on_cuda(monkeypatch):
    """The model zoo's classifiers run on cfg.device (`python -m engine.train mlp --device cuda`): an epoch of
    softmax regression (on 48 of the digits: the simulator runs every GPU thread in Python) gives the CPU's
    accuracy and, to rounding, its losses."""
    from engine import models
    from engine.models import classification
    full = classification.digits

    def few(*args, **kwargs):
        x_train, x_val, y_train, y_val = full(*args, **kwargs)
        return x_train[:32], x_val[:16], y_train[:32], y_val[:16]
    monkeypatch.setattr(classification, "digits", few)
    out = {}
    for device in ("cpu", "cuda"):
        exp = models.get("softmax-regression")
        assert "cuda" in exp.devices
        cfg = models.Config(exp.defaults)
        cfg.update(epochs=1, batch_size=16, device=device, seed=0)
        engine.manual_seed(0)
        out[device] = exp.fn(cfg, models.Run("softmax-regression", cfg, quiet=True))
    assert out["cuda"]["val_acc"] == out["cpu"]["val_acc"] and out["cuda"]["train_acc"] == out["cpu"]["train_acc"]
    for k in ("train_loss", "val_loss"):
        assert abs(out["cuda"][k] - out["cpu"][k]) < 1e-5


def test_the_runner_says_which_experiments_run_on_cuda(capsys):
    from engine import train
    with pytest.raises(SystemExit):
        train.main(["ngram", "--device", "cuda"])
    err = capsys.readouterr().err
    assert "ngram runs on the CPU only" in err and "lenet" in err and "softmax-regression" in err


def test_device_tensors_refuse_implicit_conversion_to_numpy():
    t = engine.tensor([1.0, 2.0], device="cuda")
    with pytest.raises(TypeError, match="cannot be converted to a NumPy array implicitly"):
        np.asarray(t)
    np.testing.assert_array_equal(t.numpy(), [1.0, 2.0])         # the explicit copy works
