"""The model zoo: each experiment learns on small data in seconds, and the runner writes its files."""
import engine
from conftest import SEED, log_outcome
from engine import models
from engine.models import Config, Run


def run_experiment(name, **overrides):
    exp = models.get(name)
    cfg = Config(exp.defaults)
    cfg.update(overrides)
    cfg.update(device="cpu", seed=SEED)
    engine.manual_seed(SEED)
    run = Run(name, cfg, quiet=True)
    summary = exp.fn(cfg, run)
    log_outcome(name, **{k: v for k, v in summary.items() if isinstance(v, (int, float)) and v is not None})
    return summary, run


def test_linear_regression_recovers_the_parameters():
    summary, _ = run_experiment("linear-regression")
    assert summary["w_error"] < 0.05 and summary["b_error"] < 0.05


def test_polynomial_shows_under_and_over_fitting():
    s, _ = run_experiment("polynomial", epochs=600, k=2)
    assert s["underfit_2_train"] > 10 * s["fit_4_train"]            # too simple: high training error
    assert s["overfit_20_train"] < s["fit_4_train"]                  # too flexible: lower training error ...
    assert s["overfit_20_val"] > s["fit_4_val"]                      # ... but higher validation error


def test_weight_decay_shrinks_weights_and_validation_error():
    s, _ = run_experiment("weight-decay", epochs=40)
    assert s["w_norm_wd3"] < s["w_norm_wd1"] < s["w_norm_wd0"]
    assert s["val_loss_wd3"] < s["val_loss_wd0"]


def test_softmax_regression_and_mlp_learn():
    s, _ = run_experiment("softmax-regression", epochs=5)      # seeds 0-4: 0.880-0.914; chance is 0.1
    assert s["val_acc"] > 0.8
    s, _ = run_experiment("mlp", epochs=10)          # matches PyTorch step for step; seeds 0-4: 0.919-0.950
    assert s["val_acc"] > 0.85


def test_dropout_narrows_the_generalization_gap():
    # validation minus training loss, plain minus dropout: after 60 epochs seeds 0-4 gave 0.023, 0.015, 0.004,
    # 0.011, 0.027 (one seed within 3% of the gap); after 120 epochs 0.011, 0.041, 0.023, 0.032, 0.032 (at
    # least 9%). The accuracy gap is too coarse on 300 images to test this way.
    s, _ = run_experiment("mlp-dropout", epochs=120)
    assert s["dropout_loss_gap"] < s["plain_loss_gap"]


def test_lenet_learns():
    s, run = run_experiment("lenet", epochs=3)       # seeds 0-4: 0.914-0.964 (train loss 0.11-0.34); chance 0.1
    assert s["val_acc"] > 0.8 and run.curves["train_loss"][-1] < 0.6


def test_batch_norm_makes_the_sigmoid_lenet_learn_sooner():
    # after 3 epochs at lr 0.1, seeds 0-4: with batch norm 0.85-0.94, without 0.08-0.10 (chance)
    s, _ = run_experiment("lenet-bn", epochs=3)
    assert s["bn_val_acc"] > 0.7 and s["plain_val_acc"] < 0.3


def test_resnet_learns_a_little():
    # eval-mode BN needs a few epochs of running statistics: after 4 epochs seeds 0-4 gave 0.75-0.99 (0.83-0.95
    # for seeds 0-2 with NUMBA_CPU_NAME=generic; lr 0.01, at the old lr 0.05 the loss spiked to 4.5 in epoch 3
    # on an AVX2 machine)
    s, run = run_experiment("resnet", epochs=4)
    assert s["val_acc"] > 0.6
    assert run.curves["train_loss"][-1] < run.curves["train_loss"][0]


def test_nadaraya_watson_beats_the_mean_and_learns_a_width():
    s, run = run_experiment("nadaraya-watson", epochs=30)
    for k in ("gaussian", "boxcar", "epanechnikov", "learned"):
        assert s[f"{k}_val_mse"] < s["mean_predictor_val_mse"]
    assert s["learned_val_mse"] < s["gaussian_val_mse"]
    assert "weights" in run.figures


def test_attention_scoring_masks_and_matches_the_fused_kernel():
    s, run = run_experiment("attention-scoring")
    assert s["additive_masked_weight"] == 0 and s["dot_masked_weight"] == 0
    assert s["fused_vs_explicit_max_diff"] < 1e-5
    assert s["mha_output_shape"] == [2, 4, 8]


def test_optimization_paths_reach_the_minimum():
    s, run = run_experiment("optimization")
    assert s["convex_GD_dist_to_min"] < 1e-2
    assert set(run.figures) == {"convex", "nonconvex"}


# ---- the experiments on "cuda" (the cuda half: a GPU, or the simulator under `make test`) ------------------
import pytest  # noqa: E402


@pytest.mark.cuda
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


@pytest.mark.cuda
def test_the_runner_says_which_experiments_run_on_cuda(capsys, monkeypatch, tmp_path):
    """Every bundled experiment runs on "cuda" (tests/test_experiments.py compares each with the CPU); the
    runner runs one there, and refuses, naming those that do, an experiment registered for the CPU only."""
    import json
    from engine import train
    assert all("cuda" in models.get(n).devices for n in models.names())
    assert train.main(["optimization", "--device", "cuda", "--epochs", "2", "--quiet", "--out", str(tmp_path)]) == 0
    record = json.loads((tmp_path / "optimization.json").read_text())
    assert record["config"]["device"] == "cuda" and len(record["curves"]["convex_GD_f"]) == 3
    monkeypatch.setitem(models.REGISTRY, "cpu-only", None)              # removed again after the test
    models.experiment("cpu-only", "runs on the CPU only", devices=("cpu",))(lambda cfg, run: {})
    capsys.readouterr()
    with pytest.raises(SystemExit):
        train.main(["cpu-only", "--device", "cuda"])
    err = capsys.readouterr().err
    assert "cpu-only runs on cpu only" in err and "lenet" in err and "ngram" in err and "cpu-only," not in err
