"""End-to-end training steps: LeNet (28x28), a small ResNet (two residual stages), a causal transformer
encoder block and the book's GRU character language model, in the engine and in PyTorch. Each model is
written once against the shared API (`nn`, `F`) and built twice; PyTorch's copy gets the engine's initial
weights. One step = zero_grad, forward, cross-entropy, backward, gradient clipping (the GRU), optimizer step,
on a fixed batch. The first loss and the loss after one step are compared (`loss_check`): a large difference
means the two models do not compute the same thing.

`MODELS` holds the four; two benchmarks use them: the cases below (both libraries interleaved in the op
suite's process) and bench/steps.py (each library alone in a fresh process, as a user runs it).
"""
import dataclasses
from typing import Callable

import numpy as np

from .core import Impls, bench_case


def lenet(nn, F):
    """The book's LeNet-5 (sigmoid, average pooling) on 1x28x28."""
    return nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.Sigmoid(), nn.AvgPool2d(2, 2),
                         nn.Conv2d(6, 16, 5), nn.Sigmoid(), nn.AvgPool2d(2, 2), nn.Flatten(),
                         nn.Linear(16 * 5 * 5, 120), nn.Sigmoid(), nn.Linear(120, 84), nn.Sigmoid(), nn.Linear(84, 10))


