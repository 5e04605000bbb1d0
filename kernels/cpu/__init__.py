"""Numba CPU kernels: @njit(cache=True), prange over independent outputs. Nothing compiles at import; a
compile on first use prints one line (kernels/_notice.py)."""
from .._notice import install as _install_compile_notice
from ._memory import keep_freed_memory as _keep_freed_memory
from ._threads import short_spin_openmp as _short_spin_openmp

_short_spin_openmp()            # before Numba's OpenMP pool starts: idle workers spin briefly, then sleep
_keep_freed_memory()            # a step's arrays reuse freed memory, without page faults (see _memory.py)
from .conv import *  # noqa: F401,F403
from .pool import *  # noqa: F401,F403
from .norm import *  # noqa: F401,F403
from .softmax import *  # noqa: F401,F403
from .loss import *  # noqa: F401,F403
from .attention import *  # noqa: F401,F403
from .activation import *  # noqa: F401,F403
from .embedding import *  # noqa: F401,F403
from .linear import *  # noqa: F401,F403
from .optim import *  # noqa: F401,F403
from .rnn import *  # noqa: F401,F403
from .fused import *  # noqa: F401,F403

_install_compile_notice()
