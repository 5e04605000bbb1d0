"""kernels.common: the shape helpers every backend shares, against brute force and the reference's masks; and
the rule that puts them there: the backends and the engine never import the oracle."""
import ast
import itertools
import pathlib

import numpy as np
import pytest

from kernels.common import conv2d_out_size, key_limits, mask_block_map, pool_output_size, window_count
from kernels.reference.attention import attn_bias


def _brute_windows(n, k, stride, pad, dilation):
    """Windows whose every tap lies in the padded input, counted one start at a time."""
    return sum(1 for start in range(0, n + pad, stride) if start + dilation * (k - 1) < n + pad)


@pytest.mark.parametrize("n,k,stride,pad,dilation", list(itertools.product((1, 4, 7, 8), (1, 2, 3, 5), (1, 2, 3),
                                                                          (0, 1, 3), (1, 2))))
def test_window_count_is_the_number_of_windows_that_fit(n, k, stride, pad, dilation):
    assert max(window_count(n, k, stride, pad, dilation), 0) == _brute_windows(n, k, stride, pad, dilation)


def test_conv_output_sizes_from_the_book():
    # D2L's padding and strides section, on an 8 x 8 input
    assert conv2d_out_size(8, 8, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1)) == (8, 8)
    assert conv2d_out_size(8, 8, 5, 3, (1, 1), (2, 2, 1, 1), (1, 1)) == (8, 8)
    assert conv2d_out_size(8, 8, 3, 3, (2, 2), (1, 1, 1, 1), (1, 1)) == (4, 4)
    assert conv2d_out_size(8, 8, 3, 5, (3, 4), (0, 0, 1, 1), (1, 1)) == (2, 2)


@pytest.mark.parametrize("n,k,s,p", [(n, k, s, p) for n in (1, 4, 5, 7, 10) for k in (1, 2, 3, 4) for s in (1, 2, 3)
                                     for p in range(k // 2 + 1)])
def test_pool_ceil_mode_keeps_the_windows_that_start_inside(n, k, s, p):
    """Floor mode: the windows that fit in the padded input. ceil_mode (PyTorch's rule): also a last, partial
    window, if it starts inside the input or the left padding."""
    assert max(pool_output_size(n, k, s, p, False), 0) == _brute_windows(n, k, s, 2 * p, 1)
    last_full = n + 2 * p - k                       # the last start of a window that fits
    ceil = sum(1 for start in range(0, n + p, s) if start < last_full + s)
    assert max(pool_output_size(n, k, s, p, True), 0) == ceil


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("lens_shape", [None, (2,), (2, 5)])
def test_key_limits_attend_exactly_the_reference_masks_keys(causal, lens_shape):
    rng = np.random.default_rng(0)
    lead, L, S = (2, 3), 5, 7
    valid_lens = None if lens_shape is None else rng.integers(-1, S + 2, lens_shape)
    klim = key_limits(lead, L, S, causal, valid_lens)
    attended = attn_bias(None, causal, valid_lens, lead, L, S) == 0
    assert klim.shape == (6, L) and klim.dtype == np.int64
    np.testing.assert_array_equal(np.arange(S) < klim[..., None], attended.reshape(6, L, S))


@pytest.mark.parametrize("mask_lead,lead", [((), (2, 3)), ((1, 3), (2, 3)), ((2, 1), (2, 3)), ((2, 3), (2, 3)),
                                            ((3,), (2, 3))])
def test_mask_block_map_names_the_block_each_head_reads(mask_lead, lead):
    blocks = np.arange(int(np.prod(mask_lead))).reshape(mask_lead)
    want = np.broadcast_to(blocks, lead).ravel()
    got = mask_block_map(mask_lead, lead)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, want)
    # each head's block is the mask that broadcasting gives it
    mask = np.random.default_rng(1).standard_normal(tuple(mask_lead) + (4,))
    np.testing.assert_array_equal(mask.reshape(-1, 4)[got], np.broadcast_to(mask, tuple(lead) + (4,)).reshape(-1, 4))


def _imports(path):
    """The absolute names of the modules a file imports (relative imports resolved against its package)."""
    package = ".".join(path.with_suffix("").parts[:-1])
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            yield ".".join(p for p in (base, node.module) if p)


def test_backends_and_engine_never_import_the_reference():
    """kernels.reference is the oracle of tests and benchmarks: what a backend or the engine needs from it
    belongs in kernels.common, or the oracle would check code against itself."""
    root = pathlib.Path(__file__).resolve().parents[1]
    files = [f.relative_to(root) for d in ("kernels/cpu", "kernels/cuda", "engine") for f in (root / d).rglob("*.py")]
    files.append(pathlib.Path("kernels/common.py"))
    assert len(files) > 20
    offenders = [(str(f), m) for f in files for m in _imports(root / f) if m.startswith("kernels.reference")]
    assert not offenders, offenders
