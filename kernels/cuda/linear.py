"""Linear layer on the GPU: the reference's dtype-generic code on CuPy arrays, so its GEMMs are CuPy's
matmul (cuBLAS), as the CPU backend uses NumPy's BLAS."""
from ..reference.linear import linear_bwd, linear_fwd

__all__ = ["linear_fwd", "linear_bwd"]
