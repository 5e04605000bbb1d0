"""Recurrent family: tanh RNN, GRU and LSTM kernels (reference vs finite differences, the CPU kernels and
the CUDA kernels vs reference), the engine ops F.rnn_tanh / F.gru / F.lstm (gradients, errors) and nn.RNN /
nn.GRU / nn.LSTM against PyTorch, on each device. Determinism: tests/test_determinism.py."""
import numpy as np
import pytest

import engine
import kernels.reference.rnn as ref
from conftest import (DTYPES, assert_close, cases, check_backward_fd, check_engine_grad, kernels_on, noncontig,
                      on_devices, to_dev, to_host)
from engine.nn.rnn import GRU, LSTM, RNN
from engine.ops.rnn import gru, lstm, rnn_tanh

f32, f64 = np.float32, np.float64

rng = np.random.default_rng(0)
GATES = {"rnn": 1, "gru": 3}


def make(kind, T, B, H, bias=True, dtype=np.float64, scale=1.0):
    """xw, h0, w_hh, b_hh for one recurrence; weights ~ U(-1/sqrt(H), 1/sqrt(H)) * scale."""
    G = GATES[kind] * H
    k = scale / np.sqrt(H)
    xw = rng.standard_normal((T, B, G))
    h0 = rng.uniform(-0.9, 0.9, (B, H))
    w = rng.uniform(-k, k, (G, H))
    b = rng.uniform(-k, k, G) if bias else None
    return [a if a is None else a.astype(dtype) for a in (xw, h0, w, b)]


def fwd(mod, kind, xw, h0, w, b):
    out = mod.rnn_tanh_fwd(xw, h0, w, b) if kind == "rnn" else mod.gru_fwd(xw, h0, w, b)
    return (out, None) if kind == "rnn" else out


def bwd(mod, kind, dhs, hs, gates, h0, w):
    return mod.rnn_tanh_bwd(dhs, hs, h0, w) if kind == "rnn" else mod.gru_bwd(dhs, hs, gates, h0, w)


# ---- (1) the reference's backward through time vs finite differences ---------------------------------------
@pytest.mark.parametrize("kind", ["rnn", "gru"])
@pytest.mark.parametrize("T,B,H", [(1, 2, 3), (6, 3, 4)])
def test_reference_backward_fd(kind, T, B, H):
    xw, h0, w, b = make(kind, T, B, H, scale=2.0)

    def forward(xw, h0, w, b):
        return fwd(ref, kind, xw, h0, w, b)[0]

    def backward(dout, xw, h0, w, b):
        hs, gates = fwd(ref, kind, xw, h0, w, b)
        return bwd(ref, kind, dout, hs, gates, h0, w)

    check_backward_fd(forward, backward, [xw, h0, w, b])


# ---- (2) kernels vs the reference ---------------------------------------------------------------------------
CONFIGS = [(1, 1, 1, True), (3, 2, 5, False), (7, 70, 9, True), (4, 150, 33, True), (2, 65, 8, True)]
# the cuda half: H = 40 > the simulator's 32 threads, so a row spans two block strides
CUDA_CONFIGS = [(1, 1, 1, True), (4, 3, 5, False), (3, 2, 40, True)]


def _dev(device):
    return lambda a: None if a is None else to_dev(a, device)


@pytest.mark.parametrize(*on_devices("kind,cfg,dtype", cases(["rnn", "gru"], CONFIGS, DTYPES),
                                     [("rnn", CUDA_CONFIGS[0], f32), ("gru", CUDA_CONFIGS[1], f64),
                                      ("rnn", CUDA_CONFIGS[2], f64), ("gru", CUDA_CONFIGS[2], f32)]))
def test_kernels_match_reference(device, kind, cfg, dtype):
    K, dev, (T, B, H, bias) = kernels_on(device), _dev(device), cfg
    xw, h0, w, b = make(kind, T, B, H, bias)
    hs, gates = fwd(ref, kind, xw, h0, w, b)
    cast = [None if a is None else dev(a.astype(dtype)) for a in (xw, h0, w, b)]
    hs_c, gates_c = fwd(K, kind, *cast)
    assert hs_c.dtype == dtype
    assert_close(to_host(hs_c), hs, dtype, scale=T, err_msg="hs")
    if kind == "gru":
        assert_close(to_host(gates_c), gates, dtype, scale=T, err_msg="gates")
    dhs = rng.standard_normal(hs.shape)
    grads = bwd(ref, kind, dhs, hs, gates, h0, w)
    grads_c = to_host(bwd(K, kind, dev(dhs.astype(dtype)), hs_c, gates_c, cast[1], cast[2]))
    for name, g_c, g in zip(("dxw", "dh0", "dw_hh", "db_hh"), grads_c, grads):
        assert g_c.dtype == dtype
        assert_close(g_c, g, dtype, scale=T * (1 + np.sqrt(B)), err_msg=name)


