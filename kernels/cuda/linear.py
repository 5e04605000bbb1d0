"""Linear layer on the GPU: kernels/cpu/linear.py's array-module generic code on CuPy arrays, so its GEMMs are
CuPy's matmul (cuBLAS), as the CPU backend's are NumPy's BLAS."""
from ..cpu.linear import linear_bwd, linear_fwd

__all__ = ["linear_fwd", "linear_bwd"]
