"""Character-level language models on The Time Machine (D2L ch. 9-11): n-grams, RNN, GRU, transformer.

Data, as the book sets it up: lowercase, every run of non-letters becomes one space, one token per
character, a vocabulary of 28 tokens (space, '<unk>', a-z). The dataset is every window corpus[i:i+33]
of the corpus (inputs its first 32 tokens, targets its last 32), the first 10,000 windows for training and
the next 5,000 for validation. Perplexity is exp(mean cross entropy per predicted character), over all
32 positions of every validation window.

Every model trains and is scored on the data's device (`TimeMachine(..., device="cuda")`: the windows move
there once). The losses, the perplexity sums, the gradient clipping and greedy sampling stay on the device;
the training loop reads back once per epoch (and every `Run.every` steps for the progress bar).
"""
import collections
import contextlib
import math
import re

import numpy as np

import engine
import engine.functional as F
from engine import nn, optim
from engine.backend import array_module, check_device, check_values, device_of, to_device
from engine.datasets import DataLoader, load_time_machine
from engine.nn.attention import PositionalEncoding, TransformerEncoderBlock
from engine.nn.rnn import GRU, RNN
from engine.nn.utils import clip_grad_norm_

from . import Mean, experiment

__all__ = ["preprocess", "tokenize", "Vocab", "build_corpus", "TimeMachine", "NGram", "RNNLM", "TransformerLM",
           "perplexity", "cosine_schedule", "one_blas_thread", "fit_lm", "predict"]


# ---- data -------------------------------------------------------------------------------------------------
def preprocess(text):
    """Runs of non-letters -> one space, then lowercase (the book's character-level cleaning)."""
    return re.sub("[^A-Za-z]+", " ", text).lower()


def tokenize(text):
    return list(text)


class Vocab:
    """Token <-> index, the book's class: tokens sorted, '<unk>' (and reserved tokens) included; tokens
    seen fewer than min_freq times map to '<unk>'. vocab[token] or vocab[list] -> index or indices."""

    def __init__(self, tokens=(), min_freq=0, reserved_tokens=()):
        tokens = list(tokens)
        if tokens and isinstance(tokens[0], list):
            tokens = [t for line in tokens for t in line]
        counter = collections.Counter(tokens)
        self.token_freqs = sorted(counter.items(), key=lambda x: x[1], reverse=True)
        self.idx_to_token = sorted(set(["<unk>"] + list(reserved_tokens)
                                       + [t for t, f in self.token_freqs if f >= min_freq]))
        self.token_to_idx = {t: i for i, t in enumerate(self.idx_to_token)}

    def __len__(self):
        return len(self.idx_to_token)

    def __getitem__(self, tokens):
        if not isinstance(tokens, (list, tuple)):
            return self.token_to_idx.get(tokens, self.unk)
        return [self[t] for t in tokens]

    def to_tokens(self, indices):
        if hasattr(indices, "__len__") and len(np.shape(indices)) > 0:
            return [self.idx_to_token[int(i)] for i in indices]
        return self.idx_to_token[int(indices)]

    @property
    def unk(self):
        return self.token_to_idx["<unk>"]


def build_corpus(raw_text, vocab=None):
    """(corpus as an int64 array of token indices, vocab)."""
    tokens = tokenize(preprocess(raw_text))
    vocab = vocab or Vocab(tokens)
    return np.array(vocab[tokens], dtype=np.int64), vocab


class TimeMachine:
    """The book's TimeMachine data: X[i] = corpus[i:i+num_steps], Y[i] = corpus[i+1:i+num_steps+1] for the
    first num_train windows (training) and the next num_val (validation). `text` replaces the novel.
    X, Y and the corpus are NumPy arrays; `split` and the loaders give the windows on `device`, where they
    are copied once."""

    def __init__(self, batch_size=1024, num_steps=32, num_train=10000, num_val=5000, text=None, device="cpu"):
        self.batch_size, self.num_steps, self.num_train, self.num_val = batch_size, num_steps, num_train, num_val
        self.corpus, self.vocab = build_corpus(load_time_machine() if text is None else text)
        n = len(self.corpus) - num_steps
        if num_train + num_val > n:
            raise ValueError(f"num_train + num_val: the corpus has only {n} windows of {num_steps + 1} tokens")
        windows = np.lib.stride_tricks.sliding_window_view(self.corpus, num_steps + 1)[:num_train + num_val]
        self.X, self.Y = np.ascontiguousarray(windows[:, :-1]), np.ascontiguousarray(windows[:, 1:])
        self.device = check_device(device)
        self._on_device = tuple(to_device(a, self.device) for a in (self.X, self.Y))

    def split(self, train):
        """(X, Y) of the training (or validation) windows, arrays on the data's device."""
        s = slice(0, self.num_train) if train else slice(self.num_train, self.num_train + self.num_val)
        X, Y = self._on_device
        return X[s], Y[s]

    def get_dataloader(self, train):
        return DataLoader(self.split(train), batch_size=self.batch_size, shuffle=train)

    def train_dataloader(self):
        return self.get_dataloader(True)

    def val_dataloader(self):
        return self.get_dataloader(False)

    def text(self, train):
        """The contiguous stretch of the corpus that the training (or validation) windows cover."""
        lo = 0 if train else self.num_train
        hi = self.num_train if train else self.num_train + self.num_val
        return self.corpus[lo:hi + self.num_steps]


