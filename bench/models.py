"""End-to-end training steps: LeNet (28x28), a small ResNet (two residual stages) and a transformer encoder
block, in the engine and in PyTorch. Each model is written once against the shared API (`nn`, `F`) and built
twice; PyTorch's copy gets the engine's initial weights. One timed step = zero_grad, forward, cross-entropy,
backward, optimizer step, on a fixed batch. Before timing, the first loss and the loss after one step are
compared (`extra.loss_check`): a large difference means the two models do not compute the same thing.
"""
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


def encoder(nn, F, vocab, d, heads, L, classes=10):
    """Token + position embeddings, one pre-norm encoder block (multi-head attention, ReLU MLP), mean pool,
    linear head: sequence classification."""
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
            a = F.scaled_dot_product_attention(split(self.q(h)), split(self.k(h)), split(self.v(h)))
            x = x + self.o(a.transpose(1, 2).reshape(B, n, d))
            x = x + self.fc2(F.relu(self.fc1(self.ln2(x))))
            return self.head(self.ln3(x).mean(dim=1))
    return Block()


def _copy_init(src, dst, torch):
    """PyTorch model `dst` takes the engine model `src`'s parameters and buffers, by name."""
    sp = dict(src.named_parameters())
    dp = dict(dst.named_parameters())
    if sp.keys() != dp.keys():
        raise RuntimeError(f"the two models name their parameters differently: {sorted(set(sp) ^ set(dp))[:6]}")
    with torch.no_grad():
        for name, p in dp.items():
            p.copy_(torch.from_numpy(np.asarray(sp[name].numpy())))
        db = dict(dst.named_buffers())
        for name, b in src.named_buffers():
            if name in db:
                db[name].copy_(torch.from_numpy(np.asarray(b.numpy())))


def _model_case(ctx, make, inputs, batch, opt):
    """Impls for one training step of `make(nn, F)` in the engine and in PyTorch."""
    import engine
    import engine.functional as F
    from engine import nn, optim
    engine.manual_seed(0)
    em = make(nn, F)
    if ctx.dtype == np.float64:
        em = em.double()
    arrays, target = inputs(ctx, batch)
    ex = [engine.Tensor(ctx.put(a)) for a in arrays]
    et = engine.Tensor(ctx.put(target))
    eo = opt(optim, em.parameters())

    def estep():
        eo.zero_grad()
        loss = F.cross_entropy(em(*ex), et)
        loss.backward()
        eo.step()
        return loss
    passes = {"step": {"engine": estep}}
    extra = {"items": batch, "params": int(sum(p.numel() for p in em.parameters()))}
    T = ctx.torch
    if T is not None:
        tm = make(T.nn, T.nn.functional)
        tm = tm.double() if ctx.dtype == np.float64 else tm
        _copy_init(em, tm, T)
        tx = [T.from_numpy(a) for a in arrays]
        tt = T.from_numpy(target)
        to = opt(T.optim, tm.parameters())

        def tstep():
            to.zero_grad()
            loss = T.nn.functional.cross_entropy(tm(*tx), tt)
            loss.backward()
            to.step()
            return loss
        passes["step"]["torch"] = tstep
        e0, t0 = float(estep().item()), float(tstep().item())
        e1, t1 = float(estep().item()), float(tstep().item())
        extra["loss_check"] = {"engine": [e0, e1], "torch": [t0, t1],
                               "max_rel_diff": max(abs(e0 - t0) / abs(t0), abs(e1 - t1) / abs(t1))}
    return Impls(passes, bound="flops", extra=extra)


def _images(shape, classes=10):
    def make(ctx, batch):
        return [ctx.randn(batch, *shape)], ctx.rng.integers(0, classes, size=batch)
    return make


def _sgd(optim, params):
    return optim.SGD(params, lr=0.05, momentum=0.9)


@bench_case("lenet", "models", "train step, batch 256, 1x28x28", {"batch": 256}, {"batch": 8},
            quick_label="train step, batch 8, 1x28x28",
            engine_op=("conv2d", "avg_pool2d", "cross_entropy"))
def lenet_case(ctx, p):
    return _model_case(ctx, lenet, _images((1, 28, 28)), p["batch"], _sgd)


@bench_case("resnet", "models", "train step, batch 64, 3x32x32, 2 stages", {"batch": 64}, {"batch": 4},
            quick_label="train step, batch 4, 3x32x32, 2 stages",
            engine_op=("conv2d", "batch_norm", "max_pool2d", "adaptive_avg_pool2d", "cross_entropy"))
def resnet_case(ctx, p):
    return _model_case(ctx, resnet, _images((3, 32, 32)), p["batch"], _sgd)


@bench_case("transformer", "models", "train step, B32 L128 d128 4 heads", {"B": 32, "L": 128, "d": 128, "heads": 4},
            {"B": 2, "L": 16, "d": 32, "heads": 2}, quick_label="train step, B2 L16 d32 2 heads",
            engine_op=("scaled_dot_product_attention", "layer_norm", "cross_entropy"))
def transformer_case(ctx, p):
    vocab, L = 1000, p["L"]

    def inputs(ctx, batch):
        tokens = ctx.rng.integers(0, vocab, size=(batch, L))
        return [tokens, np.broadcast_to(np.arange(L), (batch, L)).copy()], ctx.rng.integers(0, 10, size=batch)
    return _model_case(ctx, lambda nn, F: encoder(nn, F, vocab, p["d"], p["heads"], L), inputs, p["B"],
                       lambda optim, ps: optim.AdamW(ps, lr=1e-3))