@pytest.mark.parametrize("kind", ["rnn", "gru"])
def test_noncontiguous_inputs(device, kind):
    K = kernels_on(device)
    nc = lambda a: None if a is None else noncontig(to_host(a), device)       # noqa: E731
    xw, h0, w, b = make(kind, 5, 7, 6)
    hs, gates = fwd(ref, kind, xw, h0, w, b)
    hs_c, gates_c = to_host(fwd(K, kind, nc(xw), nc(h0), nc(w), nc(b)))
    assert_close(hs_c, hs, np.float64)
    dhs = rng.standard_normal(hs.shape)
    grads = bwd(ref, kind, dhs, hs, gates, h0, w)
    for g_c, g in zip(to_host(bwd(K, kind, nc(dhs), nc(hs_c), nc(gates_c), nc(h0), nc(w))), grads):
        assert_close(g_c, g, np.float64)


def test_saturated_inputs_stay_finite(device):
    """Large pre-activations: tanh and sigmoid saturate to +-1 / 0, 1 without overflow or NaN."""
    K, dev = kernels_on(device), _dev(device)
    for kind in ("rnn", "gru"):
        xw, h0, w, b = make(kind, 3, 4, 5, dtype=np.float32)
        xw = xw * np.float32(1e4)
        hs = to_host(fwd(K, kind, dev(xw), dev(h0), dev(w), dev(b))[0])
        hs_r, _ = fwd(ref, kind, xw.astype(np.float64), h0, w, b)
        assert np.isfinite(hs).all()
        assert_close(hs, hs_r, np.float32)


# ---- (5) argument checks ------------------------------------------------------------------------------------
def T_(a, dtype=np.float64, device="cpu"):
    return engine.tensor(np.asarray(a), dtype=dtype, device=device)


@pytest.mark.parametrize("fn,G", [(rnn_tanh, 1), (gru, 3)])
def test_bad_arguments(fn, G):
    x, h0 = T_(np.ones((4, 2, 3))), T_(np.zeros((2, 5)))
    w_ih, w_hh, b = T_(np.ones((G * 5, 3))), T_(np.ones((G * 5, 5))), T_(np.ones(G * 5))
    fn(x, h0, w_ih, w_hh, b, b)                                  # the good call
    cases = [
        (TypeError, "input", (np.ones((4, 2, 3)), h0, w_ih, w_hh, b, b)),
        (TypeError, "input", (T_(np.ones((4, 2, 3)), np.int64), h0, w_ih, w_hh, b, b)),
        (ValueError, "input", (T_(np.ones((2, 3))), h0, w_ih, w_hh, b, b)),
        (ValueError, "input", (T_(np.ones((0, 2, 3))), h0, w_ih, w_hh, b, b)),
        (ValueError, "w_hh", (x, h0, w_ih, T_(np.ones((G * 5 + 1, 5))), b, b)),
        (ValueError, "w_hh", (x, h0, w_ih, T_(np.ones(G * 5)), b, b)),
        (ValueError, "w_ih", (x, h0, T_(np.ones((G * 5, 4))), w_hh, b, b)),
        (ValueError, "b_ih", (x, h0, w_ih, w_hh, T_(np.ones(G * 5 + 1)), b)),
        (ValueError, "b_hh", (x, h0, w_ih, w_hh, b, T_(np.ones((1, G * 5))))),
        (ValueError, "h0", (x, T_(np.zeros((3, 5))), w_ih, w_hh, b, b)),
        (ValueError, "h0", (x, T_(np.zeros((2, 2, 5))), w_ih, w_hh, b, b)),
        (TypeError, "h0", (x, T_(np.zeros((2, 5)), np.float32), w_ih, w_hh, b, b)),
        (TypeError, "w_hh", (x, h0, w_ih, T_(np.ones((G * 5, 5)), np.float32), b, b)),
    ]
    for exc, name, args in cases:
        with pytest.raises(exc, match=name):
            fn(*args)


