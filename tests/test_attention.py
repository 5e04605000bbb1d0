"""Scaled dot-product attention: reference vs finite differences, the fused CPU and CUDA kernels vs the
reference (forward and backward), the D2L test vector, bad inputs, the engine op (on each device) vs the
reference and PyTorch. Determinism: tests/test_determinism.py."""
import numpy as np
import pytest

import engine
import engine.functional as F
import kernels.cpu.attention as cpu
import kernels.reference.attention as ref
from conftest import DTYPES, assert_close, cases, check_backward_fd, kernels_on, noncontig, on_devices, to_dev, to_host


def _qkv(rng, lead, L, S, d, dv, dtype, spike=1.0):
    q = (spike * rng.standard_normal(lead + (L, d))).astype(dtype)
    k = rng.standard_normal(lead + (S, d)).astype(dtype)
    v = rng.standard_normal(lead + (S, dv)).astype(dtype)
    return q, k, v


SIZES = {  # name: (lead, L, S, d, dv)
    "plain": ((2, 3), 97, 257, 24, 40),
    "causal_L<S": ((2, 3), 97, 257, 13, 16),
    "causal_L>S": ((1, 2), 130, 65, 7, 3),
    "tiles_exact": ((1, 2), 128, 256, 64, 64),      # whole tiles (BQ = BK = 128)
    "tiny": ((1,), 1, 1, 1, 1),
    "2d": ((), 40, 70, 5, 6),
    "valid_lens_1d": ((3, 2), 33, 70, 8, 5),
    "valid_lens_2d": ((2,), 33, 70, 8, 5),
    "bool_mask": ((2, 3), 33, 70, 8, 5),
    "bool_mask_keys": ((2, 3), 65, 70, 8, 5),
    "float_mask": ((2, 3), 150, 140, 8, 5),        # several query and key tiles (BQ = BK = 128)
    "causal_valid_lens_2d": ((2,), 150, 140, 8, 5),
    "dropout": ((2, 3), 70, 90, 8, 5),
    "dropout_causal_vl": ((2, 3), 70, 90, 8, 5),
}
# "<feature>+wide": the feature's masking with head dims that are whole numbers of vectors (16 and 32), the
# CPU kernels' outer-product path (kernels/cpu/attention_flash.py), with several query and key tiles
SIZES.update({f"{name}+wide": (SIZES[name][0], 150, 140, 16, 32) for name in
              ("causal_valid_lens_2d", "valid_lens_1d", "bool_mask", "bool_mask_keys", "float_mask", "dropout",
               "dropout_causal_vl")})
CONFIGS = list(SIZES)
# the cuda half: every masking feature at small sizes (_config(small=True)), the dtypes alternating
CUDA_CASES = [(name, DTYPES[i % 2]) for i, name in enumerate(c for c in CONFIGS
                                                             if c != "tiles_exact" and "+wide" not in c)]


