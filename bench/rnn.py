"""Recurrences (tanh RNN, GRU, LSTM) with backward through time: kernel checks. The input projection is the linear
op's job; these kernels run only the sequential part (kernels/reference/rnn.py states the equations)."""
import numpy as np

from .core import verify_op


def _inputs(params, rng, G):
    T, B, H = params["T"], params["B"], params["H"]
    return {"xw": rng.standard_normal((T, B, G * H)), "h0": rng.standard_normal((B, H)) * 0.5,
            "w": rng.standard_normal((G * H, H)) / np.sqrt(H), "b": rng.standard_normal(G * H) if params["bias"] else None}


def _rnn_run(k, inp, dout_like):
    hs = k.rnn_tanh_fwd(inp["xw"], inp["h0"], inp["w"], inp["b"])
    return {"fwd": [hs], "bwd": list(k.rnn_tanh_bwd(dout_like(hs), hs, inp["h0"], inp["w"]))}


def _gru_run(k, inp, dout_like):
    hs, gates = k.gru_fwd(inp["xw"], inp["h0"], inp["w"], inp["b"])
    return {"fwd": [hs, gates], "bwd": list(k.gru_bwd(dout_like(hs), hs, gates, inp["h0"], inp["w"]))}


FIXED = [{"T": 1, "B": 1, "H": 1, "bias": True}, {"T": 5, "B": 3, "H": 7, "bias": False},
         {"T": 35, "B": 32, "H": 64, "bias": True}, {"T": 9, "B": 65, "H": 33, "bias": True}]


def _sample(rng):
    return {"T": int(rng.integers(1, 30)), "B": int(rng.integers(1, 70)), "H": int(rng.integers(1, 80)),
            "bias": bool(rng.integers(2))}


verify_op(op="rnn_tanh", family="rnn", kernels=("rnn_tanh_fwd", "rnn_tanh_bwd"), fixed=FIXED, sample=_sample,
          inputs=lambda p, rng: _inputs(p, rng, 1), run=_rnn_run, scale=5.0, noncontig=("xw",))
verify_op(op="gru", family="rnn", kernels=("gru_fwd", "gru_bwd"), fixed=FIXED, sample=_sample,
          inputs=lambda p, rng: _inputs(p, rng, 3), run=_gru_run, scale=5.0, noncontig=("xw",))


def _lstm_inputs(params, rng):
    inp = _inputs(params, rng, 4)
    inp["c0"] = rng.standard_normal(inp["h0"].shape) * 0.5
    return inp


def _lstm_run(k, inp, dout_like):
    hc, gates = k.lstm_fwd(inp["xw"], inp["h0"], inp["c0"], inp["w"], inp["b"])
    return {"fwd": [hc, gates], "bwd": list(k.lstm_bwd(dout_like(hc), hc, gates, inp["h0"], inp["c0"], inp["w"]))}


verify_op(op="lstm", family="rnn", kernels=("lstm_fwd", "lstm_bwd"), fixed=FIXED, sample=_sample,
          inputs=_lstm_inputs, run=_lstm_run, scale=5.0, noncontig=("xw",))