# ---- n-grams ----------------------------------------------------------------------------------------------
class NGram:
    """An n-gram model with Laplace (add-one) smoothing: P(c | ctx) = (count(ctx, c) + 1) / (count(ctx) + V),
    ctx the n-1 previous tokens. With no counts it is the uniform model (perplexity V). The counts live on
    `device`; token ids given on the host are copied there."""

    def __init__(self, n, vocab_size, device="cpu"):
        if n < 1:
            raise ValueError(f"n: must be at least 1, got {n}")
        self.n, self.V = n, vocab_size
        self.counts = to_device(np.zeros((vocab_size,) * n, dtype=np.int64), check_device(device))

    def _grams(self, ids):
        """Each n-gram of `ids` (on the counts' device) as one index into the flattened counts."""
        ids = ids if hasattr(ids, "__cuda_array_interface__") or isinstance(ids, np.ndarray) else np.asarray(ids)
        if ids.ndim != 1 or ids.dtype.kind not in "iu":
            raise ValueError(f"ids: expected a 1-d array of token indices, got {ids.ndim} dims of {ids.dtype}")
        ids = to_device(ids, device_of(self.counts))
        m = len(ids) - self.n + 1
        if m < 1:
            raise ValueError(f"ids: need at least n = {self.n} tokens, got {len(ids)}")
        check_values(((ids < 0) | (ids >= self.V)).any(),
                     lambda: f"ids: token indices must lie in [0, {self.V}), got {int(ids.min())}..{int(ids.max())}")
        flat = ids[:m].astype(np.int64)
        for i in range(1, self.n):
            flat = flat * self.V + ids[i:m + i]
        return flat

    def fit(self, ids):
        flat = self._grams(ids)
        xp = array_module(flat)
        self.counts = self.counts + xp.bincount(flat, minlength=self.V ** self.n).reshape(self.counts.shape)
        return self

    def log_probs(self):
        """log P(c | ctx) as an array of shape (V,) * n (on the counts' device): the last axis is c."""
        xp = array_module(self.counts)
        c = self.counts + 1.0
        return xp.log(c) - xp.log(c.sum(axis=-1, keepdims=True))

    def perplexity(self, ids):
        """exp(mean -log P) over every token of `ids` that has n-1 tokens before it (one host read)."""
        xp = array_module(self.counts)
        return float(xp.exp(-self.log_probs().reshape(-1)[self._grams(ids)].mean()).item())


# ---- neural models ----------------------------------------------------------------------------------------
def one_hot(X, num_classes, dtype=np.float32):
    """(B, T) integer Tensor -> (T, B, num_classes) float Tensor (time-major, as the RNNs take it), made on
    X's device. Indices outside [0, num_classes) raise ValueError (on "cuda" at the next host read)."""
    a = X._data.T
    xp = array_module(a)
    check_values(((a < 0) | (a >= num_classes)).any(),
                 lambda: f"X: token indices must lie in [0, {num_classes}), got {int(a.min())}..{int(a.max())}")
    return engine.Tensor((a[..., None] == xp.arange(num_classes, dtype=a.dtype)).astype(dtype))


class RNNLM(nn.Module):
    """One-hot characters -> recurrent layer (nn.RNN or nn.GRU) -> Linear to vocabulary logits."""

    def __init__(self, rnn, vocab_size):
        super().__init__()
        self.rnn, self.vocab_size = rnn, vocab_size
        self.linear = nn.Linear(rnn.hidden_size, vocab_size)

    def forward(self, X, state=None):
        """X (B, T) token indices -> (logits (B, T, V), state (num_layers, B, H))."""
        out, state = self.rnn(one_hot(X, self.vocab_size, self.linear.weight.dtype), state)
        return self.linear(out).swapaxes(0, 1), state

    def predict(self, prefix, num_preds, vocab):
        """Warm the state up on `prefix`, then append num_preds greedy (argmax) characters. The characters stay
        on the model's device until the end (one host read)."""
        ids = [engine.tensor([vocab[list(prefix)]], device=self.linear.weight.device)]
        with engine.no_grad():
            logits, state = self(ids[0])
            for i in range(num_preds):
                ids.append(logits[:, -1].argmax(dim=-1, keepdim=True))
                if i + 1 < num_preds:
                    logits, state = self(ids[-1], state)
        return "".join(vocab.to_tokens(engine.cat(ids, dim=1).tolist()[0]))


