"""Determinism, one test for every kernel family: the same inputs give the same bits on a rerun; on the CPU
also with one thread and on the serial path (the driver used under the parallel threshold), since each
parallel loop owns its outputs (no atomics, no reduction order that depends on the thread count). On "cuda"
a rerun gives the same bits (no atomics in the kernels). The CPU inputs are large enough for the parallel
drivers; the cuda ones are small (the simulator runs every GPU thread as a Python thread), yet longer than a
block, so that the per-block reductions loop."""
import numba
import numpy as np
import pytest

from conftest import DEVICES, kernels_on, to_dev, to_host

rng = np.random.default_rng(0)


def _f32(*shape, scale=1.0, seed=0):
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(np.float32)


# Each family: build(K, dev, small) -> run, where run() calls the family's kernels on `K` (kernels.cpu or
# kernels.cuda) and returns every output; dev(a) puts a host array on the device.
def softmax(K, dev, small):
    x = _f32(3, 140, scale=4) if small else _f32(67, 1031, scale=4)
    d = _f32(*x.shape, seed=1)
    lens = np.random.default_rng(2).integers(0, x.shape[1] + 1, x.shape[0])
    x, d, lens = dev(x), dev(d), dev(lens)

    def run():
        y, yl, ym = K.softmax_fwd(x), K.log_softmax_fwd(x), K.masked_softmax_fwd(x, lens)
        return [y, yl, ym, K.softmax_bwd(d, y), K.log_softmax_bwd(d, yl), K.masked_softmax_bwd(d, ym, lens)]
    return run


def loss(K, dev, small):
    N, C = (3, 140) if small else (67, 1031)
    x = _f32(N, C, scale=3)
    t = np.random.default_rng(3).integers(0, C, N)
    t[1] = -100
    a, b = _f32(2, 300 if small else 200003, seed=4)
    g = np.random.default_rng(5).standard_normal(N)
    x, t, a, b, g = dev(x), dev(t), dev(a), dev(b), dev(g)
    half = dev(np.array(0.5, np.float32))

    def run():
        lossv, lse = K.cross_entropy_fwd(x, t, 0.1, -100)
        return [lossv, lse, K.cross_entropy_bwd(g, x, t, lse, 0.1, -100), K.mse_loss_fwd(a, b, "mean"),
                K.mse_loss_fwd(a, b, "none"), K.mse_loss_bwd(half, a, b, "sum")]
    return run


def norm(K, dev, small):
    r = np.random.default_rng(11)
    x4 = (r.standard_normal((2, 3, 5, 7) if small else (8, 16, 9, 9)) * 2 + 1).astype(np.float32)
    x2 = (r.standard_normal((6, 5) if small else (300, 70)) * 2 + 1).astype(np.float32)
    d4, d2 = (r.standard_normal(a.shape).astype(np.float32) for a in (x4, x2))
    x4, x2, d4, d2 = dev(x4), dev(x2), dev(d4), dev(d2)

    def run():
        out = []
        for x, g in ((x4, d4), (x4[:, :2], d4[:, :2]), (x2, d2)):          # both batch-norm schedules
            y, mean, rstd, _ = K.batch_norm_fwd_train(x, None, None, 1e-5)
            out += [y, mean, rstd, *K.batch_norm_bwd_train(g, x, None, mean, rstd)]
        y, mean, rstd = K.layer_norm_fwd(x2, None, None, 1e-5)
        return out + [y, mean, rstd, *K.layer_norm_bwd(d2, x2, None, mean, rstd)]
    return run


