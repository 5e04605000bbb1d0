"""engine.compile: a captured step replays to the bit what the eager step computes, on new data, and a
capture refuses what a replay could not repeat."""
import numpy as np
import pytest

import engine
import engine.functional as F
from bench import models
from conftest import to_dev
from engine import nn, optim
from engine._capture import CaptureError


def _state(net):
    return [p.numpy().copy() for p in net.parameters()] + [b.numpy().copy() for b in net.buffers()]


@pytest.mark.parametrize("name", list(models.MODELS))
def test_the_benchmark_models_replay_the_eager_steps_exactly(name, device="cpu"):
    """Two copies of each benchmark model (quick sizes) from one seed, one eager and one compiled, trained on
    the same new batch each step: same losses, same gradients, same weights and buffers, bit for bit.
    (On "cpu": the simulator would take minutes per model; test_a_replay_on_each_device covers "cuda".)"""
    m = models.MODELS[name]
    put = lambda a: to_dev(a, device)                                     # noqa: E731
    nets, steps = [], []
    for compiled in (False, True):
        engine.manual_seed(0)
        net = m.make(nn, F, m.quick)
        if device == "cuda":
            net = net.to("cuda")
        opt = m.opt(optim, net.parameters())

        def step(*xs, net=net, opt=opt):
            *inputs, target = xs
            opt.zero_grad()
            loss = F.cross_entropy(net(*inputs), target)
            loss.backward()
            if m.clip is not None:
                nn.utils.clip_grad_norm_(net.parameters(), m.clip / 100)   # small: it clips
            opt.step()
            return loss
        nets.append(net)
        steps.append(engine.compile(step) if compiled else step)
    for i in range(4):
        arrays, target = m.inputs(np.random.default_rng(i), m.quick, np.dtype(np.float32))
        batch = [engine.Tensor(put(a)) for a in arrays + [target]]
        eager, replayed = (float(s(*batch).cpu()) for s in steps)
        assert eager == replayed, f"step {i}: eager loss {eager}, compiled {replayed}"
        for a, b in zip(nets[0].parameters(), nets[1].parameters()):
            np.testing.assert_array_equal(a.grad.cpu().numpy(), b.grad.cpu().numpy())
    for a, b in zip(_state(nets[0]), _state(nets[1])):
        np.testing.assert_array_equal(a, b)
    assert steps[1].captures == 1


def _train_step(net, opt):
    def step(x, y):
        opt.zero_grad()
        loss = F.cross_entropy(net(x), y)
        loss.backward()
        opt.step()
        return loss
    return step


def _mlp(seed=0, p=0.0):
    engine.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Dropout(p), nn.Linear(16, 3))


def _data(i, n=8):
    rng = np.random.default_rng(100 + i)
    return (engine.tensor(rng.standard_normal((n, 6)).astype(np.float32)),
            engine.tensor(rng.integers(0, 3, n)))


def test_a_replay_on_each_device_matches_the_eager_steps(device):
    """An MLP with layer norm and dropout, AdamW, on the device: eager and compiled agree to the bit."""
    runs = []
    for compiled in (False, True):
        engine.manual_seed(0)
        net = nn.Sequential(nn.Linear(6, 8), nn.LayerNorm(8), nn.ReLU(), nn.Dropout(0.25), nn.Linear(8, 3))
        net = net.to(device)
        opt = optim.AdamW(net.parameters(), lr=0.01)

        step = _train_step(net, opt)
        s = engine.compile(step) if compiled else step
        out = []
        for i in range(3):
            x, y = _data(i, n=4)
            out.append(float(s(x.to(device), y.to(device)).cpu()))
        runs.append(out)
    assert runs[0] == runs[1]


def test_dropout_draws_new_masks_on_every_replay_as_the_eager_step_does():
    runs = []
    for compiled in (False, True):
        net = _mlp(p=0.5)
        opt = optim.SGD(net.parameters(), lr=0.1, momentum=0.9)

        step = _train_step(net, opt)
        s = engine.compile(step) if compiled else step
        engine.manual_seed(7)
        x, y = _data(0)
        runs.append([float(s(x, y)) for _ in range(5)])        # the same batch: only the masks change
    assert runs[0] == runs[1]
    assert len(set(runs[1])) == 5


