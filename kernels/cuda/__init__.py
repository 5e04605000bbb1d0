"""Numba CUDA kernels on CuPy arrays, module for module and name for name the same as kernels.cpu.

Every family of kernels.cpu is here: conv (conv2d as tiled implicit GEMMs), softmax (softmax, log_softmax,
masked_softmax), loss (cross_entropy, mse_loss), norm (batch and layer norm, training and eval), pool (max,
average, adaptive average), activation (relu, sigmoid, tanh, gelu, dropout), embedding, linear (CuPy's
matmul), optim (SGD, Adam, AdamW), rnn (tanh RNN, GRU, LSTM) and attention (fused scaled dot-product
attention). Under `NUMBA_ENABLE_CUDASIM=1` (how CI tests them) they run in Numba's simulator on the CuPy
stand-in's arrays (kernels/_simcupy.py). Nothing compiles at import.
"""
from .conv import *  # noqa: F401,F403
from .softmax import *  # noqa: F401,F403
from .loss import *  # noqa: F401,F403
from .activation import *  # noqa: F401,F403
from .norm import *  # noqa: F401,F403
from .pool import *  # noqa: F401,F403
from .embedding import *  # noqa: F401,F403
from .linear import *  # noqa: F401,F403
from .optim import *  # noqa: F401,F403
from .rnn import *  # noqa: F401,F403
from .attention import *  # noqa: F401,F403
from .fused import *  # noqa: F401,F403