class TransformerLM(nn.Module):
    """Embedding * sqrt(d) + sinusoidal positions -> causal transformer encoder blocks -> Linear (a decoder-only
    character model: position t sees positions <= t). The embedding is drawn from N(0, 1/d), so that the
    scaled embedding and the positional encoding have the same magnitude."""

    def __init__(self, vocab_size, num_hiddens=64, ffn_num_hiddens=128, num_heads=4, num_blks=2, dropout=0.1,
                 max_len=1000):
        super().__init__()
        self.num_hiddens, self.max_len = num_hiddens, max_len
        self.embedding = nn.Embedding(vocab_size, num_hiddens)
        nn.init.normal_(self.embedding.weight, std=num_hiddens ** -0.5)
        self.pos_encoding = PositionalEncoding(num_hiddens, dropout, max_len)
        self.blks = nn.ModuleList([TransformerEncoderBlock(num_hiddens, ffn_num_hiddens, num_heads, dropout,
                                                           causal=True) for _ in range(num_blks)])
        self.linear = nn.Linear(num_hiddens, vocab_size)

    def forward(self, X, state=None):
        """X (B, T) token indices -> (logits (B, T, V), None)."""
        h = self.pos_encoding(self.embedding(X) * math.sqrt(self.num_hiddens))
        for blk in self.blks:
            h = blk(h)
        return self.linear(h), None

    def predict(self, prefix, num_preds, vocab, context=None):
        """Greedy continuation; each step re-reads the last `context` tokens (default: all, up to max_len). The
        tokens stay on the model's device until the end (one host read)."""
        ids = engine.tensor([vocab[list(prefix)]], device=self.linear.weight.device)
        context = context or self.max_len
        with engine.no_grad():
            for _ in range(num_preds):
                logits, _ = self(ids[:, -context:])
                ids = engine.cat([ids, logits[:, -1].argmax(dim=-1, keepdim=True)], dim=1)
        return "".join(vocab.to_tokens(ids.tolist()[0]))


def predict(model, prefix, num_preds, vocab, **kw):
    was = model.training
    model.eval()
    try:
        return model.predict(prefix, num_preds, vocab, **kw)
    finally:
        model.train(was)


def _loss(model, X, Y):
    """Mean cross entropy of the model's logits (B, T, V) against Y (B, T). Logits that are a time-major array
    seen through swapaxes (the RNNs') are scored time-major, so that no reshape copies them."""
    logits, _ = model(X)
    if logits.swapaxes(0, 1)._data.flags.c_contiguous:
        xp = array_module(Y._data)
        logits, Y = logits.swapaxes(0, 1), engine.Tensor(xp.ascontiguousarray(Y._data.T))
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), Y.reshape(-1))


def perplexity(model, X, Y, batch_size=1024):
    """exp(mean cross entropy) of the model's predictions of Y (N, T) from X (N, T), in eval mode. X and Y
    are arrays or Tensors on the model's device; the sum stays there and is read back once."""
    was = model.training
    model.eval()
    total = Mean()
    with engine.no_grad():
        for xb, yb in DataLoader((X, Y), batch_size=batch_size):
            total.add_mean(_loss(model, xb, yb), yb.numel())
    model.train(was)
    return math.exp(total.value())


def cosine_schedule(lr, total_steps):
    """lr * (1 + cos(pi * step / total_steps)) / 2: from lr at step 0 down to 0 at the last step."""
    return lambda step: lr * 0.5 * (1.0 + math.cos(math.pi * min(step, total_steps) / total_steps))


