"""Python threads: grad mode is per thread (PyTorch's semantics), two models train at once without disturbing
each other, and inference runs in a thread pool."""
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

import engine
import engine.functional as F
from engine import nn, optim
from engine.datasets import DataLoader, load_digits


def test_grad_mode_is_per_thread():
    seen = {}

    def worker():
        seen["start"] = engine.is_grad_enabled()          # a new thread starts with grad enabled
        with engine.no_grad():
            seen["inside"] = engine.is_grad_enabled()
            barrier.wait()                                # the main thread checks while we are inside
            barrier.wait()
        seen["after"] = engine.is_grad_enabled()

    barrier = threading.Barrier(2)
    with engine.no_grad():
        t = threading.Thread(target=worker)
        t.start()
        barrier.wait()
        assert not engine.is_grad_enabled()
        barrier.wait()
        t.join()
    assert engine.is_grad_enabled()
    assert seen == {"start": True, "inside": False, "after": True}

    @engine.no_grad()
    def f(x):
        return x * 2
    x = engine.tensor([1.0], requires_grad=True)
    assert not f(x).requires_grad and (x * 2).requires_grad
    with engine.set_grad_enabled(False):
        assert not (x * 2).requires_grad
    assert (x * 2).requires_grad


def _cnn(seed):
    engine.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(8 * 4 * 4, 10))


def _train(model, seed, steps, start=None):
    """SGD with its own generator for shuffling: the run depends on nothing another thread does (the global
    generator is process-wide, as PyTorch's is)."""
    images, labels = load_digits()
    gen = np.random.default_rng(seed)
    opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    if start is not None:
        start.wait()
    losses = []
    for x, y in DataLoader((images[:512], labels[:512]), batch_size=64, shuffle=True, generator=gen):
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if len(losses) == steps:
            break
    return losses, [p.numpy().copy() for p in model.parameters()]


def test_two_threads_train_two_models_as_if_one_after_the_other():
    serial = [_train(_cnn(s), s, 8) for s in (1, 2)]
    models = [_cnn(s) for s in (1, 2)]
    results, start = {}, threading.Barrier(2)

    def run(i, s):
        results[i] = _train(models[i], s, 8, start)

    threads = [threading.Thread(target=run, args=(i, s)) for i, s in enumerate((1, 2))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(2):
        losses, params = results[i]
        assert losses == serial[i][0]                     # bit for bit: nothing leaked between threads
        for p, q in zip(params, serial[i][1]):
            np.testing.assert_array_equal(p, q)


def test_inference_in_a_thread_pool():
    model = _cnn(3).eval()
    images, _ = load_digits()
    batches = [engine.tensor(images[i:i + 100]) for i in range(0, 800, 100)]
    with engine.no_grad():
        expected = [model(b).numpy() for b in batches]

    def infer(b):
        with engine.no_grad():
            return model(b).numpy()

    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(infer, batches))
    for g, e in zip(got, expected):
        np.testing.assert_array_equal(g, e)
    assert engine.is_grad_enabled()
