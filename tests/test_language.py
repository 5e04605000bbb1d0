"""Character-level language models on The Time Machine: data and vocabulary, n-grams, and short training runs
that must learn (perplexity far below what an untrained model gets, about the vocabulary size, 28)."""
import json
import math

import numpy as np
import pytest

import engine
import kernels.cpu
import kernels.cpu.rnn as cpu_rnn
from conftest import SEED, log_outcome
from engine import optim
from engine.models import language as L
from engine.nn.rnn import GRU, RNN

for _name in cpu_rnn.__all__:      # until kernels/cpu/__init__.py imports rnn
    if not hasattr(kernels.cpu, _name):
        setattr(kernels.cpu, _name, getattr(cpu_rnn, _name))


@pytest.fixture(scope="module")
def small():
    """1,000 training and 500 validation windows of 16 characters."""
    return L.TimeMachine(batch_size=32, num_steps=16, num_train=1000, num_val=500)


# ---- data ---------------------------------------------------------------------------------------------------
def test_preprocess_and_vocab():
    assert L.preprocess("The Time-Machine, by H. G. Wells!! 1895\n") == "the time machine by h g wells "
    v = L.Vocab(L.tokenize("abca b"))
    assert v.idx_to_token == [" ", "<unk>", "a", "b", "c"]
    assert v["a"] == 2 and v["?"] == v.unk == 1
    assert v[["c", "a", "z"]] == [4, 2, 1]
    assert v.to_tokens([4, 0, 3]) == ["c", " ", "b"] and v.to_tokens(2) == "a"
    assert v.token_freqs[0] == ("a", 2)
    assert L.Vocab(list("aab"), min_freq=2).idx_to_token == ["<unk>", "a"]


def test_time_machine_dataset_is_the_books():
    data = L.TimeMachine()
    vocab = data.vocab
    assert len(vocab) == 28 and vocab.idx_to_token[:3] == [" ", "<unk>", "a"]
    assert len(data.corpus) == 173428                     # the book's character count after cleaning
    assert "".join(vocab.to_tokens(data.corpus[:16])) == "the time machine"
    assert data.X.shape == data.Y.shape == (15000, 32)
    np.testing.assert_array_equal(data.X[1:], data.Y[:-1])   # window i+1 is window i shifted by one
    np.testing.assert_array_equal(data.X[:, 1:], data.Y[:, :-1])
    np.testing.assert_array_equal(data.X[5], data.corpus[5:37])
    Xt, _ = data.split(True)
    Xv, Yv = data.split(False)
    assert len(Xt) == 10000 and len(Xv) == 5000
    np.testing.assert_array_equal(Xv[0], data.corpus[10000:10032])
    batches = list(data.train_dataloader())
    assert len(batches) == 10 and batches[0][0].shape == (1024, 32) and batches[-1][0].shape == (784, 32)
    assert len(data.text(True)) == 10032 and len(data.text(False)) == 5032
    with pytest.raises(ValueError, match="num_train"):
        L.TimeMachine(num_train=200000)


# ---- n-grams ------------------------------------------------------------------------------------------------
def test_ngram_perplexities():
    V = 28
    ids = np.random.default_rng(0).integers(0, V, 500)
    for n in (1, 2, 3):
        assert L.NGram(n, V).perplexity(ids) == pytest.approx(V)            # no counts: the uniform model
    model = L.NGram(2, 5).fit([0, 1, 0, 1, 0, 2])
    # P(1 | 0) = (2 + 1) / (3 + 5)
    assert math.exp(model.log_probs()[0, 1]) == pytest.approx(3 / 8)
    assert model.perplexity([0, 1]) == pytest.approx(8 / 3)
    np.testing.assert_allclose(np.exp(L.NGram(3, 4).fit([0, 1, 2, 3, 0]).log_probs()).sum(-1), 1.0)
    data = L.TimeMachine()
    train, val = data.text(True), data.text(False)
    ppl = [L.NGram(n, 28).fit(train).perplexity(val) for n in (1, 2, 3)]
    assert 28 > ppl[0] > ppl[1] > ppl[2] > 5                    # more context, lower perplexity
    assert ppl[0] == pytest.approx(16.67, abs=0.05)