def pool(K, dev, small):
    x = dev(_f32(*((1, 2, 7, 9) if small else (3, 5, 12, 14)), seed=9))

    def run():
        outs = []
        for k, s, p, c in [((2, 2), (2, 2), (0, 0), False), ((3, 3), (2, 2), (1, 1), True)]:
            out, am = K.max_pool2d_fwd(x, k, s, p, c)
            outs += [out, am, K.max_pool2d_bwd(out, am, x.shape, k, s, p, c)]
            y = K.avg_pool2d_fwd(x, k, s, p, c, False)
            outs += [y, K.avg_pool2d_bwd(y, x.shape, k, s, p, c, False)]
        for o in [(1, 1), (3, 5)]:
            y = K.adaptive_avg_pool2d_fwd(x, o)
            outs += [y, K.adaptive_avg_pool2d_bwd(y, x.shape)]
        return outs
    return run


def _conv(stride):
    def build(K, dev, small):
        N, C, H, W, Ko, g = (1, 3, 6, 5, 4, 1) if small else (2, 16, 9, 7, 10, 2)
        x, w, b = _f32(N, C, H, W, seed=18), _f32(Ko, C // g, 3, 3, seed=19), _f32(Ko, seed=20)
        conf = (stride, (1, 2, 0, 1), (1, 1), g)
        x, w, b = dev(x), dev(w), dev(b)
        shape = to_host(K.conv2d_fwd(x, w, b, *conf)).shape
        dout = dev(_f32(*shape, seed=21))

        def run():
            return [K.conv2d_fwd(x, w, b, *conf), *K.conv2d_bwd(dout, x, w, *conf)]
        return run
    return build


def _attention(lead):
    """lead: the CPU kernel's batch x heads; with few (1, 2) it splits the keys into groups of tiles."""
    def build(K, dev, small):
        return attention(K, dev, small, lead)
    return build


def attention(K, dev, small, lead):
    lead, L, S = ((1, 2), 9, 40) if small else (lead, 150, 200)
    r = np.random.default_rng(3)
    q, k, v = (r.standard_normal(lead + s).astype(np.float32) for s in ((L, 16), (S, 16), (S, 8)))
    do = r.standard_normal(lead + (L, 8)).astype(np.float32)
    q, k, v, do = dev(q), dev(k), dev(v), dev(do)

    def run():
        o, lse = K.sdpa_fwd(q, k, v, None, True, 0.25, dropout_p=0.2, seed=5)
        return [o, lse, *K.sdpa_bwd(do, q, k, v, o, lse, None, True, 0.25, dropout_p=0.2, seed=5)]
    return run


def activation(K, dev, small):
    x = dev(_f32(300 if small else 100000, scale=4, seed=7))

    def run():
        y, mask = K.dropout_fwd(x, 2**62 + 7, 0.3)
        return [K.sigmoid_fwd(x), K.tanh_fwd(x), K.relu_fwd(x), y, mask, K.dropout_bwd(x, mask, 0.3)] + \
            [f(x, a) for a in ("none", "tanh") for f in (K.gelu_fwd, lambda x, a: K.gelu_bwd(x, x, a))]
    return run


def optimizers(K, dev, small):
    n = 300 if small else 100000
    p0, g = _f32(n, seed=13), _f32(n, seed=14)
    g = dev(g)

    def run():
        outs = []
        for step in ("sgd", "adam", "adamw"):
            p, m, v = dev(p0.copy()), dev(np.zeros(n, np.float32)), dev(np.zeros(n, np.float32))
            for t in (1, 2):
                if step == "sgd":
                    K.sgd_step(p, g, m, 0.1, 0.9, 0.0, True, 1e-2, t == 1)
                else:
                    getattr(K, f"{step}_step")(p, g, m, v, 1e-2, 0.9, 0.999, 1e-8, 0.1, t)
            outs += [p, m, v]
        return outs
    return run


def embedding(K, dev, small):
    idx = dev(np.random.default_rng(8).integers(0, 4, 50 if small else 1000))     # many repeats: racy if naive
    dout = dev(_f32(idx.shape[0], 8 if small else 64, seed=8))
    w = dev(_f32(4, dout.shape[1], seed=9))

    def run():
        return [K.embedding_fwd(idx, w), K.embedding_bwd(dout, idx, 4)]
    return run


def recurrent(K, dev, small):
    T, B, H = (3, 2, 40) if small else (6, 200, 32)        # cuda: H past a 32-thread block; CPU: several chunks
    r = np.random.default_rng(12)
    a = {n: (r.standard_normal(s) * 0.5).astype(np.float32)
         for n, s in (("x1", (T, B, H)), ("x3", (T, B, 3 * H)), ("x4", (T, B, 4 * H)), ("h0", (B, H)),
                      ("c0", (B, H)), ("w1", (H, H)), ("w3", (3 * H, H)), ("w4", (4 * H, H)), ("b4", (4 * H,)),
                      ("d1", (T, B, H)), ("d2", (T, B, 2 * H)))}
    a = {n: dev(v / np.sqrt(H) if n[0] == "w" else v) for n, v in a.items()}

    def run():
        hs = K.rnn_tanh_fwd(a["x1"], a["h0"], a["w1"], None)
        hg, gates = K.gru_fwd(a["x3"], a["h0"], a["w3"], None)
        hc, lg = K.lstm_fwd(a["x4"], a["h0"], a["c0"], a["w4"], a["b4"])
        return [hs, *K.rnn_tanh_bwd(a["d1"], hs, a["h0"], a["w1"]), hg, gates,
                *K.gru_bwd(a["d1"], hg, gates, a["h0"], a["w3"]), hc, lg,
                *K.lstm_bwd(a["d2"], hc, lg, a["h0"], a["c0"], a["w4"])]
    return run


def _direct(stride, *a):
    return tuple(stride) == (1, 1)


# family: (build, the thresholds that, set out of reach, send the CPU kernels to their serial drivers,
#          attributes the CPU run sets first)
FAMILIES = {
    "softmax": (softmax, ["kernels.cpu.softmax.PARALLEL_MIN"], {}),
    "loss": (loss, ["kernels.cpu.softmax.PARALLEL_MIN", "kernels.cpu.loss.PARALLEL_MIN"], {}),
    "norm": (norm, ["kernels.cpu.norm.PARALLEL_MIN"], {}),
    "pool": (pool, [], {}),
    "conv_direct": (_conv((1, 1)), [], {"kernels.cpu.conv._use_direct": _direct}),
    "conv_gemm": (_conv((2, 1)), [], {"kernels.cpu.conv._use_direct": lambda *a: False}),
    "attention_many_heads": (_attention((4, 8)), [], {}),
    "attention_key_tile_groups": (_attention((1, 2)), [], {}),
    "activation": (activation, ["kernels.cpu._config.PARALLEL_MIN"], {}),
    "optimizers": (optimizers, ["kernels.cpu._config.PARALLEL_MIN"], {}),
    "embedding": (embedding, [], {}),
    "recurrent": (recurrent, [], {}),
}


@pytest.mark.parametrize("family", list(FAMILIES))
@pytest.mark.parametrize("device", DEVICES)
def test_same_bits_on_a_rerun_with_one_thread_and_on_the_serial_path(family, device, monkeypatch):
    build, serial_switches, setup = FAMILIES[family]
    if device == "cpu":
        for name, value in setup.items():
            monkeypatch.setattr(name, value)
    run = build(kernels_on(device), lambda a: to_dev(a, device), device == "cuda")

    def host_run():
        return [to_host(a) for a in run()]

    first = host_run()
    assert all(np.isfinite(a).all() for a in first if a.dtype.kind == "f"), "non-finite outputs"
    results = {"rerun": host_run()}
    if device == "cpu":
        prev = numba.get_num_threads()
        try:
            numba.set_num_threads(1)
            results["one thread"] = host_run()
        finally:
            numba.set_num_threads(prev)
        for name in serial_switches:
            monkeypatch.setattr(name, 1 << 62)
        if serial_switches:
            results["serial path"] = host_run()
    for how, outs in results.items():
        assert len(outs) == len(first)
        for i, (a, b) in enumerate(zip(first, outs)):
            assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), f"{family}: output {i} differs ({how})"
