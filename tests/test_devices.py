"""Device semantics: tensors report and keep their device, mixing devices is an error, gradients cross a move,
state dicts move between devices, checks of device values wait for the next host read (and the CUDA kernels
meet bad indices safely meanwhile), device data never turns into NumPy implicitly, a training step copies
nothing to the host, and the fused ops launch one kernel each. The cuda tests run on a GPU or under the
simulator (`make test` runs them with NUMBA_ENABLE_CUDASIM=1 pytest -m cuda)."""
import numpy as np
import pytest

import engine
import engine.functional as F
from conftest import to_dev, to_host
from engine import nn, optim

cuda = pytest.mark.cuda


def _cnn():
    return nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.BatchNorm2d(3), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2),
                         nn.Linear(4, 10))


@cuda
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


@cuda
def test_mixing_devices_is_an_error_that_names_them():
    a, b = engine.ones(3), engine.ones(3, device="cuda")
    with pytest.raises(RuntimeError, match="cpu and cuda"):
        a + b
    with pytest.raises(RuntimeError, match="device"):
        F.cross_entropy(engine.ones(2, 3, device="cuda"), engine.tensor([0, 1]))


@cuda
def test_gradients_flow_back_across_a_move():
    w = engine.tensor(np.array([1.0, -2.0, 3.0]), requires_grad=True)
    (w.to("cuda") ** 2).sum().backward()
    assert w.grad.device == "cpu"
    np.testing.assert_allclose(w.grad.numpy(), [2.0, -4.0, 6.0])


@cuda
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


@cuda
def test_out_of_range_indices_read_nothing_and_give_nan():
    """The engine checks class and embedding indices without waiting for the GPU (the error comes at the next
    host read), so the kernels meet bad indices: they must not read past their arrays, and give NaN."""
    import kernels.cuda as K

    def dev(a):
        return to_dev(np.asarray(a), "cuda")
    loss, lse = K.cross_entropy_fwd(dev(np.zeros((3, 4), np.float32)), dev([1, 9, -3]), 0.0, -100)
    loss = to_host(loss)
    assert np.isfinite(loss[0]) and np.isnan(loss[1:]).all()
    out = to_host(K.embedding_fwd(dev([0, 4, -1]), dev(np.ones((4, 2), np.float32))))
    assert (out[0] == 1).all() and np.isnan(out[1:]).all()
    dw = to_host(K.embedding_bwd(dev(np.ones((3, 2), np.float32)), dev([0, 4, -1]), 4))
    np.testing.assert_array_equal(dw, [[1, 1], [0, 0], [0, 0], [0, 0]])
    y = to_host(K.masked_softmax_fwd(dev(np.zeros((2, 3), np.float32)), dev([5, -2])))
    np.testing.assert_allclose(y, [[1 / 3] * 3, [0, 0, 0]], rtol=1e-6)


@cuda
def test_device_tensors_refuse_implicit_conversion_to_numpy():
    t = engine.tensor([1.0, 2.0], device="cuda")
    with pytest.raises(TypeError, match="cannot be converted to a NumPy array implicitly"):
        np.asarray(t)
    np.testing.assert_array_equal(t.numpy(), [1.0, 2.0])         # the explicit copy works


@cuda
def test_a_training_step_copies_nothing_to_the_host(monkeypatch):
    """Forward, loss, backward and the optimizer step stay on the device: no device-to-host copy through the
    engine (and, on a GPU, none through CuPy either); reading the loss is the caller's one copy."""
    import engine.backend as backend
    from engine.datasets import load_digits
    gets = [0]
    if not backend.simulated():
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
    assert norm.device == "cuda" and np.isfinite(norm.item())
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


@cuda
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
