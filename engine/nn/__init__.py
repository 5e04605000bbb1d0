"""Layers and their bookkeeping, PyTorch's names: `from engine import nn`."""
from . import init, utils  # noqa: F401
from .layers import *  # noqa: F401,F403
from .module import Module, Parameter  # noqa: F401
from .attention import *  # noqa: F401,F403,E402
from .rnn import *  # noqa: F401,F403,E402
from . import parallel  # noqa: F401,E402
from .sync_batchnorm import SyncBatchNorm  # noqa: F401,E402
from .lazy import *  # noqa: F401,F403,E402
from .losses import *  # noqa: F401,F403,E402
from .. import functional  # noqa: F401,E402  (torch.nn.functional: `from engine.nn import functional as F`)