def test_the_books_manual_sgd_with_leaf_hooks_and_several_signatures():
    """d2l's sgd (in-place updates under no_grad, grad.zero_()), a hook on a parameter, a second batch size
    (a second capture) and the returned tuple."""
    results, calls = [], []
    for compiled in (False, True):
        net = _mlp()
        w = net[0].weight
        seen = []
        w.register_hook(lambda g: seen.append(float(g.abs().sum().numpy())) or None)
        for p in net.parameters():         # the book zeroes .grad in place: make them exist
            p.grad = engine.zeros_like(p)

        def step(x, y, lr):
            loss = F.cross_entropy(net(x), y, reduction="sum")
            loss.backward()
            with engine.no_grad():
                for p in net.parameters():
                    p -= lr * p.grad / x.shape[0]
                    p.grad.zero_()
            return loss, net(x).argmax(dim=1) == y

        s = engine.compile(step) if compiled else step
        out = []
        for i in range(6):
            x, y = _data(i, n=8 if i % 2 else 5)
            loss, right = s(x, y, 0.1)
            out.append((float(loss), right.numpy().tolist()))
        results.append(out)
        calls.append(seen)
        if compiled:
            assert s.captures == 2
    assert results[0] == results[1]
    assert calls[0] == calls[1] and len(calls[1]) == 6


def test_train_and_eval_modes_each_get_their_capture_and_batch_norm_counts_batches():
    engine.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                        nn.Linear(4 * 5 * 5, 3))
    fwd = engine.compile(lambda x: net(x))
    x = engine.randn(3, 2, 5, 5)
    with engine.no_grad():
        train = [fwd(x).numpy().copy() for _ in range(3)]
        net.eval()
        ev = fwd(x).numpy().copy()
        want = net(x).numpy()
    assert fwd.captures == 2
    assert int(net[1].num_batches_tracked.numpy()) == 3          # the replays updated the running statistics
    np.testing.assert_array_equal(ev, want)
    np.testing.assert_array_equal(train[1], train[2])            # batch statistics: the same batch, same output
    assert not np.array_equal(ev, train[0])


def test_a_replay_frees_activations_and_gives_detached_results():
    net = _mlp()
    opt = optim.SGD(net.parameters(), lr=0.1)

    step = engine.compile(_train_step(net, opt))
    for i in range(3):
        loss = step(*_data(i))
        assert not loss.requires_grad and loss.is_leaf
    assert step.captures == 1


# ---- what a capture refuses ---------------------------------------------------------------------------------
def _refused(fn, *args, match):
    with pytest.raises(CaptureError, match=match):
        engine.compile(fn)(*args)


def test_a_capture_refuses_what_a_replay_could_not_repeat():
    net = _mlp()
    x, y = _data(0)

    def reads_item(x, y):
        loss = F.cross_entropy(net(x), y)
        loss.backward()
        return loss.item()
    _refused(reads_item, x, y, match=r"item\(\)")

    def branches(x):
        with engine.no_grad():
            out = net(x)
            return out * 2 if out.sum() < 0 else out
    _refused(branches, x, match="read a tensor's value")

    def draws(x):
        with engine.no_grad():
            return net(x + engine.randn(*x.shape))
    _refused(draws, x, match="random numbers")

    def reads_numpy(x):
        with engine.no_grad():
            return engine.tensor(net(x).numpy() + 1)
    _refused(reads_numpy, x, match=r"numpy\(\)")

    def in_place_on_tape(x):
        h = net(x)
        h += 1
        return h.sum()
    _refused(in_place_on_tape, x, match="on the tape")

    def no_backward(x):
        return net(x).sum()
    _refused(no_backward, x, match="not backpropagated")

    outside = net(x).sum()

    def old_graph(x):
        (net(x).sum() + outside).backward()
    _refused(old_graph, x, match="before the capture")

    def nll(x, y):
        loss = F.nll_loss(F.log_softmax(net(x), dim=1), y)
        loss.backward()
        return loss
    _refused(nll, x, y, match="nll_loss")

    def masked(x):
        with engine.no_grad():
            h = net(x)
            return h[h > 0].mean()
    _refused(masked, x, match="boolean mask")

    def raw_write(x):
        with engine.no_grad():
            out = net(x)
            from engine.autograd import bump_version
            out._data[0] = 0
            bump_version(out._data)
            return out
    _refused(raw_write, x, match="in place outside an op")


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(TypeError, match="fn: expected a function"):
        engine.compile(3)
    with pytest.raises(ValueError, match="max_captures"):
        engine.compile(lambda x: x, max_captures=0)
    net = _mlp()
    f = engine.compile(lambda x: net(x).detach(), max_captures=1)
    with engine.no_grad():
        f(engine.zeros(2, 6))
        with pytest.raises(RuntimeError, match="captured 1 times"):
            f(engine.zeros(3, 6))
    x = engine.zeros(2, 6, requires_grad=True)
    with pytest.raises(CaptureError, match="argument 0 has a graph"):
        engine.compile(lambda t: t)(x * 2)


