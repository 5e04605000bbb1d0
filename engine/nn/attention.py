"""Attention layers in the book's form: additive and scaled dot-product attention with `valid_lens`,
multi-head attention, sinusoidal positional encoding and the transformer encoder block.

Shapes follow D2L: queries (B, Q, d_q), keys (B, K, d_k), values (B, K, d_v); `valid_lens` is None, (B,)
or (B, Q) integers; keys at positions >= valid_len get no weight. Each layer keeps its last attention
weights in `.attention_weights` where it computes them (for heat maps).
"""
import math

import numpy as np

from .. import functional as F
from .._checks import check_ndim, check_positive_int, check_tensor
from ..tensor import Tensor, tensor
from .layers import Dropout, LayerNorm, Linear, ReLU
from .module import Module

__all__ = ["AdditiveAttention", "DotProductAttention", "MultiHeadAttention", "PositionalEncoding",
           "PositionWiseFFN", "AddNorm", "TransformerEncoderBlock"]


class AdditiveAttention(Module):
    """score(q, k) = w_v^T tanh(W_q q + W_k k), then masked softmax over the keys."""

    def __init__(self, num_hiddens, dropout=0.0, query_size=None, key_size=None):
        super().__init__()
        self.W_q = Linear(query_size or num_hiddens, num_hiddens, bias=False)
        self.W_k = Linear(key_size or num_hiddens, num_hiddens, bias=False)
        self.w_v = Linear(num_hiddens, 1, bias=False)
        self.dropout = Dropout(dropout)
        self.attention_weights = None

    def forward(self, queries, keys, values, valid_lens=None):
        _check_qkv(queries, keys, values)
        q, k = self.W_q(queries), self.W_k(keys)
        features = F.tanh(q.unsqueeze(2) + k.unsqueeze(1))          # (B, Q, K, h) by broadcasting
        scores = self.w_v(features).squeeze(-1)                        # (B, Q, K)
        self.attention_weights = F.masked_softmax(scores, valid_lens)
        return self.dropout(self.attention_weights) @ values


class DotProductAttention(Module):
    """Scaled dot-product attention through the fused kernel (the L x K weights are not kept).
    `need_weights=True` computes them with masked_softmax instead, for plotting."""

    def __init__(self, dropout=0.0, need_weights=False):
        super().__init__()
        self.dropout, self.need_weights = dropout, need_weights
        self.attention_weights = None

    def forward(self, queries, keys, values, valid_lens=None, is_causal=False):
        if self.need_weights:
            if is_causal:                      # query t sees keys 0..t: a per-row valid length
                valid_lens = causal_lens(valid_lens, queries.shape[0], queries.shape[-2], queries.device)
            d = queries.shape[-1]
            scores = (queries @ keys.swapaxes(-1, -2)) / math.sqrt(d)
            self.attention_weights = F.masked_softmax(scores, valid_lens)
            return F.dropout(self.attention_weights, self.dropout, self.training) @ values
        return F.scaled_dot_product_attention(queries, keys, values, dropout_p=self.dropout if self.training else 0.0,
                                              is_causal=is_causal, valid_lens=valid_lens)