def one_blas_thread():
    """A context in which BLAS (the linear layers' GEMMs) runs on one thread, when threadpoolctl is installed.
    Measured here on 2 cores: after a numba parallel kernel its OpenMP threads spin for a while, and a
    multi-threaded OpenBLAS GEMM racing them ran up to 25x slower; a transformer step took 4.6 s instead of 1.1 s."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(1, user_api="blas")


def fit_lm(model, data, optimizer, epochs, clip=None, run=None, desc="", schedule=None):
    """Minibatch training on data's training windows, on the data's device; after each epoch logs train_ppl
    (running mean of the epoch's minibatch losses) and val_ppl. `schedule(step) -> lr`, if given, sets the
    learning rate of every parameter group before each step. Returns the final validation perplexity. The
    losses and the gradient clipping's norm stay on the device: the host reads the epoch's mean loss and the
    validation perplexity once an epoch (and the running perplexity every `run.every` steps when not quiet)."""
    with one_blas_thread():
        return _fit_lm(model, data, optimizer, epochs, clip, run, desc, schedule)


def _fit_lm(model, data, optimizer, epochs, clip, run, desc, schedule):
    Xv, Yv = data.split(False)
    val = float("nan")
    step = 0
    epochs_iter = range(epochs) if run is None else run.progress(range(epochs), desc=desc)
    for epoch in epochs_iter:
        model.train()
        total = Mean()
        for X, Y in data.train_dataloader():
            if schedule is not None:
                for g in optimizer.param_groups:
                    g["lr"] = schedule(step)
            step += 1
            loss = _loss(model, X, Y)
            optimizer.zero_grad()
            loss.backward()
            if clip:
                clip_grad_norm_(model.parameters(), clip)
            optimizer.step()
            total.add_mean(loss, Y.numel())
            if run is not None:
                run.running(ppl=lambda: math.exp(total.value()))
        train = math.exp(total.value())
        val = perplexity(model, Xv, Yv, data.batch_size)
        if run is not None:
            run.log(epoch + 1, train_ppl=train, val_ppl=val)
    return val


# ---- experiments ------------------------------------------------------------------------------------------
DATA = dict(num_steps=32, num_train=10000, num_val=5000)


def _data(cfg):
    return TimeMachine(cfg.batch_size, cfg.num_steps, cfg.num_train, cfg.num_val, device=cfg.device)


def _finish(model, data, val, run, prefix="it has", num_preds=20):
    sample = predict(model, prefix, num_preds, data.vocab)
    run.note(f"val perplexity {val:.3f}; greedy sample: {sample!r}")
    return {"val_ppl": val, "sample": sample}


@experiment("ngram", "unigram, bigram and trigram character models with Laplace smoothing: validation perplexity",
            **DATA, batch_size=1024)
def ngram(cfg, run):
    data = _data(cfg)
    V = len(data.vocab)
    train, val = (to_device(data.text(t), data.device) for t in (True, False))
    summary = {"uniform_ppl": float(V)}
    for n, name in ((1, "unigram"), (2, "bigram"), (3, "trigram")):
        model = NGram(n, V, device=data.device).fit(train)
        summary[f"{name}_val_ppl"] = model.perplexity(val)
        summary[f"{name}_train_ppl"] = model.perplexity(train)
        run.note(f"{name}: train perplexity {summary[f'{name}_train_ppl']:.3f}, "
                 f"validation {summary[f'{name}_val_ppl']:.3f}")
    return summary


def _rnn_experiment(cls, cfg, run):
    data = _data(cfg)
    V = len(data.vocab)
    model = RNNLM(cls(V, cfg.num_hiddens), V).to(data.device)
    opt = optim.SGD(model.parameters(), lr=cfg.lr)
    val = fit_lm(model, data, opt, cfg.epochs, clip=cfg.clip, run=run, desc=cls.__name__)
    return _finish(model, data, val, run, num_preds=cfg.num_preds)


@experiment("rnn-lm", "one-hot characters -> nn.RNN(32) -> Linear; SGD lr 1, clip 1 (the book's RNN language model)",
            **DATA, epochs=100, lr=1.0, batch_size=1024, num_hiddens=32, clip=1.0, num_preds=20)
def rnn_lm(cfg, run):
    return _rnn_experiment(RNN, cfg, run)


@experiment("gru-lm", "one-hot characters -> nn.GRU(32) -> Linear; SGD lr 4, clip 1, 50 epochs (the book's GRU LM)",
            **DATA, epochs=50, lr=4.0, batch_size=1024, num_hiddens=32, clip=1.0, num_preds=20)
def gru_lm(cfg, run):
    return _rnn_experiment(GRU, cfg, run)


@experiment("transformer-lm", "causal transformer character model (2 blocks, d 64, 4 heads, dropout 0.2), AdamW with "
            "cosine decay", **DATA, epochs=8, lr=3e-3, batch_size=128, num_hiddens=64, ffn_num_hiddens=128,
            num_heads=4, num_blks=2, dropout=0.2, weight_decay=0.01, clip=1.0, cosine=True, num_preds=20)
def transformer_lm(cfg, run):
    data = _data(cfg)
    V = len(data.vocab)
    model = TransformerLM(V, cfg.num_hiddens, cfg.ffn_num_hiddens, cfg.num_heads, cfg.num_blks,
                          cfg.dropout).to(data.device)
    opt = optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps = cfg.epochs * -(-cfg.num_train // cfg.batch_size)
    schedule = cosine_schedule(cfg.lr, steps) if cfg.cosine else None
    val = fit_lm(model, data, opt, cfg.epochs, clip=cfg.clip, run=run, desc="transformer", schedule=schedule)
    return _finish(model, data, val, run, num_preds=cfg.num_preds)