# ---- neural language models ---------------------------------------------------------------------------------
def _trained(model, data, opt, epochs):
    val = L.fit_lm(model, data, opt, epochs, clip=1.0)
    return val, L.perplexity(model, *data.split(True))


@pytest.mark.parametrize("cls,lr", [(RNN, 1.0), (GRU, 4.0)])
def test_recurrent_lm_learns(small, cls, lr):
    engine.manual_seed(SEED)
    V = len(small.vocab)
    model = L.RNNLM(cls(V, 32), V)
    untrained = L.perplexity(model, *small.split(False))
    assert untrained > 24                                        # about V: it knows nothing yet
    val, train = _trained(model, small, optim.SGD(model.parameters(), lr=lr), 3)
    log_outcome(f"lm_{cls.__name__}", untrained=untrained, val=val, train=train)
    assert val < 16 and train < 12, (val, train)                 # beats even the unigram model (about 17)
    text = L.predict(model, "it has", 10, small.vocab)
    assert text.startswith("it has") and len(text) == 16 and set(text) <= set(small.vocab.idx_to_token)
    assert model.training                                         # predict restores the mode


def test_rnnlm_forward_shapes_and_state(small):
    V = len(small.vocab)
    model = L.RNNLM(GRU(V, 8, num_layers=2), V)
    X = engine.tensor(small.X[:5])
    logits, state = model(X)
    assert logits.shape == (5, 16, V) and state.shape == (2, 5, 8)
    a, s = model(X[:, :7])
    b, _ = model(X[:, 7:], s)
    np.testing.assert_allclose(np.concatenate([a.numpy(), b.numpy()], axis=1), logits.numpy(), rtol=1e-5, atol=1e-6)


def test_transformer_lm_learns(small):
    engine.manual_seed(SEED)
    V = len(small.vocab)
    model = L.TransformerLM(V, num_hiddens=32, ffn_num_hiddens=64, num_heads=2, num_blks=1, dropout=0.0)
    logits, _ = model(engine.tensor(small.X[:3]))
    assert logits.shape == (3, 16, V)
    # causal: changing a later token does not change earlier positions' predictions
    X2 = small.X[:3].copy()
    X2[:, 10] = (X2[:, 10] + 1) % V
    with engine.no_grad():
        l2, _ = model(engine.tensor(X2))
    np.testing.assert_allclose(l2.numpy()[:, :10], logits.numpy()[:, :10], rtol=1e-5, atol=1e-5)
    assert np.abs(l2.numpy()[:, 10:] - logits.numpy()[:, 10:]).max() > 1e-4
    val, train = _trained(model, small, optim.AdamW(model.parameters(), lr=3e-3), 3)
    log_outcome("lm_transformer", val=val, train=train)
    assert val < 17 and train < 14, (val, train)
    text = L.predict(model, "it has", 10, small.vocab)
    assert text.startswith("it has") and len(text) == 16


def test_cosine_schedule():
    f = L.cosine_schedule(2.0, 10)
    assert f(0) == 2.0 and f(5) == pytest.approx(1.0) and f(10) == pytest.approx(0.0) and f(12) == pytest.approx(0.0)


# ---- the experiments through the runner ---------------------------------------------------------------------
def test_experiments_registered_and_run(tmp_path):
    from engine import models
    from engine.train import main
    assert {"ngram", "rnn-lm", "gru-lm", "transformer-lm"} <= set(models.names())
    assert main(["ngram", "--quiet", "--out", str(tmp_path)]) == 0
    rec = json.loads((tmp_path / "ngram.json").read_text())
    assert rec["summary"]["uniform_ppl"] == 28 and rec["summary"]["trigram_val_ppl"] < 9
    assert main(["rnn-lm", "--quiet", "--out", str(tmp_path), "--epochs", "2", "--batch-size", "64",
                 "--set", "num_train=512", "num_val=128", "num_steps=16"]) == 0
    rec = json.loads((tmp_path / "rnn-lm.json").read_text())
    assert len(rec["curves"]["val_ppl"]) == 2 and rec["summary"]["val_ppl"] < 28
    assert rec["summary"]["sample"].startswith("it has")
