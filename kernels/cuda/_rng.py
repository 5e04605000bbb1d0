"""The counter hash behind dropout (elementwise and in attention): kernels/reference/attention.dropout_keep."""
from numba import cuda, uint64


@cuda.jit(device=True)
def keep(seed, row, j, thr):
    """The reference's dropout_keep for one (row, key): splitmix64's finalizer on a counter."""
    x = uint64(seed) + uint64(row) * uint64(0x9E3779B97F4A7C15) + uint64(j) * uint64(0xC2B2AE3D27D4EB4F)
    x = x ^ (x >> uint64(30))
    x = x * uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> uint64(27))
    x = x * uint64(0x94D049BB133111EB)
    x = x ^ (x >> uint64(31))
    return (x >> uint64(40)) >= uint64(thr)
