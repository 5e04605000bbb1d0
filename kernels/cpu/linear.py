"""Linear layer on the CPU: BLAS GEMMs through NumPy (sgemm/dgemm already run near the machine's limit).

The reference's code is dtype-generic, so the CPU backend serves it as is, in the input's dtype.
"""
from ..reference.linear import linear_bwd, linear_fwd

__all__ = ["linear_fwd", "linear_bwd"]
