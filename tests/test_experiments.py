"""Every experiment of the model zoo on "cuda" as on the CPU, and training loops that read the host once per
epoch, not once per step (issue 11). The cuda half runs under Numba's CUDA simulator, which runs every GPU
thread as a Python thread: the configurations here are tiny (a few windows, a few images, 1-3 steps)."""
import math

import numpy as np
import pytest

import engine
from conftest import DEVICES
from engine import models
from engine.backend import simulated
from engine.models import Config, Run, classification

# The smallest settings that still take each experiment's code path (several minibatches, evaluation, the
# greedy sample, every model of the multi-model experiments).
TINY = {
    "linear-regression": dict(epochs=2, n=20, batch_size=10),
    "polynomial": dict(epochs=2, k=2, n_train=4, batch_size=2),
    "weight-decay": dict(epochs=2, batch_size=10),
    "softmax-regression": dict(epochs=2, batch_size=4),
    "mlp": dict(epochs=1, batch_size=4, hidden=8),
    "mlp-dropout": dict(epochs=1, batch_size=4, hidden=8, train_size=8),
    "lenet": dict(epochs=1, batch_size=4),
    "lenet-bn": dict(epochs=1, batch_size=4),
    "resnet": dict(epochs=1, batch_size=4),
    "ngram": dict(num_train=200, num_val=100, num_steps=8),
    "rnn-lm": dict(epochs=2, batch_size=2, num_train=4, num_val=2, num_steps=4, num_hiddens=8, num_preds=3),
    "gru-lm": dict(epochs=1, batch_size=2, num_train=4, num_val=2, num_steps=4, num_hiddens=8, num_preds=3),
    "transformer-lm": dict(epochs=1, batch_size=2, num_train=4, num_val=2, num_steps=4, num_hiddens=8,
                           ffn_num_hiddens=16, num_heads=2, num_blks=1, dropout=0.0, num_preds=3),
    "nadaraya-watson": dict(epochs=3, n_train=8),
    "attention-scoring": dict(),
    "optimization": dict(epochs=3),
}
# Conv nets on 28x28 (lenet) or 16x16 (resnet) images: one step took 20 minutes under the simulator (lenet:
# 1,365 s for an epoch of two minibatches of 4). They train through train_classifier, as the classifiers
# compared here do, with ops whose cuda half the family tests check one by one; on a GPU they are compared too.
CONV_NETS = {"lenet", "lenet-bn", "resnet"}


@pytest.fixture
def few_digits(monkeypatch):
    """The classifiers on 8 training and 4 validation digits."""
    full = classification.digits

    def few(*args, **kwargs):
        x_train, x_val, y_train, y_val = full(*args, **kwargs)
        return x_train[:8], x_val[:4], y_train[:8], y_val[:4]
    monkeypatch.setattr(classification, "digits", few)


def run(name, device, **overrides):
    exp = models.get(name)
    cfg = Config(exp.defaults)
    cfg.update(TINY[name])
    cfg.update(overrides)
    cfg.update(device=device, seed=0)
    engine.manual_seed(0)
    r = Run(name, cfg, quiet=True)
    return exp.fn(cfg, r), r


def test_every_experiment_has_a_tiny_setting_here_and_runs_on_both_devices():
    assert set(TINY) == set(models.names())
    assert all(models.get(n).devices == ("cpu", "cuda") for n in models.names())


def test_an_experiment_module_that_fails_to_import_is_an_error(monkeypatch):
    monkeypatch.setattr(models, "_MODULES", models._MODULES + ["no_such_experiments"])
    with pytest.raises(ModuleNotFoundError, match="no_such_experiments"):
        models.names()


ERRORS = {"fused_vs_explicit_max_diff"}        # a rounding error itself: each device's own, both small


def _close(a, b, rtol):
    """Summaries alike: numbers to rtol (exact for counts and accuracies, see below), the rest equal."""
    assert a.keys() == b.keys()
    for k in a:
        if k in ERRORS:
            assert a[k] < 1e-5 and b[k] < 1e-5, (k, a[k], b[k])
        elif isinstance(a[k], float) and isinstance(b[k], float):
            assert math.isclose(a[k], b[k], rel_tol=rtol, abs_tol=rtol * 1e-2), (k, a[k], b[k])
        else:
            assert a[k] == b[k], (k, a[k], b[k])


