"""The torch.* functions on "cuda" give what they give on the CPU (values, dtypes, gradients) and keep their
outputs on the device; the Lazy modules, nll_loss, one_hot and the DataLoader work there too. Run under the
simulator: NUMBA_ENABLE_CUDASIM=1 pytest tests/cuda/test_cuda_torch_api.py (or on a GPU)."""
import numpy as np
import pytest

import engine
import engine.functional as F
from engine import nn
from engine.backend import cuda_status
from engine.utils import data

pytestmark = [pytest.mark.timeout(600),
              pytest.mark.skipif(not cuda_status()[0], reason="needs NUMBA_ENABLE_CUDASIM=1 before numba is "
                                                               "imported, or a GPU")]

rng = np.random.default_rng(0)
X = rng.standard_normal((3, 4))
Y = rng.standard_normal((4, 2))
POS = rng.uniform(0.5, 2.0, (3, 4))
IDX = np.array([[0, 3], [1, 1], [2, 0]])


def _run(fn, arrays, device):
    ts = [engine.tensor(a, requires_grad=a.dtype.kind == "f", device=device) for a in arrays]
    outs = fn(*ts)
    outs = list(outs) if isinstance(outs, (tuple, list)) else [outs]
    loss = None
    for o in outs:
        assert o.device == device, f"an output is on {o.device}, expected {device}"
        if o.requires_grad:
            w = engine.tensor(np.linspace(-1, 1, o.numel()).reshape(o.shape).astype(o.dtype), device=device)
            loss = (o * w).sum() if loss is None else loss + (o * w).sum()
    if loss is not None:
        loss.backward()
    return [o.numpy() for o in outs], [t.grad.numpy() if t.requires_grad and t.grad is not None else None
                                       for t in ts]


CASES = {
    "math": (lambda x, p: (engine.sin(x), p.log2(), x ** p, 2 ** x, engine.maximum(x, p * 0),
                           engine.where(x > 0, x, p), x % 0.7, x.abs(), p.rsqrt()), [X, POS]),
    "reduce": (lambda x: (x.max(1).values, x.min(0)[0], x.norm(dim=1), x.cumsum(1), x.std(0), x.sort(1).values,
                          engine.topk(x, 2).values, x.amax((0, 1)), x.logsumexp(1)), [X]),
    "linalg": (lambda x, y: (engine.mm(x, y), engine.matmul(x[0], y), engine.dot(x[0], x[1]),
                             engine.bmm(x[None], y[None]), engine.mv(x, y[:, 0])), [X, Y]),
    "shape": (lambda x, i: (x.repeat_interleave(2, dim=0), x.repeat(2, 1), x[:1].expand(3, 4), engine.gather(x, 1, i),
                            x.flip(0), x.t(), engine.tril(x), x.split(2, 1)[1]), [X, IDX]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_functions_on_cuda_match_the_cpu(name):
    fn, arrays = CASES[name]
    cpu_out, cpu_grads = _run(fn, arrays, "cpu")
    dev_out, dev_grads = _run(fn, arrays, "cuda")
    for a, b in zip(dev_out, cpu_out):
        assert a.dtype == b.dtype
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    for a, b in zip(dev_grads, cpu_grads):
        assert (a is None) == (b is None)
        if a is not None:
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_creation_random_and_promotion_on_cuda():
    x = engine.arange(6, device="cuda").reshape(2, 3)
    y = x / 2 + 0.5
    assert y.device == "cuda" and y.dtype == engine.float32
    assert (x.sum().item(), x.float().mean().item()) == (15, 2.5)
    for t in (engine.normal(engine.zeros(4, device="cuda"), 1.0), engine.randn(size=(2,), device="cuda"),
              engine.full((2,), 3, device="cuda"), engine.randint(0, 5, (3,), device="cuda"),
              engine.zeros(3, device="cuda").normal_(0, 1), (x > 2).nonzero(), ~(x > 2), x.argmax(1)):
        assert t.device == "cuda"


def test_lazy_modules_losses_and_loader_on_cuda():
    net = nn.Sequential(nn.LazyConv2d(2, 3, padding=1), nn.LazyBatchNorm2d(), nn.Flatten(), nn.LazyLinear(3)).to("cuda")
    x = engine.randn(4, 1, 4, 4, device="cuda")
    logits = net(x)
    assert logits.device == "cuda" and all(p.device == "cuda" for p in net.parameters())
    t = engine.tensor([0, 2, 1, 2], device="cuda")
    loss = nn.NLLLoss()(F.log_softmax(logits, dim=1), t)
    loss.backward()
    np.testing.assert_allclose(loss.item(), F.cross_entropy(logits, t).item(), rtol=1e-5)
    assert net[3].weight.grad.device == "cuda"
    oh = F.one_hot(t, 3)
    assert oh.device == "cuda" and oh.numpy().tolist() == [[1, 0, 0], [0, 0, 1], [0, 1, 0], [0, 0, 1]]
    ds = data.TensorDataset(x, t)
    batches = list(data.DataLoader(ds, batch_size=3))
    assert [b[0].shape[0] for b in batches] == [3, 1] and batches[0][1].device == "cuda"