def test_lengths_masks_and_indices_are_read_anew_and_checked_on_every_replay():
    """Arguments that reach an op as raw arrays (valid_lens, an index array, embedding indices, targets) are
    the step's values, not constants of the capture; their value checks run on every replay."""
    engine.manual_seed(0)
    emb = nn.Embedding(10, 8)
    q = nn.Linear(8, 8)

    def step(tokens, lens, target, pick):
        h = emb(tokens)                                             # (2, 5, 8)
        scores = q(h) @ h.transpose(1, 2)                           # (2, 5, 5)
        w = F.masked_softmax(scores, lens)
        att = F.scaled_dot_product_attention(h, h, h, valid_lens=lens)
        logits = (w @ h + att).sum(dim=1)[:, :3]                    # (2, 3)
        loss = F.cross_entropy(logits, target) + (h[:, pick] ** 2).mean()
        loss.backward()
        return loss, emb.weight.grad.clone()

    compiled = engine.compile(step)
    rng = np.random.default_rng(0)
    for i in range(4):
        args = (engine.tensor(rng.integers(0, 10, (2, 5))), engine.tensor(rng.integers(1, 6, 2)),
                engine.tensor(rng.integers(0, 3, 2)), engine.tensor(rng.integers(0, 5, 3)))
        emb.weight.grad = q.weight.grad = q.bias.grad = None
        want = [t.numpy().copy() for t in step(*args)]
        emb.weight.grad = q.weight.grad = q.bias.grad = None
        got = [t.numpy() for t in compiled(*args)]
        for a, b in zip(want, got):
            np.testing.assert_array_equal(a, b)
    assert compiled.captures == 1
    bad = list(args)
    bad[0] = engine.tensor(np.full((2, 5), 10))
    with pytest.raises(ValueError, match="out of range for an embedding"):
        compiled(*bad)
    bad = list(args)
    bad[2] = engine.tensor(np.array([0, 3]))
    with pytest.raises(ValueError, match="target: class index 3"):
        compiled(*bad)
    bad = list(args)
    bad[1] = engine.tensor(np.array([1, 6]))
    with pytest.raises(ValueError, match="valid_lens"):
        compiled(*bad)


def test_gradients_reach_the_replays_own_arguments_and_nested_steps_are_recorded():
    """A tensor argument that requires grad gets its gradient on each call's own tensor; a compiled function
    called inside another's capture is recorded there (not replayed inside it)."""
    inner = engine.compile(lambda a, b: (a * b).sum())

    @engine.compile
    def outer(a, b):
        loss = inner(a, b) + (a ** 2).sum()
        loss.backward()
        return loss

    rng = np.random.default_rng(1)
    for i in range(3):
        a = engine.tensor(rng.standard_normal(4).astype(np.float32), requires_grad=True)
        b = engine.tensor(rng.standard_normal(4).astype(np.float32))
        loss = outer(a, b)
        np.testing.assert_allclose(a.grad.numpy(), b.numpy() + 2 * a.numpy(), rtol=1e-6)
        np.testing.assert_allclose(float(loss), float((a * b).sum() + (a ** 2).sum()), rtol=1e-6)
    assert outer.captures == 1 and inner.captures == 0


def test_views_of_parameters_and_parameters_read_again_replay():
    """The book's from-scratch style: a parameter used through a view (w.T) and read again (weight decay)."""
    results = []
    for compiled in (False, True):
        engine.manual_seed(0)
        w = engine.randn(3, 6, requires_grad=True)

        def step(x, y):
            loss = F.cross_entropy(x @ w.T, y) + 0.01 * (w ** 2).sum()
            loss.backward()
            with engine.no_grad():
                w.sub_(0.1 * w.grad)
                w.grad.zero_()
            return loss
        s = engine.compile(step) if compiled else step
        results.append([float(s(*_data(i))) for i in range(4)])
    assert results[0] == results[1]