def test_module_bad_arguments():
    with pytest.raises(ValueError, match="nonlinearity"):
        RNN(3, 4, nonlinearity="relu")
    with pytest.raises(ValueError, match="bidirectional"):
        GRU(3, 4, bidirectional=True)
    with pytest.raises(ValueError, match="hidden_size"):
        RNN(3, 0)
    with pytest.raises(ValueError, match="dropout"):
        GRU(3, 4, dropout=1.5)
    m = RNN(3, 4, num_layers=2)
    with pytest.raises(ValueError, match="input"):
        m(engine.randn(5, 2, 4))
    with pytest.raises(ValueError, match="hx"):
        m(engine.randn(5, 2, 3), engine.zeros(1, 2, 4))
    with pytest.raises(TypeError, match="input"):
        m(np.ones((5, 2, 3), np.float32))


# ---- (6) engine level: tape gradients, h_n, PyTorch -------------------------------------------------------
@pytest.mark.parametrize("fn,G", [(rnn_tanh, 1), (gru, 3)])
def test_engine_gradients(device, fn, G):
    T, B, I, H = 4, 3, 2, 5
    x, h0 = rng.standard_normal((T, B, I)), rng.uniform(-0.5, 0.5, (B, H))
    w_ih, w_hh = rng.uniform(-0.6, 0.6, (G * H, I)), rng.uniform(-0.6, 0.6, (G * H, H))
    b_ih, b_hh = rng.uniform(-0.5, 0.5, G * H), rng.uniform(-0.5, 0.5, G * H)
    check_engine_grad(lambda *a: fn(*a)[0], [x, h0, w_ih, w_hh, b_ih, b_hh], device=device)
    check_engine_grad(lambda *a: fn(*a)[1] * 3.0, [x, h0, w_ih, w_hh, b_ih, b_hh], device=device)   # via h_n only
    check_engine_grad(lambda x, w_ih, w_hh: fn(x, None, w_ih, w_hh)[0], [x, w_ih, w_hh], device=device)  # no b, h0
    D = lambda a: T_(a, device=device)                                          # noqa: E731
    out, h_n = fn(D(x), D(h0), D(w_ih), D(w_hh))
    assert out.shape == (T, B, H) and h_n.shape == (B, H) and out.device == h_n.device == device
    np.testing.assert_array_equal(h_n.numpy(), out.numpy()[-1])
    assert fn(D(x), D(h0[None]), D(w_ih), D(w_hh))[1].shape == (1, B, H)
    assert fn(D(x), None, D(w_ih), D(w_hh))[1].shape == (1, B, H)


MODULE_CASES = [(RNN, "RNN", 1, False, True), (RNN, "RNN", 2, True, False), (GRU, "GRU", 1, False, True),
                (GRU, "GRU", 2, True, False)]