def resnet(nn, F, width=16):
    """Stem conv-BN-ReLU and a 2x2 max pool, then two stages of one residual block each (the second halves
    H and W, with a 1x1 projection on the shortcut), global average pool, linear head. Input 3x32x32."""
    class Residual(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.proj = nn.Conv2d(cin, cout, 1, stride=stride, bias=False) if stride != 1 or cin != cout else None

        def forward(self, x):
            y = F.relu(self.bn1(self.conv1(x)))
            y = self.bn2(self.conv2(y))
            return F.relu(y + (x if self.proj is None else self.proj(x)))

    w = width
    return nn.Sequential(nn.Conv2d(3, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU(),
                         nn.MaxPool2d(2, 2), Residual(w, w, 1), Residual(w, 2 * w, 2),
                         nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.Linear(2 * w, 10))


def encoder(nn, F, vocab, d, heads, L, classes=10, is_causal=False):
    """Token + position embeddings, one pre-norm encoder block (multi-head attention, ReLU MLP), mean pool,
    linear head: sequence classification. is_causal: position i attends to positions <= i only."""
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.tok = nn.Embedding(vocab, d)
            self.pos = nn.Embedding(L, d)
            self.ln1 = nn.LayerNorm(d)
            self.q, self.k, self.v, self.o = (nn.Linear(d, d) for _ in range(4))
            self.ln2 = nn.LayerNorm(d)
            self.fc1 = nn.Linear(d, 4 * d)
            self.fc2 = nn.Linear(4 * d, d)
            self.ln3 = nn.LayerNorm(d)
            self.head = nn.Linear(d, classes)

        def forward(self, tokens, positions):
            x = self.tok(tokens) + self.pos(positions)
            B, n = tokens.shape
            h = self.ln1(x)
            split = lambda t: t.reshape(B, n, heads, d // heads).transpose(1, 2)
            a = F.scaled_dot_product_attention(split(self.q(h)), split(self.k(h)), split(self.v(h)),
                                               is_causal=is_causal)
            x = x + self.o(a.transpose(1, 2).reshape(B, n, d))
            x = x + self.fc2(F.relu(self.fc1(self.ln2(x))))
            return self.head(self.ln3(x).mean(dim=1))
    return Block()


def gru_lm(nn, F, vocab, hidden):
    """The book's character language model with a GRU: one-hot tokens (T, B) -> nn.GRU(vocab, hidden) ->
    Linear(hidden, vocab); logits (T * B, vocab), time-major, for a (T * B,) target."""
    class GRULM(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = nn.GRU(vocab, hidden)
            self.linear = nn.Linear(hidden, vocab)

        def forward(self, tokens):
            out, _ = self.rnn(F.one_hot(tokens, vocab).to(self.linear.weight.dtype))
            return self.linear(out).reshape(-1, vocab)
    return GRULM()




# ---- the four models: shapes, inputs, optimizer ------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Model:
    """make(nn, F, p) -> module; inputs(rng, p, dtype) -> ([input arrays], target array); opt(optim, params)
    -> optimizer; clip: the gradient norm clipped to before each step (None: no clipping)."""
    name: str
    label: str
    params: dict
    quick: dict
    quick_label: str
    make: Callable
    inputs: Callable
    opt: Callable
    clip: float = None
    engine_op: tuple = ()


def _images(shape, classes=10):
    def make(rng, p, dtype):
        return [rng.standard_normal((p["batch"], *shape)).astype(dtype)], rng.integers(0, classes, size=p["batch"])
    return make


def _tokens(rng, p, dtype):
    B, L, vocab = p["B"], p["L"], p["vocab"]
    tokens = rng.integers(0, vocab, size=(B, L))
    return [tokens, np.broadcast_to(np.arange(L), (B, L)).copy()], rng.integers(0, 10, size=B)


def _characters(rng, p, dtype):
    """Time-major windows: inputs seq[:-1] (T, B), targets seq[1:] flattened (T * B,)."""
    seq = rng.integers(0, p["vocab"], size=(p["T"] + 1, p["B"]))
    return [np.ascontiguousarray(seq[:-1])], np.ascontiguousarray(seq[1:]).reshape(-1)


def _sgd(optim, params):
    return optim.SGD(params, lr=0.05, momentum=0.9)


MODELS = {m.name: m for m in (
    Model("lenet", "batch 256, 1x28x28", {"batch": 256}, {"batch": 8}, "batch 8, 1x28x28",
          lambda nn, F, p: lenet(nn, F), _images((1, 28, 28)), _sgd,
          engine_op=("conv2d", "avg_pool2d", "cross_entropy")),
    Model("resnet", "batch 64, 3x32x32, 2 stages", {"batch": 64}, {"batch": 4}, "batch 4, 3x32x32, 2 stages",
          lambda nn, F, p: resnet(nn, F), _images((3, 32, 32)), _sgd,
          engine_op=("conv2d", "batch_norm", "max_pool2d", "adaptive_avg_pool2d", "cross_entropy")),
    Model("transformer", "B32 L128 d128 4 heads, causal", {"B": 32, "L": 128, "d": 128, "heads": 4, "vocab": 1000},
          {"B": 2, "L": 16, "d": 32, "heads": 2, "vocab": 1000}, "B2 L16 d32 2 heads, causal",
          lambda nn, F, p: encoder(nn, F, p["vocab"], p["d"], p["heads"], p["L"], is_causal=True), _tokens,
          lambda optim, ps: optim.AdamW(ps, lr=1e-3),
          engine_op=("scaled_dot_product_attention", "layer_norm", "cross_entropy")),
    Model("gru_lm", "vocab 28, T32 B32, 256 hidden, clip 1", {"vocab": 28, "T": 32, "B": 32, "hidden": 256},
          {"vocab": 28, "T": 8, "B": 4, "hidden": 16}, "vocab 28, T8 B4, 16 hidden, clip 1",
          lambda nn, F, p: gru_lm(nn, F, p["vocab"], p["hidden"]), _characters,
          lambda optim, ps: optim.SGD(ps, lr=1.0), clip=1.0, engine_op=("gru", "one_hot", "cross_entropy")),
)}


# ---- one training step, built the same way in both libraries -----------------------------------------------
def _step(net, opt, loss_fn, clip_fn, clip, xs, target):
    def step():
        opt.zero_grad()
        loss = loss_fn(net(*xs), target)
        loss.backward()
        if clip is not None:
            clip_fn(net.parameters(), clip)
        opt.step()
        return loss
    return step


def engine_step(m, p, dtype, seed=0, put=lambda a: a):
    """(engine model, step) for Model m at params p, its weights from engine.manual_seed(seed) and its inputs
    from np.random.default_rng(seed); `put` moves the input arrays to their device."""
    import engine
    import engine.functional as F
    from engine import nn, optim
    engine.manual_seed(seed)
    net = m.make(nn, F, p)
    if np.dtype(dtype) == np.float64:
        net = net.double()
    arrays, target = m.inputs(np.random.default_rng(seed), p, np.dtype(dtype))
    xs = [engine.Tensor(put(a)) for a in arrays]
    return net, _step(net, m.opt(optim, net.parameters()), F.cross_entropy, nn.utils.clip_grad_norm_, m.clip, xs,
                      engine.Tensor(put(target)))


def torch_step(torch, m, p, dtype, init, seed=0):
    """(PyTorch model, step): the same model with the initial weights `init` (init_state of the engine's
    model) and the same inputs as engine_step(m, p, dtype, seed)."""
    net = m.make(torch.nn, torch.nn.functional, p)
    if np.dtype(dtype) == np.float64:
        net = net.double()
    load_state(net, init, torch)
    arrays, target = m.inputs(np.random.default_rng(seed), p, np.dtype(dtype))
    xs = [torch.from_numpy(a) for a in arrays]
    return net, _step(net, m.opt(torch.optim, net.parameters()), torch.nn.functional.cross_entropy,
                      torch.nn.utils.clip_grad_norm_, m.clip, xs, torch.from_numpy(target))


def init_state(net):
    """An engine model's parameters and buffers as host arrays: {"params": {name: array}, "buffers": {...}}."""
    return {"params": {k: np.asarray(v.numpy()) for k, v in net.named_parameters()},
            "buffers": {k: np.asarray(v.numpy()) for k, v in net.named_buffers()}}


def load_state(dst, state, torch):
    """PyTorch model `dst` takes the parameters and buffers of `state` (init_state's), by name."""
    sp, dp = state["params"], dict(dst.named_parameters())
    if sp.keys() != dp.keys():
        raise RuntimeError(f"the two models name their parameters differently: {sorted(set(sp) ^ set(dp))[:6]}")
    with torch.no_grad():
        for name, p in dp.items():
            if tuple(p.shape) != sp[name].shape:
                raise RuntimeError(f"{name}: shape {tuple(p.shape)} in PyTorch, {sp[name].shape} in the engine")
            p.copy_(torch.from_numpy(sp[name]))
        db = dict(dst.named_buffers())
        for name, b in state["buffers"].items():
            if name in db:
                db[name].copy_(torch.from_numpy(b))


def save_state(path, state):
    np.savez(path, **{f"{kind}:{k}": v for kind in ("params", "buffers") for k, v in state[kind].items()})


def read_state(path):
    with np.load(path) as z:
        state = {"params": {}, "buffers": {}}
        for key in z.files:
            kind, name = key.split(":", 1)
            state[kind][name] = z[key]
    return state


def loss_check(engine_losses, torch_losses):
    """The first two losses of each library (before and after one step) and their largest relative difference."""
    diff = max(abs(e - t) / max(abs(t), 1e-30) for e, t in zip(engine_losses, torch_losses))
    return {"engine": list(engine_losses), "torch": list(torch_losses), "max_rel_diff": diff}


# ---- the op suite's cases: both libraries in this process, interleaved --------------------------------------
def _model_case(ctx, m, p):
    """Impls for one training step of Model m in the engine and in PyTorch."""
    em, estep = engine_step(m, p, ctx.dtype, ctx.seed, ctx.put)
    passes = {"step": {"engine": estep}}
    first = p.get("batch", p.get("B"))
    extra = {"items": first, "params": int(sum(q.numel() for q in em.parameters()))}
    T = ctx.torch
    if T is not None:
        _, tstep = torch_step(T, m, p, ctx.dtype, init_state(em), ctx.seed)
        passes["step"]["torch"] = tstep
        e0, t0 = float(estep().item()), float(tstep().item())
        e1, t1 = float(estep().item()), float(tstep().item())
        extra["loss_check"] = loss_check([e0, e1], [t0, t1])
    return Impls(passes, bound="flops", extra=extra)


def _register(m):
    @bench_case(m.name, "models", f"train step, {m.label}", m.params, m.quick,
                quick_label=f"train step, {m.quick_label}", engine_op=m.engine_op)
    def case(ctx, p):
        return _model_case(ctx, m, p)
    return case


for _m in MODELS.values():
    _register(_m)