@pytest.mark.cuda
@pytest.mark.parametrize("name", sorted(TINY))
def test_each_experiment_runs_on_cuda_as_on_the_cpu(name, few_digits):
    """The summary and the per-epoch curves on "cuda" match the CPU's. The kernels differ only in the order of
    their float32 sums: after 1-3 steps of these tiny models the losses agreed to 3e-7 relative when this test
    was written (float32's epsilon is 1.2e-7); 1e-4 leaves room for a GPU's other orders without letting a
    wrong step pass (one SGD step moves these losses by more than 1e-3). Accuracies, the n-gram counts and the
    greedy samples (argmax of logits far apart relative to that error) came out identical and are compared
    exactly. Where the optimization path is float64 the agreement is to 1e-15."""
    if name in CONV_NETS and simulated():
        pytest.skip(f"{name}: a conv net step takes about 20 minutes under the simulator (compared on a GPU)")
    cpu, cpu_run = run(name, "cpu")
    cuda, cuda_run = run(name, "cuda")
    _close(cuda, cpu, 1e-4)
    assert cuda_run.curves.keys() == cpu_run.curves.keys()
    for k in cpu_run.curves:
        np.testing.assert_allclose(cuda_run.curves[k], cpu_run.curves[k], rtol=1e-4, atol=1e-6, err_msg=k)


# ---- host reads ---------------------------------------------------------------------------------------------
def count_host_reads(monkeypatch):
    """Patch the Tensor's reads of its values (item, numpy; tolist, float, int and bool go through them) to
    count calls on device data: a read of "cuda" data makes the host wait for the GPU. Returns the counter."""
    from engine._conversions import Conversions
    reads = [0]
    for meth in ("item", "numpy"):
        orig = getattr(Conversions, meth)

        def counted(self, _orig=orig):
            reads[0] += 1
            return _orig(self)
        monkeypatch.setattr(Conversions, meth, counted)
    return reads


# (experiment, settings with N steps per epoch, the same with 2N, the most host reads the run may make)
STEPS = [
    ("softmax-regression", dict(batch_size=4), dict(batch_size=2), 2 * 2),    # train_classifier: 2 epochs x 2
    # evaluations (train, validation), each one read of its loss and hit sums
    ("rnn-lm", dict(batch_size=2), dict(batch_size=1), 2 * 2 + 1),    # fit_lm: 2 epochs x (train mean, val
    # perplexity), then the greedy sample; the clipping's norm stays on the device
    ("weight-decay", dict(batch_size=10), dict(batch_size=5), 4 * 3),  # fit_linear, 4 lambdas x (curves, w, b)
    ("linear-regression", dict(batch_size=10), dict(batch_size=5), 2 + 2),   # on_epoch: an epoch's loss; w, b
    ("nadaraya-watson", dict(epochs=2), dict(epochs=4), 2),             # a step an epoch: the queued losses, w
    ("optimization", dict(epochs=3), dict(epochs=6), 4),                # each path once, at its end
]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name,fewer,more,most", STEPS, ids=[s[0] for s in STEPS])
def test_training_reads_the_host_per_epoch_not_per_step(device, name, fewer, more, most, few_digits, monkeypatch):
    """Twice the steps in the same epochs: the same number of host reads, and no more than the epochs'
    evaluations and the end need (the losses stay on the device, read back once an epoch or once at the end).
    The same code runs on both devices, so the CPU half checks it too, fast."""
    counts = []
    for settings in (fewer, more):
        reads = count_host_reads(monkeypatch)
        run(name, device, **settings)
        counts.append(reads[0])
    assert counts[0] == counts[1], f"{name} on {device}: {counts[0]} host reads, {counts[1]} with twice the steps"
    assert counts[0] <= most, f"{name} on {device}: {counts[0]} host reads, expected at most {most}"


def test_the_progress_bar_reads_running_metrics_every_n_steps():
    reads = []
    r = Run("x", Config(epochs=1), quiet=False)
    for _ in r.progress(range(120)):
        r.running(loss=lambda: reads.append(1) or 1.0)
    r.close()
    assert len(reads) == len(range(0, 120, Run.every))         # steps 1, 51, 101
    quiet = Run("x", Config(epochs=1), quiet=True)
    for _ in quiet.progress(range(60)):
        quiet.running(loss=lambda: reads.append(1) or 1.0)
    assert len(reads) == 3                                      # a quiet run never reads


def test_log_later_logs_the_queued_epochs_in_order_with_one_read(monkeypatch):
    r = Run("x", Config(epochs=3), quiet=True)
    reads = count_host_reads(monkeypatch)
    for e in range(3):
        r.log_later(e + 1, train_loss=engine.tensor(float(e) / 4))
    assert r.curves == {} and reads[0] == 0
    r.flush()
    assert r.curves == {"train_loss": [0.0, 0.25, 0.5]} and r.last_epoch == 3 and reads[0] == 1