def _config(name, rng, dtype, small=False):
    """(lead, L, S, d, dv, kwargs for the kernels): each config exercises one masking feature.
    small: at most 9 queries x 11 keys (for finite differences on the reference)."""
    lead, L, S, d, dv = SIZES[name]
    if small:
        L, S = min(L, 9), min(S, 11)
    name = name.split("+")[0]
    kw = {}
    if name in ("causal_L<S", "causal_L>S", "tiles_exact"):
        kw = dict(is_causal=True)
    elif name == "valid_lens_1d":                  # length 0: fully masked rows
        kw = dict(valid_lens=np.array([0, S // 2, S]))
    elif name == "valid_lens_2d":
        kw = dict(valid_lens=rng.integers(0, S + 5, (2, L)))
    elif name == "causal_valid_lens_2d":           # per-row limits that are not monotone, with the diagonal
        kw = dict(is_causal=True, valid_lens=rng.integers(0, S + 5, (2, L)))
    elif name == "bool_mask":                      # broadcast over the batch; row 3 fully masked
        m = rng.random((3, L, S)) > 0.6
        m[:, 3] = False
        kw = dict(mask=m)
    elif name == "bool_mask_keys":                 # key padding mask (B, 1, 1, S)
        kw = dict(mask=rng.random((2, 1, 1, S)) > 0.3)
    elif name == "float_mask":
        m = rng.standard_normal((2, 3, L, S)).astype(dtype)
        m[m < -1] = -np.inf
        kw = dict(mask=m)
    elif name == "dropout":
        kw = dict(dropout_p=0.3, seed=1234)
    elif name == "dropout_causal_vl":
        kw = dict(dropout_p=0.5, seed=99, is_causal=True, valid_lens=np.array([3, S // 2]))
    return lead, L, S, d, dv, kw


def _kw(kw, d):
    kw = dict(kw)
    return (kw.pop("mask", None), kw.pop("is_causal", False), kw.pop("scale", 1 / np.sqrt(d))), kw


# ---- (1) the reference backward against finite differences -----------------------------------------------
@pytest.mark.parametrize("name", CONFIGS)
def test_reference_backward_fd(name):
    rng = np.random.default_rng(0)
    lead, L, S, d, dv, kw = _config(name, rng, np.float64, small=True)
    args, extra = _kw(kw, d)
    q, k, v = _qkv(rng, lead, L, S, d, dv, np.float64)
    check_backward_fd(lambda q, k, v: ref.sdpa_fwd(q, k, v, *args, **extra)[0],
                      lambda do, q, k, v: ref.sdpa_bwd(do, q, k, v, None, None, *args, **extra), [q, k, v])


# ---- (2) the fused kernels against the reference -----------------------------------------------------------
def _check_kernel(name, dtype, contiguous=True, spike=1.0, device="cpu"):
    """The device's kernels against the reference; on "cuda" at most 9 queries x 11 keys (the simulator)."""
    K = kernels_on(device)
    rng = np.random.default_rng(1)
    lead, L, S, d, dv, kw = _config(name, rng, dtype, small=device == "cuda")
    args, extra = _kw(kw, d)
    q, k, v = _qkv(rng, lead, L, S, d, dv, dtype, spike)
    do = rng.standard_normal(lead + (L, dv)).astype(dtype)
    put = (lambda a: to_dev(a, device)) if contiguous else (lambda a: noncontig(a, device))
    dev = lambda a: to_dev(a, device) if isinstance(a, np.ndarray) else a     # noqa: E731
    dargs = tuple(dev(a) for a in args)
    dextra = {key: dev(val) for key, val in extra.items()}
    o, lse = K.sdpa_fwd(put(q), put(k), put(v), *dargs, **dextra)
    grads = to_host(K.sdpa_bwd(put(do), put(q), put(k), put(v), o, lse, *dargs, **dextra))
    o, lse = to_host(o), to_host(lse)
    o64, lse64 = ref.sdpa_fwd(q, k, v, *args, **extra)
    grads64 = ref.sdpa_bwd(do, q, k, v, o64, lse64, *args, **extra)
    assert o.dtype == dtype and all(g.dtype == dtype for g in grads)
    assert np.array_equal(np.isneginf(lse), np.isneginf(lse64)), "fully masked rows differ"
    lse, lse64 = np.where(np.isneginf(lse64), 0, lse), np.where(np.isneginf(lse64), 0, lse64)
    outs, refs = [o, lse, *grads], [o64, lse64, *grads64]
    if dtype == np.float64:
        for name_, a, b in zip(["o", "lse", "dq", "dk", "dv"], outs, refs):
            assert_close(a, b, dtype, err_msg=name_)
        return
    # float32, FlashAttention's criterion: error at most 3x that of the naive float32 computation
    naive = [*ref.naive_fwd(q, k, v, *args, **extra), *ref.naive_bwd(do, q, k, v, *args, **extra)]
    naive[1] = np.where(np.isneginf(naive[1]), 0, naive[1])
    for name_, a, b, n in zip(["o", "lse", "dq", "dk", "dv"], outs, refs, naive):
        err, err_naive = np.max(np.abs(a - b), initial=0), np.max(np.abs(n - b), initial=0)
        assert err <= 3 * err_naive + 1e-6 * max(1.0, np.max(np.abs(b), initial=0)), (name_, err, err_naive)


@pytest.mark.parametrize(*on_devices("name,dtype", cases(CONFIGS, DTYPES), CUDA_CASES))
def test_kernel_matches_reference(device, name, dtype):
    _check_kernel(name, dtype, device=device)


@pytest.mark.parametrize(*on_devices("name,dtype", cases(["plain", "bool_mask", "causal_L>S"], DTYPES),
                                     [("plain", np.float64), ("bool_mask", np.float32)]))
def test_kernel_noncontiguous_and_spiky(device, name, dtype):
    _check_kernel(name, dtype, contiguous=False, spike=4.0, device=device)


@pytest.mark.parametrize(*on_devices("d,dv,dtype", [(20, 30, np.float32), (100, 128, np.float64),
                                                    (128, 7, np.float32)]))
def test_kernel_head_dims(device, d, dv, dtype):
    """Head dims around the CUDA kernels' builds (D = 32 and 128), causal, against the reference."""
    K = kernels_on(device)
    rng = np.random.default_rng(d)
    q, k, v = (rng.standard_normal(s).astype(dtype) for s in [(2, 5, d), (2, 9, d), (2, 9, dv)])
    scale = 1 / np.sqrt(d)
    ro, rlse = ref.sdpa_fwd(q, k, v, None, True, scale)
    o, lse = K.sdpa_fwd(to_dev(q, device), to_dev(k, device), to_dev(v, device), None, True, scale)
    assert_close(to_host(o), ro, dtype, scale=4)
    assert_close(to_host(lse), rlse, dtype, scale=4)
    dout = rng.standard_normal(ro.shape).astype(dtype)
    grads = K.sdpa_bwd(to_dev(dout, device), to_dev(q, device), to_dev(k, device), to_dev(v, device), o, lse, None,
                       True, scale)
    for nm, g, e in zip(("dq", "dk", "dv"), grads, ref.sdpa_bwd(dout, q, k, v, ro, rlse, None, True, scale)):
        assert_close(to_host(g), e, dtype, scale=8, err_msg=nm)


@pytest.mark.cuda
def test_cuda_kernels_reject_head_dims_they_cannot_hold():
    q = to_dev(np.zeros((1, 2, 200), np.float32), "cuda")
    with pytest.raises(ValueError, match="head dims up to"):
        kernels_on("cuda").sdpa_fwd(q, q, q, None, False, 0.1)


def test_cpu_and_reference_share_names_and_signatures():
    import inspect
    assert cpu.__all__ == ref.__all__ == ["sdpa_fwd", "sdpa_bwd"]
    for name in cpu.__all__:
        assert inspect.signature(getattr(cpu, name)) == inspect.signature(getattr(ref, name))


def test_fully_masked_rows_are_zero(device):
    K = kernels_on(device)
    rng = np.random.default_rng(2)
    q, k, v = (to_dev(a, device) for a in _qkv(rng, (2,), 5, 7, 4, 3, np.float32))
    mask = np.ones((2, 5, 7), bool)
    mask[0, 1] = False
    mask = to_dev(mask, device)
    o, lse = K.sdpa_fwd(q, k, v, mask, False, 0.5)
    dq, dk, dv = to_host(K.sdpa_bwd(to_dev(np.ones((2, 5, 3), np.float32), device), q, k, v, o, lse, mask, False,
                                    0.5))
    o, lse = to_host(o), to_host(lse)
    assert np.all(o[0, 1] == 0) and lse[0, 1] == -np.inf and np.all(dq[0, 1] == 0)
    assert np.all(np.isfinite(o)) and all(np.all(np.isfinite(g)) for g in (dq, dk, dv))


# ---- (4) the book's test vector (D2L, DotProductAttention with valid_lens) --------------------------------
def test_d2l_dot_product_attention():
    queries = engine.tensor(np.random.default_rng(0).standard_normal((2, 1, 2)), dtype=np.float32)
    keys = engine.ones((2, 10, 2))
    values = engine.tensor(np.tile(np.arange(40, dtype=np.float32).reshape(1, 10, 4), (2, 1, 1)))
    for vl in (engine.tensor([2, 6]), np.array([2, 6])):
        out = F.scaled_dot_product_attention(queries, keys, values, valid_lens=vl)
        np.testing.assert_allclose(out.numpy(), [[[2, 3, 4, 5]], [[10, 11, 12, 13]]], rtol=1e-6)


# ---- (5) bad inputs -----------------------------------------------------------------------------------------
def _t(shape, dtype=np.float32):
    return engine.tensor(np.zeros(shape), dtype=dtype)


BAD = [
    (dict(query=_t((2, 4, 8)).numpy()), TypeError, "query"),
    (dict(query=_t((2, 4, 8), np.int64)), TypeError, "query"),
    (dict(key=_t((2, 6, 8), np.float64)), TypeError, "key"),
    (dict(query=_t((8,))), ValueError, "query"),
    (dict(key=_t((2, 6, 7))), ValueError, "key"),
    (dict(key=_t((3, 6, 8))), ValueError, "key"),
    (dict(key=_t((1, 2, 6, 8))), ValueError, "key"),
    (dict(value=_t((2, 5, 3))), ValueError, "value"),
    (dict(value=_t((1, 6, 3))), ValueError, "value"),
    (dict(attn_mask=_t((2, 4, 5))), ValueError, "attn_mask"),
    (dict(attn_mask=_t((3, 2, 4, 6))), ValueError, "attn_mask"),
    (dict(attn_mask=_t((4, 6), np.int64)), TypeError, "attn_mask"),
    (dict(attn_mask=_t((4, 6), np.float64)), TypeError, "attn_mask"),
    (dict(attn_mask=np.ones((4, 6), bool)), TypeError, "attn_mask"),
    (dict(is_causal=1), TypeError, "is_causal"),
    (dict(dropout_p=1.0), ValueError, "dropout_p"),
    (dict(dropout_p=-0.1), ValueError, "dropout_p"),
    (dict(dropout_p="0.1"), TypeError, "dropout_p"),
    (dict(scale=float("inf")), ValueError, "scale"),
    (dict(scale=float("nan")), ValueError, "scale"),
    (dict(scale="x"), TypeError, "scale"),
    (dict(valid_lens=_t((2,))), TypeError, "valid_lens"),
    (dict(valid_lens=np.array([1.0, 2.0])), TypeError, "valid_lens"),
    (dict(valid_lens=3), TypeError, "valid_lens"),
    (dict(valid_lens=engine.tensor([1, 2, 3])), ValueError, "valid_lens"),
    (dict(valid_lens=engine.tensor([[1, 2]] * 2)), ValueError, "valid_lens"),
    (dict(valid_lens=engine.tensor([1, -1])), ValueError, "valid_lens"),
    (dict(query=_t((4, 8)), key=_t((6, 8)), value=_t((6, 3)), valid_lens=engine.tensor([1, 2, 3, 4])),
     ValueError, "valid_lens"),
]


@pytest.mark.parametrize("bad,exc,argname", BAD)
def test_bad_inputs(bad, exc, argname):
    args = dict(query=_t((2, 4, 8)), key=_t((2, 6, 8)), value=_t((2, 6, 3)))
    args.update(bad)
    with pytest.raises(exc, match=argname):
        F.scaled_dot_product_attention(**args)


def test_mask_requiring_grad_is_rejected():
    mask = engine.tensor(np.zeros((4, 6), np.float32), requires_grad=True)
    with pytest.raises(ValueError, match="attn_mask"):
        F.scaled_dot_product_attention(_t((2, 4, 8)), _t((2, 6, 8)), _t((2, 6, 3)), attn_mask=mask)


# ---- (6) the engine op: reference and PyTorch ----------------------------------------------------------
def _engine_grads(q, k, v, do, device="cpu", **kw):
    """Output and the gradients of sum(out * do), as NumPy; tensors on `device`, as are array keywords
    (attn_mask and valid_lens as NumPy arrays become tensors there)."""
    tq, tk, tv = (engine.tensor(a, dtype=a.dtype, requires_grad=True, device=device) for a in (q, k, v))
    kw = {key: engine.tensor(a, dtype=a.dtype, device=device) if isinstance(a, np.ndarray) else a
          for key, a in kw.items()}
    out = F.scaled_dot_product_attention(tq, tk, tv, **kw)
    assert out.device == device
    (out * engine.tensor(do, dtype=do.dtype, device=device)).sum().backward()
    return out.numpy(), tq.grad.numpy(), tk.grad.numpy(), tv.grad.numpy()


@pytest.mark.parametrize(*on_devices("dtype", DTYPES))
def test_engine_matches_reference(device, dtype):
    rng = np.random.default_rng(4)
    L, S = (9, 11) if device == "cuda" else (33, 40)
    q, k, v = _qkv(rng, (2, 2), L, S, 8, 6, dtype)
    do = rng.standard_normal((2, 2, L, 6)).astype(dtype)
    vl = np.array([5, S])
    got = _engine_grads(q, k, v, do, device, is_causal=True, scale=0.3, valid_lens=vl)
    o64, lse64 = ref.sdpa_fwd(q, k, v, None, True, 0.3, vl)
    want = (o64,) + ref.sdpa_bwd(do, q, k, v, o64, lse64, None, True, 0.3, vl)
    for a, b in zip(got, want):
        assert_close(a, b, dtype, scale=5.0)


def test_engine_dropout_uses_default_generator(device):
    rng = np.random.default_rng(5)
    L, S = (9, 11) if device == "cuda" else (33, 40)
    q, k, v = _qkv(rng, (2, 2), L, S, 8, 6, np.float64)
    do = rng.standard_normal((2, 2, L, 6))
    engine.manual_seed(7)
    got = _engine_grads(q, k, v, do, device, dropout_p=0.25)
    seed = int(np.random.default_rng(7).integers(0, 2 ** 63))
    o64, lse64 = ref.sdpa_fwd(q, k, v, None, False, 1 / np.sqrt(8), None, 0.25, seed)
    want = (o64,) + ref.sdpa_bwd(do, q, k, v, o64, lse64, None, False, 1 / np.sqrt(8), None, 0.25, seed)
    for a, b in zip(got, want):
        assert_close(a, b, np.float64)
    keep = ref.dropout_keep(seed, 500, 400, 0.25)
    assert abs(keep.mean() - 0.75) < 0.005


@pytest.mark.parametrize("case", ["plain", "causal_L<S", "causal_L>S", "bool_mask", "float_mask", "scale"])
def test_engine_matches_torch(case):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(6)
    L, S = (7, 12) if case == "causal_L<S" else (12, 7) if case == "causal_L>S" else (10, 11)
    q, k, v = _qkv(rng, (2, 3), L, S, 5, 4, np.float64)
    do = rng.standard_normal((2, 3, L, 4))
    kw = {}
    if case.startswith("causal"):
        kw = dict(is_causal=True)
    elif case == "bool_mask":
        kw = dict(attn_mask=rng.random((3, 1, S)) > 0.3)
        kw["attn_mask"][..., 0] = True           # no fully masked row: PyTorch gives NaN there
    elif case == "float_mask":
        kw = dict(attn_mask=rng.standard_normal((L, S)))
    elif case == "scale":
        kw = dict(scale=0.7)
    got = _engine_grads(q, k, v, do, **{k_: (engine.tensor(a, dtype=a.dtype) if k_ == "attn_mask" else a)
                                         for k_, a in kw.items()})
    tq, tk, tv = (torch.tensor(a, requires_grad=True) for a in (q, k, v))
    tkw = {k_: (torch.tensor(a) if k_ == "attn_mask" else a) for k_, a in kw.items()}
    out = torch.nn.functional.scaled_dot_product_attention(tq, tk, tv, **tkw)
    out.backward(torch.tensor(do))
    for a, b in zip(got, (out, tq.grad, tk.grad, tv.grad)):
        assert_close(a, b.detach().numpy(), np.float64, scale=10.0)


@pytest.mark.parametrize(*on_devices("mask_kind", [np.bool_, np.float64]))
def test_mask_and_causal_apply_both(device, mask_kind):
    """attn_mask with is_causal=True: both masks apply (PyTorch's fused CPU path does this for 4-D input with
    equal head dims; its math path raises). Against the reference with the causal mask folded into the mask,
    and against PyTorch where it takes that path."""
    rng = np.random.default_rng(8)
    q, k, v = _qkv(rng, (2, 2), 6, 9, 4, 4, np.float64)
    do = rng.standard_normal((2, 2, 6, 4))
    mask = rng.random((6, 9)) > 0.3 if mask_kind is np.bool_ else rng.standard_normal((6, 9))
    mask[:, 0] = True if mask_kind is np.bool_ else mask[:, 0]
    got = _engine_grads(q, k, v, do, device, attn_mask=mask, is_causal=True)
    tril = np.arange(9)[None, :] <= np.arange(6)[:, None]
    both = (mask & tril) if mask_kind is np.bool_ else np.where(tril, mask, -np.inf)
    o64, lse64 = ref.sdpa_fwd(q, k, v, both, False, 0.5)
    want = (o64,) + ref.sdpa_bwd(do, q, k, v, o64, lse64, both, False, 0.5)
    for a, b in zip(got, want):
        assert_close(a, b, np.float64)
    torch = pytest.importorskip("torch")
    tq, tk, tv = (torch.tensor(a, requires_grad=True) for a in (q, k, v))
    out = torch.nn.functional.scaled_dot_product_attention(tq, tk, tv, attn_mask=torch.tensor(mask), is_causal=True)
    out.backward(torch.tensor(do))
    for a, b in zip(got, (out, tq.grad, tk.grad, tv.grad)):
        assert_close(a, b.detach().numpy(), np.float64, scale=10.0)


@pytest.mark.parametrize(*on_devices("scale", [0.0, -0.7]))
def test_zero_and_negative_scale(device, scale):
    """Any finite scale: 0 gives uniform weights over the attended keys, a negative one favours the least
    similar keys (PyTorch takes both)."""
    rng = np.random.default_rng(9)
    q, k, v = _qkv(rng, (2,), 5, 7, 3, 4, np.float64)
    do = rng.standard_normal((2, 5, 4))
    got = _engine_grads(q, k, v, do, device, scale=scale, is_causal=True)
    o64, lse64 = ref.sdpa_fwd(q, k, v, None, True, scale)
    want = (o64,) + ref.sdpa_bwd(do, q, k, v, o64, lse64, None, True, scale)
    for a, b in zip(got, want):
        assert_close(a, b, np.float64)
    if scale == 0:
        np.testing.assert_allclose(got[0][:, 2], v[:, :3].mean(axis=1))


@pytest.mark.parametrize(*on_devices("L,S", [(0, 5), (4, 0), (0, 0)]))
def test_empty_lengths(device, L, S):
    """L = 0: an empty output; S = 0: every row attends nothing, zeros (as PyTorch); zero gradients."""
    rng = np.random.default_rng(10)
    q, k, v = _qkv(rng, (2,), L, S, 3, 4, np.float64)
    got = _engine_grads(q, k, v, rng.standard_normal((2, L, 4)), device)
    assert [g.shape for g in got] == [(2, L, 4), q.shape, k.shape, v.shape]
    assert not any(np.any(g) for g in got)


def test_nan_propagates(device):
    """A NaN in a query row makes that row's output NaN (no row is silently zeroed, as a fully masked one is),
    and the NaN reaches the gradients of every key the row attends (PyTorch's dense backward spreads it to
    every key)."""
    rng = np.random.default_rng(11)
    q, k, v = _qkv(rng, (1,), 4, 6, 3, 2, np.float64)
    q[0, 1, 2] = np.nan
    got = _engine_grads(q, k, v, rng.standard_normal((1, 4, 2)), device, is_causal=True)
    assert np.isnan(got[0][0, 1]).all() and np.isfinite(got[0][0, [0, 2, 3]]).all()
    assert np.isnan(got[1][0, 1]).all() and np.isfinite(got[1][0, [0, 2, 3]]).all()      # dq
    assert np.isnan(got[3][0, :2]).all() and np.isfinite(got[3][0, 2:]).all()     # dv: the keys row 1 attends
    assert np.isnan(got[2][0, :2]).all()     # dk: those too (elsewhere dS = 0 meets the NaN query in the GEMM)


def test_no_grad_forward_and_lse_not_exposed(device):
    q = engine.randn(1, 4, 3, device=device)
    with engine.no_grad():
        out = F.scaled_dot_product_attention(q, q, q)
    assert out.shape == (1, 4, 3) and not out.requires_grad


@pytest.mark.cuda
def test_recurrent_and_attention_layers_agree_across_devices():
    """nn.GRU feeding nn.MultiHeadAttention with valid lengths: outputs and a recurrent weight's gradient on
    "cuda" equal the CPU's (float32 rounding)."""
    from engine import nn
    got = {}
    for device in ("cpu", "cuda"):
        engine.manual_seed(0)
        gru = nn.GRU(3, 5).to(device)
        mha = nn.MultiHeadAttention(5, 1, dropout=0.0).to(device)
        x = engine.tensor(np.random.default_rng(2).standard_normal((4, 2, 3)), dtype=engine.float32, device=device)
        out, h = gru(x)
        q = out.transpose(0, 1)
        y = mha(q, q, q, engine.tensor([2, 4], device=device))
        y.sum().backward()
        assert y.device == device and gru.weight_hh_l0.grad.device == device
        got[device] = y.numpy(), gru.weight_hh_l0.grad.numpy()
    for a, b in zip(got["cuda"], got["cpu"]):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
