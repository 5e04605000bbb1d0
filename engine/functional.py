"""Differentiable ops, PyTorch-style names and signatures (`import engine.functional as F`)."""
from .ops.conv import *  # noqa: F401,F403
from .ops.pool import *  # noqa: F401,F403
from .ops.norm import *  # noqa: F401,F403
from .ops.softmax import *  # noqa: F401,F403
from .ops.loss import *  # noqa: F401,F403
from .ops.attention import *  # noqa: F401,F403
from .ops.activation import *  # noqa: F401,F403
from .ops.embedding import *  # noqa: F401,F403
from .ops.linear import *  # noqa: F401,F403
from .ops.rnn import *  # noqa: F401,F403
from .ops.nll import *  # noqa: F401,F403
from .ops.encoding import *  # noqa: F401,F403
from .ops.fused import *  # noqa: F401,F403
