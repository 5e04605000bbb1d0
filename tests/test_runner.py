"""The runner `python -m engine.train`: its files, `--set` casting, the config's attribute access, time left,
and Ctrl-C keeping the run so far."""
import json

import pytest

from engine import models
from engine.models import Config, Run, experiment, parse_setting
from engine.train import caption, main


def test_runner_writes_json_and_pngs(tmp_path, capsys):
    assert main(["optimization", "--epochs", "5", "--quiet", "--out", str(tmp_path)]) == 0
    record = json.loads((tmp_path / "optimization.json").read_text())
    assert record["config"]["epochs"] == 5 and "summary" in record and record["curves"]
    assert record["interrupted"] is False
    assert (tmp_path / "optimization.png").stat().st_size > 0
    assert (tmp_path / "optimization-convex.png").stat().st_size > 0
    assert "wrote" in capsys.readouterr().out


def test_runner_lists_models_and_rejects_unknown_ones(capsys):
    assert main(["--list"]) == 0
    out = capsys.readouterr().out
    for name in ("linear-regression", "lenet", "nadaraya-watson", "optimization"):
        assert name in out
    with pytest.raises(SystemExit):
        main(["no-such-model"])


@pytest.mark.parametrize("text,default,want", [
    ("64", 32, 64), ("1e3", 32, 1000), ("2", 0.5, 2.0), ("0.25", 0.5, 0.25),
    ("yes", False, True), ("False", True, False), ("0", True, False),
    ("sigmoid", "relu", "sigmoid"), ("'avg'", "max", "avg"), ("1.5", "x", "1.5"),
    ("64,32", (128,), (64, 32)), ("(64, 32)", (1, 2), (64, 32)), ("64", (1, 2), (64,)), ("[3]", [1.0], [3.0]),
    ("3", None, 3), ("0.1", None, 0.1), ("gelu", None, "gelu"), ("(1, 2)", None, (1, 2)), ("none", None, None),
    ("true", None, True), ("{'a': 1}", {}, {"a": 1}),
])
def test_set_values_are_cast_by_the_default(text, default, want):
    got = parse_setting("k", text, default)
    assert got == want and type(got) is type(want)


@pytest.mark.parametrize("text,default", [("1.5", 3), ("abc", 0.1), ("maybe", True), ("a,b", (1, 2)), ("1", {})])
def test_set_rejects_values_that_do_not_fit_the_default(text, default):
    with pytest.raises(ValueError, match=rf"--set k={text}"):
        parse_setting("k", text, default)


@pytest.fixture
def echo_experiment(monkeypatch):
    """A registered experiment with None, tuple and bool defaults that records the config it was given."""
    seen = {}
    monkeypatch.setitem(models.REGISTRY, "echo", None)        # removed again after the test

    @experiment("echo", "echoes its config", epochs=3, lr=0.1, sizes=(8,), act=None, flag=False)
    def echo(cfg, run):
        seen.update(cfg)
        for e in range(cfg.epochs):
            run.log(e + 1, train_loss=1.0 / (e + 1))
        return {"last": 1.0 / cfg.epochs}
    return seen


def test_runner_passes_cast_settings_to_the_experiment(echo_experiment, tmp_path, capsys):
    assert main(["echo", "--quiet", "--out", str(tmp_path), "--set", "sizes=16,8", "act=gelu",
                 "--set", "flag=yes", "lr=1"]) == 0
    assert echo_experiment["sizes"] == (16, 8) and echo_experiment["act"] == "gelu"
    assert echo_experiment["flag"] is True and echo_experiment["lr"] == 1.0
    record = json.loads((tmp_path / "echo.json").read_text())
    assert record["config"]["sizes"] == [16, 8] and record["curves"]["train_loss"] == [1.0, 0.5, 1 / 3]
    for bad, why in (["--set", "sizes=a"], "sizes=a"), (["--set", "nope=1"], "no hyper-parameter 'nope'"), \
            (["--set", "lr"], "expected KEY=VALUE"):
        with pytest.raises(SystemExit):
            main(["echo", "--quiet", "--out", str(tmp_path), *bad])
        assert why in capsys.readouterr().err


def test_config_attribute_access_and_hasattr():
    cfg = Config(lr=0.1)
    assert cfg.lr == 0.1 and hasattr(cfg, "lr") and not hasattr(cfg, "momentum")
    assert getattr(cfg, "momentum", 0.9) == 0.9
    cfg.epochs = 3
    assert cfg["epochs"] == 3
    with pytest.raises(AttributeError, match="config has no 'x'"):
        cfg.x


def test_epoch_lines_show_the_time_left(capsys):
    run = Run("t", Config(epochs=4))
    for e in range(1, 5):
        run.log(e, train_loss=1.0)
        if e < 4:
            assert run.left_s is not None and run.left_s >= 0
    assert run.left_s == 0
    run.log(1, train_loss=1.0)                        # a second training loop starts its own estimate
    assert run.last_epoch == 1
    out = capsys.readouterr()
    text = out.out + out.err
    assert "epoch 1/4" in text and "left]" in text and "epoch 4/4" in text


def test_ctrl_c_keeps_the_epochs_so_far(monkeypatch, tmp_path, capsys):
    real_log = Run.log

    def log_then_interrupt(self, epoch=None, **metrics):           # the user presses Ctrl-C after epoch 2
        real_log(self, epoch, **metrics)
        if epoch == 2:
            raise KeyboardInterrupt
    monkeypatch.setattr(Run, "log", log_then_interrupt)
    rc = main(["softmax-regression", "--epochs", "5", "--quiet", "--out", str(tmp_path)])
    assert rc == 130
    record = json.loads((tmp_path / "softmax-regression.json").read_text())
    assert record["interrupted"] is True and record["config"]["epochs"] == 5
    assert len(record["curves"]["val_acc"]) == 2 and record["summary"]["val_acc"] == record["curves"]["val_acc"][-1]
    assert (tmp_path / "softmax-regression.png").stat().st_size > 0
    assert "interrupted" in capsys.readouterr().err


def test_caption_names_model_data_settings_and_final_metrics():
    text = caption("lenet", "LeNet on 28x28 digits", Config(epochs=3, lr=0.05, batch_size=64, seed=0),
                   {"val_acc": 0.9751, "epochs_to_90": 2})
    assert "lenet: LeNet on 28x28 digits" in text and "epochs 3, lr 0.05, batch size 64, seed 0" in text
    assert "val_acc 0.9751" in text


def test_a_failing_or_missing_plotter_never_loses_the_run(monkeypatch, tmp_path, capsys):
    import sys

    import engine.train as train

    def broken(*args, **kw):
        raise RuntimeError("no display")
    monkeypatch.setattr(train, "plot_curves", broken)
    assert main(["linear-regression", "--epochs", "2", "--quiet", "--out", str(tmp_path / "a")]) == 0
    assert json.loads((tmp_path / "a" / "linear-regression.json").read_text())["curves"]["train_loss"]
    assert "(no linear-regression.png: RuntimeError: no display)" in capsys.readouterr().out
    monkeypatch.setitem(sys.modules, "matplotlib", None)             # as if it were not installed
    assert main(["linear-regression", "--epochs", "2", "--quiet", "--out", str(tmp_path / "b")]) == 0
    assert (tmp_path / "b" / "linear-regression.json").exists()
    assert not (tmp_path / "b" / "linear-regression.png").exists()
    out = capsys.readouterr().out
    assert out.count("matplotlib is not installed") == 1