class MultiHeadAttention(Module):
    """num_heads parallel scaled dot-product attentions on projections of size num_hiddens / num_heads."""

    def __init__(self, num_hiddens, num_heads, dropout=0.0, bias=False, need_weights=False):
        super().__init__()
        check_positive_int("num_hiddens", num_hiddens)
        check_positive_int("num_heads", num_heads)
        if num_hiddens % num_heads:
            raise ValueError(f"num_heads: {num_heads} does not divide num_hiddens {num_hiddens}")
        self.num_heads = num_heads
        self.attention = DotProductAttention(dropout, need_weights)
        self.W_q = Linear(num_hiddens, num_hiddens, bias=bias)
        self.W_k = Linear(num_hiddens, num_hiddens, bias=bias)
        self.W_v = Linear(num_hiddens, num_hiddens, bias=bias)
        self.W_o = Linear(num_hiddens, num_hiddens, bias=bias)

    def _split(self, x):                       # (B, T, h) -> (B, heads, T, h / heads)
        B, T, h = x.shape
        return x.reshape(B, T, self.num_heads, h // self.num_heads).permute(0, 2, 1, 3)

    def forward(self, queries, keys, values, valid_lens=None, is_causal=False):
        _check_qkv(queries, keys, values)
        q, k, v = self._split(self.W_q(queries)), self._split(self.W_k(keys)), self._split(self.W_v(values))
        B, H, Q, dh = q.shape
        if valid_lens is not None:             # one row of lengths per (batch, head)
            lens = valid_lens.numpy() if isinstance(valid_lens, Tensor) else np.asarray(valid_lens)
            valid_lens = tensor(np.repeat(lens, H, axis=0), device=queries.device)
        out = self.attention(q.reshape(B * H, Q, dh), k.reshape(B * H, -1, dh), v.reshape(B * H, -1, dh), valid_lens,
                             is_causal)
        out = out.reshape(B, H, Q, dh).permute(0, 2, 1, 3).reshape(B, Q, H * dh)
        return self.W_o(out)


class PositionalEncoding(Module):
    """Adds P[t, 2i] = sin(t / 10000^(2i/d)), P[t, 2i+1] = cos(...) to (B, T, d) input, then dropout."""

    def __init__(self, num_hiddens, dropout=0.0, max_len=1000):
        super().__init__()
        self.dropout = Dropout(dropout)
        t = np.arange(max_len)[:, None] / np.power(10000, np.arange(0, num_hiddens, 2) / num_hiddens)
        P = np.zeros((1, max_len, num_hiddens))
        P[0, :, 0::2] = np.sin(t)
        P[0, :, 1::2] = np.cos(t[:, : num_hiddens // 2])
        self.P = P
        self._P_on = {}              # (device, dtype) -> the table there: copied once, not every forward

    def forward(self, x):
        check_tensor("x", x)
        if x.ndim != 3 or x.shape[2] != self.P.shape[2]:
            raise ValueError(f"x: expected (batch, steps, {self.P.shape[2]}), got shape {x.shape}")
        if x.shape[1] > self.P.shape[1]:
            raise ValueError(f"x: sequence length {x.shape[1]} exceeds max_len {self.P.shape[1]}")
        key = (x.device, x.dtype)
        P = self._P_on.get(key)
        if P is None:
            P = self._P_on[key] = tensor(self.P, dtype=x.dtype, device=x.device)
        return self.dropout(x + P[:, : x.shape[1]])


class PositionWiseFFN(Module):
    def __init__(self, ffn_num_hiddens, ffn_num_outputs, num_inputs=None):
        super().__init__()
        self.dense1 = Linear(num_inputs or ffn_num_outputs, ffn_num_hiddens)
        self.relu = ReLU()
        self.dense2 = Linear(ffn_num_hiddens, ffn_num_outputs)

    def forward(self, x):
        return self.dense2(self.relu(self.dense1(x)))


class AddNorm(Module):
    """LayerNorm(x + Dropout(y)): the residual connection and layer norm of a transformer block."""

    def __init__(self, norm_shape, dropout=0.0):
        super().__init__()
        self.dropout = Dropout(dropout)
        self.ln = LayerNorm(norm_shape)

    def forward(self, x, y):
        if tuple(y.shape) != tuple(x.shape):
            raise ValueError(f"y: shape {y.shape} does not match x's {x.shape} (the residual adds them)")
        return self.ln(x + self.dropout(y))


class TransformerEncoderBlock(Module):
    """Multi-head self-attention and a position-wise FFN, each followed by add & norm.
    `causal=True` lets position t attend only to positions <= t (for language models)."""

    def __init__(self, num_hiddens, ffn_num_hiddens, num_heads, dropout=0.0, bias=False, causal=False):
        super().__init__()
        self.attention = MultiHeadAttention(num_hiddens, num_heads, dropout, bias)
        self.addnorm1 = AddNorm(num_hiddens, dropout)
        self.ffn = PositionWiseFFN(ffn_num_hiddens, num_hiddens)
        self.addnorm2 = AddNorm(num_hiddens, dropout)
        self.causal = causal

    def forward(self, x, valid_lens=None):
        y = self.addnorm1(x, self.attention(x, x, x, valid_lens, self.causal))
        return self.addnorm2(y, self.ffn(y))


def _check_qkv(queries, keys, values):
    """The book's shapes: queries (B, Q, d_q), keys (B, K, d_k), values (B, K, d_v), one batch size."""
    for name, t in (("queries", queries), ("keys", keys), ("values", values)):
        check_tensor(name, t)
        check_ndim(name, t, 3)
    if keys.shape[:2] != values.shape[:2] or queries.shape[0] != keys.shape[0]:
        raise ValueError(f"keys, values: expected queries (B, Q, d), keys (B, K, d) and values (B, K, d_v), got "
                         f"{queries.shape}, {keys.shape} and {values.shape}")


def causal_lens(valid_lens, B, T, device="cpu"):
    """(B, T) valid lengths letting query t see keys 0..t (and no more than valid_lens, if given)."""
    steps = np.broadcast_to(np.arange(1, T + 1), (B, T))
    if valid_lens is None:
        return tensor(steps, device=device)
    lens = valid_lens.numpy() if isinstance(valid_lens, Tensor) else np.asarray(valid_lens)
    return tensor(np.minimum(steps, np.broadcast_to(lens[:, None] if lens.ndim == 1 else lens, (B, T))), device=device)