@pytest.mark.parametrize(*on_devices("cls,tname,layers,batch_first,bias", MODULE_CASES, MODULE_CASES[1:3]))
def test_modules_match_torch(device, cls, tname, layers, batch_first, bias):
    torch = pytest.importorskip("torch")
    tm = getattr(torch.nn, tname)(5, 7, num_layers=layers, batch_first=batch_first, bias=bias).double()
    m = cls(5, 7, num_layers=layers, batch_first=batch_first, bias=bias, dtype=np.float64)
    assert list(m.state_dict()) == list(tm.state_dict())
    m.load_state_dict({k: v.detach().numpy() for k, v in tm.state_dict().items()})
    m = m.to(device)
    assert all(p.device == device for p in m.parameters())
    x, h = rng.standard_normal((4, 3, 5)), rng.standard_normal((layers, 4 if batch_first else 3, 7))
    xt, ht = torch.tensor(x, requires_grad=True), torch.tensor(h, requires_grad=True)
    out_t, hn_t = tm(xt, ht)
    (out_t.sin().sum() + (hn_t ** 2).sum()).backward()
    xe, he = T_(x, device=device), T_(h, device=device)
    xe.requires_grad = he.requires_grad = True
    out, hn = m(xe, he)
    assert out.device == hn.device == device
    cos = T_(np.cos(out_t.detach().numpy()), device=device)
    loss = (out * cos).sum() + (hn * hn).sum()                      # d/d out of sum(sin(out)) = cos(out)
    loss.backward()
    np.testing.assert_allclose(out.numpy(), out_t.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(hn.numpy(), hn_t.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(xe.grad.numpy(), xt.grad.numpy(), rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(he.grad.numpy(), ht.grad.numpy(), rtol=1e-9, atol=1e-11)
    for (name, p), tp in zip(m.named_parameters(), tm.parameters()):
        np.testing.assert_allclose(p.grad.numpy(), tp.grad.numpy(), rtol=1e-9, atol=1e-11, err_msg=name)


@pytest.mark.parametrize("cls,tname", [(RNN, "RNN"), (GRU, "GRU")])
def test_modules_float32_unbatched_and_init(cls, tname):
    torch = pytest.importorskip("torch")
    tm = getattr(torch.nn, tname)(3, 16)
    engine.manual_seed(0)                      # the max of 16 draws passes 0.2 only with probability 0.97
    m = cls(3, 16)
    for p in m.parameters():                   # PyTorch's init: U(-1/sqrt(H), 1/sqrt(H)), float32
        assert p.dtype == np.float32 and np.abs(p.numpy()).max() <= 0.25 and np.abs(p.numpy()).max() > 0.2
    m.load_state_dict({k: v.detach().numpy() for k, v in tm.state_dict().items()})
    x = rng.standard_normal((6, 3)).astype(np.float32)                    # unbatched (T, I)
    out, hn = m(engine.tensor(x))
    out_t, hn_t = tm(torch.tensor(x))
    assert out.shape == (6, 16) and hn.shape == (1, 16)
    np.testing.assert_allclose(out.numpy(), out_t.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(hn.numpy(), hn_t.detach().numpy(), rtol=1e-5, atol=1e-6)
    xb = rng.standard_normal((9, 130, 3)).astype(np.float32)             # several chunks of rows
    np.testing.assert_allclose(m(engine.tensor(xb))[0].numpy(), tm(torch.tensor(xb))[0].detach().numpy(),
                               rtol=1e-5, atol=1e-5)


def test_state_carries_across_calls(device):
    """Running a sequence in two pieces, passing h_n on, equals running it whole (how text is sampled)."""
    m = GRU(4, 6, num_layers=2, dtype=np.float64).to(device)
    x = T_(rng.standard_normal((10, 2, 4)), device=device)
    whole, h_whole = m(x)
    a, h = m(x[:4])
    b, h2 = m(x[4:], h)
    np.testing.assert_allclose(np.concatenate([a.numpy(), b.numpy()]), whole.numpy(), rtol=1e-12)
    np.testing.assert_allclose(h2.numpy(), h_whole.numpy(), rtol=1e-12)



# ---- LSTM: the same checks, its state being (h, c) ---------------------------------------------------------
def make_lstm(T, B, H, bias=True, dtype=np.float64, scale=1.0):
    """xw, h0, c0, w_hh, b_hh for one LSTM recurrence."""
    k = scale / np.sqrt(H)
    xw = rng.standard_normal((T, B, 4 * H))
    h0, c0 = rng.uniform(-0.9, 0.9, (B, H)), rng.uniform(-2.0, 2.0, (B, H))
    w = rng.uniform(-k, k, (4 * H, H))
    b = rng.uniform(-k, k, 4 * H) if bias else None
    return [a if a is None else a.astype(dtype) for a in (xw, h0, c0, w, b)]


@pytest.mark.parametrize("T,B,H", [(1, 2, 3), (6, 3, 4)])
def test_lstm_reference_backward_fd(T, B, H):
    xw, h0, c0, w, b = make_lstm(T, B, H, scale=2.0)

    def backward(dhc, xw, h0, c0, w, b):
        hc, gates = ref.lstm_fwd(xw, h0, c0, w, b)
        return ref.lstm_bwd(dhc, hc, gates, h0, c0, w)

    check_backward_fd(lambda *a: ref.lstm_fwd(*a)[0], backward, [xw, h0, c0, w, b])


@pytest.mark.parametrize(*on_devices("cfg,dtype", cases(CONFIGS, DTYPES),
                                     [(CUDA_CONFIGS[0], f64), (CUDA_CONFIGS[1], f32), (CUDA_CONFIGS[2], f64)]))
def test_lstm_kernels_match_reference(device, cfg, dtype):
    K, dev, (T, B, H, bias) = kernels_on(device), _dev(device), cfg
    xw, h0, c0, w, b = make_lstm(T, B, H, bias)
    hc, gates = ref.lstm_fwd(xw, h0, c0, w, b)
    cast = [None if a is None else dev(a.astype(dtype)) for a in (xw, h0, c0, w, b)]
    hc_d, gates_d = K.lstm_fwd(*cast)
    hc_c, gates_c = to_host((hc_d, gates_d))
    assert hc_c.dtype == gates_c.dtype == dtype and hc_c.shape == (T, B, 2 * H) and gates_c.shape == (T, 4 * H, B)
    assert_close(hc_c, hc, dtype, scale=T, err_msg="hc")
    assert_close(gates_c, gates, dtype, scale=T, err_msg="gates")
    dhc = rng.standard_normal(hc.shape)
    grads = ref.lstm_bwd(dhc, hc, gates, h0, c0, w)
    grads_c = to_host(K.lstm_bwd(dev(dhc.astype(dtype)), hc_d, gates_d, cast[1], cast[2], cast[3]))
    for name, g_c, g in zip(("dxw", "dh0", "dc0", "dw_hh", "db_hh"), grads_c, grads):
        assert g_c.dtype == dtype
        assert_close(g_c, g, dtype, scale=T * (1 + np.sqrt(B)), err_msg=name)


def test_lstm_noncontiguous_inputs(device):
    K = kernels_on(device)
    nc = lambda a: noncontig(to_host(a), device)                               # noqa: E731
    xw, h0, c0, w, b = make_lstm(5, 7, 6)
    hc, gates = ref.lstm_fwd(xw, h0, c0, w, b)
    hc_c, gates_c = to_host(K.lstm_fwd(*(nc(a) for a in (xw, h0, c0, w, b))))
    assert_close(hc_c, hc, np.float64)
    dhc = rng.standard_normal(hc.shape)
    args = (nc(dhc), nc(hc_c), nc(gates_c), nc(h0), nc(c0), nc(w))
    for g_c, g in zip(to_host(K.lstm_bwd(*args)), ref.lstm_bwd(dhc, hc, gates, h0, c0, w)):
        assert_close(g_c, g, np.float64)


def test_lstm_saturated_inputs_stay_finite(device):
    K, dev = kernels_on(device), _dev(device)
    xw, h0, c0, w, b = make_lstm(3, 4, 5, dtype=np.float32)
    xw = xw * np.float32(1e4)
    hc, gates = K.lstm_fwd(dev(xw), dev(h0), dev(c0), dev(w), dev(b))
    hc_r, gates_r = ref.lstm_fwd(xw.astype(np.float64), h0, c0, w, b)
    assert np.isfinite(to_host(hc)).all() and np.isfinite(to_host(gates)).all()
    assert_close(to_host(hc), hc_r, np.float32)
    dhc = dev(np.ones(hc.shape, np.float32))
    for g in K.lstm_bwd(dhc, hc, gates, dev(h0), dev(c0), dev(w)):
        assert np.isfinite(to_host(g)).all()


def test_lstm_bad_arguments():
    x, h0, c0 = T_(np.ones((4, 2, 3))), T_(np.zeros((2, 5))), T_(np.zeros((2, 5)))
    w_ih, w_hh, b = T_(np.ones((20, 3))), T_(np.ones((20, 5))), T_(np.ones(20))
    lstm(x, (h0, c0), w_ih, w_hh, b, b)                          # the good call
    cases = [
        (TypeError, "hx", (x, h0, w_ih, w_hh, b, b)),
        (TypeError, "hx", (x, (h0,), w_ih, w_hh, b, b)),
        (ValueError, "c0", (x, (h0, T_(np.zeros((2, 4)))), w_ih, w_hh, b, b)),
        (TypeError, "c0", (x, (h0, T_(np.zeros((2, 5)), np.float32)), w_ih, w_hh, b, b)),
        (TypeError, "c0", (x, (h0, np.zeros((2, 5))), w_ih, w_hh, b, b)),
        (ValueError, "h0", (x, (T_(np.zeros((3, 5))), c0), w_ih, w_hh, b, b)),
        (ValueError, "w_hh", (x, (h0, c0), w_ih, T_(np.ones((15, 5))), b, b)),
        (ValueError, "w_ih", (x, (h0, c0), T_(np.ones((20, 4))), w_hh, b, b)),
        (ValueError, "b_hh", (x, (h0, c0), w_ih, w_hh, b, T_(np.ones(15)))),
        (ValueError, "input", (T_(np.ones((0, 2, 3))), (h0, c0), w_ih, w_hh, b, b)),
    ]
    for exc, name, args in cases:
        with pytest.raises(exc, match=name):
            lstm(*args)
    m = LSTM(3, 5, num_layers=2)
    with pytest.raises(TypeError, match="hx"):
        m(engine.randn(4, 2, 3), engine.zeros(2, 2, 5))             # a tensor where the pair belongs
    with pytest.raises(ValueError, match=r"hx\[1\]"):
        m(engine.randn(4, 2, 3), (engine.zeros(2, 2, 5), engine.zeros(1, 2, 5)))
    with pytest.raises(ValueError, match="proj_size"):
        LSTM(3, 5, proj_size=2)
    with pytest.raises(ValueError, match="bidirectional"):
        LSTM(3, 5, bidirectional=True)


def test_lstm_engine_gradients(device):
    T, B, I, H = 4, 3, 2, 5
    x, h0, c0 = rng.standard_normal((T, B, I)), rng.uniform(-0.5, 0.5, (B, H)), rng.uniform(-1, 1, (B, H))
    w_ih, w_hh = rng.uniform(-0.6, 0.6, (4 * H, I)), rng.uniform(-0.6, 0.6, (4 * H, H))
    b_ih, b_hh = rng.uniform(-0.5, 0.5, 4 * H), rng.uniform(-0.5, 0.5, 4 * H)
    args = [x, h0, c0, w_ih, w_hh, b_ih, b_hh]
    run = lambda x, h0, c0, *w: lstm(x, (h0, c0), *w)                 # noqa: E731
    check_engine_grad(lambda *a: run(*a)[0], args, device=device)                       # through the output
    check_engine_grad(lambda *a: run(*a)[1][0] * 3.0, args, device=device)              # through h_n only
    check_engine_grad(lambda *a: run(*a)[1][1] * 2.0, args, device=device)              # through c_n only
    check_engine_grad(lambda x, w_ih, w_hh: lstm(x, None, w_ih, w_hh)[0], [x, w_ih, w_hh], device=device)
    D = lambda a: T_(a, device=device)                                          # noqa: E731
    out, (h_n, c_n) = run(*(D(a) for a in args))
    assert out.shape == (T, B, H) and h_n.shape == c_n.shape == (B, H) and out.device == c_n.device == device
    np.testing.assert_array_equal(h_n.numpy(), out.numpy()[-1])
    _, (h1, c1) = lstm(D(x), (D(h0[None]), D(c0[None])), D(w_ih), D(w_hh))
    assert h1.shape == c1.shape == (1, B, H)
    assert lstm(D(x), None, D(w_ih), D(w_hh))[1][1].shape == (1, B, H)


@pytest.mark.parametrize(*on_devices("layers,batch_first,bias", [(1, False, True), (2, True, False), (3, False, True)],
                                     [(2, True, False)]))
def test_lstm_module_matches_torch(device, layers, batch_first, bias):
    """Copied weights: output, h_n, c_n and the gradients of the input, h0, c0 and every weight."""
    torch = pytest.importorskip("torch")
    tm = torch.nn.LSTM(5, 7, num_layers=layers, batch_first=batch_first, bias=bias).double()
    m = LSTM(5, 7, num_layers=layers, batch_first=batch_first, bias=bias, dtype=np.float64)
    assert list(m.state_dict()) == list(tm.state_dict()) and m._flat_weights_names == tm._flat_weights_names
    m.load_state_dict({k: v.detach().numpy() for k, v in tm.state_dict().items()})
    m = m.to(device)
    B = 4 if batch_first else 3
    x, h, c = rng.standard_normal((4, 3, 5)), rng.standard_normal((layers, B, 7)), rng.standard_normal((layers, B, 7))
    xt, ht, ct = (torch.tensor(a, requires_grad=True) for a in (x, h, c))
    out_t, (hn_t, cn_t) = tm(xt, (ht, ct))
    (out_t.sin().sum() + (hn_t ** 2).sum() + (cn_t ** 3).sum()).backward()
    xe, he, ce = T_(x, device=device), T_(h, device=device), T_(c, device=device)
    xe.requires_grad = he.requires_grad = ce.requires_grad = True
    out, (hn, cn) = m(xe, (he, ce))
    assert out.device == cn.device == device
    (out * T_(np.cos(out_t.detach().numpy()), device=device)).sum().backward(retain_graph=True)
    ((hn * hn).sum() + (cn * cn * cn).sum()).backward()
    for mine, theirs in [(out, out_t), (hn, hn_t), (cn, cn_t)]:
        assert mine.shape == tuple(theirs.shape)
        np.testing.assert_allclose(mine.numpy(), theirs.detach().numpy(), rtol=1e-10, atol=1e-12)
    for mine, theirs in [(xe, xt), (he, ht), (ce, ct)]:
        np.testing.assert_allclose(mine.grad.numpy(), theirs.grad.numpy(), rtol=1e-9, atol=1e-11)
    for (name, p), tp in zip(m.named_parameters(), tm.parameters()):
        np.testing.assert_allclose(p.grad.numpy(), tp.grad.numpy(), rtol=1e-9, atol=1e-11, err_msg=name)


def test_lstm_module_float32_unbatched_init_and_repr():
    torch = pytest.importorskip("torch")
    tm = torch.nn.LSTM(3, 16)
    engine.manual_seed(0)
    m = LSTM(3, 16)
    assert repr(m) == repr(tm) == "LSTM(3, 16)"
    for p in m.parameters():                   # PyTorch's init: U(-1/sqrt(H), 1/sqrt(H)), float32
        assert p.dtype == np.float32 and np.abs(p.numpy()).max() <= 0.25 and np.abs(p.numpy()).max() > 0.2
    m.load_state_dict({k: v.detach().numpy() for k, v in tm.state_dict().items()})
    x = rng.standard_normal((6, 3)).astype(np.float32)                    # unbatched (T, I)
    out, (hn, cn) = m(engine.tensor(x))
    out_t, (hn_t, cn_t) = tm(torch.tensor(x))
    assert out.shape == (6, 16) and hn.shape == cn.shape == (1, 16)
    for mine, theirs in [(out, out_t), (hn, hn_t), (cn, cn_t)]:
        np.testing.assert_allclose(mine.numpy(), theirs.detach().numpy(), rtol=1e-5, atol=1e-6)
    xb = rng.standard_normal((9, 130, 3)).astype(np.float32)             # several chunks of rows
    np.testing.assert_allclose(m(engine.tensor(xb))[0].numpy(), tm(torch.tensor(xb))[0].detach().numpy(),
                               rtol=1e-5, atol=1e-5)


def test_lstm_state_carries_across_calls(device):
    m = LSTM(4, 6, num_layers=2, dtype=np.float64).to(device)
    x = T_(rng.standard_normal((10, 2, 4)), device=device)
    whole, (h_whole, c_whole) = m(x)
    a, state = m(x[:4])
    b, (h2, c2) = m(x[4:], state)
    np.testing.assert_allclose(np.concatenate([a.numpy(), b.numpy()]), whole.numpy(), rtol=1e-12)
    np.testing.assert_allclose(h2.numpy(), h_whole.numpy(), rtol=1e-12)
    np.testing.assert_allclose(c2.numpy(), c_whole.numpy(), rtol=1e-12)


@pytest.mark.parametrize("cls", [RNN, GRU, LSTM])
def test_flat_weights_names_are_pytorchs(cls):
    """PyTorch code reads `_flat_weights_names` and `_parameters[name]` (the book's seq2seq initializes each
    GRU weight so): the same names in the same order as PyTorch's, each a parameter of the module."""
    torch = pytest.importorskip("torch")
    for kw in (dict(), dict(num_layers=3, bias=False)):
        m, tm = cls(2, 3, **kw), getattr(torch.nn, cls.__name__)(2, 3, **kw)
        assert m._flat_weights_names == tm._flat_weights_names
        assert [m._parameters[n] for n in m._flat_weights_names] == m._flat_weights == list(m.parameters())
